"""Kernel herding: the greedy that minimises MMD2 between a chosen set and a target.

Step ``t`` (``t`` items already chosen) adds the candidate ``x`` maximising::

    2 * sum_j v_j k(x, t_j)  -  (k(x, x) + 2 * sum_{s in S} k(x, s)) / (t + 1)

which is exactly the greedy decrease of the biased MMD2 with uniform weights on
the chosen set. Only the kernel column of the newly chosen item is computed at
each step, so a run costs O(k * M * d) for M candidates, never an M x M matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from promptkd.kernels.functions import Bandwidth, KernelFn, get_kernel, kernel_diag

__all__ = ["HerdingResult", "herd", "relevance"]


@dataclass(frozen=True)
class HerdingResult:
    """Chosen candidate positions in selection order, gains and the MMD2 path."""

    order: tuple[int, ...]
    gains: tuple[float, ...]
    mmd2_path: tuple[float, ...]


def relevance(
    candidates: np.ndarray, target: np.ndarray, weights: np.ndarray, *, kernel: str | KernelFn, bandwidth: Bandwidth
) -> tuple[np.ndarray, float]:
    """``rel[i] = sum_j v_j k(c_i, t_j)`` and the constant ``v' K_TT v``."""
    fn = get_kernel(kernel)
    rel = np.asarray(fn(candidates, target, bandwidth=bandwidth), dtype=np.float64) @ weights
    ktt = float(weights @ np.asarray(fn(target, target, bandwidth=bandwidth), dtype=np.float64) @ weights)
    return rel, ktt


def herd(
    candidates: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray,
    k: int,
    *,
    kernel: str | KernelFn = "rbf",
    bandwidth: Bandwidth = 1.0,
    allowed: np.ndarray | None = None,
) -> HerdingResult:
    """Greedily choose ``k`` rows of ``candidates`` whose mean embedding matches the target.

    Parameters
    ----------
    candidates
        (M, d) candidate embeddings.
    target
        (n, d) target embeddings, with simplex ``weights`` (n,).
    k
        Number of items to choose (at most M).
    kernel, bandwidth
        Kernel settings; ``bandwidth`` should already be resolved to numbers.
    allowed
        Optional boolean mask (M,) of candidates that may be chosen.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> C = rng.normal(size=(50, 4)); T = rng.normal(size=(5, 4))
    >>> res = herd(C, T, np.full(5, 0.2), 3, bandwidth=2.0)
    >>> len(res.order), all(a >= b for a, b in zip(res.mmd2_path, res.mmd2_path[1:]))
    (3, True)
    """
    fn = get_kernel(kernel)
    M = candidates.shape[0]
    k = min(k, M if allowed is None else int(np.count_nonzero(allowed)))
    rel, ktt = relevance(candidates, target, weights, kernel=kernel, bandwidth=bandwidth)
    diag = np.asarray(kernel_diag(candidates, kernel=kernel, bandwidth=bandwidth), dtype=np.float64)
    redund = np.zeros(M, dtype=np.float64)
    blocked = np.zeros(M, dtype=bool) if allowed is None else ~np.asarray(allowed, dtype=bool)
    order: list[int] = []
    gains: list[float] = []
    path: list[float] = []
    sum_ss = 0.0
    sum_rel = 0.0
    prev = ktt  # MMD2 of the empty set is taken as v'K_TT v
    for t in range(k):
        score = 2.0 * rel - (diag + 2.0 * redund) / (t + 1)
        score[blocked] = -np.inf
        j = int(np.argmax(score))
        order.append(j)
        blocked[j] = True
        sum_ss += diag[j] + 2.0 * redund[j]
        sum_rel += rel[j]
        current = max(sum_ss / (t + 1) ** 2 - 2.0 * sum_rel / (t + 1) + ktt, 0.0)
        gains.append(prev - current)
        path.append(current)
        prev = current
        if t + 1 < k:
            col = np.asarray(fn(candidates, candidates[j : j + 1], bandwidth=bandwidth), dtype=np.float64)[:, 0]
            redund += col
    return HerdingResult(tuple(order), tuple(gains), tuple(path))
