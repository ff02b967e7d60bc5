"""Kernels on feature blocks beyond the embeddings: label distributions and lexical (TF-IDF) rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError
from promptkd.kernels.columns import ColumnProvider
from promptkd.kernels.functions import Array
from promptkd.kernels.objects import Kernel
from promptkd.kernels.views import _block, _is_sparse

__all__ = ["LabelKernel", "LexicalKernel", "cross_rows"]


# -------------------------------------------------------------------- the label kernel
class LabelKernel(Kernel):
    """Kernel on label distributions: ``beta + (1 - beta) * <p, q>``.

    Rows of the ``"label"`` block are distributions over the label set: one-hot
    for a demonstration, an estimate (e.g. the labels of the nearest pool demos)
    for a query. Between two demos it is ``1`` when the labels agree and
    ``beta`` otherwise; multiplied with an input kernel it gives the joint
    input-label kernel ``k_x(x, x') * (beta + (1 - beta) [y = y'])``.

    Parameters
    ----------
    beta
        Similarity of two different labels, in ``[0, 1]``; ``beta = 1`` ignores labels.

    Examples
    --------
    >>> from promptkd.kernels import Views
    >>> P = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> LabelKernel(beta=0.25)(Views(label=P)).tolist()
    [[1.0, 0.25], [0.25, 1.0]]
    """

    view = "label"
    gemm = True

    def __init__(self, beta: float = 0.0) -> None:
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta <= 1.0:
            raise InvalidInputError(f"beta must be a number in [0, 1], got {beta!r}.")
        self.beta = float(beta)

    def _key(self) -> tuple[Any, ...]:
        return (self.beta,)

    def gram(self, X: Any, Y: Any = None) -> Array:
        A = np.asarray(_block(X, self.view), dtype=np.float64)
        B = A if Y is None else np.asarray(_block(Y, self.view), dtype=np.float64)
        return self.beta + (1.0 - self.beta) * (A @ B.T)

    def columns(self, C: Any) -> ColumnProvider:
        return _LabelColumns(np.asarray(_block(C, self.view), dtype=np.float64), self.beta)

    def __repr__(self) -> str:
        return f"LabelKernel(beta={self.beta:g})"


class _LabelColumns:
    def __init__(self, P: np.ndarray, beta: float) -> None:
        self.P, self.beta = P, beta

    def cross(self, Y: Any) -> np.ndarray:
        return self.beta + (1.0 - self.beta) * (self.P @ np.asarray(_block(Y, "label"), dtype=np.float64).T)

    def target_gram(self, Y: Any) -> np.ndarray:
        Q = np.asarray(_block(Y, "label"), dtype=np.float64)
        return self.beta + (1.0 - self.beta) * (Q @ Q.T)

    def target_constant(self, Y: Any, weights: np.ndarray) -> float:
        return float(weights @ self.target_gram(Y) @ weights)

    def diag(self) -> np.ndarray:
        return self.beta + (1.0 - self.beta) * np.einsum("ij,ij->i", self.P, self.P)

    def column(self, j: int) -> np.ndarray:
        return self.beta + (1.0 - self.beta) * (self.P @ self.P[j])


# -------------------------------------------------------------------- the lexical kernel
class LexicalKernel(Kernel):
    """Cosine kernel on sparse lexical features (the ``"lexical"`` block), e.g. TF-IDF rows.

    It measures word overlap, which dense sentence embeddings blur; added to an
    embedding kernel (``RBF() + 0.5 * LexicalKernel()``) it gives a hybrid
    lexical + dense kernel. Rows may be scipy sparse matrices or dense arrays;
    they are L2-normalised here, so the diagonal is 1 for every non-empty row.
    A :class:`~promptkd.selection.Selector` with this kernel fits a TF-IDF
    vocabulary on the pool's inputs and encodes the query texts with it.

    Examples
    --------
    >>> from promptkd.kernels import Views
    >>> X = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    >>> np.round(LexicalKernel()(Views(lexical=X)), 4).tolist()
    [[1.0, 0.7071], [0.7071, 1.0]]
    """

    view = "lexical"
    gemm = True

    def gram(self, X: Any, Y: Any = None) -> Array:
        A = _unit_rows(_block(X, self.view))
        B = A if Y is None else _unit_rows(_block(Y, self.view))
        return _dense(A @ B.T)

    def columns(self, C: Any) -> ColumnProvider:
        return _LexicalColumns(_unit_rows(_block(C, self.view)))

    def __repr__(self) -> str:
        return "LexicalKernel()"


def _unit_rows(A: Any) -> Any:
    if _is_sparse(A):
        from scipy.sparse import csr_matrix

        # row norms and scaling on the CSR arrays: a few numpy calls, not scipy's per-operation overhead
        # (this runs for every selection's candidates)
        A = A.tocsr()
        counts = np.diff(A.indptr)
        norms = np.sqrt(_row_squares(A))
        if np.all((norms == 1.0) | (norms == 0.0)):  # already unit rows (TF-IDF rows usually are): kept as they are
            return A
        data = A.data * np.repeat(1.0 / np.maximum(norms, 1e-12), counts)
        return csr_matrix((data, A.indices, A.indptr), shape=A.shape)
    A = np.asarray(A, dtype=np.float64)
    return A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)


def _row_squares(A: Any) -> np.ndarray:
    """The squared L2 norm of every row of a CSR matrix or an array, float64."""
    if not _is_sparse(A):
        A = np.asarray(A, dtype=np.float64)
        return (A * A).sum(axis=1)
    rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    return np.bincount(rows, weights=np.asarray(A.data, dtype=np.float64) ** 2, minlength=A.shape[0])


def _dense(M: Any) -> np.ndarray:
    return np.asarray(M.toarray() if _is_sparse(M) else M, dtype=np.float64)


#: up to this many rows, the right-hand side of a product is made dense (one vocabulary-long vector a row):
#: a sparse matrix times dense vectors costs microseconds, a sparse-sparse product a millisecond of overhead
_DENSE_ROWS = 64


def cross_rows(A: Any, B: Any) -> np.ndarray:
    """``A @ B.T`` as a dense float64 array, for sparse or dense rows of the same width.

    Examples
    --------
    >>> from scipy.sparse import csr_matrix
    >>> cross_rows(csr_matrix(np.eye(2)), csr_matrix(np.array([[1.0, 2.0]]))).tolist()
    [[1.0], [2.0]]
    """
    if _is_sparse(B) and B.shape[0] > _DENSE_ROWS:
        return _dense(A @ B.T)
    return np.asarray(A @ _dense(B).T, dtype=np.float64)


class _LexicalColumns:
    def __init__(self, U: Any) -> None:
        self.U = U
        self._diag = _row_squares(U)

    def cross(self, Y: Any) -> np.ndarray:
        return cross_rows(self.U, _unit_rows(_block(Y, "lexical")))

    def target_gram(self, Y: Any) -> np.ndarray:
        V = _unit_rows(_block(Y, "lexical"))
        return cross_rows(V, V)

    def target_constant(self, Y: Any, weights: np.ndarray) -> float:
        V = _unit_rows(_block(Y, "lexical"))
        if V.shape[0] == 1:  # one query: its unit (or empty) row with itself
            return float(weights[0] ** 2 * _row_squares(V)[0])
        return float(weights @ cross_rows(V, V) @ weights)

    def diag(self) -> np.ndarray:
        return self._diag.copy()

    def column(self, j: int) -> np.ndarray:
        U = self.U
        if not _is_sparse(U):
            return np.asarray(U @ U[j], dtype=np.float64)
        row = np.zeros(U.shape[1])
        start, end = U.indptr[j], U.indptr[j + 1]
        row[U.indices[start:end]] = U.data[start:end]
        return np.asarray(U @ row, dtype=np.float64)
