"""The budget's constants A, C and intercept: from the theory, from the user, or calibrated on results."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from promptkd._validation import check_float
from promptkd.bounds.calibration import CalibrationReport, calibrate
from promptkd.exceptions import InvalidInputError, NotFittedError
from promptkd.kernels.objects import as_kernel

__all__ = ["BudgetConstantsMixin", "theory_A", "unit_diagonal"]

#: Where the budget's constants may come from when none are given or calibrated.
CONSTANTS_SOURCES = ("shipped", "theory")


def unit_diagonal(kernel: Any) -> bool:
    """Whether ``k(x, x) = 1`` for every x, read from the kernel object's capability.

    Names and kernel objects are asked through :func:`promptkd.kernels.as_kernel`; a plain
    callable is not known to have a unit diagonal (its ``Phi`` is then read off the pool).

    Examples
    --------
    >>> from promptkd.kernels import RBF
    >>> unit_diagonal("rbf"), unit_diagonal("linear"), unit_diagonal(RBF() * RBF()), unit_diagonal(len)
    (True, False, True, False)
    """
    try:
        return bool(as_kernel(kernel).unit_diagonal)
    except InvalidInputError:
        return False


def theory_A(*, rho: float = 1.0, B: float = 1.0, Phi: float = 1.0, M: float = 1.0, delta: float = 0.05) -> float:
    """The budget constant the bound implies: ``2 sqrt(2) rho B Phi + M sqrt(log(1/delta) / 2)``.

    It is what ``complexity + confidence`` becomes at ``m = 1`` when
    ``trace(K_SS) <= m Phi**2``, so that both terms together are ``<= A / sqrt(m)``.

    Examples
    --------
    >>> round(theory_A(), 4)  # normalised constants, delta = 0.05
    4.0523
    """
    return 2.0 * math.sqrt(2.0) * rho * B * Phi + M * math.sqrt(math.log(1.0 / delta) / 2.0)


class BudgetConstantsMixin:
    """``A_``, ``C_``, ``intercept_`` and their calibration, for :class:`~promptkd.bounds.BoundEstimator`."""

    # ------------------------------------------------------------------ constants
    @property
    def theory_A_(self) -> float:
        """``A`` implied by the bound's constants (:func:`theory_A` with the fitted ``Phi_``)."""
        self._check_fitted()
        return theory_A(rho=self.rho, B=self.B, Phi=self.Phi_, M=self.M, delta=self.delta)

    def _shipped(self) -> Any:
        """The shipped constants the budget uses (None when the user set A or C, or none match the family)."""
        if self.A is not None or self.C != 1.0 or self.constants != "shipped":
            return None
        return getattr(self, "shipped_", None)

    @property
    def A_(self) -> float:
        """``A`` used by the budget: calibrated, else the ``A`` setting, else the shipped or the theory's."""
        cal = getattr(self, "calibration_", None)
        if cal is not None:
            return cal.A
        if self.A is not None:
            return float(self.A)
        shipped = self._shipped()
        if shipped is not None:
            return shipped.A
        if hasattr(self, "Phi_"):
            return self.theory_A_
        if self.Phi is not None or unit_diagonal(self.kernel):
            phi = 1.0 if self.Phi is None else float(self.Phi)
            return theory_A(rho=self.rho, B=self.B, Phi=phi, M=self.M, delta=self.delta)
        raise NotFittedError("A depends on Phi, which is derived from the pool for this kernel; call .fit(pool) first.")

    @property
    def C_(self) -> float:
        """``C`` used by the budget: calibrated, else the ``C`` setting, else the shipped one."""
        cal = getattr(self, "calibration_", None)
        if cal is not None:
            return cal.C
        shipped = self._shipped()
        return shipped.C if shipped is not None else float(self.C)

    @property
    def intercept_(self) -> float:
        """Intercept of ``U(k)``: the calibrated or shipped error level; 0 with the theory's constants."""
        cal = getattr(self, "calibration_", None)
        if cal is not None:
            return cal.intercept
        shipped = self._shipped()
        return shipped.intercept if shipped is not None else 0.0

    @property
    def constants_(self) -> str:
        """Where the budget's constants come from: ``"calibrated"``, ``"user"``, ``"shipped"`` or ``"theory"``."""
        if getattr(self, "calibration_", None) is not None:
            return "calibrated"
        if self.A is not None or self.C != 1.0:
            return "user"
        return "shipped" if self._shipped() is not None else "theory"

    @property
    def constants_source_(self) -> str:
        """One line naming the constants the budget uses and where they come from.

        Examples
        --------
        >>> from promptkd.bounds import BoundEstimator
        >>> BoundEstimator(A=0.5, C=0.2).constants_source_
        'user constants (A=0.5, C=0.2 passed to BoundEstimator)'
        """
        kind = self.constants_
        if kind == "calibrated":
            cal = self.calibration_
            if cal.n == 0:
                return "constants set with set_constants (e.g. from a constants file)"
            return f"constants calibrated on {cal.n} records (R^2 = {cal.r2:.3f})"
        if kind == "user":
            return f"user constants (A={self.A}, C={self.C} passed to BoundEstimator)"
        if kind == "shipped":
            return self._shipped().source
        why = getattr(self, "shipped_reason_", None)
        return "theory constants (normalised: rho = B = M = 1)" + (f"; {why}" if why else "")

    def _find_shipped(self, pool: Any, E: Any) -> None:
        """At fit: look up the shipped constants for the pool's embedder, the kernel and the bandwidth."""
        from promptkd.bounds.shipped import find_shipped
        from promptkd.kernels.functions import median_bandwidth

        self.shipped_ = None
        self.shipped_reason_ = None
        if self.constants not in CONSTANTS_SOURCES:
            raise InvalidInputError(f"constants={self.constants!r} is not known; use one of {CONSTANTS_SOURCES}.")
        if self.constants != "shipped":
            return
        kernel = self.kernel if isinstance(self.kernel, str) else getattr(self.kernel, "__name__", "custom")
        scale = None
        if isinstance(self.bandwidth_, (int, float)):
            scale = float(self.bandwidth_) / median_bandwidth(E, seed=0)
        embedder = pool.embedder_id
        self.shipped_ = find_shipped(embedder, kernel, scale)
        if self.shipped_ is None:
            scale_txt = "?" if scale is None else f"{scale:.3g}"
            self.shipped_reason_ = (
                f"no shipped constants for embedder {embedder!r}, kernel {kernel!r} at {scale_txt} x median bandwidth"
            )

    def calibrate(
        self, records: Iterable[Any], *, fit_intercept: bool = True, update: bool = True
    ) -> CalibrationReport:
        """Fit ``A``, ``C`` and an intercept from observed ``(k, mmd, error)`` records.

        With ``update=True`` the budget uses the fitted constants from now on
        (the bound keeps the theory's constants). See
        :func:`promptkd.bounds.calibrate`.

        Examples
        --------
        >>> from promptkd.bounds import BoundEstimator
        >>> est = BoundEstimator()
        >>> rep = est.calibrate([(k, m, 0.2 + 1.5 / k**0.5 + 0.8 * m) for k in (1, 4, 16) for m in (0.1, 0.5)])
        >>> round(est.A_, 6), round(est.C_, 6), est.constants_
        (1.5, 0.8, 'calibrated')
        """
        if hasattr(records, "calibration_records"):  # e.g. an evaluation ExperimentResult
            records = records.calibration_records()
        report = calibrate(records, fit_intercept=fit_intercept)
        if update:
            self.calibration_ = report
        return report

    def set_constants(self, A: float, C: float, intercept: float = 0.0) -> BudgetConstantsMixin:
        """Use known budget constants (e.g. from a constants file) as if calibrated; returns ``self``.

        Examples
        --------
        >>> from promptkd.bounds import BoundEstimator
        >>> BoundEstimator().set_constants(0.3, 1.2, 0.05).A_
        0.3
        """
        A = check_float(A, "A", minimum=0.0)
        C = check_float(C, "C", minimum=0.0)
        intercept = check_float(intercept, "intercept")
        self.calibration_ = CalibrationReport(
            A=A, C=C, intercept=intercept, r2=float("nan"), rmse=float("nan"), residuals=(), n=0,
            fit_intercept=intercept != 0.0,
        )  # fmt: skip
        return self

    def reset_calibration(self) -> None:
        """Forget a calibration; the budget goes back to the settings / theory constants."""
        if hasattr(self, "calibration_"):
            del self.calibration_
