"""The promptkd :class:`Selector`: kernel herding towards the target distribution."""

from __future__ import annotations

from typing import Any

import numpy as np

from promptkd._validation import check_int
from promptkd.kernels.functions import Bandwidth, KernelFn
from promptkd.selection.base import BaseSelector
from promptkd.selection.herding import herd
from promptkd.selection.target import Target

__all__ = ["Selector"]


class Selector(BaseSelector):
    """Pick and order ``k`` demonstrations by minimising kernel MMD to the target.

    The pool is first narrowed to the ``candidates`` items most similar to the
    target (one matrix-vector product), then kernel herding picks ``k`` of them
    so the chosen set's mean embedding matches the target's; the set is finally
    ordered by ``order`` (default: most target-similar last).

    Parameters
    ----------
    k
        Number of demonstrations.
    kernel
        ``"rbf"`` (default), ``"laplacian"``, ``"imq"``, ``"cosine"``, ``"linear"``
        or a callable ``k(X, Y, *, bandwidth)``.
    bandwidth
        ``"median"`` (median heuristic on the pool at fit time), a float, or a
        list of floats.
    candidates
        Size of the candidate set the greedy works on.
    order
        Ordering policy name or callable (see :mod:`promptkd.selection.ordering`).
    seed
        Seed for every random choice (subsampling, random orders).

    Examples
    --------
    >>> from promptkd import DemoPool, Selector
    >>> from promptkd.embeddings import HashingEmbedder
    >>> pool = DemoPool(
    ...     [{"input": t, "output": y} for t, y in [("great film", "pos"), ("awful film", "neg"),
    ...      ("stocks rose", "biz"), ("great acting", "pos")]],
    ...     embedder=HashingEmbedder(),
    ... )
    >>> sel = Selector(k=2).fit(pool).select("a great film")
    >>> len(sel.demos), sel.mmd2 >= 0
    (2, True)
    """

    method = "promptkd"

    def __init__(
        self,
        k: int = 8,
        *,
        kernel: str | KernelFn = "rbf",
        bandwidth: Bandwidth = "median",
        candidates: int = 256,
        order: Any = "similarity",
        seed: int = 0,
    ) -> None:
        super().__init__(k, kernel=kernel, bandwidth=bandwidth, order=order, seed=seed)
        self.candidates = candidates

    def _check_settings(self) -> None:
        super()._check_settings()
        check_int(self.candidates, "candidates", minimum=1)

    def _choose(
        self, target: Target, k: int, sims: np.ndarray
    ) -> tuple[list[int], list[float] | None, list[float], dict[str, float]]:
        m = min(max(self.candidates, k), self.n_demos_)
        if m < self.n_demos_:
            cand = np.argpartition(-sims, m - 1)[:m]
            cand = cand[np.argsort(-sims[cand], kind="stable")]
        else:
            cand = np.argsort(-sims, kind="stable")
        C = np.asarray(self.embeddings_[cand], dtype=np.float32)
        result = herd(C, target.embeddings, target.weights, k, kernel=self.kernel, bandwidth=self.bandwidth_)
        chosen = [int(cand[j]) for j in result.order]
        return chosen, list(result.gains), list(result.mmd2_path), {"greedy": result.mmd2_path[-1]}
