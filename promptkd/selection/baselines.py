"""The standard demonstration selectors people compare against, under one interface.

Every class here is a :class:`~promptkd.selection.BaseSelector`: ``fit(pool)``,
``select(query, k=None)``, ``select_batch(queries, k=None)`` and the async
variants, and every one returns a :class:`~promptkd.selection.Selection` with
the same fields as :class:`~promptkd.selection.Selector`. In particular
``mmd2`` is measured under the pool's reference RBF (median-heuristic
bandwidth on a fixed subsample) for every selector, so the values compare
directly; ``mmd2_path`` follows the selector's own kernel and bandwidth
(default: RBF with the pool's median heuristic). ``scores`` is always the
(weighted mean) cosine similarity of each demo to the target, and ``gains`` is
``None`` (gains are herding's MMD decreases).

=================  ==========================================================
``RandomSelector``  uniform draw without replacement, seeded per query
``TopKSelector``    KATE: the k nearest pool items by cosine (Liu et al., 2022)
``MMRSelector``     maximal marginal relevance (Carbonell & Goldstein, 1998)
``DPPSelector``     TopK-DPP: greedy MAP of a conditional DPP (Ye et al., 2023)
``VoteKSelector``   fast vote-k: one representative set (Su et al., 2022)
``BM25Selector``    lexical retrieval with rank-bm25's ``BM25Okapi``
=================  ==========================================================

``select_batch`` of every baseline here computes the similarity stage as one
matrix product per chunk of queries (``batch_chunk`` queries against the whole
pool), so at most ``batch_chunk * len(pool)`` float32 similarities exist at once.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from promptkd._params import Renamed, renamed_params
from promptkd._validation import check_float, check_int
from promptkd.kernels.lookup import kernel_at
from promptkd.selection.base import BaseSelector
from promptkd.selection.target import Target

__all__ = [
    "BM25Selector",
    "DPPSelector",
    "MMRSelector",
    "RandomSelector",
    "TopKSelector",
    "VoteKSelector",
    "top_indices",
]

logger = logging.getLogger(__name__)

_CHOICE = tuple[list[int], list[float] | None, list[float], dict[str, float]]
_TOKEN = re.compile(r"\w+", re.UNICODE)


def top_indices(scores: np.ndarray, m: int) -> np.ndarray:
    """Positions of the ``m`` largest ``scores``, best first, ties broken by lower index.

    Runs in O(n) (a partition, then a sort of the ``m`` winners), and is
    deterministic even when scores tie at the boundary.

    Examples
    --------
    >>> top_indices(np.array([0.1, 0.9, 0.5, 0.9]), 3).tolist()
    [1, 3, 2]
    """
    scores = np.asarray(scores)
    n = scores.shape[0]
    m = min(int(m), n)
    if m <= 0:
        return np.zeros(0, dtype=np.int64)
    if m < n:
        part = np.argpartition(scores, n - m)[n - m :]
        thr = scores[part].min()
        if np.count_nonzero(scores >= thr) > m:  # ties straddle the boundary: take the lowest indices
            part = np.flatnonzero(scores >= thr)
    else:
        part = np.arange(n)
    order = np.lexsort((part, -scores[part]))
    return part[order][:m].astype(np.int64)


def _tokenise(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class _BaselineSelector(BaseSelector):
    """Shared pieces of the baselines: settings, fit hook, candidate set, MMD2 path.

    ``select``, ``select_batch`` (one GEMM per ``batch_chunk`` queries) and the
    async variants are :class:`~promptkd.selection.BaseSelector`'s.
    """

    # every baseline returns the MMD2 of each prefix of its choice in selection order (from _path, under its
    # own kernel), which explain() shows as the running MMD2; Selection.mmd2 is the reference value

    def _fit_extra(self) -> None:
        self._fit_baseline()

    def _fit_baseline(self) -> None:
        """Hook for baselines that learn more at fit time."""

    def _unit_rows(self, indices: np.ndarray) -> np.ndarray:
        """Unit-normalised float64 pool rows ``indices``."""
        X = np.asarray(self.embeddings_[indices], dtype=np.float64)
        return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-300)

    def _candidates(self, sims: np.ndarray, m: int, k: int) -> np.ndarray:
        return top_indices(sims, min(max(m, k), self.n_demos_))

    def _path(self, chosen: Sequence[int], target: Target) -> list[float]:
        """Biased weighted MMD2 of every prefix of ``chosen`` (selection order), from one kernel call."""
        if not chosen:
            return []
        kern = kernel_at(self.kernel, self.bandwidth_)
        m = len(chosen)
        X = np.asarray(self.embeddings_[list(chosen)], dtype=np.float32)
        Z = np.concatenate([X, np.asarray(target.embeddings, dtype=np.float32)])
        K = np.asarray(kern.gram(Z), dtype=np.float64)
        w = np.asarray(target.weights, dtype=np.float64)
        kst = K[:m, m:] @ w
        ktt = float(w @ K[m:, m:] @ w)
        block = np.diagonal(K[:m, :m].cumsum(axis=0).cumsum(axis=1))  # sum of the leading t x t block, every t
        t = np.arange(1, m + 1, dtype=np.float64)
        path = np.maximum(block / t**2 - 2.0 * np.cumsum(kst) / t + ktt, 0.0)
        return [float(x) for x in path]


class RandomSelector(_BaselineSelector):
    """``k`` demonstrations drawn uniformly without replacement (the random baseline).

    The draw for a query is seeded by ``(seed, hash of the query)``, so the same
    query always gets the same demos for a given ``seed`` (also across
    :meth:`select` and :meth:`select_batch` and across processes), while
    different queries get independent draws (demos are redrawn per item, as in
    the usual random-demonstration baseline of the ICL literature).

    Parameters
    ----------
    k, kernel, bandwidth, order, batch_chunk
        As in :class:`~promptkd.selection.BaseSelector` (the kernel only sets
        the running ``mmd2_path``).
    seed
        Base seed; different seeds give different draws.

    Examples
    --------
    >>> from promptkd import DemoPool
    >>> from promptkd.embeddings import HashingEmbedder
    >>> pool = DemoPool([{"input": f"text {i}", "output": "x"} for i in range(20)], embedder=HashingEmbedder())
    >>> sel = RandomSelector(k=3, seed=1).fit(pool)
    >>> sel.select("a query").indices == sel.select("a query").indices
    True
    """

    method = "random"

    def _query_seed(self, target: Target) -> int:
        h = hashlib.sha256()
        if target.texts:
            h.update("\x1f".join(target.texts).encode("utf-8"))
        else:
            h.update(np.ascontiguousarray(target.embeddings, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(target.weights, dtype=np.float64).tobytes())
        return int.from_bytes(h.digest()[:8], "little")

    def _choose(self, target: Target, k: int, sims: np.ndarray) -> _CHOICE:
        rng = np.random.default_rng([int(self.seed), self._query_seed(target)])
        chosen = [int(i) for i in rng.choice(self.n_demos_, size=k, replace=False)]
        path = self._path(chosen, target)
        return chosen, None, path, {"random": path[-1]}


class TopKSelector(_BaselineSelector):
    """KATE: the ``k`` pool items with the highest cosine similarity to the target.

    Liu et al. (2022), "What Makes Good In-Context Examples for GPT-3?"
    (DeeLIO workshop, ACL): retrieve the k nearest neighbours of the test input
    in a sentence-embedding space and place them in the prompt, most similar
    closest to the query (the default ``order="similarity"``). For a target with
    several points the similarity is the weighted mean cosine over the target.
    Ties are broken by lower pool index. :meth:`select_batch` is the throughput
    baseline: one float32 GEMM per chunk of ``batch_chunk`` queries against the
    unit-normalised pool, then an O(n) partial sort per query.

    Parameters
    ----------
    k, kernel, bandwidth, order, seed, batch_chunk
        As in :class:`~promptkd.selection.BaseSelector` (the default order,
        most similar last, is KATE's).

    Examples
    --------
    >>> from promptkd import DemoPool
    >>> from promptkd.embeddings import HashingEmbedder
    >>> pool = DemoPool([{"input": t, "output": "x"} for t in ["red apple", "green apple", "blue sky"]],
    ...                 embedder=HashingEmbedder())
    >>> TopKSelector(k=1).fit(pool).select("an apple").method
    'topk'
    """

    method = "topk"

    def _choose(self, target: Target, k: int, sims: np.ndarray) -> _CHOICE:
        chosen = [int(i) for i in top_indices(sims, k)]
        path = self._path(chosen, target)
        return chosen, None, path, {"topk": path[-1]}


@renamed_params(lambda_=Renamed("diversity", lambda lam: 1.0 - lam, "diversity = 1 - lambda_"))
@dataclass(eq=False, repr=False, kw_only=True)
class MMRSelector(_BaselineSelector):
    """Maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998).

    Greedily adds the candidate maximising
    ``(1 - diversity) * sim(d, target) - diversity * max_{s in S} sim(d, s)``
    with cosine similarity for both terms (Carbonell & Goldstein's ``lambda``
    is ``1 - diversity``). ``diversity=0`` is pure relevance (identical to
    :class:`TopKSelector`); larger values trade relevance for diversity. Simplification (as in common retrieval practice, e.g.
    langchain's ``fetch_k``): the greedy runs over the ``candidates`` items most
    similar to the target rather than the whole pool.

    Parameters
    ----------
    k, kernel, bandwidth, order, seed, batch_chunk
        As in :class:`~promptkd.selection.BaseSelector`.
    diversity
        Weight of the redundancy penalty in [0, 1] (default 0.5): larger means
        more diverse. It replaces ``lambda_`` (``diversity = 1 - lambda_``); the
        old keyword still works and warns.
    candidates
        Size of the candidate set (top items by similarity).

    Examples
    --------
    >>> from promptkd import DemoPool
    >>> from promptkd.embeddings import HashingEmbedder
    >>> pool = DemoPool([{"input": f"text {i}", "output": "x"} for i in range(10)], embedder=HashingEmbedder())
    >>> len(MMRSelector(k=3, diversity=0.7).fit(pool).select("text 4"))
    3
    """

    method = "mmr"
    diversity: float = 0.5
    candidates: int = 256

    def _check_settings(self) -> None:
        super()._check_settings()
        check_float(self.diversity, "diversity", minimum=0.0, maximum=1.0)
        check_int(self.candidates, "candidates", minimum=1)

    def _choose(self, target: Target, k: int, sims: np.ndarray) -> _CHOICE:
        cand = self._candidates(sims, self.candidates, k)
        C = self._unit_rows(cand)
        rel = np.asarray(sims[cand], dtype=np.float64)
        lam = 1.0 - float(self.diversity)  # the relevance weight
        max_red = np.full(cand.shape[0], -np.inf)  # max cosine to the chosen set
        taken = np.zeros(cand.shape[0], dtype=bool)
        picks: list[int] = []
        for t in range(k):
            score = lam * rel - (1.0 - lam) * max_red if t else lam * rel
            score[taken] = -np.inf
            j = int(np.argmax(score))
            picks.append(j)
            taken[j] = True
            if t + 1 < k:
                col = C @ C[j]
                max_red = np.maximum(max_red, col)
        chosen = [int(cand[j]) for j in picks]
        path = self._path(chosen, target)
        return chosen, None, path, {"mmr": path[-1]}


@renamed_params(scale=Renamed("diversity"))
@dataclass(eq=False, repr=False, kw_only=True)
class DPPSelector(_BaselineSelector):
    """TopK-DPP: greedy MAP inference of a conditional DPP over the top candidates.

    The TopK+DPP baseline of Ye et al. (2023), "Compositional Exemplars for
    In-context Learning" (CEIL, ICML): retrieve the ``candidates`` items most
    similar to the target, build the conditional DPP kernel
    ``L = diag(q) S diag(q)`` with ``S`` the cosine similarity between candidates
    and quality ``q_i = exp(r_i / (2 * diversity))`` from the relevance
    ``r_i = (1 + cos(c_i, target)) / 2`` (shifted so the best candidate has
    ``r = 0``, which leaves the MAP unchanged and avoids overflow), and take the
    greedy MAP set with the fast incremental-Cholesky algorithm of Chen, Zhang &
    Zhou (2018), "Fast Greedy MAP Inference for Determinantal Point Process to
    Improve Recommendation Diversity" (NeurIPS). Each step costs O(M d + M t):
    the row ``L[j, :]`` of the chosen item is computed on the fly, never the
    full M x M kernel. ``log det L_Y = sum_i r_i / diversity + log det S_Y``, so
    a small ``diversity`` favours relevance and a large one diversity (it is
    Chen et al.'s trade-off with ``alpha = 1 / (2 * diversity)``).

    CEIL learns the embedding with a contrastive LM-based loss; this baseline
    uses the pool's embedder as is (the paper's untrained TopK-DPP setting).
    If the greedy stalls (the remaining candidates are linearly dependent on the
    chosen ones, e.g. exact duplicates), the remaining slots are filled with the
    most relevant items (candidates first, then the rest of the pool) that are
    not exact duplicates of a chosen item, so a selection never holds two
    identical embeddings unless the pool has fewer than ``k`` distinct ones.

    Parameters
    ----------
    k, kernel, bandwidth, order, seed, batch_chunk
        As in :class:`~promptkd.selection.BaseSelector`.
    candidates
        Size of the candidate set (default 100).
    diversity
        Relevance temperature (default 0.1), > 0: larger means more diverse.
        It was called ``scale``; the old keyword still works and warns.

    Examples
    --------
    >>> from promptkd import DemoPool
    >>> from promptkd.embeddings import HashingEmbedder
    >>> pool = DemoPool([{"input": f"text {i}", "output": "x"} for i in range(10)], embedder=HashingEmbedder())
    >>> len(set(DPPSelector(k=4).fit(pool).select("text 4").indices))
    4
    """

    method = "dpp"
    candidates: int = 100
    diversity: float = 0.1

    def _check_settings(self) -> None:
        super()._check_settings()
        check_int(self.candidates, "candidates", minimum=1)
        check_float(self.diversity, "diversity", minimum=0.0, strict_min=True)

    def _choose(self, target: Target, k: int, sims: np.ndarray) -> _CHOICE:
        cand = self._candidates(sims, self.candidates, k)
        C = self._unit_rows(cand)  # float64 unit rows, so S_jj = 1 and exact duplicates have S_ij = 1
        M = cand.shape[0]
        r = (1.0 + np.asarray(sims[cand], dtype=np.float64)) / 2.0
        q = np.exp((r - r.max()) / (2.0 * float(self.diversity)))
        d2 = q * q  # diag(L): S_ii = 1 by definition of the cosine kernel
        cis = np.zeros((k, M))
        taken = np.zeros(M, dtype=bool)
        picks: list[int] = []
        j = int(np.argmax(d2))
        eps = 1e-10 * float(d2[j])
        for s in range(k):
            picks.append(j)
            taken[j] = True
            if s + 1 == k:
                break
            # Chen et al. (2018), Algorithm 1: extend the Cholesky factor by the new row of L
            row = q[j] * q * (C @ C[j])  # L[j, :]
            e = (row - cis[:s, j] @ cis[:s, :]) / np.sqrt(d2[j])
            cis[s, :] = e
            d2 = d2 - e * e  # d2[i] = L_ii - ||c_i||^2: the marginal gain det(L_{Y+i}) / det(L_Y)
            masked = np.where(taken, -np.inf, d2)
            j = int(np.argmax(masked))
            if masked[j] <= eps:  # stalled: every remaining candidate is (numerically) in the span
                break
        chosen = [int(cand[p]) for p in picks]
        if len(chosen) < k:
            chosen += self._fill(sims, cand, chosen, k - len(chosen))
        path = self._path(chosen, target)
        return chosen, None, path, {"dpp": path[-1]}

    def _fill(self, sims: np.ndarray, cand: np.ndarray, chosen: list[int], need: int) -> list[int]:
        """Most relevant items (candidates first, then the pool) that are not exact duplicates of a chosen one."""
        seen = {np.asarray(self.embeddings_[i]).tobytes() for i in chosen}
        taken = set(chosen)
        extra: list[int] = []
        for order in (cand, top_indices(sims, self.n_demos_)):
            for i in order:
                if len(extra) == need:
                    return extra
                i = int(i)
                key = np.asarray(self.embeddings_[i]).tobytes()
                if i in taken or key in seen:
                    continue
                extra.append(i)
                taken.add(i)
                seen.add(key)
        if len(extra) < need:
            logger.warning(
                "DPPSelector: the pool has only %d distinct embeddings, fewer than k=%d; repeating some.",
                len(seen),
                len(chosen) + need,
            )
            for i in top_indices(sims, self.n_demos_):
                if len(extra) == need:
                    break
                if int(i) not in taken:
                    extra.append(int(i))
                    taken.add(int(i))
        return extra


# VoteK and BM25 live in their own modules; this module stays their public home
from promptkd.selection.bm25 import BM25Selector  # noqa: E402
from promptkd.selection.votek import VoteKSelector  # noqa: E402

BM25Selector.__module__ = VoteKSelector.__module__ = __name__
