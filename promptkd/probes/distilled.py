"""Distilled weights: the reference model W_0 that attention builds from the demonstrations.

For a query token x and one attention head, the softmax attention output splits into
a demonstration part and a query part; the demonstration part is

    W_0 phi(W^Q x) = sum_{tau in demo tokens} A[x, tau] v_tau,

with ``W_0 = (1/D') sum_tau v_tau phi(k_tau)^T``. It can be read exactly from the
model's attention row and value vectors, without building the feature map ``phi``.
:func:`distilled_weights` does so for many queries that share one demonstration set:
the demonstration prefix is run once and its key/value cache reused for every query,
so the cost grows with the query length, not the prompt length. On request it also
builds an explicit random-feature estimate of ``W_0`` (Performer positive features)
and reports how well it reproduces the exact action.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptkd._lm import cache_kwarg, pad_token_id, right_pad
from promptkd._progress import default_show_progress_bar
from promptkd._validation import check_int
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.demo import Demo
from promptkd.probes._model import Capture, eager_attention, head_to_kv, model_spec, resolve_layers
from promptkd.probes._text import token_spans
from promptkd.probes.loading import LoadedLM, load_lm
from promptkd.probes.probe import AttentionProbe
from promptkd.rendering.template import PromptTemplate, as_template

logger = logging.getLogger(__name__)

__all__ = ["DistilledWeights", "distilled_weights", "positive_random_features"]


def positive_random_features(x: Any, omega: Any) -> Any:
    """Performer positive random features: ``phi(x) = exp(omega x - |x|^2 / 2) / sqrt(r)``.

    ``E[phi(x) . phi(y)] = exp(x . y)`` for ``omega`` with i.i.d. standard normal rows.
    Works on numpy arrays and torch tensors (last axis = features).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> om = rng.standard_normal((20000, 2))
    >>> x, y = np.array([0.3, -0.2]), np.array([0.1, 0.4])
    >>> est = positive_random_features(x, om) @ positive_random_features(y, om)
    >>> bool(abs(est - np.exp(x @ y)) < 0.05)
    True
    """
    r = omega.shape[0]
    proj = x @ omega.T
    sq = (x * x).sum(-1, keepdims=True) / 2.0 if isinstance(x, np.ndarray) else (x * x).sum(-1, keepdim=True) / 2.0
    exp = np.exp if isinstance(x, np.ndarray) else __import__("torch").exp
    return exp(proj - sq) / math.sqrt(r)


@dataclass(frozen=True)
class DistilledWeights:
    """The action of the distilled weights W_0 on a set of queries, per layer.

    Attributes
    ----------
    layers
        Absolute layer indices.
    queries
        The query texts, in order.
    action
        (n_queries, L, H * head_dim): per head, ``sum_{demo tokens} A[x, tau] v_tau`` for the
        readout token x of each query, heads concatenated (the ``W_0 phi(W^Q x)`` of the theory).
    residual
        (n_queries, L, hidden): the same action mapped through the output projection and summed
        over heads (what the demonstrations write into the residual stream).
    demo_mass
        (n_queries, L, H): total attention of the readout on demonstration tokens.
    rf_action
        Random-feature estimate of ``action`` from the explicit W_0 (same shape), or None.
    rf_relative_error
        (L,) ``||rf_action - action|| / ||action||`` per layer, or None.
    rf_weights
        Per layer, the explicit unnormalised estimate ``sum_tau v_tau phi(k_tau)^T`` as an array
        (H, head_dim, n_features), or None.

    Examples
    --------
    >>> a = np.zeros((2, 1, 4))
    >>> dw = DistilledWeights(layers=(3,), queries=("q1", "q2"), action=a, residual=a, demo_mass=np.ones((2, 1, 1)))
    >>> dw.distance(dw).tolist()
    [0.0]
    """

    layers: tuple[int, ...]
    queries: tuple[str, ...]
    action: np.ndarray
    residual: np.ndarray
    demo_mass: np.ndarray
    rf_action: np.ndarray | None = None
    rf_relative_error: np.ndarray | None = None
    rf_weights: tuple[np.ndarray, ...] | None = None

    def distance(self, other: DistilledWeights, *, space: str = "action") -> np.ndarray:
        """Root-mean-square distance over queries, per layer: ``sqrt(mean_q ||a(q) - b(q)||^2)``.

        Viewing the actions on the n target queries as the matrix ``W_0 Phi(T)``, this is
        ``||W_0(S) Phi - W_0(S') Phi||_F / sqrt(n)``.
        """
        if space not in ("action", "residual"):
            raise InvalidInputError(f"space must be 'action' or 'residual', got {space!r}.")
        a, b = getattr(self, space), getattr(other, space)
        if a.shape != b.shape or self.layers != other.layers:
            raise InvalidInputError(
                "both DistilledWeights must cover the same queries and layers; "
                f"got shapes {a.shape} and {b.shape}, layers {self.layers} and {other.layers}."
            )
        return np.sqrt(((a - b) ** 2).sum(-1).mean(0))


def _as_lm(lm: Any, device: str | None) -> LoadedLM:
    if isinstance(lm, AttentionProbe):
        return lm.lm
    return lm if isinstance(lm, LoadedLM) else load_lm(lm, device=device)


def distilled_weights(
    lm: LoadedLM | AttentionProbe | str | None,
    demos: Sequence[Demo],
    queries: Sequence[str],
    template: PromptTemplate | str | None = None,
    *,
    layers: Any = "all",
    explicit: bool = False,
    n_features: int = 256,
    seed: int = 0,
    batch_size: int = 16,
    device: str | None = None,
    show_progress_bar: bool | None = None,
) -> DistilledWeights:
    """Exact action of the distilled weights of ``demos`` on each query, for chosen layers.

    Parameters
    ----------
    lm
        A :class:`LoadedLM`, an :class:`AttentionProbe`, a model name, or None (SmolLM2).
    demos
        The demonstration set, in prompt order.
    queries
        Query texts; each prompt is ``template.render(demos, query)`` read at its last token.
    template
        As in ``Selection.render``.
    layers
        Layers to read (``"all"``, int, list, range, slice).
    explicit
        Also build the random-feature estimate of W_0 (needs post-rotary keys; one extra
        projection per layer) and report its relative error against the exact action.
    n_features
        Number of positive random features for the explicit estimate.
    seed
        Seed of the random features.
    batch_size
        Queries per continuation pass.
    device
        Device for loading when ``lm`` is a name or None.
    show_progress_bar
        Progress bar over query batches (default: on at logging level INFO).

    Returns
    -------
    DistilledWeights

    Examples
    --------
    >>> distilled_weights.__name__
    'distilled_weights'
    """
    import torch

    lm = _as_lm(lm, device)
    demos = tuple(demos)
    if isinstance(queries, str) or not isinstance(queries, Sequence) or not queries:
        raise InvalidTypeError("queries must be a non-empty list of query strings.")
    queries = tuple(queries)
    check_int(batch_size, "batch_size", minimum=1)
    check_int(n_features, "n_features", minimum=1)
    spec = model_spec(lm.model)
    layer_ids = resolve_layers(layers, spec.n_layers)
    tmpl = as_template(template)
    tok = lm.tokenizer
    kv_index = torch.as_tensor(head_to_kv(spec.n_heads, spec.n_kv_heads), device=lm.device)

    # Shared prefix: everything before the query block (the same text for every query).
    first = tmpl.render_with_spans(demos, queries[0])
    first_enc = tok(first.text, return_offsets_mapping=True, add_special_tokens=True)
    first_offsets = [tuple(map(int, o)) for o in first_enc["offset_mapping"]]
    # prefix tokens = those that end before the query block starts (special tokens at 0 included)
    n_prefix = 0
    while n_prefix < len(first_offsets) and first_offsets[n_prefix][1] <= first.query_span[0]:
        if first_offsets[n_prefix][1] == first_offsets[n_prefix][0] and n_prefix > 0:
            break
        n_prefix += 1
    prefix_ids = list(first_enc["input_ids"][:n_prefix])
    spans, _ = token_spans(first_offsets[:n_prefix], list(first.demo_spans)) if n_prefix else ([], True)
    demo_mask = torch.zeros(n_prefix, device=lm.device)
    for a, b in spans:
        demo_mask[a:b] = 1.0

    # Tokenise each full prompt; reuse the prefix cache only where the prompt's tokens start with it.
    suffixes: list[list[int]] = []
    for q in queries:
        if not isinstance(q, str):
            raise InvalidTypeError(f"queries must be strings, got {type(q).__name__}.")
        full = list(tok(tmpl.render(demos, q), add_special_tokens=True)["input_ids"])
        if full[:n_prefix] != prefix_ids or len(full) == n_prefix:
            raise InvalidInputError(
                "the prompt's tokens do not start with the demonstration prefix's tokens (a token crosses the "
                "boundary between the last demo and the query); use a template whose separator ends with a newline."
            )
        suffixes.append(full[n_prefix:])

    rng = np.random.default_rng(seed)
    omega = torch.as_tensor(rng.standard_normal((n_features, spec.head_dim)), dtype=torch.float32, device=lm.device)
    decoder = lm.model.get_decoder()
    with torch.inference_mode(), eager_attention(lm.model):
        if n_prefix:
            pre = Capture(spec, layer_ids, keys=explicit)
            pre.readout = torch.as_tensor([n_prefix - 1], device=lm.device)
            ids = torch.as_tensor([prefix_ids], device=lm.device)
            with pre.attach():
                out = decoder(input_ids=ids, use_cache=True)
            cache = getattr(out, "cache", None) or out.past_key_values
        rf_w: dict[int, Any] = {}
        rf_z: dict[int, Any] = {}
        if explicit and n_prefix:
            for layer in layer_ids:
                scale = float(spec.attention[layer].scaling)
                keys = pre.keys[layer][0][:, kv_index, :] * math.sqrt(scale)  # (T, H, hd)
                feats = positive_random_features(keys, omega) * demo_mask[:, None, None]  # (T, H, r)
                vals = pre.values[layer][0][:, kv_index, :]  # (T, H, hd)
                rf_w[layer] = torch.einsum("thd,thr->hdr", vals, feats)
                rf_z[layer] = feats.sum(0)

        actions, residuals, masses, rf_actions = [], [], [], []
        starts = range(0, len(queries), batch_size)
        try:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="distilled weights", disable=not default_show_progress_bar(show_progress_bar))
        except ImportError:  # pragma: no cover - tqdm ships with transformers
            pass
        for start in starts:
            chunk = suffixes[start : start + batch_size]
            b = len(chunk)
            ids, mask = right_pad(torch, chunk, pad_token_id(tok), lm.device)
            cap = Capture(spec, layer_ids, keys=explicit, values=False)
            cap.readout = torch.as_tensor([len(s) - 1 for s in chunk], device=lm.device)
            kwargs: dict[str, Any] = {}
            if n_prefix:
                batch_cache = copy.deepcopy(cache)
                batch_cache.batch_repeat_interleave(b)
                full_mask = torch.cat([torch.ones((b, n_prefix), dtype=mask.dtype, device=lm.device), mask], 1)
                kwargs = {cache_kwarg(decoder): batch_cache, "attention_mask": full_mask}
            else:
                kwargs = {"attention_mask": mask}
            with cap.attach():
                decoder(input_ids=ids, use_cache=bool(n_prefix), **kwargs)
            per_layer_a, per_layer_r, per_layer_m, per_layer_rf = [], [], [], []
            for layer in layer_ids:
                rows = cap.rows[layer][:, :, :n_prefix]  # (B, H, Tp): attention on the prefix
                wrow = rows * demo_mask  # demo tokens only
                if n_prefix:
                    vals = pre.values[layer][0][:, kv_index, :]  # (Tp, H, hd)
                    z = torch.einsum("bht,thd->bhd", wrow, vals)
                else:
                    z = torch.zeros((b, spec.n_heads, spec.head_dim), device=lm.device)
                w_o = spec.attention[layer].o_proj.weight.float()
                per_layer_a.append(z.reshape(b, -1))
                per_layer_r.append(z.reshape(b, -1) @ w_o.T)
                per_layer_m.append(wrow.sum(-1))
                if explicit and n_prefix:
                    scale = float(spec.attention[layer].scaling)
                    q = cap.queries[layer] * math.sqrt(scale)  # (B, H, hd)
                    fq = positive_random_features(q, omega)  # (B, H, r)
                    # exact normaliser D' from any attended demo token: A = exp(s) / D'
                    keys = pre.keys[layer][0][:, kv_index, :]  # (Tp, H, hd)
                    scores = torch.einsum("bhd,thd->bht", cap.queries[layer], keys) * scale
                    best = wrow.argmax(-1, keepdim=True)
                    log_norm = scores.gather(-1, best) - torch.log(rows.gather(-1, best).clamp_min(1e-30))
                    est = torch.einsum("hdr,bhr->bhd", rf_w[layer], fq) / torch.exp(log_norm)
                    per_layer_rf.append(est.reshape(b, -1))
            actions.append(torch.stack(per_layer_a, 1).cpu())
            residuals.append(torch.stack(per_layer_r, 1).cpu())
            masses.append(torch.stack(per_layer_m, 1).cpu())
            if per_layer_rf:
                rf_actions.append(torch.stack(per_layer_rf, 1).cpu())

    action = torch.cat(actions).double().numpy()
    rf_action = rf_err = rf_weights = None
    if rf_actions:
        rf_action = torch.cat(rf_actions).double().numpy()
        num = np.sqrt(((rf_action - action) ** 2).sum(-1).sum(0))
        den = np.sqrt((action**2).sum(-1).sum(0))
        rf_err = num / np.maximum(den, 1e-12)
        rf_weights = tuple(rf_w[layer].cpu().double().numpy() for layer in layer_ids)
    return DistilledWeights(
        layers=layer_ids,
        queries=queries,
        action=action,
        residual=torch.cat(residuals).double().numpy(),
        demo_mass=torch.cat(masses).double().numpy(),
        rf_action=rf_action,
        rf_relative_error=rf_err,
        rf_weights=rf_weights,
    )
