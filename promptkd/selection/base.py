"""``BaseSelector``: the interface every selector shares (fit / select / batch / async).

Subclasses implement one method::

    _choose(target, k, sims) -> (chosen, gains | None, mmd2_path, phases)

where ``sims`` (N,) is the weighted mean cosine similarity of every pool item to
the target, ``chosen`` the pool indices in selection order, ``gains`` the MMD2
decrease of each step (or None), ``mmd2_path`` the MMD2 of every prefix (may be
empty) and ``phases`` the MMD2 after each optimisation phase. Everything else
(targets and neighbourhoods, the batched similarity stage, ordering, the
:class:`~promptkd.selection.Selection` result, async) lives here.

Selectors are read-only after :meth:`BaseSelector.fit`, so one fitted selector
can serve ``select`` calls from several threads at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar

import numpy as np

from promptkd._params import ParamsMixin, Renamed
from promptkd._progress import default_show_progress_bar
from promptkd._validation import check_int
from promptkd.exceptions import InvalidInputError, InvalidTypeError, NotFittedError
from promptkd.kernels.functions import Bandwidth, KernelFn, median_bandwidth, resolve_bandwidth
from promptkd.kernels.lookup import kernel_at
from promptkd.kernels.mmd import mmd2_small, mmd2_small_batch
from promptkd.kernels.objects import Kernel
from promptkd.pool.lazy import demo_field_codes
from promptkd.pool.pool import DemoPool
from promptkd.pool.prefetch import warm_rows
from promptkd.selection.candidates import HitRow
from promptkd.selection.labels import neighbour_label_vote
from promptkd.selection.lexical import LexicalIndex, demo_texts
from promptkd.selection.ordering import OrderContext, apply_ordering, get_ordering
from promptkd.selection.selection import Selection
from promptkd.selection.similarity import SimilarityStageMixin
from promptkd.selection.target import Target, TargetSpec
from promptkd.selection.targeting import TargetingMixin

__all__ = ["BaseSelector"]


@dataclass(eq=False, repr=False)
class BaseSelector(SimilarityStageMixin, TargetingMixin, ParamsMixin):
    """Shared machinery: fitting to a pool, target resolution, ordering, results.

    Subclasses implement :meth:`_choose`, returning pool indices in selection
    order (and optionally gains and an MMD2 path). Constructors store settings
    only; :meth:`fit` learns state whose names end in ``_``.

    The settings are dataclass fields: a subclass declared with
    ``@dataclass(eq=False, repr=False, kw_only=True)`` adds its own fields after
    these, gets a constructor with an explicit signature (read by
    ``get_params``, ``sklearn.base.clone`` and IDEs) and extends
    ``_check_settings`` for its own checks.

    Parameters
    ----------
    k
        Number of demonstrations.
    kernel, bandwidth
        Kernel used for MMD (``bandwidth="median"``: median heuristic on the pool).
    order
        Ordering policy name or callable (see :mod:`promptkd.selection.ordering`).
    seed
        Seed for every random choice.
    batch_chunk
        Queries per similarity GEMM in :meth:`select_batch`; memory is
        O(``batch_chunk`` x pool size) floats.
    """

    method: ClassVar[str] = "base"
    #: whether the selector minimises MMD2 (its path's last value is then its objective)
    minimises_mmd: ClassVar[bool] = False
    #: deprecated constructor keywords (see :func:`promptkd._params.renamed_params`)
    _renamed_params: ClassVar[dict[str, Renamed]] = {}

    k: int | str = 8
    _: KW_ONLY
    kernel: str | KernelFn | Kernel = "rbf"
    bandwidth: Bandwidth = "median"
    order: Any = "similarity"
    seed: int = 0
    batch_chunk: int = 256

    def __post_init__(self) -> None:
        # k is checked here already: a typo such as k="8" or k=2.5 fails where it is written, not at fit
        k = self.k
        if isinstance(k, str) and k != "auto":
            raise InvalidTypeError(f"k must be a positive integer or 'auto', got the string {k!r}.")
        self.k = k if k == "auto" else check_int(k, "k", minimum=1)

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
        if snap.embeddings is None:
            pool.embed()
            snap = pool.snapshot()
        if snap.embeddings is None or len(snap.demos) != snap.embeddings.shape[0]:  # pragma: no cover - defensive
            raise InvalidInputError("the pool changed while it was being embedded; fit again.")
        # demos and embeddings come from one snapshot, so a concurrent add() cannot misalign them
        self.pool_ = pool
        self.demos_ = snap.demos
        self.embeddings_ = self._store_embeddings(np.asarray(snap.embeddings))
        self.n_demos_ = len(snap.demos)
        self.dim_ = int(self.embeddings_.shape[1])
        # the reference RBF behind Selection.mmd2: one fixed subsample, so every selector on a pool agrees
        self.reference_bandwidth_ = self._pool_median(seed=0)
        self.reference_kernel_ = kernel_at("rbf", self.reference_bandwidth_)
        if isinstance(self.bandwidth, str) and self.bandwidth == "median":
            self.bandwidth_ = self.reference_bandwidth_ if self.seed == 0 else self._pool_median(self.seed)
        else:
            self.bandwidth_ = resolve_bandwidth(self.bandwidth, self.embeddings_[:1])
        fit_kernel = getattr(self.kernel, "fit", None)
        if callable(fit_kernel) and getattr(self.kernel, "bandwidth_", 0.0) is None:
            # a data-dependent kernel object (e.g. AttentionKernel) learns its bandwidth here, never while selecting
            fit_kernel(np.asarray(self.embeddings_[: min(self.n_demos_, 1000)], dtype=np.float32))
        # read the outputs as a column: a lazily opened pool builds no Demo object here
        self.label_names_, self.label_codes_ = demo_field_codes(self.demos_, "output")
        self.ordering_ = get_ordering(self.order)
        # a label vote that also compares words needs the pool's TF-IDF rows (built only when asked for)
        lexical_vote = getattr(self.ordering_, "vote", "embedding") == "embedding+lexical"
        self.vote_lexical_ = LexicalIndex(demo_texts(self.demos_)) if lexical_vote else None
        # the pool's row norms (stored with a saved pool: no pass over every embedding) when kept as given
        same = np.asarray(snap.embeddings).dtype == self.embeddings_.dtype
        self._fit_similarity_stage(snap.row_norms() if same else None)
        self._fit_extra()
        return self

    def _pool_median(self, seed: int) -> float:
        """Median-heuristic bandwidth of the pool on a seeded subsample of at most 1,000 rows."""
        sample = self.embeddings_
        if self.n_demos_ > 1000:  # the same seeded subsample median_bandwidth would draw
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.choice(self.n_demos_, size=1000, replace=False))
            warm_rows(sample, rows)  # a memory-mapped pool: the rows are read together, not 1,000 faults in turn
            sample = sample[rows]
        return float(median_bandwidth(np.asarray(sample, dtype=np.float32), seed=seed))

    def _fit_extra(self) -> None:
        """Hook for subclasses that learn more at fit time."""

    def _check_settings(self) -> None:
        """Check every setting (called by :meth:`fit`); subclasses extend it with their own."""
        if self.k != "auto":
            check_int(self.k, "k", minimum=1)
        check_int(self.seed, "seed", minimum=0)
        check_int(self.batch_chunk, "batch_chunk", minimum=1)

    def _check_fitted(self) -> None:
        if not hasattr(self, "pool_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call .fit(pool) before selecting.")

    def _resolve_k(self, k: int | None) -> int:
        value = self.k if k is None else k
        if value == "auto":
            raise InvalidInputError(
                f"k='auto' is not supported by {type(self).__name__}; pass an integer k "
                "(Selector supports k='auto' when promptkd.bounds is available)."
            )
        value = check_int(value, "k", minimum=1)
        if value > self.n_demos_:
            raise InvalidInputError(
                f"k={value} is larger than the pool ({self.n_demos_} demos); pass k <= {self.n_demos_} or add demos."
            )
        return value

    def _resolve_k_for(self, target: Target, k: Any) -> tuple[int, Any]:
        """The k to use for ``target`` and the budget that chose it (None unless k='auto')."""
        return self._resolve_k(k), None

    # ------------------------------------------------------------------ helpers for subclasses
    def similarities(self, target: Target) -> np.ndarray:
        """Weighted mean cosine similarity of every pool item to the target (one GEMV).

        Examples
        --------
        >>> from promptkd import DemoPool, Selector
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": "red apple", "output": "x"}, {"input": "blue sea", "output": "y"}],
        ...                 embedder=HashingEmbedder())
        >>> sel = Selector(k=1).fit(pool)
        >>> sims = sel.similarities(sel.make_target("red apple"))
        >>> bool(sims[0] > sims[1])
        True
        """
        return self._similarity_rows(target.direction()[None, :])[0]

    def target_mmd2(self, indices: Sequence[int], target: Target) -> float:
        """Biased weighted MMD2 between pool rows ``indices`` and the target under the pool's reference RBF.

        The reference bandwidth is the pool's median heuristic on a fixed
        subsample, whatever the selector's own kernel, so any two selectors'
        values compare (this is :attr:`Selection.mmd2`).
        """
        X = np.asarray(self.embeddings_[list(indices)], dtype=np.float32)
        # a few rows against a small target: one small float64 product (microseconds); a large target
        # (a batch as one target) or an empty set (it says why) goes through mmd2
        return mmd2_small(X, target.embeddings, self.reference_kernel_, weights_y=target.weights)

    def _target_mmd2_batch(self, indices: Sequence[Sequence[int]], targets: Sequence[Target]) -> list[float]:
        """:meth:`target_mmd2` of many (indices, target) pairs: one batched product per shape."""
        groups: dict[tuple[int, int], list[int]] = {}
        for b, (rows, target) in enumerate(zip(indices, targets, strict=True)):
            groups.setdefault((len(rows), target.size), []).append(b)
        out = [0.0] * len(targets)
        for (m, _), members in groups.items():
            flat = [int(i) for b in members for i in indices[b]]
            X = np.asarray(self.embeddings_[flat], dtype=np.float32).reshape(len(members), m, -1)
            Y = np.stack([targets[b].embeddings for b in members])
            W = np.stack([targets[b].weights for b in members])
            for b, value in zip(members, mmd2_small_batch(X, Y, self.reference_kernel_, weights_y=W), strict=True):
                out[b] = float(value)
        return out

    def make_target(
        self,
        query: Any,
        *,
        context: Any = None,
        target_pool: Any = None,
        n_neighbors: int = 8,
        query_weight: float = 0.5,
        weights: Any = None,
    ) -> Target:
        """Build the weighted target sample :meth:`select` would use (see :meth:`select`).

        Examples
        --------
        >>> from promptkd import DemoPool, Selector
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": "a b", "output": "x"}], embedder=HashingEmbedder(dim=16))
        >>> t = Selector(k=1).fit(pool).make_target("a", context=["b", "c"], query_weight=0.6)
        >>> t.size, [round(float(w), 2) for w in t.weights]
        (3, [0.6, 0.2, 0.2])
        """
        self._check_fitted()
        return self._spec_target(query, TargetSpec(context, target_pool, n_neighbors, query_weight, weights))

    # ------------------------------------------------------------------ the public API
    def _choose(
        self, target: Target, k: int, sims: np.ndarray
    ) -> tuple[list[int], list[float] | None, list[float], dict[str, float]]:
        raise NotImplementedError

    def _extras(self, chosen: Sequence[int]) -> dict[str, Any]:
        """Extra :class:`Selection` fields for the chosen pool indices (e.g. token counts)."""
        return {}

    def _label_prior(self, sims: np.ndarray, m: int | None, target: Target) -> dict[str, float] | None:
        """The target's label distribution voted by its ``m`` most similar pool demos; None when ``m`` is None.

        Similar means the embedding cosine ``sims``, plus the TF-IDF cosine of the
        target's texts when the order asks for a lexical vote (and the target has texts).
        """
        if m is None:
            return None
        index = getattr(self, "vote_lexical_", None)
        if isinstance(sims, HitRow) and not (index is not None and target.texts):
            vote = sims.label_vote(self.label_codes_, len(self.label_names_), m)  # only the hits vote: O(m)
            return {name: float(p) for name, p in zip(self.label_names_, vote, strict=True) if p > 0}
        if index is not None and target.texts:
            w = np.asarray(target.weights[: len(target.texts)], dtype=np.float64)
            w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
            sims = sims + w @ index.cosine(target.texts)  # -inf (not eligible, not an index hit) stays -inf
        vote = neighbour_label_vote(sims, self.label_codes_, len(self.label_names_), m)
        return {name: float(p) for name, p in zip(self.label_names_, vote, strict=True) if p > 0}

    def _build(self, target: Target, k: int, sims: np.ndarray | None = None, budget: Any = None) -> Selection:
        fields = self._selection_fields(target, k, sims, budget)
        return Selection(mmd2=self.target_mmd2(fields["indices"], target), **fields)

    def _selection_fields(
        self, target: Target, k: int, sims: np.ndarray | None = None, budget: Any = None
    ) -> dict[str, Any]:
        """Every :class:`Selection` field but ``mmd2``, which a batch measures for all its queries at once."""
        if sims is None:
            sims = self.similarities(target)
        chosen, gains, path, phases = self._choose(target, k, sims)
        chosen_sims = [float(sims[i]) for i in chosen]
        demos = tuple(self.demos_[i] for i in chosen)
        extras = self._extras(chosen)
        context = OrderContext(
            demos,
            tuple(chosen_sims),
            None if gains is None else tuple(gains),
            self.seed,
            indices=tuple(int(i) for i in chosen),
            embeddings=np.asarray(self.embeddings_[list(chosen)], dtype=np.float32),
            query=target.query,
            target_embeddings=target.embeddings,
            target_weights=target.weights,
            label_prior=self._label_prior(sims, getattr(self.ordering_, "label_neighbours", None), target),
        )
        perm = apply_ordering(self.ordering_, context)
        demo_tokens = extras.pop("demo_tokens", None)
        return dict(
            indices=tuple(int(chosen[p]) for p in perm),
            demos=tuple(demos[p] for p in perm),
            scores=tuple(chosen_sims[p] for p in perm),
            objective=float(path[-1]) if self.minimises_mmd and path and len(path) == len(chosen) else None,
            reference_bandwidth=float(self.reference_bandwidth_),
            method=self.method,
            gains=None if gains is None else tuple(float(gains[p]) for p in perm),
            selection_rank=tuple(perm),
            mmd2_path=tuple(float(x) for x in path),
            phases=dict(phases),
            query=target.query,
            target_size=target.size,
            kernel=self.kernel
            if isinstance(self.kernel, str)
            else repr(self.kernel)
            if isinstance(self.kernel, Kernel)
            else getattr(self.kernel, "__name__", "custom"),
            bandwidth=self.bandwidth_,
            budget=budget,
            demo_tokens=None if demo_tokens is None else tuple(int(demo_tokens[p]) for p in perm),
            **extras,
        )

    def select(
        self,
        query: Any,
        k: int | None = None,
        *,
        context: Any = None,
        target_pool: Any = None,
        n_neighbors: int = 8,
        query_weight: float = 0.5,
        weights: Any = None,
    ) -> Selection:
        """Choose ``k`` demonstrations for ``query`` and return them in prompt order.

        Parameters
        ----------
        query
            A string; a list of strings (one target distribution: one shared
            demo set for the whole list); or an embedding array (1-D for one
            point, 2-D for a sample).
        k
            Number of demonstrations (defaults to the selector's ``k``).
        context
            Expected or unlabeled queries (texts or embeddings) that join the target.
        target_pool
            A :class:`DemoPool` or array/list of unlabeled inputs; each query
            row's ``n_neighbors`` nearest neighbours in it join the target.
        n_neighbors
            Neighbours taken from ``target_pool`` per query row.
        query_weight
            Share of the target mass on the query rows when a neighbourhood is given.
        weights
            Weights of the query rows (when ``query`` has several).

        Examples
        --------
        >>> from promptkd import DemoPool, Selector
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": f"text {i}", "output": "x"} for i in range(6)], embedder=HashingEmbedder())
        >>> sel = Selector(k=2).fit(pool)
        >>> sel.select("text 1", context=["text 2", "text 3"]).target_size
        3
        >>> len(sel.select(["text 1", "text 5"]))  # one set for both queries
        2
        """
        self._check_fitted()
        target = self.make_target(
            query,
            context=context,
            target_pool=target_pool,
            n_neighbors=n_neighbors,
            query_weight=query_weight,
            weights=weights,
        )
        k_val, budget = self._resolve_k_for(target, k)
        sims = self._candidate_similarities(target.direction()[None, :])[0]
        return self._build(target, k_val, sims, budget)

    def select_batch(
        self,
        queries: Sequence[Any],
        k: int | None = None,
        *,
        context: Any = None,
        target_pool: Any = None,
        n_neighbors: int = 8,
        query_weight: float = 0.5,
        show_progress_bar: bool | None = None,
    ) -> list[Selection]:
        """One :class:`Selection` per query (each query is its own target).

        The similarity stage runs as one GEMM per ``batch_chunk`` queries, so
        memory stays O(``batch_chunk`` x pool size); each result equals what
        :meth:`select` returns for that query. ``context`` and ``target_pool``
        work as in :meth:`select` (the context is shared by every query; the
        neighbours are found per query). ``show_progress_bar`` (None: on when
        promptkd logs at INFO) shows a bar over the queries.

        Examples
        --------
        >>> from promptkd import DemoPool, Selector
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": f"text {i}", "output": "x"} for i in range(6)], embedder=HashingEmbedder())
        >>> [len(s) for s in Selector(k=2).fit(pool).select_batch(["a", "b"])]
        [2, 2]
        """
        self._check_fitted()
        spec = TargetSpec(context, target_pool, n_neighbors, query_weight, None)
        if k is not None or self.k != "auto":
            self._resolve_k(k if k is not None else self.k)
        targets = self._batch_targets(queries, spec)
        if not targets:
            return []
        out: list[Selection] = []
        chunk = self.batch_chunk
        bar = None
        if default_show_progress_bar(show_progress_bar):
            from tqdm.auto import tqdm

            bar = tqdm(total=len(targets), desc=f"{type(self).__name__}.select_batch", unit="query")
        try:
            for start in range(0, len(targets), chunk):
                block = targets[start : start + chunk]
                D = np.stack([t.direction() for t in block])
                S = self._candidate_similarities(D)
                drafts = []
                for i, t in enumerate(block):
                    k_val, budget = self._resolve_k_for(t, k)
                    drafts.append(self._selection_fields(t, k_val, S[i], budget))
                values = self._target_mmd2_batch([d["indices"] for d in drafts], block)
                out.extend(Selection(mmd2=v, **d) for d, v in zip(drafts, values, strict=True))
                del S  # free this chunk's similarities before the next GEMM: one chunk alive at a time
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
        return out

    async def aselect(self, query: Any, k: int | None = None, **kwargs: Any) -> Selection:
        """Async :meth:`select`, run in a worker thread.

        Examples
        --------
        >>> import asyncio
        >>> from promptkd import DemoPool, Selector
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": f"text {i}", "output": "x"} for i in range(4)], embedder=HashingEmbedder())
        >>> len(asyncio.run(Selector(k=2).fit(pool).aselect("text")))
        2
        """
        return await asyncio.to_thread(lambda: self.select(query, k, **kwargs))

    async def aselect_batch(self, queries: Sequence[Any], k: int | None = None, **kwargs: Any) -> list[Selection]:
        """Async :meth:`select_batch`, run in a worker thread."""
        return await asyncio.to_thread(lambda: self.select_batch(queries, k, **kwargs))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k!r}, kernel={self.kernel!r}, bandwidth={self.bandwidth!r}, order={self.order!r})"
