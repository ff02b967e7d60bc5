"""Kernel herding: the greedy that minimises MMD2 between a chosen set and a target.

Step ``t`` (``t`` items already chosen) adds the candidate ``x`` maximising::

    2 * sum_j v_j k(x, t_j)  -  (k(x, x) + 2 * sum_{s in S} k(x, s)) / (t + 1)

which is exactly the greedy decrease of the biased MMD2 with uniform weights on
the chosen set. Only the kernel column of the newly chosen item is computed at
each step, so a run costs O(k * M * d) for M candidates, never an M x M matrix.

With a token budget the step instead maximises the MMD2 decrease per token
(a knapsack-style greedy), and :func:`swap_refine` then improves the set by
single exchanges, each the best one that lowers MMD2 and keeps every
constraint; it reuses the stored kernel columns and computes one new column per
accepted swap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError
from promptkd.kernels.columns import ColumnProvider
from promptkd.kernels.functions import Bandwidth, KernelFn
from promptkd.kernels.lookup import kernel_at
from promptkd.selection.constraints import ConstraintState

__all__ = ["HerdingResult", "SwapResult", "herd", "path_from_columns", "swap_refine"]


@dataclass(frozen=True)
class HerdingResult:
    """Chosen candidate positions in selection order, gains and the MMD2 path.

    ``columns`` (M, t) holds the kernel column of each chosen item against all
    candidates, ``rel`` (M,) the weighted relevance to the target, ``diag``
    (M,) the kernel diagonal and ``ktt`` the constant ``v' K_TT v``; they let
    :func:`swap_refine` continue without recomputing anything.
    """

    order: tuple[int, ...]
    gains: tuple[float, ...]
    mmd2_path: tuple[float, ...]
    columns: np.ndarray | None = field(default=None, compare=False, repr=False)
    rel: np.ndarray | None = field(default=None, compare=False, repr=False)
    diag: np.ndarray | None = field(default=None, compare=False, repr=False)
    ktt: float = field(default=0.0, compare=False, repr=False)


@dataclass(frozen=True)
class SwapResult:
    """Outcome of :func:`swap_refine`: the new order, its MMD2 path and the number of swaps."""

    order: tuple[int, ...]
    gains: tuple[float, ...]
    mmd2_path: tuple[float, ...]
    n_swaps: int
    mmd2_before: float
    mmd2_after: float


def columns_for(candidates: Any, kernel: Any, bandwidth: Bandwidth) -> ColumnProvider:
    """The column provider of ``kernel`` on ``candidates``: a kernel object's own, or the built-in one."""
    return kernel_at(kernel, bandwidth).columns(candidates)


def path_from_columns(order: list[int], columns: np.ndarray, rel: np.ndarray, ktt: float) -> list[float]:
    """MMD2 of every prefix of ``order``; ``columns[:, i]`` is the kernel column of ``order[i]``.

    Examples
    --------
    >>> cols = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> path_from_columns([0, 1], cols, np.array([0.5, 0.5]), 0.5)
    [0.5, 0.0]
    """
    K = columns[np.asarray(order, dtype=np.int64)][:, : len(order)]
    r = rel[np.asarray(order, dtype=np.int64)]
    out = []
    for t in range(1, len(order) + 1):
        value = K[:t, :t].sum() / t**2 - 2.0 * r[:t].sum() / t + ktt
        out.append(max(float(value), 0.0))
    return out


def herd(
    candidates: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray,
    k: int,
    *,
    kernel: str | KernelFn = "rbf",
    bandwidth: Bandwidth = 1.0,
    allowed: np.ndarray | None = None,
    constraints: ConstraintState | None = None,
    keep_columns: bool = False,
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
    constraints
        Optional :class:`~promptkd.selection.constraints.ConstraintState`; at
        each step only the candidates it allows are considered, and with a
        token budget the step maximises MMD2 decrease per token. The run stops
        early when no candidate is allowed.
    keep_columns
        Keep the kernel columns of the chosen items (needed by :func:`swap_refine`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> C = rng.normal(size=(50, 4)); T = rng.normal(size=(5, 4))
    >>> res = herd(C, T, np.full(5, 0.2), 3, bandwidth=2.0)
    >>> len(res.order), all(a >= b for a, b in zip(res.mmd2_path, res.mmd2_path[1:]))
    (3, True)
    """
    columns_of = columns_for(candidates, kernel, bandwidth)
    M = len(candidates)
    k = min(k, M if allowed is None else int(np.count_nonzero(allowed)))
    weights = np.asarray(weights, dtype=np.float64)
    rel = columns_of.cross(target) @ weights
    ktt = columns_of.target_constant(target, weights)
    diag = columns_of.diag()
    redund = np.zeros(M, dtype=np.float64)
    blocked = np.zeros(M, dtype=bool) if allowed is None else ~np.asarray(allowed, dtype=bool)
    two_rel = np.where(blocked, -np.inf, 2.0 * rel)  # relevance term of the score, -inf where blocked
    penalty = diag.copy()  # k(x, x) + 2 * sum_{s in S} k(x, s)
    costs = None if constraints is None else constraints.costs
    order: list[int] = []
    gains: list[float] = []
    path: list[float] = []
    cols: list[np.ndarray] = []
    sum_ss = 0.0
    sum_rel = 0.0
    prev = ktt  # MMD2 of the empty set is taken as v'K_TT v
    for t in range(k):
        if costs is not None:
            new = (sum_ss + diag + 2.0 * redund) / (t + 1) ** 2 - 2.0 * (sum_rel + rel) / (t + 1) + ktt
            gain = prev - new
            feasible = ~blocked & constraints.mask(t)  # type: ignore[union-attr]
            helpful = feasible & (gain > 0)
            score = gain / np.maximum(costs, 0.5) if helpful.any() else gain.copy()
            score[~(helpful if helpful.any() else feasible)] = -np.inf
        elif constraints is None:
            # two_rel carries -inf at blocked items, so one fused expression scores the step
            score = penalty * (-1.0 / (t + 1))
            score += two_rel
        else:
            score = two_rel - penalty / (t + 1)
            score[~constraints.mask(t)] = -np.inf
        j = int(np.argmax(score))
        if not np.isfinite(score[j]):
            break
        order.append(j)
        blocked[j] = True
        two_rel[j] = -np.inf
        if constraints is not None:
            constraints.add(j)
        sum_ss += diag[j] + 2.0 * redund[j]
        sum_rel += rel[j]
        current = max(sum_ss / (t + 1) ** 2 - 2.0 * sum_rel / (t + 1) + ktt, 0.0)
        gains.append(prev - current)
        path.append(current)
        prev = current
        if t + 1 < k or keep_columns:
            col = columns_of.column(j)
            redund += col
            penalty += 2.0 * col
            if keep_columns:
                cols.append(col)
    columns = np.stack(cols, 1) if keep_columns and cols else None
    return HerdingResult(tuple(order), tuple(gains), tuple(path), columns, rel, diag, ktt)


def swap_refine(
    candidates: np.ndarray,
    result: HerdingResult,
    *,
    kernel: str | KernelFn = "rbf",
    bandwidth: Bandwidth = 1.0,
    max_swaps: int = 10,
    constraints: ConstraintState | None = None,
    allowed: np.ndarray | None = None,
    tol: float = 1e-12,
) -> SwapResult:
    """Improve a herding result by single exchanges that lower MMD2.

    Each round evaluates every (candidate, chosen item) exchange from the stored
    kernel columns in O(M * k), applies the best one if it lowers MMD2 by more
    than ``tol`` and keeps every constraint, and computes the one new kernel
    column; it stops after ``max_swaps`` exchanges or when none helps. MMD2
    therefore never increases: an exchange is kept only when the objective,
    recomputed with the new item's kernel column, is lower. The chosen item keeps its position in the
    selection order, and the MMD2 path is recomputed for the final order.

    Parameters
    ----------
    candidates
        The (M, d) candidates ``result`` was computed on.
    result
        A :func:`herd` result computed with ``keep_columns=True``.
    max_swaps
        Maximum number of exchanges.
    constraints
        The state used by the greedy (it is updated in place).
    allowed
        Optional (M,) mask of candidates that may enter.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> C = rng.normal(size=(40, 3)); T = rng.normal(size=(6, 3))
    >>> res = herd(C, T, np.full(6, 1 / 6), 4, bandwidth=1.5, keep_columns=True)
    >>> out = swap_refine(C, res, bandwidth=1.5)
    >>> out.mmd2_after <= out.mmd2_before + 1e-12
    True
    """
    if result.columns is None or result.rel is None or result.diag is None:
        raise InvalidInputError(
            "swap_refine needs a herding result computed with keep_columns=True; rerun herd(..., keep_columns=True)."
        )
    columns_of = columns_for(candidates, kernel, bandwidth)
    order = list(result.order)
    n = len(order)
    cols = result.columns.copy()
    rel, diag, ktt = result.rel, result.diag, result.ktt

    def mmd_of(ord_: list[int]) -> float:
        idx = np.asarray(ord_, dtype=np.int64)
        return float(cols[idx].sum() / n**2 - 2.0 * rel[idx].sum() / n + ktt)

    before = max(mmd_of(order), 0.0) if n else 0.0
    current = before
    swaps = 0
    while n and swaps < max_swaps:
        idx = np.asarray(order, dtype=np.int64)
        R = cols.sum(1)
        sum_ss = float(cols[idx].sum())
        sum_rel = float(rel[idx].sum())
        new_ss = sum_ss - 2.0 * R[idx][None, :] + diag[idx][None, :] + 2.0 * (R[:, None] - cols) + diag[:, None]
        new_rel = sum_rel - rel[idx][None, :] + rel[:, None]
        value = new_ss / n**2 - 2.0 * new_rel / n + ktt
        feasible = np.ones_like(value, dtype=bool)
        feasible[idx] = False
        if allowed is not None:
            feasible &= np.asarray(allowed, dtype=bool)[:, None]
        if constraints is not None:
            feasible &= constraints.swap_feasible()
        value = np.where(feasible, value, np.inf)
        flat = int(np.argmin(value))
        c, i = divmod(flat, n)
        if not value[c, i] < current - tol:
            break
        # The predicted value reuses the stored columns; the new column is computed afresh (in float32
        # for float32 input), so confirm the exchange on the exact objective before accepting it.
        old_item, old_col = order[i], cols[:, i].copy()
        order[i] = c
        cols[:, i] = columns_of.column(c)
        exact = max(mmd_of(order), 0.0)
        if not exact < current - tol:
            order[i], cols[:, i] = old_item, old_col
            break
        if constraints is not None:
            constraints.swap(i, c)
        current = exact
        swaps += 1
    if swaps == 0:  # nothing changed: hand back the greedy's own path, bit for bit
        return SwapResult(
            order=result.order,
            gains=result.gains,
            mmd2_path=result.mmd2_path,
            n_swaps=0,
            mmd2_before=result.mmd2_path[-1] if n else 0.0,
            mmd2_after=result.mmd2_path[-1] if n else 0.0,
        )
    path = path_from_columns(order, cols, rel, ktt) if n else []
    gains = [(ktt if t == 0 else path[t - 1]) - path[t] for t in range(n)]
    return SwapResult(tuple(order), tuple(gains), tuple(path), swaps, before, path[-1] if path else before)
