"""Finite-sample deviation of the biased MMD and the confidence interval it gives.

The statement implemented here is the large-deviation bound for the biased
statistic of Gretton, Borgwardt, Rasch, Schölkopf and Smola, "A Kernel
Two-Sample Test", JMLR 13 (2012) 723-773, Theorem 7 (Section 4.1; other
versions of the paper number it differently):

    Let X (m points, i.i.d. from p) and Y (n points, i.i.d. from q) be
    independent samples and assume ``0 <= k(x, y) <= K``. Then

        Pr{ |MMD_b(X, Y) - MMD(p, q)| > 2 (sqrt(K/m) + sqrt(K/n)) + eps }
            <= 2 exp(-eps**2 m n / (2 K (m + n)))

where ``MMD_b = sqrt(MMD2_biased)`` is the square root of the biased (V-statistic)
estimate. Setting the right-hand side to ``delta`` and solving for ``eps`` gives,
with probability at least ``1 - delta``,

    |MMD_b - MMD| <= 2 (sqrt(K/m) + sqrt(K/n)) + sqrt(2 K (m + n) / (m n) * log(2 / delta)),

an interval for the population MMD around the observed statistic. The bound is
distribution free and therefore conservative: at a few dozen points it is often
wider than the MMD itself. Two assumptions matter in practice:

* the kernel must be non-negative and bounded by ``K``; rbf, laplacian and imq
  kernels satisfy it with ``K = 1``, cosine and linear kernels can be negative,
  so for them the interval is reported with ``assumption_holds=False``;
* the samples must be i.i.d.; a herded selection is not, so for a selection the
  interval describes what an i.i.d. sample of the same size would guarantee.

For a weighted sample the Kish effective size ``1 / sum(w_i**2)`` replaces the
count; that is a heuristic extension, not part of the theorem.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from promptkd._validation import check_float, check_weights
from promptkd.exceptions import InvalidInputError
from promptkd.kernels.functions import (
    Bandwidth,
    KernelFn,
    _is_torch,
    resolve_bandwidth,
)
from promptkd.kernels.lookup import get_kernel, kernel_diag
from promptkd.kernels.mmd import _check_pair, mmd2

__all__ = [
    "THEOREM",
    "MMDInterval",
    "effective_sample_size",
    "kernel_bound",
    "kernel_is_nonnegative",
    "mmd_confidence_interval",
    "mmd_deviation",
]

THEOREM = "Gretton et al. (2012, JMLR 13:723-773), Theorem 7"


def mmd_deviation(m: float, n: float, *, K: float = 1.0, delta: float = 0.05) -> float:
    """Half-width of the (1 - delta) interval for the population MMD around ``MMD_b``.

    Returns ``2 (sqrt(K/m) + sqrt(K/n)) + sqrt(2 K (m + n) / (m n) * log(2 / delta))``
    (Gretton et al. 2012, Theorem 7, solved for ``eps``).

    Parameters
    ----------
    m, n
        Sample sizes (effective sizes for weighted samples; need not be integers).
    K
        Upper bound of the kernel, ``0 <= k(x, y) <= K``.
    delta
        Failure probability in (0, 1).

    Examples
    --------
    >>> round(mmd_deviation(100, 100, K=1.0, delta=0.05), 4)
    0.7841
    >>> mmd_deviation(400, 400) < mmd_deviation(100, 100)
    True
    """
    m = check_float(m, "m", minimum=0.0, strict_min=True)
    n = check_float(n, "n", minimum=0.0, strict_min=True)
    K = check_float(K, "K", minimum=0.0, strict_min=True)
    delta = check_float(delta, "delta", minimum=0.0, maximum=1.0, strict_min=True)
    if delta >= 1.0:
        raise InvalidInputError(f"delta must be < 1 (a failure probability), got {delta}.")
    bias = 2.0 * (math.sqrt(K / m) + math.sqrt(K / n))
    eps = math.sqrt(2.0 * K * (m + n) / (m * n) * math.log(2.0 / delta))
    return bias + eps


def effective_sample_size(weights: Any, n: int) -> float:
    """Kish effective sample size ``1 / sum(w_i**2)`` of simplex weights (``n`` when None).

    Examples
    --------
    >>> effective_sample_size(None, 4)
    4.0
    >>> effective_sample_size([0.5, 0.5, 0.0], 3)
    2.0
    """
    if weights is None:
        return float(n)
    w = check_weights(weights, n, "weights")
    value = float(1.0 / np.sum(w * w))
    nearest = round(value)
    return float(nearest) if abs(value - nearest) < 1e-9 * max(value, 1.0) else value


def kernel_is_nonnegative(kernel: str | KernelFn) -> bool:
    """True for kernels known to satisfy ``k(x, y) >= 0`` (rbf, laplacian, imq).

    Examples
    --------
    >>> kernel_is_nonnegative("rbf"), kernel_is_nonnegative("cosine")
    (True, False)
    """
    return get_kernel(kernel).nonnegative


def kernel_bound(Z: Any, *, kernel: str | KernelFn = "rbf", bandwidth: Bandwidth = 1.0) -> float:
    """``K = sup k(x, y)`` over the rows of ``Z``: 1 for rbf/laplacian/imq/cosine, else the largest ``k(x, x)``.

    By Cauchy-Schwarz ``|k(x, y)| <= sqrt(k(x, x) k(y, y))``, so the largest
    diagonal value bounds every entry.

    Examples
    --------
    >>> kernel_bound(np.ones((2, 3)), kernel="rbf")
    1.0
    >>> kernel_bound(np.array([[3.0, 4.0], [1.0, 0.0]]), kernel="linear")
    25.0
    """
    k = get_kernel(kernel)
    if k.unit_diagonal:  # |k(x, y)| <= sqrt(k(x, x) k(y, y)) = 1
        return 1.0
    diag = kernel_diag(Z, kernel=kernel, bandwidth=bandwidth)
    if _is_torch(diag):
        diag = diag.detach().cpu().numpy()
    value = float(np.max(np.asarray(diag, dtype=np.float64)))
    if not np.isfinite(value) or value <= 0.0:
        raise InvalidInputError(
            f"the kernel's largest k(x, x) on the sample is {value}; a positive bound K is needed for the interval."
        )
    return value


@dataclass(frozen=True)
class MMDInterval:
    """Point estimate and (1 - delta) confidence interval for the population MMD.

    Attributes
    ----------
    mmd2
        Biased (weighted) MMD2 estimate, from :func:`promptkd.kernels.mmd2`.
    mmd
        ``sqrt(mmd2)``, the statistic the theorem is about.
    lower, upper
        ``max(mmd - half_width, 0)`` and ``mmd + half_width``.
    half_width
        The deviation from :func:`mmd_deviation`.
    m, n
        (Effective) sample sizes used.
    K
        Kernel bound used.
    delta
        Failure probability; the interval holds with probability ``>= 1 - delta``.
    assumption_holds
        False when the kernel is not known to be non-negative (then the
        theorem's hypothesis is not met and the interval is indicative only).
    theorem
        The statement implemented.
    """

    mmd2: float
    mmd: float
    lower: float
    upper: float
    half_width: float
    m: float
    n: float
    K: float
    delta: float
    assumption_holds: bool
    theorem: str = THEOREM

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form.

        Examples
        --------
        >>> MMDInterval(0.0, 0.0, 0.0, 1.0, 1.0, 10, 10, 1.0, 0.05, True).to_dict()["upper"]
        1.0
        """
        return asdict(self)


def mmd_confidence_interval(
    X: Any,
    Y: Any,
    *,
    kernel: str | KernelFn = "rbf",
    bandwidth: Bandwidth = "median",
    delta: float = 0.05,
    weights_x: Any = None,
    weights_y: Any = None,
    K: float | None = None,
) -> MMDInterval:
    """Biased MMD between ``X`` and ``Y`` with its finite-sample confidence interval.

    Parameters
    ----------
    X, Y
        Samples (rows are points), numpy arrays or torch tensors.
    kernel, bandwidth
        Kernel settings, as for :func:`promptkd.kernels.mmd2`.
    delta
        Failure probability; the interval has level ``1 - delta``.
    weights_x, weights_y
        Optional simplex weights; sizes then become Kish effective sizes.
    K
        Kernel bound; derived with :func:`kernel_bound` on the pooled rows when None.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(200, 2)), rng.normal(size=(200, 2))
    >>> ci = mmd_confidence_interval(X, Y, bandwidth=1.0)
    >>> ci.lower == 0.0 and ci.upper > ci.mmd
    True
    >>> mmd_confidence_interval(X, Y + 3.0, bandwidth=1.0).lower > 0
    True
    """
    delta = check_float(delta, "delta", minimum=0.0, maximum=1.0, strict_min=True)
    X, Y = _check_pair(X, Y)
    bw = resolve_bandwidth(bandwidth, X, Y)
    value = mmd2(X, Y, kernel=kernel, bandwidth=bw, weights_x=weights_x, weights_y=weights_y)
    m = effective_sample_size(weights_x, int(X.shape[0]))
    n = effective_sample_size(weights_y, int(Y.shape[0]))
    if K is None:
        Kx = kernel_bound(X, kernel=kernel, bandwidth=bw)
        Ky = kernel_bound(Y, kernel=kernel, bandwidth=bw)
        K = max(Kx, Ky)
    half = mmd_deviation(m, n, K=K, delta=delta)
    mmd = math.sqrt(max(value, 0.0))
    return MMDInterval(
        mmd2=float(value),
        mmd=mmd,
        lower=max(mmd - half, 0.0),
        upper=mmd + half,
        half_width=half,
        m=m,
        n=n,
        K=float(K),
        delta=delta,
        assumption_holds=kernel_is_nonnegative(kernel),
    )
