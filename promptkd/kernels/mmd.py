"""Maximum mean discrepancy (MMD) estimators and the permutation test.

This module is the one place where the MMD statistic is computed; selectors,
bounds and probes all call it. Formulas follow Gretton et al. (2012, JMLR):

* biased ``MMD2_b = mean(K_XX) + mean(K_YY) - 2 mean(K_XY)`` (always >= 0),
* unbiased ``MMD2_u`` (diagonals of K_XX and K_YY left out; may be negative),
* weighted ``w' K_XX w - 2 w' K_XY v + v' K_YY v`` for simplex weights ``w, v``,
* the linear-time estimator over disjoint pairs, for very large samples.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from promptkd._progress import default_show_progress_bar
from promptkd._validation import check_int, check_weights
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.kernels.functions import (
    Array,
    Bandwidth,
    KernelFn,
    _as_numeric,
    _concat,
    _is_torch,
    _prepare,
    resolve_bandwidth,
)
from promptkd.kernels.lookup import kernel_at
from promptkd.kernels.objects import Kernel, Views

__all__ = [
    "PermutationTestResult",
    "mmd2",
    "mmd2_from_kernels",
    "mmd2_linear",
    "mmd2_small",
    "mmd2_small_batch",
    "mmd_permutation_test",
]

#: the most pooled rows :func:`mmd2_small` handles itself (beyond it, :func:`mmd2` does)
SMALL_ROWS = 64


def _to_numpy64(a: Any) -> np.ndarray:
    if _is_torch(a):
        return a.detach().cpu().double().numpy()
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidTypeError(f"expected an array of numbers (a Gram matrix or sample): {err}") from err


def _check_pair(X: Array, Y: Array) -> tuple[Array, Array]:
    if X is None or Y is None:
        raise InvalidTypeError("mmd2 needs two samples X and Y (2-D arrays of embeddings); got None.")
    X = _as_numeric(X, "X")
    Y = _as_numeric(Y, "Y")
    if X.ndim == 1:
        X = X[None, :]
    if Y.ndim == 1:
        Y = Y[None, :]
    if X.shape[0] == 0 or Y.shape[0] == 0:
        raise InvalidInputError(
            f"mmd2 needs non-empty samples; got {X.shape[0]} and {Y.shape[0]} rows. Pass at least one row in each."
        )
    X, Y = _prepare(X, Y)
    return X, Y


def _check_gram(K: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    A = _to_numpy64(K)
    if A.shape != shape:
        raise InvalidInputError(
            f"{name} has shape {A.shape} but {shape} was expected from K_xy; pass the Gram matrices of the same samples."
        )
    if not np.all(np.isfinite(A)):
        raise InvalidInputError(f"{name} contains NaN or infinite values; check the kernel and its inputs.")
    return A


def mmd2_small(X: np.ndarray, Y: np.ndarray, kernel: Kernel, *, weights_y: Any = None) -> float:
    """Biased MMD2 of two small samples under a resolved distance-based kernel, in float64.

    Meant for the per-query MMD2 of a selection (k demos against a one- or few-row target): the
    squared distances come from one float64 product of the rows shifted by a target row (rounding
    of about 1e-16 of the squared distances, however far the samples sit from the origin), with no
    re-validation of inputs a selector has checked already, so it costs microseconds.
    ``weights_x`` are uniform; ``weights_y`` (summing to 1) default to uniform. Pooled samples of
    more than :data:`SMALL_ROWS` rows, or kernels that are not distance-based, go through
    :func:`mmd2` instead.

    Examples
    --------
    >>> from promptkd.kernels import RBF
    >>> X, Y = np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.0, 1.0]])
    >>> abs(mmd2_small(X, Y, RBF(1.0)) - mmd2(X, Y, kernel="rbf", bandwidth=1.0)) < 1e-12
    True
    """
    v = None if weights_y is None else np.asarray(weights_y, dtype=np.float64)[None, :]
    return float(mmd2_small_batch(np.asarray(X)[None], np.asarray(Y)[None], kernel, weights_y=v)[0])


def mmd2_small_batch(X: np.ndarray, Y: np.ndarray, kernel: Kernel, *, weights_y: Any = None) -> np.ndarray:
    """:func:`mmd2_small` for B pairs of samples at once: ``X`` (B, m, d) against ``Y`` (B, n, d).

    One batched float64 product instead of B small ones, for the per-query MMD2 of a batch of
    selections. ``weights_y`` is (B, n), each row summing to 1 (None: uniform). Returns the B
    values, each equal to ``mmd2_small(X[b], Y[b], kernel, weights_y=weights_y[b])``.

    Examples
    --------
    >>> from promptkd.kernels import RBF
    >>> X, Y = np.random.default_rng(0).normal(size=(3, 4, 2)), np.ones((3, 1, 2))
    >>> batch = mmd2_small_batch(X, Y, RBF(1.0))
    >>> bool(np.allclose(batch, [mmd2(X[b], Y[b], kernel="rbf", bandwidth=1.0) for b in range(3)]))
    True
    """
    B, m, n = X.shape[0], X.shape[1], Y.shape[1]
    if B == 0:
        return np.zeros(0)
    if m == 0 or n == 0 or m + n > SMALL_ROWS or not kernel.distance_based or not kernel.resolved:
        return np.array(
            [mmd2(X[b], Y[b], kernel=kernel, weights_y=None if weights_y is None else weights_y[b]) for b in range(B)]
        )
    # shifted by one target row (distances do not move), so the float64 expansion's rounding is
    # about 1e-16 of the squared distances, not of the squared norms
    origin = np.asarray(Y[:, -1:], dtype=np.float64)
    Z = np.empty((B, m + n, X.shape[2]))
    np.subtract(X, origin, out=Z[:, :m], dtype=np.float64)
    np.subtract(Y, origin, out=Z[:, m:], dtype=np.float64)
    G = Z @ Z.transpose(0, 2, 1)
    sq = np.diagonal(G, axis1=1, axis2=2)
    d2 = np.maximum(sq[:, :, None] + sq[:, None, :] - 2.0 * G, 0.0)
    diag = np.arange(m + n)
    d2[:, diag, diag] = 0.0
    K = kernel.profile(d2)
    v = np.full((B, n), 1.0 / n) if weights_y is None else np.asarray(weights_y, dtype=np.float64)
    xx = K[:, :m, :m].sum(axis=(1, 2)) / (m * m)
    yy = (v[:, None, :] @ K[:, m:, m:] @ v[:, :, None])[:, 0, 0]
    xy = (K[:, :m, m:].sum(axis=1) * v).sum(axis=1) / m
    return np.maximum(xx + yy - 2.0 * xy, 0.0)


def mmd2_from_kernels(
    K_xx: Any,
    K_yy: Any,
    K_xy: Any,
    *,
    unbiased: bool = False,
    weights_x: Any = None,
    weights_y: Any = None,
) -> float:
    """MMD2 from precomputed Gram matrices (numpy or torch).

    Examples
    --------
    >>> K = np.eye(2)
    >>> mmd2_from_kernels(K, K, K)
    0.0
    """
    K_xy = _to_numpy64(K_xy)
    if K_xy.ndim != 2:
        raise InvalidInputError(f"K_xy must be a 2-D Gram matrix, got shape {K_xy.shape}.")
    m, n = K_xy.shape
    K_xy = _check_gram(K_xy, (m, n), "K_xy")
    K_xx = _check_gram(K_xx, (m, m), "K_xx")
    K_yy = _check_gram(K_yy, (n, n), "K_yy")
    if unbiased:
        if weights_x is not None or weights_y is not None:
            raise InvalidInputError("the unbiased estimator takes no weights; pass unbiased=False to use weights.")
        if m < 2 or n < 2:
            raise InvalidInputError(f"the unbiased estimator needs at least 2 rows per sample; got {m} and {n}.")
        sxx = (K_xx.sum() - np.trace(K_xx)) / (m * (m - 1))
        syy = (K_yy.sum() - np.trace(K_yy)) / (n * (n - 1))
        return float(sxx + syy - 2.0 * K_xy.mean())
    w = check_weights(weights_x, m, "weights_x")
    v = check_weights(weights_y, n, "weights_y")
    value = float(w @ K_xx @ w + v @ K_yy @ v - 2.0 * w @ K_xy @ v)
    return max(value, 0.0)


def mmd2(
    X: Array,
    Y: Array,
    *,
    kernel: str | KernelFn = "rbf",
    bandwidth: Bandwidth = "median",
    unbiased: bool = False,
    weights_x: Any = None,
    weights_y: Any = None,
) -> float:
    """Squared MMD between the samples ``X`` (m x d) and ``Y`` (n x d).

    Parameters
    ----------
    X, Y
        Samples as numpy arrays or torch tensors (tensors stay on their device).
    kernel
        Kernel name (``"rbf"``, ``"laplacian"``, ``"imq"``, ``"cosine"``,
        ``"linear"``), a callable ``k(X, Y, *, bandwidth)``, or a kernel object
        (:mod:`promptkd.kernels.objects`; ``X`` and ``Y`` may then be
        :class:`~promptkd.kernels.objects.Views`).
    bandwidth
        Float, ``"median"`` (median heuristic on the pooled sample) or a list;
        ignored for kernel objects, which carry their own.
    unbiased
        Use the unbiased U-statistic (compare estimates across sample sizes).
    weights_x, weights_y
        Optional non-negative weights (normalised to sum 1) for the weighted
        biased estimator.

    Returns
    -------
    float
        The estimate; the biased and weighted estimators are clipped at 0.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0]])
    >>> mmd2(X, X)
    0.0
    >>> mmd2(X, X + 5.0, bandwidth=1.0) > 0.5
    True
    """
    if isinstance(kernel, Kernel):  # the object carries its own settings; "median" is fixed on the pooled rows
        if not isinstance(X, Views):
            X, Y = _check_pair(X, Y)
        k = kernel.resolve(X, Y)
        return mmd2_from_kernels(
            k.gram(X), k.gram(Y), k.gram(X, Y), unbiased=unbiased, weights_x=weights_x, weights_y=weights_y
        )
    X, Y = _check_pair(X, Y)
    k = kernel_at(kernel, resolve_bandwidth(bandwidth, X, Y))
    return mmd2_from_kernels(
        k.gram(X), k.gram(Y), k.gram(X, Y), unbiased=unbiased, weights_x=weights_x, weights_y=weights_y
    )


def mmd2_linear(
    X: Array,
    Y: Array,
    *,
    kernel: str | KernelFn = "rbf",
    bandwidth: Bandwidth = "median",
) -> float:
    """Linear-time unbiased MMD2 estimate over disjoint pairs (Gretton et al. 2012, Lemma 14).

    Uses the first ``2 * floor(min(m, n) / 2)`` rows of each sample; cost is
    O(min(m, n) * d), so it suits samples too large for a Gram matrix.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 2))
    >>> abs(mmd2_linear(X, rng.normal(size=(2000, 2)), bandwidth=1.0)) < 0.05
    True
    """
    X, Y = _check_pair(X, Y)
    half = min(X.shape[0], Y.shape[0]) // 2
    if half < 1:
        raise InvalidInputError("mmd2_linear needs at least 2 rows in each sample.")
    k = kernel_at(kernel, resolve_bandwidth(bandwidth, X, Y))
    x1, x2 = X[0 : 2 * half : 2], X[1 : 2 * half : 2]
    y1, y2 = Y[0 : 2 * half : 2], Y[1 : 2 * half : 2]

    def paired(A: Array, B: Array) -> np.ndarray:
        # k(a_i, b_i) for each pair, computed in chunks to avoid a full Gram matrix
        out = []
        for start in range(0, A.shape[0], 256):
            block = k.gram(A[start : start + 256], B[start : start + 256])
            out.append(np.diag(_to_numpy64(block)))
        return np.concatenate(out)

    h = paired(x1, x2) + paired(y1, y2) - paired(x1, y2) - paired(x2, y1)
    return float(h.mean())


class PermutationTestResult(NamedTuple):
    """Result of :func:`mmd_permutation_test`: the statistic and its p-value.

    It unpacks as ``mmd2, p_value = mmd_permutation_test(X, Y)``.
    """

    mmd2: float
    p_value: float


def mmd_permutation_test(
    X: Array,
    Y: Array,
    *,
    kernel: str | KernelFn = "rbf",
    bandwidth: Bandwidth = "median",
    unbiased: bool = False,
    n_permutations: int = 200,
    seed: int = 0,
    show_progress_bar: bool | None = None,
) -> PermutationTestResult:
    """Two-sample permutation test of ``H0: X and Y come from one distribution``.

    The p-value is ``(1 + #{permuted statistic >= observed}) / (1 + n_permutations)``.
    ``show_progress_bar=None`` shows a bar over the permutations when promptkd logs
    at INFO.
    The pooled Gram matrix is computed once; permutations only re-index it.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 2.0
    >>> stat, p_value = mmd_permutation_test(X, Y, n_permutations=99)
    >>> p_value <= 0.01
    True
    """
    n_permutations = check_int(n_permutations, "n_permutations", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    X, Y = _check_pair(X, Y)
    Z = _concat(X, Y)
    K = _to_numpy64(kernel_at(kernel, resolve_bandwidth(bandwidth, X, Y)).gram(Z))
    m = X.shape[0]
    total = K.shape[0]

    def statistic(idx: np.ndarray) -> float:
        a, b = idx[:m], idx[m:]
        return mmd2_from_kernels(K[np.ix_(a, a)], K[np.ix_(b, b)], K[np.ix_(a, b)], unbiased=unbiased)

    observed = statistic(np.arange(total))
    rng = np.random.default_rng(seed)
    steps = range(n_permutations)
    if default_show_progress_bar(show_progress_bar):
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="permutations", leave=False)
    exceed = sum(statistic(rng.permutation(total)) >= observed - 1e-12 for _ in steps)
    return PermutationTestResult(observed, (1.0 + exceed) / (1.0 + n_permutations))
