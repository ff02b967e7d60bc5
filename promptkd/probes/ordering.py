"""Probe-guided ordering: choose the prompt order whose attention matches the MMD weights."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptkd._validation import check_int
from promptkd.exceptions import InvalidInputError
from promptkd.kernels.functions import Bandwidth, KernelFn, resolve_bandwidth
from promptkd.kernels.lookup import kernel_at
from promptkd.kernels.objects import Kernel
from promptkd.rendering.template import PromptTemplate

logger = logging.getLogger(__name__)

__all__ = ["ProbeGuidedOrder", "mmd_weights"]


def mmd_weights(
    demo_embeddings: Any,
    target_embeddings: Any,
    target_weights: Any = None,
    *,
    kernel: str | KernelFn | Kernel = "rbf",
    bandwidth: Bandwidth = "median",
    n_iter: int = 500,
) -> np.ndarray:
    """Shares of the demos in the best non-negative kernel representation of the target.

    Solves ``min_{w >= 0} ||sum_i w_i k(s_i, .) - mu_T||^2`` (``w^T K_SS w - 2 w^T K_ST t``)
    by projected gradient descent and normalises ``w`` to sum 1. Unlike simplex weights, a
    demo far from the target gets (near) zero weight instead of absorbing mass. The kernel is
    any :mod:`promptkd.kernels` kernel (a name, a function or a kernel object); with
    ``bandwidth="median"`` a named kernel uses the median heuristic on the pooled demos and
    target (:func:`promptkd.kernels.median_bandwidth`), as :func:`promptkd.kernels.mmd2` does.

    Examples
    --------
    >>> S = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    >>> T = np.array([[0.1, 0.0], [0.9, 0.0]])
    >>> w = mmd_weights(S, T, bandwidth=1.0)
    >>> bool(w[2] < 0.01 and abs(w.sum() - 1) < 1e-9)
    True
    """
    S = np.asarray(demo_embeddings, dtype=np.float64)
    T = np.asarray(target_embeddings, dtype=np.float64)
    if S.ndim != 2 or T.ndim != 2 or S.shape[1] != T.shape[1]:
        raise InvalidInputError(f"embeddings must be 2-D with equal widths, got {S.shape} and {T.shape}.")
    t = np.full(len(T), 1.0 / len(T)) if target_weights is None else np.asarray(target_weights, dtype=np.float64)
    t = t / t.sum()
    k = kernel_at(kernel, None if isinstance(kernel, Kernel) else resolve_bandwidth(bandwidth, S, T))
    if not k.resolved:
        k = k.resolve(S, T)
    kss = np.asarray(k.gram(S), dtype=np.float64)
    b = np.asarray(k.gram(S, T), dtype=np.float64) @ t
    m = len(S)
    w = np.full(m, 1.0 / m)
    step = 1.0 / max(np.linalg.eigvalsh(kss).max(), 1e-9)
    for _ in range(n_iter):
        w = np.maximum(w - step * (kss @ w - b), 0.0)
    total = w.sum()
    return w / total if total > 0 else np.full(m, 1.0 / m)


class ProbeGuidedOrder:
    """Ordering policy: among a bounded number of candidate orders, keep the one whose per-demo
    attention mass (at the readout token, averaged over the probed layers and heads) best
    matches the Selection's MMD weights.

    Use it as ``Selector(order=ProbeGuidedOrder(probe))``, or call it on an
    :class:`~promptkd.selection.OrderContext` directly. The MMD weights are the simplex
    weights under which the chosen demos best match the weighted target sample
    (:func:`mmd_weights`), when the context carries embeddings; else the positive part of
    the herding gains; else uniform. Mass shares are compared with the total-variation
    distance. The attention sink (token 0) is left out of the masses.

    Parameters
    ----------
    probe
        An :class:`~promptkd.probes.AttentionProbe` (or a LoadedLM / model name, wrapped in one).
    template
        Template used to render the candidates (as in ``Selection.render``).
    max_candidates
        Upper bound on the orders probed (all permutations when k! is smaller).
    layers
        Layers for a new probe when ``probe`` is not one already.
    batch_size
        Candidate prompts per forward pass.

    Examples
    --------
    >>> ProbeGuidedOrder.name
    'probe_guided'
    """

    name = "probe_guided"

    def __init__(
        self,
        probe: Any = None,
        template: PromptTemplate | str | None = None,
        *,
        max_candidates: int = 8,
        layers: Any = "all",
        batch_size: int = 8,
    ) -> None:
        from promptkd.probes.probe import AttentionProbe

        self.probe = probe if isinstance(probe, AttentionProbe) else AttentionProbe(probe, layers=layers)
        self.template = template
        self.max_candidates = check_int(max_candidates, "max_candidates", minimum=1)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.last_scores: dict[tuple[int, ...], float] = {}

    def __repr__(self) -> str:
        return f"ProbeGuidedOrder(probe={self.probe!r}, max_candidates={self.max_candidates})"

    def weights(self, context: Any) -> np.ndarray:
        """The MMD weights the attention should match, in context (selection) order."""
        k = len(context.demos)
        if context.embeddings is not None and context.target_embeddings is not None:
            return mmd_weights(context.embeddings, context.target_embeddings, context.target_weights)
        if context.gains is not None:
            g = np.clip(np.asarray(context.gains, dtype=np.float64), 0.0, None)
            if g.sum() > 0:
                return g / g.sum()
        return np.full(k, 1.0 / k)

    def candidates(self, context: Any) -> list[tuple[int, ...]]:
        """Candidate orders: herding, most-similar-last and its reverse, then seeded random permutations."""
        k = len(context.demos)
        if math.factorial(k) <= self.max_candidates:
            return [tuple(p) for p in itertools.permutations(range(k))]
        sims = context.similarities
        base = [
            tuple(range(k)),
            tuple(sorted(range(k), key=lambda i: (sims[i], -i))),
            tuple(sorted(range(k), key=lambda i: (-sims[i], i))),
        ]
        out: list[tuple[int, ...]] = []
        for c in base:
            if c not in out:
                out.append(c)
        rng = np.random.default_rng(context.seed)
        tries = 0
        while len(out) < self.max_candidates and tries < 50 * self.max_candidates:
            c = tuple(int(i) for i in rng.permutation(k))
            tries += 1
            if c not in out:
                out.append(c)
        return out[: self.max_candidates]

    def __call__(self, context: Any) -> list[int]:
        k = len(context.demos)
        if k <= 1:
            return list(range(k))
        target = self.weights(context)
        cands = self.candidates(context)
        query = context.query if context.query is not None else ""
        if context.query is None:
            logger.warning("ProbeGuidedOrder: the context has no query text; probing with an empty query.")
        prompts: list[tuple[Sequence[Any], str]] = [([context.demos[i] for i in c], query) for c in cands]
        masses = self.probe.demo_masses(prompts, self.template, batch_size=self.batch_size)
        self.last_scores = {}
        best, best_score = cands[0], math.inf
        for c, mass in zip(cands, masses, strict=True):
            per_pos = mass.mean(axis=(0, 1))  # (k,) in prompt order
            share = np.zeros(k)
            share[list(c)] = per_pos / max(per_pos.sum(), 1e-12)  # back to selection order
            score = 0.5 * float(np.abs(share - target).sum())
            self.last_scores[c] = score
            if score < best_score:
                best, best_score = c, score
        return list(best)
