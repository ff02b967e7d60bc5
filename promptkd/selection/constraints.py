"""Hard constraints on a selection, composed with the MMD objective.

The greedy (:func:`promptkd.selection.herding.herd`) asks a
:class:`ConstraintState` at every step which candidates may still be added,
and the swap refinement asks which (candidate, chosen) exchanges keep every
constraint. The state enforces

* near-duplicate exclusion: no two chosen demos with cosine similarity
  ``>= dedup_threshold``;
* a token budget: the chosen demos' token counts sum to at most ``max_tokens``,
  with room reserved for what the label constraint still needs;
* label balance: ``"cover"`` (``min(k, #labels)`` distinct labels) or
  ``"stratified"`` (label counts equal to :func:`stratified_quotas`, i.e.
  within one of ``k`` times the eligible pool's proportions).

Metadata filters (``where=``) act earlier, by restricting the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["LABEL_BALANCE", "ConstraintState", "Infeasible", "stratified_quotas"]

LABEL_BALANCE = (None, "cover", "stratified")
_EPS = 1e-9


class Infeasible(Exception):
    """Internal signal: this candidate set cannot satisfy the constraints."""


def stratified_quotas(counts: Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """Per-label counts for ``k`` demos proportional to ``counts`` (largest remainder).

    Each quota is ``floor(k * p)`` or one more, so ``|quota - k * p| < 1``, and
    the quotas sum to ``k``. Ties in the remainder go to the larger label, then
    to the earlier one, so the result is deterministic.

    Examples
    --------
    >>> stratified_quotas([50, 30, 20], 4).tolist()
    [2, 1, 1]
    """
    c = np.asarray(counts, dtype=np.int64)
    total = int(c.sum())
    if total <= 0:
        return np.zeros_like(c)
    exact = k * c / total
    base = np.floor(exact).astype(np.int64)
    rest = k - int(base.sum())
    if rest > 0:
        frac = exact - base
        order = sorted(range(len(c)), key=lambda i: (-frac[i], -c[i], i))
        for i in order[:rest]:
            base[i] += 1
    return np.minimum(base, c)


class ConstraintState:
    """Mutable per-run state of the constraints over ``M`` candidates.

    Parameters
    ----------
    k
        Maximum number of demos (exactly ``k`` unless a token budget stops earlier).
    labels
        (M,) integer label codes of the candidates, or None without label balance.
    label_balance
        None, ``"cover"`` or ``"stratified"``.
    required_distinct
        For ``"cover"``: how many distinct labels the set must hold.
    quotas
        For ``"stratified"``: (L,) exact label counts.
    costs
        (M,) token counts of the candidates, or None without a budget.
    budget
        The token budget (``max_tokens``).
    unit
        (M, d) unit-normalised candidate embeddings, needed for ``dedup_threshold``.
    dedup_threshold
        Cosine similarity at or above which two demos count as near-duplicates.

    Examples
    --------
    >>> st = ConstraintState(2, costs=np.array([3, 5, 9]), budget=10)
    >>> st.mask(0).tolist()
    [True, True, True]
    >>> st.add(1); st.mask(1).tolist()
    [True, False, False]
    """

    def __init__(
        self,
        k: int,
        *,
        labels: np.ndarray | None = None,
        label_balance: str | None = None,
        required_distinct: int = 0,
        quotas: np.ndarray | None = None,
        costs: np.ndarray | None = None,
        budget: float | None = None,
        unit: np.ndarray | None = None,
        dedup_threshold: float | None = None,
        n_candidates: int | None = None,
    ) -> None:
        sizes = [len(a) for a in (labels, costs, unit) if a is not None]
        self.M = int(n_candidates if n_candidates is not None else (sizes[0] if sizes else 0))
        self.k = int(k)
        self.mode = label_balance
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.n_labels = 0 if self.labels is None else int(self.labels.max(initial=-1)) + 1
        if quotas is not None:
            self.n_labels = max(self.n_labels, len(quotas))
        self.required = int(required_distinct)
        self.quotas = None if quotas is None else np.asarray(quotas, dtype=np.int64)
        self.counts = np.zeros(self.n_labels, dtype=np.int64)
        self.costs = None if costs is None else np.asarray(costs, dtype=np.float64)
        self.budget = None if budget is None else float(budget)
        self.used = 0.0
        self.unit = unit
        self.threshold = dedup_threshold
        self.taken = np.zeros(self.M, dtype=bool)
        self.dup = np.zeros(self.M, dtype=bool)
        self.chosen: list[int] = []
        self.cos_cols: list[np.ndarray] = []

    # ------------------------------------------------------------------ greedy
    def _available(self) -> np.ndarray:
        return ~self.taken & ~self.dup

    def mask(self, t: int) -> np.ndarray:
        """Candidates that may be added as the ``t``-th item (``t`` already chosen)."""
        ok = self._available()
        if not ok.any():
            return ok
        slots_after = self.k - t - 1
        reserve = np.zeros(self.M, dtype=np.float64)
        if self.mode == "stratified":
            assert self.labels is not None and self.quotas is not None
            need = self.quotas - self.counts
            ok &= need[self.labels] > 0
            if self.costs is not None:
                base = 0.0
                boundary = np.full(self.n_labels, np.inf)
                for lab in np.flatnonzero(need > 0):
                    avail = np.sort(self.costs[self._available() & (self.labels == lab)])
                    if len(avail) < need[lab]:
                        return np.zeros(self.M, dtype=bool)
                    base += float(avail[: need[lab]].sum())
                    boundary[lab] = avail[need[lab] - 1]
                reserve = base - np.minimum(self.costs, boundary[self.labels])
        elif self.mode == "cover":
            assert self.labels is not None
            distinct = int(np.count_nonzero(self.counts))
            missing = max(self.required - distinct, 0)
            new = self.counts[self.labels] == 0
            ok &= (missing - new.astype(np.int64)) <= slots_after
            if self.costs is not None and missing > 0:
                cheapest = np.full(self.n_labels, np.inf)
                avail = self._available()
                np.minimum.at(cheapest, self.labels[avail], self.costs[avail])
                cheapest[self.counts > 0] = np.inf
                ranked = np.sort(cheapest)
                if not np.isfinite(ranked[missing - 1]):
                    return np.zeros(self.M, dtype=bool)
                full = float(ranked[:missing].sum())
                own = np.minimum(cheapest[self.labels], ranked[missing - 1])
                reserve = np.where(new, full - own, full)
        if self.costs is not None:
            assert self.budget is not None
            ok &= self.costs + reserve <= self.budget - self.used + _EPS
        return ok

    def add(self, j: int) -> None:
        """Record that candidate ``j`` was chosen."""
        self.taken[j] = True
        self.chosen.append(int(j))
        if self.labels is not None:
            self.counts[self.labels[j]] += 1
        if self.costs is not None:
            self.used += float(self.costs[j])
        if self.threshold is not None:
            assert self.unit is not None
            col = self.unit @ self.unit[j]
            self.cos_cols.append(col)
            self.dup |= col >= self.threshold

    def violation(self) -> str | None:
        """Why the finished selection breaks a constraint, or None if it keeps all."""
        n = len(self.chosen)
        if self.costs is None and n < self.k:
            return f"only {n} of k={self.k} demos could be chosen"
        if n == 0:
            return "no demonstration can be chosen within the token budget and the label constraint together"
        if self.mode == "cover" and int(np.count_nonzero(self.counts)) < self.required:
            return f"only {int(np.count_nonzero(self.counts))} of the {self.required} labels required by 'cover' fit"
        if self.mode == "stratified":
            assert self.quotas is not None
            if not np.array_equal(self.counts, self.quotas):
                return "the stratified label quotas could not be met"
        return None

    # ------------------------------------------------------------------ swaps
    def swap_feasible(self) -> np.ndarray:
        """(M, n) mask: may candidate ``c`` replace the ``i``-th chosen item?"""
        order = np.asarray(self.chosen, dtype=np.int64)
        n = len(order)
        F = np.ones((self.M, n), dtype=bool)
        F[self.taken] = False
        if self.threshold is not None and n >= 2:
            C = np.stack(self.cos_cols, 1)
            top = np.argmax(C, 1)
            first = C[np.arange(self.M), top]
            C2 = C.copy()
            C2[np.arange(self.M), top] = -np.inf
            second = C2.max(1)
            excl = np.where(top[:, None] == np.arange(n)[None, :], second[:, None], first[:, None])
            F &= excl < self.threshold
        if self.costs is not None:
            assert self.budget is not None
            total = float(self.costs[order].sum())
            F &= (total - self.costs[order][None, :] + self.costs[:, None]) <= self.budget + _EPS
        if self.mode == "stratified":
            assert self.labels is not None
            F &= self.labels[:, None] == self.labels[order][None, :]
        elif self.mode == "cover":
            assert self.labels is not None
            distinct = int(np.count_nonzero(self.counts))
            lab_a = self.labels[order]
            loses = (self.counts[lab_a] == 1)[None, :] & (self.labels[:, None] != lab_a[None, :])
            gains = (self.counts[self.labels] == 0)[:, None]
            F &= (distinct - loses.astype(np.int64) + gains.astype(np.int64)) >= self.required
        return F

    def swap(self, i: int, c: int) -> None:
        """Replace the ``i``-th chosen item by candidate ``c``."""
        a = self.chosen[i]
        self.taken[a] = False
        self.taken[c] = True
        self.chosen[i] = int(c)
        if self.labels is not None:
            self.counts[self.labels[a]] -= 1
            self.counts[self.labels[c]] += 1
        if self.costs is not None:
            self.used += float(self.costs[c] - self.costs[a])
        if self.threshold is not None:
            assert self.unit is not None
            self.cos_cols[i] = self.unit @ self.unit[c]
            self.dup = np.zeros(self.M, dtype=bool)
            for col in self.cos_cols:
                self.dup |= col >= self.threshold
