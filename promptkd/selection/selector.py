"""The promptkd :class:`Selector`: kernel herding towards the target distribution."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from promptkd._validation import check_choice, check_float, check_int
from promptkd.exceptions import BudgetInfeasibleError, InvalidInputError, InvalidTypeError
from promptkd.kernels.functions import Bandwidth, KernelFn
from promptkd.kernels.objects import Kernel, Views
from promptkd.pool.ann import INDEX_KINDS
from promptkd.rendering.template import as_template
from promptkd.selection.base import BaseSelector
from promptkd.selection.budget import BudgetMixin
from promptkd.selection.candidate_stage import CandidateStageMixin
from promptkd.selection.constraints import LABEL_BALANCE, ConstraintState, Infeasible, stratified_quotas
from promptkd.selection.feature_blocks import FeatureBlocksMixin, kernel_object
from promptkd.selection.herding import herd, swap_refine
from promptkd.selection.settings import (
    GROUPS,
    SHORTHANDS,
    BudgetSettings,
    Constraints,
    IndexSettings,
    SettingsKeywords,
    as_group,
    fold_shorthands,
    shorthand,
)
from promptkd.selection.target import Target, normalise_rows
from promptkd.selection.tokens import as_token_counter

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Selector"]

logger = logging.getLogger("promptkd")


class Selector(CandidateStageMixin, BudgetMixin, FeatureBlocksMixin, BaseSelector):
    """Pick and order ``k`` demonstrations by minimising kernel MMD to the target.

    The pool is first narrowed to the ``candidates`` items most similar to the
    target (one matrix product, or a faiss index for pools above
    ``ann_threshold``), then kernel herding picks ``k`` of them so the chosen
    set's mean embedding matches the target's, optional swaps improve the set,
    and the set is finally ordered by ``order`` (default: the demos of the
    label the query's nearest pool demos vote for last, the most similar of
    them at the very end). Constraints are hard guarantees that compose with
    the objective.

    Parameters
    ----------
    k
        Number of demonstrations (the maximum when ``max_tokens`` is set), or
        ``"auto"`` to let :class:`promptkd.bounds.BoundEstimator` choose it per
        target (the :class:`~promptkd.bounds.Budget` is kept in ``Selection.budget``).
    kernel
        ``"rbf+lexical"`` (default): the RBF kernel on the embeddings plus the
        cosine of the inputs' TF-IDF rows (a vocabulary fitted on the pool), so
        shared words count as well as meaning. On dev splits of eight
        classification tasks, this kernel with the ``"label_prior_lexical"``
        order scored 2.1 points above the RBF with ``"label_prior"`` on each of
        two independent draws (docs/benchmarks/tuning.md). Queries given as
        embeddings have no words: they are herded with the RBF part alone (a
        warning says so once). Otherwise ``"rbf"``, ``"laplacian"``, ``"imq"``,
        ``"cosine"``, ``"linear"``, names joined by ``+`` for their sum, a
        :class:`~promptkd.kernels.Kernel` object (e.g. ``RBF() * LabelKernel(0.25)``)
        or a callable ``k(X, Y, *, bandwidth)``.
    bandwidth
        ``"median"`` (median heuristic on the pool at fit time, times
        ``median_scale``), a float, or a list of floats.
    median_scale
        Multiplier on the median heuristic when ``bandwidth="median"``; ignored
        for explicit bandwidths. The default 2.0 was chosen on dev splits carved
        from the train sets of eight classification tasks (it was never worse than
        1.0 on any of them, +2.1 points on average; docs/benchmarks/tuning.md; on
        the quality benchmark's test items it was 1.3 points below 1.0, within noise).
        The bandwidth used is ``Selection.bandwidth``; :class:`~promptkd.bounds.BoundEstimator`
        defaults to the plain median, so pass it ``bandwidth=selection.bandwidth`` to
        measure the same MMD (``k="auto"`` does this itself).
    candidates
        Size of the candidate set the greedy works on.
    order
        Ordering policy name or callable (see :mod:`promptkd.selection.ordering`).
        The default, ``"label_prior_lexical"``, puts the demos of the label that
        the query's nearest pool demos vote for last, the most similar of them at
        the very end; "nearest" adds the TF-IDF cosine of the texts to the
        embedding cosine (``"label_prior"`` uses the embeddings alone). On dev
        splits of eight classification tasks the label-aware order beat the most
        similar demo last (``"similarity"``) by a wide margin, because small LMs
        tend to repeat the label of the last demonstration (docs/benchmarks/tuning.md).
    seed
        Seed for every random choice (subsampling, random orders, IVF training).
    swaps
        Maximum number of swap-refinement exchanges after the greedy (0: none).
        The MMD2 after each phase is in ``Selection.phases``.
    batch_chunk
        Queries per similarity GEMM in :meth:`select_batch`.
    constraints
        A :class:`~promptkd.selection.Constraints`: ``max_tokens`` (with
        ``tokenizer`` and ``template``), ``label_balance``,
        ``dedup_threshold`` and the metadata filter ``where``.
    index
        The candidate index: a kind (``"auto"``, ``"exact"``, ``"ivf"``,
        ``"hnsw"``) or an :class:`~promptkd.selection.IndexSettings` (kind,
        ``ann_threshold``, ``nprobe``, ``ef_search``, the storage ``dtype`` and
        the similarity ``device``).
    budget
        A :class:`~promptkd.selection.BudgetSettings` for ``k="auto"``
        (``k_max``, ``token_cost``, ``bound_estimator``). ``fit`` builds the
        estimator only with ``k="auto"``, a ``bound_estimator`` or an explicit
        positive ``token_cost`` (then ``select(..., k="auto")`` works per call
        too); otherwise ``estimator_`` is None.
    **settings
        Any field of the three groups as a flat keyword, e.g.
        ``Selector(k=8, max_tokens=200, tokenizer=tok)`` or
        ``Selector(k="auto", token_cost=0.0)``: shorter for one or two
        settings, and folded into its group (a flat keyword overrides the
        group's field), so ``get_params()`` reports the groups. Each is also
        readable (and assignable) as an attribute: ``selector.max_tokens``.
    label_neighbours
        With a kernel that reads labels (``RBF() * LabelKernel(...)``): how many
        nearest pool demos vote on each target row's label distribution.

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
    >>> s = Selector(k=2, label_balance="cover", max_tokens=12, tokenizer=lambda t: len(t.split()), swaps=2)
    >>> out = s.fit(pool).select("a great film")
    >>> len(set(out.labels)), out.tokens <= 12, sorted(out.phases)
    (2, True, ['greedy', 'swap'])
    >>> s.get_params()["constraints"] == Constraints(max_tokens=12, tokenizer=s.tokenizer, label_balance="cover")
    True
    """

    method = "promptkd"
    minimises_mmd = True
    #: flat keywords accepted for the fields of the setting groups (see ``**settings``)
    _shorthand_params: ClassVar[frozenset[str]] = frozenset(SHORTHANDS)

    def __init__(
        self,
        k: int | str = 8,
        *,
        kernel: str | KernelFn | Kernel = "rbf+lexical",
        bandwidth: Bandwidth = "median",
        median_scale: float = 2.0,
        candidates: int = 256,
        order: Any = "label_prior_lexical",
        seed: int = 0,
        swaps: int = 0,
        batch_chunk: int = 256,
        label_neighbours: int = 16,
        constraints: Constraints | None = None,
        index: IndexSettings | str = "auto",
        budget: BudgetSettings | None = None,
        **settings: Unpack[SettingsKeywords],
    ) -> None:
        super().__init__(k, kernel=kernel, bandwidth=bandwidth, order=order, seed=seed, batch_chunk=batch_chunk)  # type: ignore[arg-type]
        self.median_scale = median_scale
        self.candidates = candidates
        self.swaps = swaps
        self.label_neighbours = label_neighbours
        groups = fold_shorthands({"constraints": constraints, "index": index, "budget": budget}, settings, "Selector")
        self.constraints = groups["constraints"]
        self.index = groups["index"]
        self.budget = groups["budget"]

    # the groups' fields, read (and assigned) by name: selector.max_tokens is selector.constraints.max_tokens
    max_tokens = shorthand("constraints", "max_tokens")
    tokenizer = shorthand("constraints", "tokenizer")
    template = shorthand("constraints", "template")
    label_balance = shorthand("constraints", "label_balance")
    dedup_threshold = shorthand("constraints", "dedup_threshold")
    where = shorthand("constraints", "where")
    index_kind = shorthand("index", "kind")
    ann_threshold = shorthand("index", "ann_threshold")
    nprobe = shorthand("index", "nprobe")
    ef_search = shorthand("index", "ef_search")
    dtype = shorthand("index", "dtype")
    device = shorthand("index", "device")  # type: ignore[assignment]
    k_max = shorthand("budget", "k_max")
    token_cost = shorthand("budget", "token_cost")
    bound_estimator = shorthand("budget", "bound_estimator")

    # ------------------------------------------------------------------ settings and fitting
    def _check_settings(self) -> None:
        if isinstance(self.k, str) and self.k != "auto":
            raise InvalidInputError(f"k must be a positive integer or 'auto', got {self.k!r}.")
        super()._check_settings()
        for param in GROUPS:
            as_group(param, getattr(self, param))  # a group of the wrong type fails here, naming it
        check_float(self.median_scale, "median_scale", minimum=1e-6)
        check_int(self.candidates, "candidates", minimum=1)
        check_int(self.swaps, "swaps", minimum=0)
        if self.max_tokens is not None:
            check_int(self.max_tokens, "max_tokens", minimum=1)
            if self.tokenizer is None:
                raise InvalidInputError(
                    "max_tokens needs tokenizer=: a transformers tokenizer name or path, a tokenizer object, "
                    "or a callable text -> int."
                )
        if self.label_balance not in LABEL_BALANCE:
            raise InvalidInputError(f"label_balance must be None, 'cover' or 'stratified'; got {self.label_balance!r}.")
        if self.dedup_threshold is not None:
            check_float(self.dedup_threshold, "dedup_threshold", minimum=-1.0, maximum=1.0)
        if self.where is not None and not isinstance(self.where, Mapping):
            raise InvalidTypeError(
                f"where must be a mapping of metadata key to value, got {type(self.where).__name__}."
            )
        check_choice(self.index_kind, "index", INDEX_KINDS)
        if self.ann_threshold is not None:
            check_int(self.ann_threshold, "ann_threshold", minimum=0)
        check_int(self.nprobe, "nprobe", minimum=1)
        check_int(self.ef_search, "ef_search", minimum=1)
        if self.dtype is not None:
            check_choice(self.dtype, "dtype", ("float32", "float16"))
        check_int(self.k_max, "k_max", minimum=1)
        if self.token_cost is not None:
            check_float(self.token_cost, "token_cost", minimum=0.0)
        check_int(self.label_neighbours, "label_neighbours", minimum=1)
        spec = kernel_object(self.kernel)
        if spec is not None and not spec.views <= {"embedding", "label", "lexical"}:
            raise InvalidInputError(
                f"kernel={self.kernel!r} reads feature blocks {sorted(spec.views)}; a Selector provides "
                "'embedding', 'label' and 'lexical' only."
            )

    def _store_embeddings(self, emb: np.ndarray) -> np.ndarray:
        if self.dtype is None:
            return super()._store_embeddings(emb)
        return emb.astype(np.float16 if self.dtype == "float16" else np.float32, copy=False)

    @property
    def constrained(self) -> bool:
        """Whether any constraint beyond ``k`` is set."""
        return self.max_tokens is not None or self.label_balance is not None or self.dedup_threshold is not None

    def _fit_extra(self) -> None:
        if isinstance(self.bandwidth, str) and self.bandwidth == "median":
            self.bandwidth_ = float(self.median_scale) * float(self.bandwidth_)  # type: ignore[arg-type]
        n = self.n_demos_
        if self.where is not None:
            # pools only grow by appending, so the first n_demos_ rows are the fitted snapshot's demos
            self.eligible_ = self.pool_.mask(where=self.where)[:n]
            if not self.eligible_.any():
                raise InvalidInputError(f"where={dict(self.where)!r} matches no demo in the pool; relax the filter.")
        else:
            self.eligible_ = None
        self.eligible_idx_ = np.flatnonzero(self.eligible_) if self.eligible_ is not None else np.arange(n)
        self.label_counts_ = np.bincount(self.label_codes_[self.eligible_idx_], minlength=len(self.label_names_))
        # a kernel object gets its "median" bandwidths fixed to the selector's (already scaled) median; a sum
        # of names ("rbf+lexical") is built with the selector's bandwidth, a list of bandwidths included
        if isinstance(self.kernel, Kernel):
            self.kernel_ = self.kernel.resolve(median=float(self.bandwidth_))
        else:
            self.kernel_ = kernel_object(self.kernel, self.bandwidth_)
        # queries given as embeddings have no words: a kernel with a lexical part herds with the rest of it
        self.text_free_kernel_ = self.kernel_.without("lexical") if self.kernel_ is not None else None
        self._fit_feature_blocks()
        self.tokens_ = None
        if self.tokenizer is not None:
            counter = as_token_counter(self.tokenizer)
            tmpl = as_template(self.template)
            tokens = np.zeros(n, dtype=np.int64)
            idx = self.eligible_idx_
            tokens[idx] = counter.count([tmpl.render_demo(self.demos_[i]) for i in idx])
            self.tokens_ = tokens
            if self.max_tokens is not None:
                shortest = int(tokens[idx].min())
                if shortest > self.max_tokens:
                    raise BudgetInfeasibleError(
                        f"no demonstration fits max_tokens={self.max_tokens}: the shortest eligible demo renders to "
                        f"{shortest} tokens; raise max_tokens or shorten the template."
                    )
        self._fit_candidate_stage()
        self._fit_estimator()

    def _resolve_k(self, k: Any) -> int:
        value = super()._resolve_k(k)
        n_elig = len(self.eligible_idx_) if hasattr(self, "eligible_idx_") else self.n_demos_
        if value > n_elig and self.max_tokens is None:
            raise BudgetInfeasibleError(
                f"k={value} but only {n_elig} demos match where={self.where!r}; pass k <= {n_elig} or relax the filter."
            )
        return min(value, n_elig)

    # ------------------------------------------------------------------ the greedy
    def _state(self, cand: np.ndarray, k: int, C: np.ndarray) -> ConstraintState | None:
        if not self.constrained:
            return None
        labels = self.label_codes_[cand] if self.label_balance is not None else None
        quotas = None
        required = 0
        if self.label_balance == "stratified":
            quotas = stratified_quotas(self.label_counts_, k)
        elif self.label_balance == "cover":
            required = min(k, int(np.count_nonzero(self.label_counts_)))
        return ConstraintState(
            k,
            labels=labels,
            label_balance=self.label_balance,
            required_distinct=required,
            quotas=quotas,
            costs=None if self.max_tokens is None else self.tokens_[cand].astype(np.float64),  # type: ignore[index]
            budget=self.max_tokens,
            unit=normalise_rows(C) if self.dedup_threshold is not None else None,
            dedup_threshold=self.dedup_threshold,
            n_candidates=len(cand),
        )

    def _run(
        self, target: Target, k: int, cand: np.ndarray, target_blocks: dict[str, Any] | None = None
    ) -> tuple[list[int], list[float], list[float], dict[str, float]]:
        C = np.asarray(self.embeddings_[cand], dtype=np.float32)
        state = self._state(cand, k, C)
        kernel = self.kernel if self.kernel_ is None else self._herding_kernel(target_blocks or {})
        rows: Any = C
        goal: Any = target.embeddings
        if target_blocks:
            rows = Views(C, **self._candidate_blocks(cand, kernel.views))
            goal = Views(target.embeddings, **target_blocks)
        result = herd(
            rows,
            goal,
            target.weights,
            k,
            kernel=kernel,
            bandwidth=self.bandwidth_,
            constraints=state,
            keep_columns=self.swaps > 0,
        )
        if state is not None:
            why = state.violation()
            if why is not None:
                raise Infeasible(why)
        elif len(result.order) < k:  # fewer candidates than k (e.g. a per-call k above the ANN hits)
            raise Infeasible(f"only {len(result.order)} candidates for k={k}")
        order, gains, path = list(result.order), list(result.gains), list(result.mmd2_path)
        phases = {"greedy": float(path[-1])}
        if self.swaps > 0:
            refined = swap_refine(
                rows, result, kernel=kernel, bandwidth=self.bandwidth_, max_swaps=self.swaps, constraints=state
            )
            order, gains, path = list(refined.order), list(refined.gains), list(refined.mmd2_path)
            phases["swap"] = refined.mmd2_after
            logger.debug(
                "swap refinement: %d exchanges, MMD2 %.6g -> %.6g",
                refined.n_swaps,
                phases["greedy"],
                refined.mmd2_after,
            )
        return [int(cand[j]) for j in order], gains, path, phases

    def _choose(
        self, target: Target, k: int, sims: np.ndarray
    ) -> tuple[list[int], list[float] | None, list[float], dict[str, float]]:
        cand = self._candidate_set(sims, k)
        if target.embeddings.shape[0] > 1:
            cand = self._add_target_modes(cand, target, k, sims)
        blocks = self._target_blocks(target, sims)
        try:
            return self._run(target, k, cand, blocks)
        except Infeasible as first:
            if len(cand) >= len(self.eligible_idx_):
                raise self._infeasible(k, str(first)) from None
            logger.debug("constraints infeasible on %d candidates (%s); retrying on the whole pool", len(cand), first)
        exact = self._similarity_rows(target.direction()[None, :])[0]
        idx = self.eligible_idx_
        full = idx[np.lexsort((idx, -exact[idx]))]
        try:
            return self._run(target, k, full, blocks)
        except Infeasible as second:
            raise self._infeasible(k, str(second)) from None

    def _infeasible(self, k: int, why: str) -> BudgetInfeasibleError:
        settings = {
            "k": k,
            "max_tokens": self.max_tokens,
            "label_balance": self.label_balance,
            "dedup_threshold": self.dedup_threshold,
            "where": self.where,
        }
        active = ", ".join(f"{a}={b!r}" for a, b in settings.items() if b is not None)
        return BudgetInfeasibleError(
            f"no selection satisfies the constraints ({active}): {why}; raise max_tokens or dedup_threshold, "
            "lower k, or relax label_balance / where."
        )

    def _extras(self, chosen: Any) -> dict[str, Any]:
        if self.tokens_ is None:
            return {}
        toks = [int(self.tokens_[i]) for i in chosen]
        return {"tokens": int(sum(toks)), "demo_tokens": toks}

    def __repr__(self) -> str:
        extra = ""
        for name in ("swaps", "max_tokens", "label_balance", "dedup_threshold", "where"):
            value = getattr(self, name)
            if value not in (None, 0):
                extra += f", {name}={value!r}"
        return f"Selector(k={self.k!r}, kernel={self.kernel!r}, candidates={self.candidates!r}, order={self.order!r}{extra})"
