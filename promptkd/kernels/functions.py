"""Positive-definite kernels on embedding vectors.

Every kernel is a plain function ``k(X, Y=None, *, bandwidth=...)`` returning the
Gram matrix between the rows of ``X`` and ``Y`` (``Y`` defaults to ``X``). numpy
inputs give numpy outputs; torch tensors give tensors on the same device, so the
GPU path never copies to the host.

The bandwidth of the distance-based kernels (rbf, laplacian, imq) may be a float,
the string ``"median"`` (median heuristic on the pooled rows) or a sequence of
floats (the kernel is then the mean of the kernels at each bandwidth).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, Union

import numpy as np

from promptkd._validation import check_int
from promptkd.exceptions import InvalidInputError, InvalidTypeError

Array: TypeAlias = Any  # numpy.ndarray or torch.Tensor
Bandwidth: TypeAlias = Union[float, str, Sequence[float]]
KernelFn: TypeAlias = Callable[..., Array]

__all__ = [
    "KERNELS",
    "PROFILES",
    "cosine",
    "imq",
    "laplacian",
    "linear",
    "median_bandwidth",
    "rbf",
    "resolve_bandwidth",
    "sq_distances",
]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _xp(x: Any) -> Any:
    if _is_torch(x):
        import torch

        return torch
    return np


def _check_finite(A: Array, name: str) -> None:
    finite = bool(A.isfinite().all()) if _is_torch(A) else bool(np.all(np.isfinite(A)))
    if not finite:
        raise InvalidInputError(
            f"{name} contains NaN or infinite values; clean or re-embed it before computing kernels."
        )


def _as_numeric(A: Any, name: str) -> Array:
    """Return ``A`` as a real floating numpy array or torch tensor, or raise a promptkd error."""
    if A is None:
        raise InvalidTypeError(f"{name} must be a 2-D array of numbers (rows x dimensions), got None.")
    if _is_torch(A):
        if A.is_complex():
            raise InvalidTypeError(f"{name} must hold real numbers, got a tensor of dtype {A.dtype}.")
        if not A.is_floating_point() or A.dtype.itemsize < 4:
            A = A.float()
        return A
    try:
        arr = np.asarray(A)
    except (TypeError, ValueError) as err:
        raise InvalidTypeError(f"{name} must be a 2-D array of numbers (rows x dimensions): {err}") from err
    if arr.dtype.kind not in "biuf":
        raise InvalidTypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}.")
    return arr


def _prepare(X: Array, Y: Array | None) -> tuple[Array, Array]:
    X = _as_numeric(X, "X")
    if Y is not None:
        Y = _as_numeric(Y, "Y")
    if _is_torch(X):
        if Y is None:
            Y = X
        if not _is_torch(Y):
            import torch

            Y = torch.as_tensor(np.asarray(Y), device=X.device)
        if not Y.is_floating_point() or Y.dtype.itemsize < 4:
            Y = Y.float()
        if Y.dtype != X.dtype:
            Y = Y.to(X.dtype)
    else:
        if Y is None:
            Y = X
        elif _is_torch(Y):  # mixed numpy / torch: follow X (numpy)
            Y = Y.detach().cpu().numpy()
        dtype = np.result_type(X.dtype, Y.dtype, np.float32)
        X = X.astype(dtype, copy=False)
        Y = Y.astype(dtype, copy=False)
    if X.ndim != 2 or Y.ndim != 2:
        raise InvalidInputError(
            f"kernels take 2-D arrays (rows x dimensions); got shapes {tuple(X.shape)} and {tuple(Y.shape)}. "
            "Reshape a single vector with x[None, :]."
        )
    if X.shape[1] != Y.shape[1]:
        raise InvalidInputError(
            f"X and Y must have the same dimension; got {X.shape[1]} and {Y.shape[1]}. "
            "Embed both with the same embedder."
        )
    _check_finite(X, "X")
    if Y is not X:
        _check_finite(Y, "Y")
    return X, Y


def sq_distances(X: Array, Y: Array | None = None) -> Array:
    """Pairwise squared Euclidean distances, clipped at zero.

    Computed as ``||x||^2 + ||y||^2 - 2 <x, y>`` (one matrix product) after
    subtracting the pooled mean from both samples: distances do not change,
    but the rounding error of the expansion, which grows with ``||x||^2``, does.

    Examples
    --------
    >>> sq_distances(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 25.0], [25.0, 0.0]]
    """
    same = Y is None or Y is X  # a self-distance matrix gets an exact zero diagonal
    X, Y = _prepare(X, None if same else Y)
    xp = _xp(X)
    if X.shape[0] > 0:
        # centre on the pooled mean, so k(X, Y) and k(Y, X) see the same numbers
        mu = X.mean(0) if same else (X.sum(0) + Y.sum(0)) / (X.shape[0] + Y.shape[0])
        X = X - mu
        Y = X if same else Y - mu
    xx = (X * X).sum(1)
    yy = xx if same else (Y * Y).sum(1)
    d2 = xx[:, None] + yy[None, :] - 2.0 * (X @ Y.T)
    d2 = xp.clip(d2, 0.0, None)
    _refine_small(d2, X, Y, xx, yy)
    if same and d2.shape[0] == d2.shape[1]:
        # exact zeros on the diagonal (the expansion leaves rounding noise there)
        if xp is np:
            np.fill_diagonal(d2, 0.0)
        else:
            d2.fill_diagonal_(0.0)
    return d2


def _refine_small(d2: Array, X: Array, Y: Array, xx: Array, yy: Array) -> None:
    """Recompute, from the differences, the entries too small for the expansion to resolve.

    ``||x||^2 + ||y||^2 - 2 <x, y>`` has a rounding error of about
    ``eps * (||x||^2 + ||y||^2)``; for (near-)duplicate rows that error is the whole
    value, and kernels with a square root (Laplacian) magnify it to ``sqrt(eps)``.
    Those entries (usually few) are recomputed exactly, in place.
    """
    size = d2.size if isinstance(d2, np.ndarray) else d2.numel()
    if size == 0:
        return
    if isinstance(d2, np.ndarray):
        eps = float(np.finfo(d2.dtype).eps)
        rows, cols = np.nonzero(d2 <= 64.0 * eps * (xx[:, None] + yy[None, :]))
        for start in range(0, rows.shape[0], 1 << 16):
            r, c = rows[start : start + (1 << 16)], cols[start : start + (1 << 16)]
            diff = X[r] - Y[c]
            d2[r, c] = (diff * diff).sum(1)
        return
    import torch

    eps = float(torch.finfo(d2.dtype).eps)
    rows, cols = torch.nonzero(d2 <= 64.0 * eps * (xx[:, None] + yy[None, :]), as_tuple=True)
    for start in range(0, int(rows.shape[0]), 1 << 16):
        r, c = rows[start : start + (1 << 16)], cols[start : start + (1 << 16)]
        diff = X[r] - Y[c]
        d2[r, c] = (diff * diff).sum(1)


_MIN_MEDIAN_SQ = 1e-30


def median_bandwidth(
    X: Array,
    Y: Array | None = None,
    *,
    max_samples: int = 1000,
    seed: int = 0,
) -> float:
    """Median heuristic: ``sigma**2 = median(||z_i - z_j||**2) / 2`` over pooled rows.

    The pooled sample is subsampled to ``max_samples`` rows (seeded) so the cost
    stays bounded on large pools. Returns 1.0 when most rows coincide (a median
    squared distance of 0, or below 1e-30, gives no usable scale).

    Examples
    --------
    >>> X = np.array([[0.0], [2.0]])
    >>> round(median_bandwidth(X), 6)  # median squared distance 4 -> sigma = sqrt(2)
    1.414214
    """
    max_samples = check_int(max_samples, "max_samples", minimum=2)
    X, Y2 = _prepare(X, Y)
    Z = X if Y is None else _concat(X, Y2)
    n = Z.shape[0]
    if n < 2:
        return 1.0
    if n > max_samples:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(n, size=max_samples, replace=False))
        Z = Z[idx] if not _is_torch(Z) else Z[_torch_index(idx, Z)]
    # a canonical row order: the rounding of the distance expansion depends on the order of the rows (the
    # pooled mean's summation, the matrix product's blocking), and for tight clusters far apart it is a
    # visible part of the small distances, so without this median_bandwidth(X, Y) != median_bandwidth(Y, X)
    order = _canonical_order(Z)
    Z = Z[order] if not _is_torch(Z) else Z[_torch_index(order, Z)]
    d2 = sq_distances(Z)
    if _is_torch(d2):
        d2 = d2.detach().cpu().double().numpy()
    iu = np.triu_indices(d2.shape[0], k=1)
    med = float(np.median(np.asarray(d2)[iu]))
    if not np.isfinite(med) or med <= _MIN_MEDIAN_SQ:  # (near-)coinciding rows: no usable scale
        return 1.0
    return float(np.sqrt(med / 2.0))


def _canonical_order(Z: Array) -> np.ndarray:
    """A row order that depends only on the rows' values (their bytes), not on where they stand."""
    A = np.ascontiguousarray(Z.detach().cpu().numpy() if _is_torch(Z) else Z)
    rows = A.view(np.dtype((np.void, A.dtype.itemsize * A.shape[1]))).ravel()
    return np.argsort(rows, kind="stable")


def _torch_index(idx: np.ndarray, like: Any) -> Any:
    import torch

    return torch.as_tensor(idx, device=like.device)


def _concat(X: Array, Y: Array) -> Array:
    if _is_torch(X):
        import torch

        Y = Y if _is_torch(Y) else torch.as_tensor(np.asarray(Y), device=X.device, dtype=X.dtype)
        return torch.cat([X, Y.to(X.dtype)], 0)
    return np.concatenate([np.asarray(X), np.asarray(Y)], 0)


def resolve_bandwidth(bandwidth: Bandwidth, X: Array, Y: Array | None = None) -> float | tuple[float, ...]:
    """Turn a bandwidth setting into a float or a tuple of floats.

    Examples
    --------
    >>> resolve_bandwidth([0.5, 1.0], np.zeros((2, 2)))
    (0.5, 1.0)
    """
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise InvalidInputError(
                f"bandwidth={bandwidth!r} is not understood; use 'median', a positive float or a list of floats."
            )
        return median_bandwidth(X, Y)
    if isinstance(bandwidth, (int, float, np.floating, np.integer)) and not isinstance(bandwidth, bool):
        value = float(bandwidth)
        if not np.isfinite(value) or value <= 0:
            raise InvalidInputError(f"bandwidth must be a positive finite number, got {bandwidth!r}.")
        return value
    if isinstance(bandwidth, np.ndarray) and bandwidth.ndim == 1:
        bandwidth = bandwidth.tolist()
    if isinstance(bandwidth, Sequence) and len(bandwidth) > 0:
        values = tuple(float(resolve_bandwidth(b, X, Y)) for b in bandwidth)  # type: ignore[arg-type]
        return values
    raise InvalidTypeError(
        f"bandwidth must be a positive float, 'median' or a non-empty list of floats; got {bandwidth!r}."
    )


def _distance_kernel(profile: Callable[[Any, Array, float], Array]) -> KernelFn:
    def kernel(X: Array, Y: Array | None = None, *, bandwidth: Bandwidth = "median") -> Array:
        bw = resolve_bandwidth(bandwidth, X, Y)
        d2 = sq_distances(X, Y)
        xp = _xp(d2)
        if isinstance(bw, tuple):
            out = profile(xp, d2, bw[0])
            for b in bw[1:]:
                out = out + profile(xp, d2, b)
            return out / len(bw)
        return profile(xp, d2, bw)

    return kernel


def _rbf_profile(xp: Any, d2: Array, s: float) -> Array:
    return xp.exp(-d2 / (2.0 * s * s))


def _laplacian_profile(xp: Any, d2: Array, s: float) -> Array:
    return xp.exp(-xp.sqrt(d2) / s)


def _imq_profile(xp: Any, d2: Array, s: float) -> Array:
    return 1.0 / xp.sqrt(1.0 + d2 / (s * s))


#: ``profile(xp, d2, bandwidth)`` of each distance-based kernel: its value from the squared distance
PROFILES: dict[str, Callable[[Any, Array, float], Array]] = {
    "rbf": _rbf_profile,
    "laplacian": _laplacian_profile,
    "imq": _imq_profile,
}

rbf = _distance_kernel(_rbf_profile)
rbf.__name__ = "rbf"
rbf.__doc__ = """Gaussian RBF kernel ``exp(-||x - y||**2 / (2 * sigma**2))``.

Examples
--------
>>> X = np.array([[0.0, 0.0], [1.0, 0.0]])
>>> np.round(rbf(X, bandwidth=1.0), 4).tolist()
[[1.0, 0.6065], [0.6065, 1.0]]
"""

laplacian = _distance_kernel(_laplacian_profile)
laplacian.__name__ = "laplacian"
laplacian.__doc__ = """Laplacian kernel ``exp(-||x - y||_2 / sigma)``.

Examples
--------
>>> X = np.array([[0.0], [1.0]])
>>> round(float(laplacian(X, bandwidth=1.0)[0, 1]), 4)
0.3679
"""

imq = _distance_kernel(_imq_profile)
imq.__name__ = "imq"
imq.__doc__ = """Inverse multiquadric kernel ``(1 + ||x - y||**2 / sigma**2) ** -0.5``.

Examples
--------
>>> X = np.array([[0.0], [1.0]])
>>> round(float(imq(X, bandwidth=1.0)[0, 1]), 4)
0.7071
"""


def linear(X: Array, Y: Array | None = None, *, bandwidth: Bandwidth | None = None) -> Array:
    """Linear kernel ``<x, y>`` (the bandwidth is ignored).

    Examples
    --------
    >>> linear(np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]])).tolist()
    [[11.0]]
    """
    X, Y = _prepare(X, Y)
    return X @ Y.T


def _normalise_rows(X: Array) -> Array:
    xp = _xp(X)
    if xp is np:
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return X / np.maximum(norms, 1e-12)
    norms = X.norm(dim=1, keepdim=True)
    return X / norms.clamp_min(1e-12)


def cosine(X: Array, Y: Array | None = None, *, bandwidth: Bandwidth | None = None) -> Array:
    """Cosine-similarity kernel ``<x, y> / (||x|| ||y||)`` (the bandwidth is ignored).

    Examples
    --------
    >>> cosine(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0], [0.0, 1.0]])).tolist()
    [[1.0, 0.0]]
    """
    X, Y = _prepare(X, Y)
    return _normalise_rows(X) @ _normalise_rows(Y).T


KERNELS: dict[str, KernelFn] = {
    "rbf": rbf,
    "gaussian": rbf,
    "laplacian": laplacian,
    "imq": imq,
    "cosine": cosine,
    "linear": linear,
}


for _name in ("rbf", "laplacian", "imq", "cosine", "linear"):
    # the built-in functions name themselves, so promptkd.kernels.as_kernel maps them to their kernel objects
    KERNELS[_name].kernel_name = _name  # type: ignore[attr-defined]

_MOVED = ("get_kernel", "kernel_diag", "kernel_matrix", "self_gram")


def __getattr__(name: str) -> Any:
    # these work on kernel objects and live in promptkd.kernels.lookup; importing them from here still works
    if name in _MOVED:
        from promptkd.kernels import lookup

        return getattr(lookup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
