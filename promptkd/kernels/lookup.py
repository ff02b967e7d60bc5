"""Kernel look-up and the function-style helpers, all answered by kernel objects.

:func:`get_kernel` turns a name, a built-in kernel function or a plain callable
into a :class:`~promptkd.kernels.Kernel` object; :func:`kernel_at` does the same
with a bandwidth fixed, which is how the MMD estimators and greedy selection read
``kernel=..., bandwidth=...`` arguments. :func:`kernel_matrix`,
:func:`kernel_diag` and :func:`self_gram` keep their function-style signatures
and choose every shortcut by the object's capabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from promptkd.kernels.functions import Array, Bandwidth, KernelFn, _prepare, _xp
from promptkd.kernels.objects import Kernel, as_kernel

__all__ = ["get_kernel", "kernel_at", "kernel_diag", "kernel_matrix", "self_gram"]


def get_kernel(kernel: str | KernelFn | Kernel, **params: Any) -> Kernel:
    """The kernel object for a name, a callable or an object (see :func:`promptkd.kernels.as_kernel`).

    Parameters
    ----------
    kernel
        ``"rbf"`` (or ``"gaussian"``), ``"laplacian"``, ``"imq"``, ``"cosine"``,
        ``"linear"``, a built-in kernel function, any callable
        ``k(X, Y, *, bandwidth)``, or a :class:`~promptkd.kernels.Kernel`.
    **params
        Settings of a named kernel, e.g. ``bandwidth=0.5``.

    Returns
    -------
    Kernel
        An object that is called like the kernel functions, ``k(X, Y=None)``,
        and carries its capabilities (``unit_diagonal``, ``shift_invariant``,
        ``distance_based``, ``gemm``).

    Examples
    --------
    >>> k = get_kernel("rbf", bandwidth=1.0)
    >>> k, k.unit_diagonal, get_kernel("linear").unit_diagonal
    (RBF(bandwidth=1.0), True, False)
    >>> round(float(k(np.array([[0.0]]), np.array([[1.0]]))[0, 0]), 4)
    0.6065
    """
    return as_kernel(kernel, **params)


def kernel_at(kernel: str | KernelFn | Kernel, bandwidth: Bandwidth | None) -> Kernel:
    """The kernel object for ``kernel=..., bandwidth=...`` arguments.

    A name, a built-in function or a plain callable gets ``bandwidth`` (None:
    its default); a kernel object carries its own settings and is returned as
    it is.

    Examples
    --------
    >>> kernel_at("laplacian", 0.5), kernel_at("cosine", 0.5)
    (Laplacian(bandwidth=0.5), Cosine())
    """
    if isinstance(kernel, Kernel) or bandwidth is None:
        return as_kernel(kernel)
    return as_kernel(kernel, bandwidth=bandwidth)


def self_gram(fn: str | KernelFn | Kernel, X: Array, bandwidth: Bandwidth) -> Array:
    """``k(X, X)``, with an exact diagonal for the built-in kernels.

    Built-in kernels compute ``k(X, X)`` so that rounding in the distance
    expansion never reaches the diagonal (the Laplacian kernel's square root
    would turn 1e-16 into 1e-8); a custom callable is called as ``fn(X, X)``.

    Examples
    --------
    >>> from promptkd.kernels import laplacian
    >>> X = np.array([[0.1, 0.2], [0.3, 0.4]])
    >>> np.diag(self_gram(laplacian, X, 1.0)).tolist()
    [1.0, 1.0]
    """
    return kernel_at(fn, bandwidth).gram(X)


def kernel_matrix(
    X: Array,
    Y: Array | None = None,
    *,
    kernel: str | KernelFn | Kernel = "rbf",
    bandwidth: Bandwidth = "median",
) -> Array:
    """Gram matrix of ``kernel`` between the rows of ``X`` and ``Y``.

    Examples
    --------
    >>> K = kernel_matrix(np.eye(3), kernel="linear")
    >>> K.tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    return kernel_at(kernel, bandwidth).gram(X, Y)


def kernel_diag(X: Array, *, kernel: str | KernelFn | Kernel = "rbf", bandwidth: Bandwidth = "median") -> Array:
    """The diagonal ``k(x_i, x_i)`` without building the full Gram matrix.

    A kernel with a unit diagonal answers ones, an inner-product kernel the
    squared norms of its GEMM rows, any other kernel one row at a time.

    Examples
    --------
    >>> kernel_diag(np.array([[3.0, 4.0]]), kernel="linear").tolist()
    [25.0]
    """
    k = kernel_at(kernel, bandwidth)
    X, _ = _prepare(X, None)
    xp = _xp(X)
    if k.unit_diagonal:
        n = X.shape[0]
        if xp is np:
            return np.ones(n, dtype=X.dtype)
        return xp.ones(n, dtype=X.dtype, device=X.device)
    if k.inner_product:
        R = k.gemm_rows(X)
        return (R * R).sum(1)
    rows = [k.gram(X[i : i + 1], X[i : i + 1])[0, 0] for i in range(X.shape[0])]
    if xp is np:
        return np.asarray(rows)
    return xp.stack(rows)
