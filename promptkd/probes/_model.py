"""Model introspection and one-pass capture of attention rows and value vectors.

Internal helpers shared by :class:`~promptkd.probes.AttentionProbe`,
:func:`~promptkd.probes.distilled_weights` and :class:`~promptkd.probes.LMEmbedder`.
Everything stays on the model's device; callers move small results to the host.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError

__all__ = ["Capture", "ModelSpec", "head_to_kv", "model_spec", "resolve_layers"]


@dataclass(frozen=True)
class ModelSpec:
    """Shapes of a decoder-only transformer and its attention modules (in layer order)."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_size: int
    attention: tuple[Any, ...] = field(repr=False)


def head_to_kv(n_heads: int, n_kv_heads: int) -> np.ndarray:
    """Key/value head used by each query head under grouped-query attention.

    transformers' ``repeat_kv`` repeats each KV head ``n_heads // n_kv_heads`` times
    consecutively, so query head ``h`` reads KV head ``h // group``.

    Examples
    --------
    >>> head_to_kv(9, 3).tolist()
    [0, 0, 0, 1, 1, 1, 2, 2, 2]
    """
    if n_kv_heads <= 0 or n_heads % n_kv_heads:
        raise InvalidInputError(
            f"n_heads={n_heads} must be a positive multiple of n_kv_heads={n_kv_heads} for grouped-query attention."
        )
    return np.arange(n_heads) // (n_heads // n_kv_heads)


def _attention_modules(model: Any) -> list[Any]:
    mods = [
        m
        for _, m in model.named_modules()
        if all(hasattr(m, a) for a in ("q_proj", "k_proj", "v_proj", "o_proj")) and hasattr(m, "head_dim")
    ]
    if not mods:
        raise InvalidInputError(
            f"could not find attention modules with q_proj/k_proj/v_proj/o_proj in {type(model).__name__}; "
            "AttentionProbe supports Llama-style decoder models (SmolLM2, Gemma-3, Llama, Qwen, Mistral...)."
        )
    return mods


def model_spec(model: Any) -> ModelSpec:
    """Read layer and head counts from a causal LM.

    Examples
    --------
    >>> model_spec(object())  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    promptkd.exceptions.InvalidInputError: ...
    """
    if not hasattr(model, "named_modules"):
        raise InvalidInputError(f"expected a torch causal LM, got {type(model).__name__}.")
    mods = _attention_modules(model)
    cfg = getattr(model.config, "text_config", None) or model.config
    n_heads = int(cfg.num_attention_heads)
    n_kv = int(getattr(cfg, "num_key_value_heads", None) or n_heads)
    head_dim = int(mods[0].head_dim)
    return ModelSpec(
        n_layers=len(mods),
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        hidden_size=int(cfg.hidden_size),
        attention=tuple(mods),
    )


def resolve_layers(layers: Any, n_layers: int) -> tuple[int, ...]:
    """Turn ``"all"``, an int, a slice, a range or a sequence of ints into sorted layer indices.

    Negative indices count from the end.

    Examples
    --------
    >>> resolve_layers("all", 4)
    (0, 1, 2, 3)
    >>> resolve_layers([-1, 0], 4)
    (0, 3)
    >>> resolve_layers(slice(1, 3), 4)
    (1, 2)
    """
    if isinstance(layers, str):
        if layers != "all":
            raise InvalidInputError(f"layers={layers!r} is not understood; use 'all', an int, a range or a list.")
        return tuple(range(n_layers))
    if isinstance(layers, slice):
        return tuple(range(n_layers)[layers])
    if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
        layers = [int(layers)]
    if not isinstance(layers, (Sequence, range, np.ndarray)):
        raise InvalidTypeError(f"layers must be 'all', an int, a slice or a list of ints, got {type(layers).__name__}.")
    out = set()
    for raw in layers:
        if isinstance(raw, bool) or not isinstance(raw, (int, np.integer)):
            raise InvalidTypeError(f"layers must hold ints, got {raw!r}.")
        i = int(raw)
        if not -n_layers <= i < n_layers:
            raise InvalidInputError(f"layer {i} is out of range for a model with {n_layers} layers.")
        out.add(i % n_layers)
    if not out:
        raise InvalidInputError("layers selects no layer; pass 'all' or at least one layer index.")
    return tuple(sorted(out))


class Capture:
    """Forward hooks that record, for chosen layers, what a probe needs from one forward pass.

    Per layer it keeps the attention row of each sequence's readout position
    (``rows[l]``: (B, H, T)), the value vectors (``values[l]``: (B, T, G, hd)) and,
    when ``keys=True``, the post-rotary queries at the readout and keys
    (``queries[l]``: (B, H, hd), ``keys[l]``: (B, T, G, hd)) exactly as the attention
    module computes them. Only rows are kept, never full T x T matrices.
    """

    def __init__(self, spec: ModelSpec, layers: Sequence[int], *, keys: bool = False, values: bool = True) -> None:
        self.spec = spec
        self.layers = tuple(layers)
        self.want_keys = keys
        self.want_values = values
        self.readout: Any = None  # (B,) long tensor, set before the forward pass
        self.rows: dict[int, Any] = {}
        self.values: dict[int, Any] = {}
        self.keys: dict[int, Any] = {}
        self.queries: dict[int, Any] = {}
        self._handles: list[Any] = []

    def _row_hook(self, layer: int) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if weights is None:
                raise InvalidInputError(
                    "the attention module returned no attention weights; load the model with "
                    'attn_implementation="eager" (promptkd.probes.load_lm does).'
                )
            b = weights.shape[0]
            idx = self.readout.to(weights.device)
            self.rows[layer] = weights[range(b), :, idx, :].float()

        return hook

    def _value_hook(self, layer: int) -> Any:
        spec = self.spec

        def hook(module: Any, args: Any, output: Any) -> None:
            b, t, _ = output.shape
            self.values[layer] = output.view(b, t, spec.n_kv_heads, spec.head_dim).float()

        return hook

    def _key_hook(self, layer: int) -> Any:
        spec = self.spec

        def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            hidden = args[0] if args else kwargs["hidden_states"]
            cos, sin = kwargs["position_embeddings"]
            b, t, _ = hidden.shape
            q = module.q_proj(hidden).view(b, t, spec.n_heads, spec.head_dim)
            k = module.k_proj(hidden).view(b, t, spec.n_kv_heads, spec.head_dim)
            if hasattr(module, "q_norm"):
                q = module.q_norm(q)
            if hasattr(module, "k_norm"):
                k = module.k_norm(k)
            rotary = getattr(sys.modules[type(module).__module__], "apply_rotary_pos_emb", None)
            if rotary is None:
                raise InvalidInputError(f"{type(module).__name__} has no apply_rotary_pos_emb; keys cannot be read.")
            q, k = rotary(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
            idx = self.readout.to(q.device)
            self.queries[layer] = q[range(b), :, idx, :].float()
            self.keys[layer] = k.transpose(1, 2).float()

        return hook

    @contextlib.contextmanager
    def attach(self) -> Iterator[Capture]:
        """Register the hooks for the duration of the ``with`` block."""
        try:
            for layer in self.layers:
                attn = self.spec.attention[layer]
                self._handles.append(attn.register_forward_hook(self._row_hook(layer)))
                if self.want_values:
                    self._handles.append(attn.v_proj.register_forward_hook(self._value_hook(layer)))
                if self.want_keys:
                    self._handles.append(attn.register_forward_pre_hook(self._key_hook(layer), with_kwargs=True))
            yield self
        finally:
            for h in self._handles:
                h.remove()
            self._handles.clear()


@contextlib.contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Temporarily switch a model to eager attention if it uses another implementation."""
    current = getattr(model.config, "_attn_implementation", "eager")
    if current == "eager":
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(current)
