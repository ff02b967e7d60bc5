"""Kernel columns for greedy selection: ``k(C, y)`` for a fixed candidate set ``C``.

Herding and swap refinement touch a kernel only through a small interface: the
cross kernel against the target, the target's own Gram matrix, the diagonal and
the column of one chosen candidate. :class:`KernelColumns` computes these for the
built-in kernel functions from one matrix-vector product each (candidate norms are
computed once); kernel objects (:mod:`promptkd.kernels.objects`) return providers
with the same interface, composed part by part, so a sum or product of built-in
kernels keeps every fast path.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from promptkd.kernels.functions import Bandwidth, KernelFn, cosine, get_kernel, imq, kernel_diag, laplacian, linear, rbf

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


_PROFILES = {
    rbf: lambda d2, s: np.exp(-d2 / (2.0 * s * s)),
    laplacian: lambda d2, s: np.exp(-np.sqrt(d2) / s),
    imq: lambda d2, s: 1.0 / np.sqrt(1.0 + d2 / (s * s)),
}


class KernelColumns:
    """Kernel columns ``k(C, c_j)`` for the built-in kernels from one GEMV each.

    Candidate norms are computed once, so a column costs O(M * d) with no
    per-call validation; other kernels fall back to the kernel function.
    """

    def __init__(self, candidates: np.ndarray, kernel: str | KernelFn, bandwidth: Bandwidth) -> None:
        self.fn = get_kernel(kernel)
        self.bw = bandwidth
        self.fast = self.fn in _PROFILES or self.fn is cosine or self.fn is linear
        C = np.asarray(candidates)
        # Products run in float32 for float32 embeddings (sums are float64); the Laplacian's sqrt
        # amplifies rounding of tiny distances, so it (and float64 input) works in float64.
        exact = C.dtype == np.float64 or self.fn is laplacian or not self.fast
        self.C = C.astype(np.float64 if exact else np.float32, copy=False)
        if self.fn is cosine:
            self.U = self.C / np.maximum(np.linalg.norm(self.C, axis=1, keepdims=True), 1e-12).astype(self.C.dtype)
        elif self.fn in _PROFILES:
            self.sq = np.einsum("ij,ij->i", self.C, self.C).astype(np.float64)
        elif self.fn is linear:
            self.lin_diag = np.einsum("ij,ij->i", self.C, self.C).astype(np.float64)

    def _profile(self, d2: np.ndarray) -> np.ndarray:
        d2 = np.maximum(d2, 0.0, out=d2)
        if self.fn is rbf and not isinstance(self.bw, tuple):
            d2 *= -1.0 / (2.0 * float(self.bw) ** 2)  # type: ignore[arg-type]
            return np.exp(d2, out=d2)
        profile = _PROFILES[self.fn]
        if isinstance(self.bw, tuple):
            return sum(profile(d2, float(b)) for b in self.bw) / len(self.bw)
        return profile(d2, float(self.bw))  # type: ignore[arg-type]

    def cross(self, Y: np.ndarray) -> np.ndarray:
        """``k(C, Y)`` as float64 (M, n)."""
        Y = np.asarray(Y, dtype=self.C.dtype)
        if not self.fast:
            return np.asarray(self.fn(self.C, Y, bandwidth=self.bw), dtype=np.float64)
        if self.fn is cosine:
            Yu = Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-12).astype(Y.dtype)
            return (self.U @ Yu.T).astype(np.float64)
        if self.fn is linear:
            return (self.C @ Y.T).astype(np.float64)
        yy = np.einsum("ij,ij->i", Y, Y).astype(np.float64)
        return self._profile(self.sq[:, None] + yy[None, :] - 2.0 * (self.C @ Y.T).astype(np.float64))

    def target_constant(self, Y: np.ndarray, weights: np.ndarray) -> float:
        """``v' K_YY v``."""
        if not self.fast:
            return float(weights @ np.asarray(self.fn(Y, Y, bandwidth=self.bw), dtype=np.float64) @ weights)
        if Y.shape[0] == 1 and self.fn in _PROFILES:
            return float(weights[0] ** 2)  # k(t, t) = 1
        return float(weights @ self.target_gram(Y) @ weights)

    def target_gram(self, Y: np.ndarray) -> np.ndarray:
        """``k(Y, Y)`` as float64 (n, n), with the exact unit diagonal of the distance kernels."""
        if not self.fast:
            return np.asarray(self.fn(Y, Y, bandwidth=self.bw), dtype=np.float64)
        K = KernelColumns(Y, self.fn, self.bw).cross(Y)
        if self.fn in _PROFILES:
            np.fill_diagonal(K, 1.0)
        return K

    def diag(self) -> np.ndarray:
        """``k(c_i, c_i)`` as float64 (M,)."""
        if self.fn is linear:
            return self.lin_diag.copy()
        if self.fast:
            return np.ones(self.C.shape[0], dtype=np.float64)
        return np.asarray(kernel_diag(self.C, kernel=self.fn, bandwidth=self.bw), dtype=np.float64)

    def column(self, j: int) -> np.ndarray:
        """``k(C, C[j])`` as float64 (M,)."""
        if not self.fast:
            return np.asarray(self.fn(self.C, self.C[j : j + 1], bandwidth=self.bw), dtype=np.float64)[:, 0]
        # the entry of c_j itself equals diag() exactly, so greedy and swap arithmetic agree
        if self.fn is cosine:
            col = (self.U @ self.U[j]).astype(np.float64)
            col[j] = 1.0
            return col
        if self.fn is linear:
            col = (self.C @ self.C[j]).astype(np.float64)
            col[j] = self.lin_diag[j]
            return col
        d2 = (self.C @ self.C[j]).astype(np.float64)
        d2 *= -2.0
        d2 += self.sq
        d2 += self.sq[j]
        d2[j] = 0.0
        return self._profile(d2)
