"""Typed results of the bounds package: :class:`Bound`, :class:`Budget` and :class:`MMDCurves`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from promptkd.exceptions import InvalidInputError
from promptkd.kernels.deviation import MMDInterval

__all__ = ["Bound", "Budget", "BudgetPoint", "MMDCurves"]

BOUND_FORMULA = "R_Q <= R_hat_P + 2*sqrt(2)*rho*(B/m)*sqrt(trace K_SS) + 3*M*sqrt(log(2/delta)/(2m)) + C*MMD_b(S, T)"
BOUND_FORMULAS = {
    # data-dependent: the empirical Rademacher complexity of the kernel class on the demos themselves
    "empirical": BOUND_FORMULA,
    # distribution-level: the expected Rademacher complexity, bounded with sup k(x, x) = Phi^2
    "expected": "R_Q <= R_hat_P + 2*sqrt(2)*rho*B*Phi/sqrt(m) + M*sqrt(log(1/delta)/(2m)) + C*MMD_b(S, T)",
}
BUDGET_FORMULA = "U(k) = intercept + A/sqrt(k) + C*MMD_b(S_k, T) + lambda*tokens(S_k)"


def _bw(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Bound:
    """The generalisation bound (docs/theory.md) for one demonstration set, term by term.

    With probability at least ``1 - delta`` (and i.i.d. demonstrations),
    ``R_Q <= empirical_risk + complexity_term + confidence_term + C * MMD(P, Q)``;
    ``total`` plugs in the estimate ``MMD_b``, ``total_upper`` its upper
    confidence limit (then the statement holds with probability ``>= 1 - 2 delta``
    by a union bound).

    Attributes
    ----------
    m
        Number of demonstrations.
    n_target
        Effective number of target points (Kish size for weighted targets).
    indices
        Pool positions of the demonstrations.
    empirical_risk
        ``R_hat_P``, the empirical risk on the demonstrations (0 unless given).
    trace_kss
        ``trace(K_SS)``, the sum of ``k(s, s)`` over the demonstrations.
    rademacher
        The Rademacher complexity bound of the version used: empirical,
        ``(B / m) * sqrt(trace K_SS)``; expected, ``B * Phi / sqrt(m)``.
    complexity_term
        ``2 * sqrt(2) * rho * rademacher``.
    confidence_term
        The version's own confidence term: empirical, ``3 M sqrt(log(2 / delta) / (2 m))``;
        expected, ``M sqrt(log(1 / delta) / (2 m))``.
    mmd2, mmd
        Biased (target-weighted) MMD2 estimate and its square root.
    mmd_interval
        The finite-sample confidence interval of the MMD (Gretton et al. 2012, Thm 7).
    mmd_p_value
        Permutation-test p-value of ``H0: demos and target share a distribution``
        (None unless ``permutation_test=True``).
    mmd_term, mmd_term_upper
        ``C * mmd`` and ``C * mmd_interval.upper``.
    total, total_upper
        Sum of the terms with the MMD estimate, and with its upper limit.
    delta, M, rho, B, Phi, C
        The constants used.
    formula
        The bound as a string.
    """

    m: int
    n_target: float
    indices: tuple[int, ...]
    empirical_risk: float
    trace_kss: float
    rademacher: float
    complexity_term: float
    confidence_term: float
    mmd2: float
    mmd: float
    mmd_interval: MMDInterval
    mmd_p_value: float | None
    mmd_term: float
    mmd_term_upper: float
    total: float
    total_upper: float
    delta: float
    M: float
    rho: float
    B: float
    Phi: float
    C: float
    formula: str = BOUND_FORMULA
    version: str = "empirical"

    @property
    def terms(self) -> dict[str, float]:
        """The additive terms of ``total``, in order."""
        return {
            "empirical_risk": self.empirical_risk,
            "complexity": self.complexity_term,
            "confidence": self.confidence_term,
            "mmd": self.mmd_term,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        out = asdict(self)
        out["indices"] = list(self.indices)
        out["mmd_interval"] = self.mmd_interval.to_dict()
        return out

    def plot(self, ax: Any = None) -> Any:
        """Bar chart of the terms (needs the ``plot`` extra); returns the Figure."""
        from promptkd.bounds.plots import plot_bound

        return plot_bound(self, ax=ax)

    def __str__(self) -> str:
        ci = self.mmd_interval
        p = "" if self.mmd_p_value is None else f", permutation p = {self.mmd_p_value:.3g}"
        flag = "" if ci.assumption_holds else " (kernel may be negative: interval indicative only)"
        lines = [
            f"Bound for m={self.m} demonstrations, n_target={self.n_target:g}, delta={self.delta:g}",
            f"  formula: {self.formula}",
            f"  empirical risk R_hat_P          {self.empirical_risk:10.4f}",
            (
                f"  complexity 2*sqrt(2)*rho*R_hat  {self.complexity_term:10.4f}   "
                + (
                    f"(empirical Rademacher: R_hat = B/m*sqrt(tr K_SS) = {self.rademacher:.4f})"
                    if self.version == "empirical"
                    else f"(expected Rademacher: R = B*Phi/sqrt(m) = {self.rademacher:.4f})"
                )
            ),
            (
                f"  confidence 3M*sqrt(log(2/d)/2m) {self.confidence_term:10.4f}"
                if self.version == "empirical"
                else f"  confidence M*sqrt(log(1/d)/2m)  {self.confidence_term:10.4f}"
            ),
            f"  MMD term C*MMD_b                {self.mmd_term:10.4f}   (MMD_b = {self.mmd:.4f}, MMD2 = {self.mmd2:.5f})",
            f"    {100 * (1 - ci.delta):g}% interval for MMD: [{ci.lower:.4f}, {ci.upper:.4f}]{p}{flag}",
            f"  total                           {self.total:10.4f}   (with MMD upper limit: {self.total_upper:.4f})",
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class BudgetPoint:
    """One point of the budget curve: every term of ``U(k)``."""

    k: int
    complexity: float
    mmd2: float
    mmd: float
    mmd_term: float
    tokens: int
    token_term: float
    U: float
    feasible: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)


@dataclass(frozen=True)
class Budget:
    """The number of demonstrations the bound recommends, with the whole curve.

    ``U(k) = intercept + A / sqrt(k) + C * MMD_b(S_k, T) + token_cost * tokens(S_k)``
    along the herding path ``S_1 ⊂ S_2 ⊂ ...``; ``k_star`` minimises it over the
    sizes that fit ``max_tokens``.

    Attributes
    ----------
    k_star
        The recommended number of demonstrations.
    curve
        One :class:`BudgetPoint` per k = 1..len(indices).
    indices
        Pool positions of the herding path, in selection order; the first
        ``k_star`` are the recommended demonstrations.
    saturation_k
        First k where the complexity term ``A / sqrt(k)`` drops below the MMD
        term (more demos stop paying off faster than the bias), or None.
    A, C, intercept
        Constants used (theory defaults unless calibrated or set).
    constants
        ``"shipped"``, ``"theory"``, ``"user"`` or ``"calibrated"``.
    token_cost, max_tokens
        The token price ``lambda`` in error per token (:attr:`token_cost_points`
        states it in accuracy points per 100 tokens) and the hard token limit
        (None: no limit).
    target_error
        The target error ``eps`` asked for, if any.
    kernel, bandwidth
        The kernel settings of the MMD.
    formula
        ``U(k)`` as a string.
    constants_source
        One line naming the constants used and where they come from.
    """

    k_star: int
    curve: tuple[BudgetPoint, ...]
    indices: tuple[int, ...]
    saturation_k: int | None
    A: float
    C: float
    intercept: float
    constants: str
    token_cost: float
    max_tokens: int | None
    target_error: float | None = None
    kernel: str = "rbf"
    bandwidth: Any = None
    formula: str = BUDGET_FORMULA
    constants_source: str = ""

    @property
    def token_cost_points(self) -> float:
        """The token price in accuracy points per 100 prompt tokens (``token_cost * 10_000``).

        Examples
        --------
        >>> Budget(1, (), (), None, 1.0, 1.0, 0.0, "user", 0.0002, None).token_cost_points
        2.0
        """
        return round(self.token_cost * 1e4, 10)

    @property
    def k_values(self) -> tuple[int, ...]:
        """The k of every curve point."""
        return tuple(p.k for p in self.curve)

    @property
    def U(self) -> tuple[float, ...]:
        """``U(k)`` for every curve point."""
        return tuple(p.U for p in self.curve)

    @property
    def best(self) -> BudgetPoint:
        """The curve point at ``k_star``."""
        return self.point(self.k_star)

    @property
    def U_star(self) -> float:
        """``U(k_star)``, the bound value at the recommended size."""
        return self.best.U

    @property
    def selected(self) -> tuple[int, ...]:
        """Pool positions of the ``k_star`` recommended demonstrations (selection order)."""
        return self.indices[: self.k_star]

    def point(self, k: int) -> BudgetPoint:
        """The curve point for ``k`` demonstrations."""
        for p in self.curve:
            if p.k == k:
                return p
        raise InvalidInputError(f"k={k} is not on the budget curve (k = 1..{len(self.curve)}); pick one of those.")

    def max_acceptable_mmd(self, eps: float | None = None, k: int | None = None) -> float | None:
        """Largest MMD that keeps the bound at or below the target error ``eps``.

        Without ``k`` this is ``(eps - intercept) / C`` (the budget view: the MMD term
        alone may use the whole error budget); with ``k`` the complexity and
        token terms at that k are paid first:
        ``(eps - intercept - A / sqrt(k) - lambda * tokens_k) / C``, clipped at 0.
        Returns None when ``C`` is 0 (the MMD does not matter).

        Examples
        --------
        >>> b = Budget(1, (BudgetPoint(1, 4.0, 0.01, 0.1, 0.1, 3, 0.0, 4.1, True),), (0,), None,
        ...            4.0, 2.0, 0.0, "user", 0.0, None)
        >>> b.max_acceptable_mmd(0.5)
        0.25
        >>> b.max_acceptable_mmd(5.0, k=1)
        0.5
        """
        eps = self.target_error if eps is None else eps
        if eps is None:
            raise InvalidInputError("pass the target error eps (or build the budget with target_error=...).")
        eps = float(eps)
        if self.C == 0:
            return None
        spare = eps - self.intercept
        if k is not None:
            p = self.point(k)
            spare -= p.complexity + p.token_term
        return max(spare / self.C, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the whole curve."""
        return {
            "k_star": self.k_star,
            "U_star": self.U_star,
            "saturation_k": self.saturation_k,
            "A": self.A,
            "C": self.C,
            "intercept": self.intercept,
            "constants": self.constants,
            "constants_source": self.constants_source,
            "token_cost": self.token_cost,
            "token_cost_points_per_100_tokens": self.token_cost_points,
            "max_tokens": self.max_tokens,
            "target_error": self.target_error,
            "max_acceptable_mmd": None if self.target_error is None else self.max_acceptable_mmd(),
            "kernel": self.kernel,
            "bandwidth": _bw(self.bandwidth),
            "formula": self.formula,
            "indices": list(self.indices),
            "curve": [p.to_dict() for p in self.curve],
        }

    def plot(self, ax: Any = None) -> Any:
        """The U(k) curve with its terms stacked and k* marked (``plot`` extra); returns the Figure."""
        from promptkd.bounds.plots import plot_budget

        return plot_budget(self, ax=ax)

    def __str__(self) -> str:
        head = [
            f"Budget: k* = {self.k_star}, U(k*) = {self.U_star:.4f}  [{self.formula}]",
            f"  A = {self.A:.4f}, C = {self.C:.4f}, intercept = {self.intercept:.4f} ({self.constants} constants), "
            f"lambda = {self.token_cost:g} per token ({self.token_cost_points:g} accuracy points per 100 tokens), "
            f"max_tokens = {self.max_tokens}",
            *([f"  constants: {self.constants_source}"] if self.constants_source else []),
            f"  saturation (A/sqrt(k) < C*MMD) at k = {self.saturation_k if self.saturation_k is not None else 'never'}",
        ]
        if self.target_error is not None:
            head.append(f"  largest acceptable MMD for error {self.target_error:g}: {self.max_acceptable_mmd():.4f}")
        rows = [f"  {'k':>4} {'A/sqrt(k)':>10} {'MMD_b':>8} {'C*MMD':>8} {'tokens':>7} {'lam*tok':>8} {'U(k)':>8}"]
        for p in self.curve:
            mark = " <- k*" if p.k == self.k_star else ("" if p.feasible else " (over max_tokens)")
            rows.append(
                f"  {p.k:>4} {p.complexity:>10.4f} {p.mmd:>8.4f} {p.mmd_term:>8.4f} {p.tokens:>7d} "
                f"{p.token_term:>8.4f} {p.U:>8.4f}{mark}"
            )
        return "\n".join(head + rows)


@dataclass(frozen=True)
class MMDCurves:
    """MMD2 to the target against k: the herding path versus random subsets of the pool."""

    k: tuple[int, ...]
    herding: tuple[float, ...]
    random_mean: tuple[float, ...]
    random_std: tuple[float, ...]
    random_low: tuple[float, ...]
    random_high: tuple[float, ...]
    n_random: int

    @property
    def ratio(self) -> tuple[float, ...]:
        """Herding MMD2 over mean random MMD2, per k (below 1: herding matches the target better)."""
        return tuple(h / r if r > 0 else math.nan for h, r in zip(self.herding, self.random_mean, strict=True))

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}

    def plot(self, ax: Any = None) -> Any:
        """Plot MMD2 against k for herding and random subsets (``plot`` extra); returns the Figure."""
        from promptkd.bounds.plots import plot_mmd_curves

        return plot_mmd_curves(self, ax=ax)
