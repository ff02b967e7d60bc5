"""``BaseSelector``: the interface every selector shares (fit / select / batch / async)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptkd._validation import check_int
from promptkd.exceptions import InvalidInputError, InvalidTypeError, NotFittedError
from promptkd.kernels.functions import Bandwidth, KernelFn, median_bandwidth, resolve_bandwidth
from promptkd.kernels.mmd import mmd2
from promptkd.pool.pool import DemoPool
from promptkd.selection.ordering import OrderContext, apply_ordering, get_ordering
from promptkd.selection.selection import Selection
from promptkd.selection.target import Target, resolve_target

__all__ = ["BaseSelector"]


class BaseSelector:
    """Shared machinery: fitting to a pool, target resolution, ordering, results.

    Subclasses implement :meth:`_choose`, returning pool indices in selection
    order (and optionally gains and an MMD2 path). Constructors store settings
    only; :meth:`fit` learns state whose names end in ``_``.
    """

    method = "base"

    def __init__(
        self,
        k: int = 8,
        *,
        kernel: str | KernelFn = "rbf",
        bandwidth: Bandwidth = "median",
        order: Any = "similarity",
        seed: int = 0,
    ) -> None:
        self.k = k
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.order = order
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def fit(self, pool: DemoPool) -> BaseSelector:
        """Learn from ``pool`` (embeds it if needed) and return ``self``.

        Examples
        --------
        >>> from promptkd import DemoPool, Selector
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": f"t{i}", "output": "x"} for i in range(4)], embedder=HashingEmbedder())
        >>> Selector(k=2).fit(pool).n_demos_
        4
        """
        if not isinstance(pool, DemoPool):
            raise InvalidTypeError(f"fit expects a DemoPool, got {type(pool).__name__}; build one with DemoPool(...).")
        if len(pool) == 0:
            raise InvalidInputError("the pool is empty; add demonstrations before fitting a selector.")
        self._check_settings()
        snap = pool.snapshot()
        emb = snap.embeddings if snap.embeddings is not None else pool.embed()
        snap = pool.snapshot()
        self.pool_ = pool
        self.demos_ = snap.demos
        self.embeddings_ = np.asarray(emb)
        self.n_demos_ = len(snap.demos)
        self.dim_ = int(self.embeddings_.shape[1])
        norms = np.linalg.norm(self.embeddings_.astype(np.float32), axis=1)
        self.inv_norms_ = (1.0 / np.maximum(norms, 1e-12)).astype(np.float32)
        if isinstance(self.bandwidth, str) and self.bandwidth == "median":
            self.bandwidth_ = median_bandwidth(self.embeddings_.astype(np.float32), seed=self.seed)
        else:
            self.bandwidth_ = resolve_bandwidth(self.bandwidth, self.embeddings_[:1])
        self.ordering_ = get_ordering(self.order)
        self._fit_extra()
        return self

    def _fit_extra(self) -> None:
        """Hook for subclasses that learn more at fit time."""

    def _check_settings(self) -> None:
        if self.k != "auto":
            check_int(self.k, "k", minimum=1)
        check_int(self.seed, "seed", minimum=0)

    def _check_fitted(self) -> None:
        if not hasattr(self, "pool_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call .fit(pool) before selecting.")

    def _resolve_k(self, k: int | None) -> int:
        value = self.k if k is None else k
        value = check_int(value, "k", minimum=1)
        if value > self.n_demos_:
            raise InvalidInputError(
                f"k={value} is larger than the pool ({self.n_demos_} demos); pass k <= {self.n_demos_} or add demos."
            )
        return value

    # ------------------------------------------------------------------ helpers for subclasses
    def similarities(self, target: Target) -> np.ndarray:
        """Weighted mean cosine similarity of every pool item to the target (one GEMV/GEMM)."""
        T = target.embeddings.astype(np.float32)
        T = T / np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
        q = (T.T @ target.weights.astype(np.float32)).astype(np.float32)
        E = self.embeddings_
        sims = (E @ q.astype(E.dtype)).astype(np.float32) * self.inv_norms_
        return sims

    def target_mmd2(self, indices: Sequence[int], target: Target) -> float:
        """Biased weighted MMD2 between pool rows ``indices`` and the target."""
        X = np.asarray(self.embeddings_[list(indices)], dtype=np.float32)
        return mmd2(X, target.embeddings, kernel=self.kernel, bandwidth=self.bandwidth_, weights_y=target.weights)

    def _target(self, query: Any, weights: Any = None) -> Target:
        return resolve_target(self.pool_, query, dim=self.dim_, weights=weights)

    # ------------------------------------------------------------------ the public API
    def _choose(
        self, target: Target, k: int, sims: np.ndarray
    ) -> tuple[list[int], list[float] | None, list[float], dict[str, float]]:
        raise NotImplementedError

    def _build(self, target: Target, k: int, sims: np.ndarray | None = None) -> Selection:
        if sims is None:
            sims = self.similarities(target)
        chosen, gains, path, phases = self._choose(target, k, sims)
        chosen_sims = [float(sims[i]) for i in chosen]
        demos = tuple(self.demos_[i] for i in chosen)
        context = OrderContext(demos, tuple(chosen_sims), None if gains is None else tuple(gains), self.seed)
        perm = apply_ordering(self.ordering_, context)
        return Selection(
            indices=tuple(int(chosen[p]) for p in perm),
            demos=tuple(demos[p] for p in perm),
            scores=tuple(chosen_sims[p] for p in perm),
            mmd2=self.target_mmd2(chosen, target),
            method=self.method,
            gains=None if gains is None else tuple(float(gains[p]) for p in perm),
            selection_rank=tuple(perm),
            mmd2_path=tuple(float(x) for x in path),
            phases=dict(phases),
            query=target.query,
            target_size=target.size,
            kernel=self.kernel if isinstance(self.kernel, str) else getattr(self.kernel, "__name__", "custom"),
            bandwidth=self.bandwidth_,
        )

    def select(self, query: Any, k: int | None = None) -> Selection:
        """Choose ``k`` demonstrations for ``query`` and return them in prompt order.

        ``query`` is a string, a list of strings (one target distribution), or
        an embedding array (1-D for one point, 2-D for a sample).
        """
        self._check_fitted()
        k = self._resolve_k(k)
        return self._build(self._target(query), k)

    def select_batch(self, queries: Sequence[Any], k: int | None = None) -> list[Selection]:
        """One :class:`Selection` per query (each query is its own target).

        Examples
        --------
        >>> from promptkd import DemoPool, Selector
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": f"text {i}", "output": "x"} for i in range(6)], embedder=HashingEmbedder())
        >>> [len(s) for s in Selector(k=2).fit(pool).select_batch(["a", "b"])]
        [2, 2]
        """
        self._check_fitted()
        k = self._resolve_k(k)
        if isinstance(queries, str):
            raise InvalidTypeError("select_batch takes a list of queries; for one query use select(query).")
        if isinstance(queries, np.ndarray):
            if queries.ndim != 2:
                raise InvalidInputError(f"query embeddings must be 2-D (n_queries x dim), got shape {queries.shape}.")
            rows = list(queries)
        else:
            rows = list(queries)
        if not rows:
            return []
        if all(isinstance(q, str) for q in rows):
            for i, q in enumerate(rows):
                if not q.strip():
                    raise InvalidInputError(f"queries[{i}] is an empty string; drop it or pass real text.")
            X = self.pool_.encode_texts(rows)
            targets = [
                Target(X[i : i + 1].astype(np.float32), np.ones(1), query=q, texts=(q,)) for i, q in enumerate(rows)
            ]
        else:
            targets = [self._target(q) for q in rows]
        return [self._build(t, k) for t in targets]

    async def aselect(self, query: Any, k: int | None = None) -> Selection:
        """Async :meth:`select`, run in a worker thread."""
        return await asyncio.to_thread(self.select, query, k)

    async def aselect_batch(self, queries: Sequence[Any], k: int | None = None) -> list[Selection]:
        """Async :meth:`select_batch`, run in a worker thread."""
        return await asyncio.to_thread(self.select_batch, queries, k)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k!r}, kernel={self.kernel!r}, bandwidth={self.bandwidth!r}, order={self.order!r})"
