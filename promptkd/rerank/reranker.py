"""The LM-aware mode: herd candidates with a promptkd selector, rerank them with the scoring LM."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptkd._lm import unpack_lm
from promptkd._params import ParamsMixin
from promptkd._progress import default_show_progress_bar
from promptkd._validation import check_int
from promptkd.exceptions import InvalidInputError, InvalidTypeError, NotFittedError
from promptkd.pool.demo import Demo
from promptkd.pool.pool import DemoPool
from promptkd.rendering.template import as_template
from promptkd.rerank.scoring import QueryScores, query_logprobs
from promptkd.selection.base import BaseSelector
from promptkd.selection.ordering import OrderContext, apply_ordering
from promptkd.selection.selection import Selection
from promptkd.selection.selector import Selector

__all__ = ["LMReranker"]


class LMReranker(ParamsMixin):
    """Herd ``n_candidates`` demos, keep the ``k`` after which the LM finds the query most likely.

    The LM-aware mode, after ConE (Peng et al., ACL 2024): a promptkd selector
    (by default ``Selector(k=n_candidates)``, kernel herding) proposes ``n_candidates`` demos;
    each is scored by the mean log-probability per token of the query text in the one-demo
    prompt that ``template`` renders (:func:`~promptkd.rerank.query_logprobs`, minus ConE's
    conditional cross-entropy); the ``k`` best are kept and put in prompt order by the
    wrapped selector's ordering policy, with the label vote the selector itself would cast
    (for ``Selector``'s defaults: ``"label_prior_lexical"``).

    **Cost**: one LM sequence per candidate per query, all candidates of a query in one
    batched forward pass (``batch_size`` splits it). With 30 candidates that is 30 LM
    sequences of one demo plus the query for every query, on top of the selector's own
    work. Each :class:`~promptkd.selection.Selection` records what it spent in ``phases``:
    ``lm_passes`` (sequences), ``lm_calls`` (forward calls), ``lm_tokens`` (tokens read),
    ``lm_seconds`` (wall time of the LM stage) and ``candidate_mmd2`` (the reference MMD2 of
    the whole candidate set).

    Parameters
    ----------
    lm
        A :class:`~promptkd.probes.LoadedLM`, a ``(model, tokenizer)`` pair of a transformers
        causal LM, a model name for :func:`~promptkd.probes.load_lm` (e.g. ``"smollm2"``,
        ``"gemma-3-270m"``), or None for SmolLM2-135M-Instruct. Names are loaded at
        :meth:`fit` with SDPA attention on CUDA when present. Use the LM that scores the prompts.
    selector
        An unfitted promptkd selector proposing the candidates (None: ``Selector(k=n_candidates)``).
        A copy is fitted (``selector_``); its ``k`` is ignored, ``n_candidates`` are asked for.
    k
        Demonstrations kept per query.
    n_candidates
        Candidates scored by the LM per query (at most the pool size); at least ``k``.
    template
        The :class:`~promptkd.rendering.PromptTemplate` or example pattern the classifier
        renders prompts with (default ``"Input: {input}\\nOutput: {output}"``).
    batch_size
        LM sequences per forward call; None scores all candidates of a query in one call.

    Attributes
    ----------
    selector_
        The fitted candidate selector.
    lm_
        The LM used (loaded at :meth:`fit` when given by name).

    Examples
    --------
    A tiny stand-in LM that predicts the words it has already read (real use passes
    ``lm="smollm2"`` or a :class:`~promptkd.probes.LoadedLM`):

    >>> from promptkd import DemoPool
    >>> from promptkd.embeddings import HashingEmbedder
    >>> from promptkd.rerank._toy import toy_lm
    >>> pool = DemoPool(
    ...     [{"input": t, "output": y} for t, y in [("a dull plot", "neg"), ("a great cast", "pos"),
    ...      ("stocks rose today", "pos"), ("the plot was dull and slow", "neg")]],
    ...     embedder=HashingEmbedder(),
    ... )
    >>> rr = LMReranker(toy_lm(), k=2, n_candidates=4, template="Review: {input}\\nSentiment: {output}")
    >>> sel = rr.fit(pool).select("a dull slow plot")
    >>> sorted(sel.labels), sel.method, sel.phases["lm_passes"]
    (['neg', 'neg'], 'promptkd+lm', 4.0)
    """

    def __init__(
        self,
        lm: Any = None,
        *,
        selector: Any = None,
        k: int = 8,
        n_candidates: int = 30,
        template: Any = None,
        batch_size: int | None = None,
    ) -> None:
        self.lm = lm
        self.selector = selector
        self.k = check_int(k, "k", minimum=1)
        self.n_candidates = check_int(n_candidates, "n_candidates", minimum=1)
        if self.k > self.n_candidates:
            raise InvalidInputError(
                f"k={k} is larger than n_candidates={n_candidates}: the reranker keeps k of the candidates; "
                "pass n_candidates >= k."
            )
        self.template = template
        self.batch_size = batch_size

    # ------------------------------------------------------------------ fitting
    def _check_settings(self) -> None:
        check_int(self.k, "k", minimum=1)
        check_int(self.n_candidates, "n_candidates", minimum=1)
        if self.k > self.n_candidates:
            raise InvalidInputError(
                f"k={self.k} is larger than n_candidates={self.n_candidates}; pass n_candidates >= k."
            )
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size", minimum=1)
        if self.selector is not None and not (hasattr(self.selector, "fit") and hasattr(self.selector, "select")):
            raise InvalidTypeError(
                f"selector must be a promptkd selector (with fit and select), got {type(self.selector).__name__}."
            )

    def _resolve_lm(self) -> Any:
        lm = self.lm
        if isinstance(lm, tuple) or (hasattr(lm, "model") and hasattr(lm, "tokenizer")):
            unpack_lm(lm)  # checks the pair
            return lm
        if lm is None or isinstance(lm, str):
            from promptkd.probes import load_lm

            return load_lm(lm, attn_implementation="sdpa")
        raise InvalidTypeError(
            "lm must be None, a model name such as 'smollm2', a LoadedLM or a (model, tokenizer) pair; "
            f"got {type(lm).__name__}."
        )

    def fit(self, pool: DemoPool) -> LMReranker:
        """Fit a copy of the candidate selector on ``pool``, load the LM if named, and return ``self``.

        Examples
        --------
        >>> from promptkd import DemoPool
        >>> from promptkd.embeddings import HashingEmbedder
        >>> from promptkd.rerank._toy import toy_lm
        >>> pool = DemoPool([{"input": f"t{i}", "output": "x"} for i in range(3)], embedder=HashingEmbedder())
        >>> LMReranker(toy_lm(), k=2).fit(pool).selector_.n_demos_
        3
        """
        if not isinstance(pool, DemoPool):
            raise InvalidTypeError(f"fit expects a DemoPool, got {type(pool).__name__}; build one with DemoPool(...).")
        self._check_settings()
        template = as_template(self.template)
        if self.selector is None:
            base: Any = Selector(k=self.n_candidates)
        elif hasattr(self.selector, "get_params"):
            base = type(self.selector)(**self.selector.get_params())
        else:
            base = self.selector
        self.selector_ = base.fit(pool)
        self.template_ = template
        self.lm_ = self._resolve_lm()
        self._lock = threading.Lock()
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "selector_"):
            raise NotFittedError("this LMReranker is not fitted yet; call .fit(pool) before selecting.")

    def _sizes(self, k: int | None) -> tuple[int, int]:
        kk = self.k if k is None else check_int(k, "k", minimum=1)
        n_pool = int(getattr(self.selector_, "n_demos_", len(self.selector_.pool_)))
        n_cand = min(self.n_candidates, n_pool)
        if kk > n_cand:
            raise InvalidInputError(
                f"k={kk} is larger than the {n_cand} candidates (n_candidates={self.n_candidates}, "
                f"pool of {n_pool}); pass k <= {n_cand}."
            )
        return kk, n_cand

    # ------------------------------------------------------------------ scoring and selecting
    def score(self, query: str, demos: Sequence[Demo]) -> np.ndarray:
        """The LM score of each demo for ``query``: mean log-probability per query token (higher is better).

        Examples
        --------
        >>> from promptkd import Demo, DemoPool
        >>> from promptkd.embeddings import HashingEmbedder
        >>> from promptkd.rerank._toy import toy_lm
        >>> pool = DemoPool([{"input": "a b", "output": "x"}], embedder=HashingEmbedder())
        >>> rr = LMReranker(toy_lm(), k=1).fit(pool)
        >>> s = rr.score("red apple", [Demo(input="red apple pie", output="x"), Demo(input="blue sea", output="y")])
        >>> bool(s[0] > s[1])
        True
        """
        self._check_fitted()
        return query_logprobs(self.lm_, list(demos), query, self.template_, batch_size=self.batch_size).scores

    def select(self, query: str, k: int | None = None) -> Selection:
        """Choose ``k`` demonstrations for ``query`` (default: the reranker's ``k``), in prompt order.

        Parameters
        ----------
        query
            The query text (the LM reads it, so it must be a string).
        k
            Demonstrations kept (at most the number of candidates).

        Returns
        -------
        Selection
            ``method`` is the candidate selector's name plus ``"+lm"``; ``scores`` are the
            candidate selector's similarities; ``selection_rank`` is each demo's LM rank (0 =
            best); ``mmd2`` is the kept set's reference MMD2; ``phases`` holds the LM cost
            (``lm_passes``, ``lm_calls``, ``lm_tokens``, ``lm_seconds``) and ``candidate_mmd2``.
        """
        self._check_fitted()
        if not isinstance(query, str):
            raise InvalidTypeError(
                f"query must be a string (the LM scores its text), got {type(query).__name__}; "
                "neighbourhood and embedding targets are not supported by the LM-aware mode."
            )
        kk, n_cand = self._sizes(k)
        return self._rerank(query, self.selector_.select(query, k=n_cand), kk)

    def select_batch(
        self, queries: Sequence[str], k: int | None = None, *, show_progress_bar: bool | None = None
    ) -> list[Selection]:
        """One :class:`~promptkd.selection.Selection` per query; candidates come from one ``select_batch`` call.

        Each query still costs one LM pass per candidate (one forward call per query).

        Examples
        --------
        >>> from promptkd import DemoPool
        >>> from promptkd.embeddings import HashingEmbedder
        >>> from promptkd.rerank._toy import toy_lm
        >>> pool = DemoPool([{"input": f"text {i}", "output": "x"} for i in range(6)], embedder=HashingEmbedder())
        >>> out = LMReranker(toy_lm(), k=2, n_candidates=4).fit(pool).select_batch(["text 1", "text 2"])
        >>> [len(s) for s in out], [s.phases["lm_passes"] for s in out]
        ([2, 2], [4.0, 4.0])
        """
        self._check_fitted()
        if isinstance(queries, str) or not isinstance(queries, Sequence):
            raise InvalidTypeError("select_batch takes a list of query strings; for one query use select(query).")
        for i, q in enumerate(queries):
            if not isinstance(q, str):
                raise InvalidTypeError(f"queries[{i}] must be a string, got {type(q).__name__}.")
        kk, n_cand = self._sizes(k)
        candidates = self.selector_.select_batch(list(queries), k=n_cand)
        bar = None
        if default_show_progress_bar(show_progress_bar) and len(queries) > 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(queries), desc="LMReranker.select_batch", unit="query")
        out = []
        try:
            for q, cand in zip(queries, candidates, strict=True):
                out.append(self._rerank(q, cand, kk))
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return out

    def _rerank(self, query: str, cand: Selection, k: int) -> Selection:
        # candidates in the selector's selection order (step 0 first), so ties keep the herding order
        steps = cand.selection_rank if cand.selection_rank is not None else tuple(range(len(cand)))
        by_step = sorted(range(len(cand)), key=lambda p: steps[p])
        demos = [cand.demos[p] for p in by_step]
        start = time.perf_counter()
        with self._lock:  # one forward pass at a time: the model is shared
            measured: QueryScores = query_logprobs(self.lm_, demos, query, self.template_, batch_size=self.batch_size)
        seconds = time.perf_counter() - start
        best = np.argsort(-measured.scores, kind="stable")[:k]  # LM rank order: best first
        keep = [by_step[int(j)] for j in best]
        kept_demos = tuple(cand.demos[p] for p in keep)
        indices = tuple(int(cand.indices[p]) for p in keep)
        sims = tuple(float(cand.scores[p]) for p in keep)
        perm, mmd2 = self._order(query, kept_demos, indices, sims, keep)
        phases = {
            "candidate_mmd2": float(cand.mmd2),
            "lm_passes": float(measured.passes),
            "lm_calls": float(measured.forward_calls),
            "lm_tokens": float(measured.tokens),
            "lm_seconds": float(seconds),
        }
        demo_tokens = None
        if cand.demo_tokens is not None:
            demo_tokens = tuple(int(cand.demo_tokens[keep[p]]) for p in perm)
        return Selection(
            indices=tuple(indices[p] for p in perm),
            demos=tuple(kept_demos[p] for p in perm),
            scores=tuple(sims[p] for p in perm),
            mmd2=mmd2,
            method=f"{cand.method}+lm",
            selection_rank=tuple(perm),
            phases=phases,
            query=query,
            target_size=cand.target_size,
            kernel=cand.kernel,
            bandwidth=cand.bandwidth,
            tokens=None if demo_tokens is None else int(sum(demo_tokens)),
            demo_tokens=demo_tokens,
            reference_bandwidth=cand.reference_bandwidth,
        )

    def _order(
        self,
        query: str,
        demos: tuple[Demo, ...],
        indices: tuple[int, ...],
        sims: tuple[float, ...],
        positions: list[int],
    ) -> tuple[list[int], float]:
        """The prompt order of the kept demos (given best LM score first) and their reference MMD2.

        ``positions`` are the demos' places in the candidate selection's prompt order.
        """
        sel = self.selector_
        policy = getattr(sel, "ordering_", None)
        if not isinstance(sel, BaseSelector) or policy is None:
            # a selector outside the BaseSelector family: keep the candidates' relative prompt order
            return sorted(range(len(demos)), key=lambda i: positions[i]), float("nan")
        target = sel.make_target(query)
        # the selector's own label vote (with its lexical part when the order asks for one), as its select uses
        prior = sel._label_prior(sel.similarities(target), getattr(policy, "label_neighbours", None), target)
        context = OrderContext(
            demos,
            sims,
            None,
            int(getattr(sel, "seed", 0)),
            indices=indices,
            embeddings=np.asarray(sel.embeddings_[list(indices)], dtype=np.float32),
            query=query,
            target_embeddings=target.embeddings,
            target_weights=target.weights,
            label_prior=prior,
        )
        return apply_ordering(policy, context), float(sel.target_mmd2(list(indices), target))

    def __repr__(self) -> str:
        lm = self.lm
        if isinstance(lm, tuple) and len(lm) == 2:
            lm = type(lm[0]).__name__
        elif lm is not None and not isinstance(lm, str):
            lm = getattr(lm, "name", type(lm).__name__)
        return (
            f"LMReranker(lm={lm!r}, selector={self.selector!r}, k={self.k}, n_candidates={self.n_candidates}, "
            f"batch_size={self.batch_size!r})"
        )
