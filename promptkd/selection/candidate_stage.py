"""The Selector's candidate stage: which pool items the greedy may look at.

:class:`CandidateStageMixin` narrows the pool to the ``candidates`` items most
similar to the target: by an exact similarity GEMM (with a fixed sample of
positions that sets a threshold on large pools, so one O(n) pass finds the top
items), or by a faiss index above ``ann_threshold``. Under ``label_balance``
every label adds its own nearest items, and a multi-point target adds each
row's nearest items (:func:`~promptkd.selection.candidates.per_row_candidates`).
It is mixed into :class:`~promptkd.selection.Selector`, which calls
:meth:`CandidateStageMixin._fit_candidate_stage` from ``fit``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from promptkd.exceptions import MissingDependencyError
from promptkd.pool.ann import CandidateIndex
from promptkd.selection.candidates import HitRow, index_hits, per_row_candidates
from promptkd.selection.target import Target, normalise_rows

__all__ = ["CandidateStageMixin"]

logger = logging.getLogger("promptkd")

_PROBE_MIN_POOL = 8192  # pools from this size get a fixed sample of similarity positions for the threshold
_PROBE_SIZE = 4096


class CandidateStageMixin:
    """Candidate index, candidate sets and multi-point widening (mixed into :class:`Selector`)."""

    k: Any
    k_max: int
    seed: int
    candidates: int
    index_kind: str
    ann_threshold: int | None
    nprobe: int
    ef_search: int
    label_balance: str | None
    n_demos_: int
    embeddings_: Any
    inv_norms_: np.ndarray
    eligible_: np.ndarray | None
    eligible_idx_: np.ndarray
    label_names_: tuple[str, ...]
    label_codes_: np.ndarray

    def _fit_candidate_stage(self) -> None:
        """The threshold sample and, above ``ann_threshold``, the faiss index."""
        n = self.n_demos_
        self.probe_idx_ = None
        if n >= _PROBE_MIN_POOL:  # a fixed sample of similarity positions for the fast candidate threshold
            self.probe_idx_ = np.sort(np.random.default_rng(self.seed).choice(n, size=_PROBE_SIZE, replace=False))
        self.index_ = None
        if self.ann_threshold is not None and n >= self.ann_threshold:
            try:
                self.index_ = CandidateIndex(
                    self.embeddings_, self.index_kind, nprobe=self.nprobe, ef_search=self.ef_search, seed=self.seed
                )
            except MissingDependencyError:
                if self.index_kind != "auto":
                    raise
                logger.warning(
                    "the pool has %d demos (>= ann_threshold=%d) but faiss is not installed; using exact search. "
                    'Install it with: pip install "promptkd[ann]"',
                    n,
                    self.ann_threshold,
                )

    def _candidate_similarities(self, directions: np.ndarray) -> np.ndarray:
        if self.index_ is None:
            return self._similarity_rows(directions)  # type: ignore[attr-defined]
        D = np.asarray(directions, dtype=np.float32)
        n_elig = len(self.eligible_idx_)
        m = max(self.candidates, self.k if isinstance(self.k, int) else self.k_max)
        m = min(self.n_demos_, int(np.ceil(m * self.n_demos_ / n_elig)))
        # only the index's hits: (b, m) entries, not a dense (b, N) block of -inf
        return index_hits(self.index_, self.embeddings_, self.inv_norms_, D, m)  # type: ignore[return-value]

    def _candidate_set(self, sims: np.ndarray, k: int) -> np.ndarray:
        """Pool indices of the candidates, most similar first (ties: lower index first)."""
        m = min(max(self.candidates, k), len(self.eligible_idx_))
        if isinstance(sims, HitRow) and self.label_balance is None:
            return sims.top(m, self.eligible_)  # the index's hits, already ranked: O(m), not O(N)
        s = sims if self.eligible_ is None else np.where(self.eligible_, sims, -np.inf)
        n = self.n_demos_
        if self.index_ is not None and self.label_balance is None:
            # with an index only its hits are finite: rank those instead of partitioning the whole pool
            hits = np.flatnonzero(np.isfinite(s))
            return hits[np.lexsort((hits, -s[hits]))][:m]
        probe = self.probe_idx_
        cand = None
        if probe is not None and self.eligible_ is None and self.index_ is None and 16 * m <= n:
            # Threshold from a fixed random sample, set to keep about 3m items, then one O(n) comparison
            # pass; if fewer than m pass it (vanishingly rare) the exact partition below runs instead.
            # Either way the result is exactly the top m with the same tie rule.
            r = len(probe)
            j = min(r - 1, int(3 * m * r / n) + 8)
            sample = s[probe]
            thr = np.partition(sample, r - 1 - j)[r - 1 - j]
            above = np.flatnonzero(s >= thr)
            if len(above) >= m:
                cand = above[np.lexsort((above, -s[above]))][:m]
        if cand is not None:
            pass
        elif m < n:
            cand = np.argpartition(s, n - m)[n - m :]
            thr = s[cand].min()
            if np.count_nonzero(s >= thr) > m:  # ties straddle the boundary: keep the lowest indices
                tied = np.flatnonzero(s >= thr)
                cand = tied[np.lexsort((tied, -s[tied]))][:m]
        else:
            cand = np.arange(n)
        if self.eligible_ is not None or self.index_ is not None:
            cand = cand[np.isfinite(s[cand])]
        if self.label_balance is not None:
            extra = []
            for lab in range(len(self.label_names_)):
                members = self.eligible_idx_[self.label_codes_[self.eligible_idx_] == lab]
                members = members[np.isfinite(s[members])]
                if len(members) > k:
                    members = members[np.lexsort((members, -s[members]))][:k]
                extra.append(members)
            cand = np.unique(np.concatenate([cand, *extra]))
        return cand[np.lexsort((cand, -s[cand]))]

    def _add_target_modes(self, cand: np.ndarray, target: Target, k: int, sims: np.ndarray) -> np.ndarray:
        """Widen the candidates of a multi-point target with each target row's own nearest items."""
        rows = normalise_rows(target.embeddings)
        m = min(max(self.candidates, k), len(self.eligible_idx_))
        extra = per_row_candidates(self._candidate_similarities, rows, -(-m // len(rows)), self.eligible_)
        new = np.setdiff1d(extra, cand)
        if not len(new):
            return cand
        missing = new[~np.isfinite(sims[new])]  # items an index found for a row but not for the mean direction
        if len(missing):
            E = np.asarray(self.embeddings_[missing], dtype=np.float32)
            sims[missing] = (E @ target.direction()) * self.inv_norms_[missing]
        out = np.concatenate([cand, new])
        return out[np.lexsort((out, -sims[out]))]
