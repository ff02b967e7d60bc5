"""Fitting the budget's constants A and C to observed ICL errors.

The model is the shape of the bound with free constants::

    error ~ intercept + A / sqrt(k) + C * MMD

fitted by ordinary least squares over observed ``(k, MMD, error)`` records (for
example accuracy-derived errors of random and herded subsets at several k).
This is a calibrated heuristic: the theorem fixes the shape, the data fix the
constants.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError

__all__ = ["CalibrationReport", "calibrate", "parse_records"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationReport:
    """Least-squares fit of ``error ~ intercept + A / sqrt(k) + C * MMD``.

    Attributes
    ----------
    A, C, intercept
        Fitted constants (``intercept`` is 0 when ``fit_intercept=False``).
    r2
        Coefficient of determination of the fit.
    rmse
        Root-mean-square residual.
    residuals
        ``error - prediction`` per record, in input order.
    n
        Number of records.
    fit_intercept
        Whether the intercept (the empirical-risk level) was free.
    """

    A: float
    C: float
    intercept: float
    r2: float
    rmse: float
    residuals: tuple[float, ...]
    n: int
    fit_intercept: bool

    def predict(self, k: Any, mmd: Any) -> np.ndarray:
        """Predicted error for arrays (or scalars) ``k`` and ``mmd``.

        Examples
        --------
        >>> rep = CalibrationReport(2.0, 1.0, 0.1, 1.0, 0.0, (), 0, True)
        >>> rep.predict([4], [0.5]).tolist()
        [1.6]
        """
        k_arr = np.asarray(k, dtype=np.float64)
        mmd_arr = np.asarray(mmd, dtype=np.float64)
        return self.intercept + self.A / np.sqrt(k_arr) + self.C * mmd_arr

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return {
            "A": self.A,
            "C": self.C,
            "intercept": self.intercept,
            "r2": self.r2,
            "rmse": self.rmse,
            "residuals": list(self.residuals),
            "n": self.n,
            "fit_intercept": self.fit_intercept,
        }

    def __str__(self) -> str:
        return (
            f"Calibration on {self.n} records: error ~ {self.intercept:.4f} + {self.A:.4f}/sqrt(k) + "
            f"{self.C:.4f}*MMD   (R^2 = {self.r2:.4f}, RMSE = {self.rmse:.4g})"
        )


def _record(rec: Any, i: int) -> tuple[float, float, float]:
    if isinstance(rec, Mapping):
        if "k" not in rec or "error" not in rec or ("mmd" not in rec and "mmd2" not in rec):
            raise InvalidInputError(
                f"records[{i}] needs keys 'k', 'error' and 'mmd' (or 'mmd2'); got keys {sorted(rec)}."
            )
        k, err = rec["k"], rec["error"]
        mmd = rec["mmd"] if "mmd" in rec else math.sqrt(max(float(rec["mmd2"]), 0.0))
    elif isinstance(rec, (tuple, list)) and len(rec) == 3:
        k, mmd, err = rec
    else:
        raise InvalidTypeError(
            f"records[{i}] must be a (k, mmd, error) triple or a mapping with k/mmd/error; got {rec!r}."
        )
    try:
        k_f, mmd_f, err_f = float(k), float(mmd), float(err)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(f"records[{i}] must hold numbers; got {rec!r}.") from exc
    if not all(math.isfinite(v) for v in (k_f, mmd_f, err_f)):
        raise InvalidInputError(f"records[{i}] contains NaN or infinite values: {rec!r}.")
    if k_f < 1:
        raise InvalidInputError(f"records[{i}] has k={k}; k (number of demonstrations) must be >= 1.")
    if mmd_f < 0:
        raise InvalidInputError(f"records[{i}] has mmd={mmd}; an MMD is >= 0 (pass the MMD, not a negative MMD2).")
    return k_f, mmd_f, err_f


def parse_records(records: Iterable[Any]) -> np.ndarray:
    """Validate records into an (n, 3) array of ``k, mmd, error``.

    Examples
    --------
    >>> parse_records([(1, 0.5, 0.3), {"k": 4, "mmd2": 0.04, "error": 0.2}]).tolist()
    [[1.0, 0.5, 0.3], [4.0, 0.2, 0.2]]
    """
    if records is None or isinstance(records, (str, bytes)):
        raise InvalidTypeError("records must be an iterable of (k, mmd, error) triples or mappings.")
    rows = [_record(r, i) for i, r in enumerate(records)]
    if not rows:
        raise InvalidInputError("records is empty; pass observed (k, mmd, error) triples to calibrate.")
    return np.asarray(rows, dtype=np.float64)


def calibrate(records: Iterable[Any], *, fit_intercept: bool = True) -> CalibrationReport:
    """Fit ``A``, ``C`` (and an intercept) by least squares from ``(k, mmd, error)`` records.

    Parameters
    ----------
    records
        Triples ``(k, mmd, error)`` or mappings with keys ``k``, ``error`` and
        ``mmd`` (or ``mmd2``, square-rooted).
    fit_intercept
        Fit a free intercept (the empirical-risk level); otherwise it is 0.

    Returns
    -------
    CalibrationReport

    Examples
    --------
    >>> recs = [(k, m, 0.1 + 2.0 / k**0.5 + 0.5 * m) for k in (1, 2, 4, 8) for m in (0.1, 0.4)]
    >>> rep = calibrate(recs)
    >>> round(rep.A, 6), round(rep.C, 6), round(rep.intercept, 6)
    (2.0, 0.5, 0.1)
    """
    data = parse_records(records)
    k, mmd, err = data[:, 0], data[:, 1], data[:, 2]
    cols = [1.0 / np.sqrt(k), mmd]
    if fit_intercept:
        cols.append(np.ones_like(k))
    X = np.stack(cols, axis=1)
    p = X.shape[1]
    if data.shape[0] < p:
        raise InvalidInputError(
            f"calibrate needs at least {p} records to fit {p} constants; got {data.shape[0]}. Add more (k, mmd, error)."
        )
    if np.linalg.matrix_rank(X) < p:
        raise InvalidInputError(
            "the records do not vary enough to separate the constants: use several distinct k and several "
            "distinct MMD values (e.g. random and herded subsets at a few sizes)."
        )
    coef, *_ = np.linalg.lstsq(X, err, rcond=None)
    pred = X @ coef
    resid = err - pred
    ss_res = float(resid @ resid)
    centred = err - err.mean()
    ss_tot = float(centred @ centred)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    A, C = float(coef[0]), float(coef[1])
    intercept = float(coef[2]) if fit_intercept else 0.0
    if A < 0 or C < 0:
        logger.warning(
            "calibration gave a negative constant (A=%.4g, C=%.4g): the records do not follow the bound's shape; "
            "check them or use more varied k and MMD values",
            A,
            C,
        )
    return CalibrationReport(
        A=A,
        C=C,
        intercept=intercept,
        r2=float(r2),
        rmse=float(math.sqrt(ss_res / len(err))),
        residuals=tuple(float(r) for r in resid),
        n=len(err),
        fit_intercept=bool(fit_intercept),
    )
