"""Kernel columns for greedy selection: ``k(C, y)`` for a fixed candidate set ``C``.

Herding and swap refinement touch a kernel only through a small interface: the
cross kernel against the target, the target's own Gram matrix, the diagonal and
the column of one chosen candidate. :class:`KernelColumns` computes these for a
kernel object on the embedding rows, choosing its fast path by the kernel's
capabilities: a distance-based GEMM kernel (``gemm and distance_based``) gets
each column from one matrix-vector product and its ``profile`` of squared
distances (candidate norms computed once); an inner-product GEMM kernel
(``gemm and inner_product``) gets them from its ``gemm_rows``; any other kernel
falls back to its ``gram``.
Composite kernel objects (:mod:`promptkd.kernels.composite`) combine their
parts' providers, so a sum or product keeps every part's fast path.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["ColumnProvider", "KernelColumns"]


class ColumnProvider(Protocol):
    """What greedy selection needs from a kernel on a fixed candidate set (all results float64)."""

    def cross(self, Y: Any) -> np.ndarray:  # pragma: no cover - protocol
        """``k(C, Y)`` (M, n)."""
        ...

    def target_gram(self, Y: Any) -> np.ndarray:  # pragma: no cover - protocol
        """``k(Y, Y)`` (n, n)."""
        ...

    def target_constant(self, Y: Any, weights: np.ndarray) -> float:  # pragma: no cover - protocol
        """``v' K_YY v``."""
        ...

    def diag(self) -> np.ndarray:  # pragma: no cover - protocol
        """``k(c_i, c_i)`` (M,)."""
        ...

    def column(self, j: int) -> np.ndarray:  # pragma: no cover - protocol
        """``k(C, c_j)`` (M,)."""
        ...


class KernelColumns:
    """Kernel columns ``k(C, c_j)`` of a kernel object on fixed embedding rows ``C``.

    The fast path is chosen by capability: ``gemm`` and ``distance_based``
    kernels use the candidates' squared norms (computed once) and the kernel's
    ``profile``, so a column costs O(M * d) with no per-call validation;
    ``gemm`` and ``inner_product`` kernels use ``gemm_rows``; other kernels
    call ``gram``.

    Parameters
    ----------
    candidates
        (M, d) candidate rows.
    kernel
        A kernel object with numeric settings (see :func:`promptkd.kernels.as_kernel`).

    Examples
    --------
    >>> from promptkd.kernels import RBF
    >>> cols = KernelColumns(np.array([[0.0], [1.0]]), RBF(bandwidth=1.0))
    >>> np.round(cols.column(0), 4).tolist(), cols.diag().tolist()
    ([1.0, 0.6065], [1.0, 1.0])
    """

    def __init__(self, candidates: np.ndarray, kernel: Any) -> None:
        self.kernel = kernel
        self.distance = bool(kernel.gemm and kernel.distance_based)
        self.inner = bool(kernel.gemm and kernel.inner_product)
        C = np.asarray(candidates)
        # Products run in float32 for float32 embeddings (sums are float64); a profile that amplifies the
        # rounding of tiny distances (the Laplacian's sqrt), float64 input and the generic path use float64.
        exact = C.dtype == np.float64 or getattr(kernel, "float64_distances", False) or not kernel.gemm
        self.C = C.astype(np.float64 if exact else np.float32, copy=False)
        if self.distance:
            self.sq = np.einsum("ij,ij->i", self.C, self.C).astype(np.float64)
        elif self.inner:
            self.U = np.asarray(kernel.gemm_rows(self.C), dtype=self.C.dtype)
            self.udiag = (
                np.ones(self.C.shape[0], dtype=np.float64)
                if kernel.unit_diagonal
                else np.einsum("ij,ij->i", self.U, self.U).astype(np.float64)
            )

    def _gram(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return np.asarray(self.kernel.gram(X, Y), dtype=np.float64)

    def cross(self, Y: np.ndarray) -> np.ndarray:
        """``k(C, Y)`` as float64 (M, n)."""
        Y = np.asarray(Y, dtype=self.C.dtype)
        if self.inner:
            return (self.U @ np.asarray(self.kernel.gemm_rows(Y), dtype=Y.dtype).T).astype(np.float64)
        if not self.distance:
            return self._gram(self.C, Y)
        yy = np.einsum("ij,ij->i", Y, Y).astype(np.float64)
        d2 = self.sq[:, None] + yy[None, :] - 2.0 * (self.C @ Y.T).astype(np.float64)
        return self.kernel.profile(np.maximum(d2, 0.0, out=d2))

    def target_constant(self, Y: np.ndarray, weights: np.ndarray) -> float:
        """``v' K_YY v``."""
        if Y.shape[0] == 1 and self.kernel.unit_diagonal:
            return float(weights[0] ** 2)  # k(t, t) = 1
        return float(weights @ self.target_gram(Y) @ weights)

    def target_gram(self, Y: np.ndarray) -> np.ndarray:
        """``k(Y, Y)`` as float64 (n, n), with an exact unit diagonal where the kernel has one."""
        if not self.kernel.gemm:
            return self._gram(Y, Y)
        K = KernelColumns(Y, self.kernel).cross(Y)
        if self.kernel.unit_diagonal:
            np.fill_diagonal(K, 1.0)
        return K

    def diag(self) -> np.ndarray:
        """``k(c_i, c_i)`` as float64 (M,)."""
        if self.inner:
            return self.udiag.copy()
        if self.kernel.unit_diagonal:
            return np.ones(self.C.shape[0], dtype=np.float64)
        return np.array([self._gram(self.C[i : i + 1], self.C[i : i + 1])[0, 0] for i in range(self.C.shape[0])])

    def column(self, j: int) -> np.ndarray:
        """``k(C, C[j])`` as float64 (M,)."""
        # the entry of c_j itself equals diag() exactly, so greedy and swap arithmetic agree
        if self.inner:
            col = (self.U @ self.U[j]).astype(np.float64)
            col[j] = self.udiag[j]
            return col
        if not self.distance:
            return self._gram(self.C, self.C[j : j + 1])[:, 0]
        d2 = (self.C @ self.C[j]).astype(np.float64)
        d2 *= -2.0
        d2 += self.sq
        d2 += self.sq[j]
        d2[j] = 0.0
        return self.kernel.profile(np.maximum(d2, 0.0, out=d2))
