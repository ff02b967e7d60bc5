"""The budget's constants A, C and intercept: from the theory, from the user, or calibrated on results."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from promptkd._validation import check_float
from promptkd.bounds.calibration import CalibrationReport, calibrate
from promptkd.exceptions import NotFittedError
from promptkd.kernels.functions import cosine, get_kernel, imq, laplacian, rbf

__all__ = ["BudgetConstantsMixin", "theory_A"]

_UNIT_DIAGONAL = (rbf, laplacian, imq, cosine)


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

    @property
    def A_(self) -> float:
        """``A`` used by the budget: calibrated, else the ``A`` setting, else the theory's."""
        cal = getattr(self, "calibration_", None)
        if cal is not None:
            return cal.A
        if self.A is not None:
            return float(self.A)
        if hasattr(self, "Phi_"):
            return self.theory_A_
        if self.Phi is not None or get_kernel(self.kernel) in _UNIT_DIAGONAL:
            phi = 1.0 if self.Phi is None else float(self.Phi)
            return theory_A(rho=self.rho, B=self.B, Phi=phi, M=self.M, delta=self.delta)
        raise NotFittedError("A depends on Phi, which is derived from the pool for this kernel; call .fit(pool) first.")

    @property
    def C_(self) -> float:
        """``C`` used by the budget: calibrated, else the ``C`` setting."""
        cal = getattr(self, "calibration_", None)
        return cal.C if cal is not None else float(self.C)

    @property
    def intercept_(self) -> float:
        """Intercept of ``U(k)`` (the calibrated empirical-risk level; 0 by default)."""
        cal = getattr(self, "calibration_", None)
        return cal.intercept if cal is not None else 0.0

    @property
    def constants_(self) -> str:
        """Where the budget's constants come from: ``"calibrated"``, ``"user"`` or ``"theory"``."""
        if getattr(self, "calibration_", None) is not None:
            return "calibrated"
        return "user" if self.A is not None or self.C != 1.0 else "theory"

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
