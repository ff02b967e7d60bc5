"""Embed texts with the causal LM itself: MMD in the space the model distils from.

Importing this module does not import torch; loading the model or embedding does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptkd._progress import default_show_progress_bar
from promptkd._validation import check_int
from promptkd.embeddings.base import check_output, check_texts, l2_normalise
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.probes._model import model_spec
from promptkd.probes.loading import SMOLLM2, load_lm

__all__ = ["LMEmbedder"]

logger = logging.getLogger("promptkd")

_OUTPUTS = ("hidden", "keys", "values", "kv")


class _Stop(Exception):
    """Raised from a hook to skip the layers after the one we read."""


class LMEmbedder:
    """Mean-pooled hidden states, keys or values of one layer of a causal LM.

    With ``output="kv"`` each row is ``[values | keys]`` (mean-pooled value and key
    projections, ``n_kv_heads * head_dim`` each, keys before rotary embedding), the layout
    that :meth:`attention_kernel` (the product kernel k_att) reads. The forward pass stops
    after the chosen layer, so early layers are cheap.

    Parameters
    ----------
    lm
        A :class:`~promptkd.probes.LoadedLM`, a model name/path for :func:`~promptkd.probes.load_lm`,
        or None (SmolLM2-135M-Instruct). Loaded lazily on first use.
    layer
        Layer index (negative counts from the end) or ``"middle"``.
    output
        ``"hidden"`` (the layer's output hidden states), ``"keys"``, ``"values"`` or ``"kv"``.
    device
        Device for loading (``None``: CUDA, MPS, CPU).
    max_length
        Texts are truncated to this many tokens.
    batch_size
        Default batch size for :meth:`encode`.

    Examples
    --------
    >>> emb = LMEmbedder(layer=3, output="kv")
    >>> emb.id
    'lm:SmolLM2-135M-Instruct:layer3:kv:mean'

    ``emb.encode(["a text"])`` loads the model on first use (a few seconds).
    """

    def __init__(
        self,
        lm: Any = None,
        *,
        layer: int | str = "middle",
        output: str = "hidden",
        device: str | None = None,
        max_length: int = 256,
        batch_size: int = 16,
    ) -> None:
        if output not in _OUTPUTS:
            raise InvalidInputError(f"output={output!r} is not known; use one of {', '.join(_OUTPUTS)}.")
        if not (layer == "middle" or (isinstance(layer, int) and not isinstance(layer, bool))):
            raise InvalidTypeError(f"layer must be an int or 'middle', got {layer!r}.")
        self._lm = lm if _is_loaded(lm) else None
        self._model_arg = lm
        self.layer = layer
        self.output = output
        self.device = device
        self.max_length = check_int(max_length, "max_length", minimum=1)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self._lock = threading.Lock()
        self._spec: Any = None

    @property
    def model_name(self) -> str:
        """Name of the LM (without loading it)."""
        if self._lm is not None:
            return str(self._lm.name)
        if self._model_arg is None:
            return SMOLLM2
        return str(self._model_arg)

    @property
    def id(self) -> str:
        """Stable id: model, layer, output and pooling."""
        return f"lm:{self.model_name}:layer{self.layer}:{self.output}:mean"

    def __repr__(self) -> str:
        return f"LMEmbedder(lm={self.model_name!r}, layer={self.layer!r}, output={self.output!r})"

    def _ensure(self) -> Any:
        with self._lock:
            if self._lm is None:
                self._lm = load_lm(self._model_arg, device=self.device)
            if self._spec is None:
                self._spec = model_spec(self._lm.model)
        return self._lm

    @property
    def layer_index(self) -> int:
        """The absolute layer read (loads the model)."""
        self._ensure()
        n = self._spec.n_layers
        if self.layer == "middle":
            return n // 2
        if not -n <= int(self.layer) < n:
            raise InvalidInputError(f"layer={self.layer} is out of range for {self.model_name} with {n} layers.")
        return int(self.layer) % n

    @property
    def kv_dim(self) -> int:
        """Width of the pooled keys (and of the values): n_kv_heads * head_dim (loads the model)."""
        self._ensure()
        return int(self._spec.n_kv_heads * self._spec.head_dim)

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape (len(texts), dim).

        ``normalize`` L2-normalises each row; with ``output="kv"`` the value and key parts
        are normalised separately so the product kernel sees unit-norm parts.
        """

        texts = check_texts(texts)
        bs = self.batch_size if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
        lm = self._ensure()
        spec = self._spec
        layer = self.layer_index
        if not texts:
            dim = spec.hidden_size if self.output == "hidden" else self.kv_dim * (2 if self.output == "kv" else 1)
            return np.zeros((0, dim), dtype=np.float32)
        tok = lm.tokenizer
        order = np.argsort([len(t) for t in texts], kind="stable")
        rows: list[np.ndarray] = [None] * len(texts)  # type: ignore[list-item]
        from tqdm.auto import tqdm

        starts = range(0, len(texts), bs)
        for start in tqdm(starts, desc="LM embeddings", disable=not default_show_progress_bar(show_progress_bar)):
            idx = order[start : start + bs]
            batch = [texts[i] if texts[i] else " " for i in idx]
            enc = tok(batch, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
            ids = enc["input_ids"].to(lm.device)
            mask = enc["attention_mask"].to(lm.device)
            if tok.padding_side != "right":  # mean pooling only needs the mask; positions need right padding
                logger.debug("tokenizer pads on the %s; pooling uses the attention mask", tok.padding_side)
            out = self._pooled(ids, mask, layer)
            arr = out.cpu().numpy().astype(np.float32)
            for j, i in enumerate(idx):
                rows[i] = arr[j]
        X = np.stack(rows).astype(np.float32)
        if normalize:
            if self.output == "kv":
                d = self.kv_dim
                X = np.concatenate([l2_normalise(X[:, :d]), l2_normalise(X[:, d:])], 1)
            else:
                X = l2_normalise(X)
        return check_output(X, len(texts), self.id)

    def _pooled(self, ids: Any, mask: Any, layer: int) -> Any:
        """Run the decoder up to ``layer`` (hooks stop it there) and mean-pool the chosen output."""
        import torch

        decoder = self._lm.model.get_decoder()
        attn = self._spec.attention[layer]
        wanted = {"hidden": ("hidden",), "values": ("values",), "keys": ("keys",), "kv": ("values", "keys")}[
            self.output
        ]
        got: dict[str, Any] = {}

        def grab(name: str) -> Any:
            def hook(module: Any, args: Any, out: Any) -> None:
                got[name] = out[0] if isinstance(out, tuple) else out
                if len(got) == len(wanted):
                    raise _Stop

            return hook

        targets = {"values": attn.v_proj, "keys": attn.k_proj}
        if self.output == "hidden":
            layers_mod = getattr(decoder, "layers", None)
            if layers_mod is None:
                raise InvalidInputError(f"{type(decoder).__name__} has no .layers; use output='keys' or 'values'.")
            targets["hidden"] = layers_mod[layer]
        handles = [targets[name].register_forward_hook(grab(name)) for name in wanted]
        try:
            with torch.inference_mode():
                decoder(input_ids=ids, attention_mask=mask, use_cache=False)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        w = mask.unsqueeze(-1).float()
        pooled = [(got[name].float() * w).sum(1) / w.sum(1).clamp_min(1.0) for name in wanted]
        return torch.cat(pooled, 1)

    def attention_kernel(self, *, key_kernel: str = "rbf", key_bandwidth: Any = "median") -> Any:
        """The product kernel k_att for this embedder's ``output="kv"`` rows (per KV head).

        Examples
        --------
        >>> LMEmbedder(output="hidden").attention_kernel()  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        promptkd.exceptions.InvalidInputError: ...
        """
        if self.output != "kv":
            raise InvalidInputError(
                "attention_kernel needs key and value embeddings: create the embedder with output='kv'."
            )
        from promptkd.kernels.attention import AttentionKernel

        self._ensure()
        return AttentionKernel(
            value_dim=self.kv_dim,
            n_heads=int(self._spec.n_kv_heads),
            key_kernel=key_kernel,
            key_bandwidth=key_bandwidth,
        )


def _is_loaded(lm: Any) -> bool:
    return lm is not None and hasattr(lm, "model") and hasattr(lm, "tokenizer") and hasattr(lm, "device")
