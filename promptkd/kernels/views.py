"""Named feature blocks of the same rows (:class:`Views`), which kernel objects read by name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError

__all__ = ["EMBEDDING", "Views"]

EMBEDDING = "embedding"


class Views(Mapping[str, Any]):
    """Named feature blocks for the same rows, e.g. embeddings and label distributions.

    Parameters
    ----------
    embedding
        (n, d) embeddings, or None.
    **blocks
        Other blocks, each with n rows (``label=`` (n, L) label distributions).

    Examples
    --------
    >>> v = Views(np.zeros((3, 2)), label=np.eye(3))
    >>> len(v), sorted(v), v.take([0, 2])["label"].shape
    (3, ['embedding', 'label'], (2, 3))
    """

    def __init__(self, embedding: Any = None, **blocks: Any) -> None:
        data = {EMBEDDING: embedding, **blocks} if embedding is not None else dict(blocks)
        if not data:
            raise InvalidInputError("Views needs at least one feature block.")
        sizes = {name: _n_rows(block) for name, block in data.items()}
        if len(set(sizes.values())) != 1:
            raise InvalidInputError(f"every feature block must have the same number of rows; got {sizes}.")
        self._data = data
        self._n = next(iter(sizes.values()))

    def __getitem__(self, name: str) -> Any:
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n_rows,)``: enough for code that only asks how many rows there are."""
        return (self._n,)

    def take(self, rows: Any) -> Views:
        """The same blocks restricted to ``rows``."""
        idx = np.asarray(rows, dtype=np.int64)
        return Views(**{name: _take(block, idx) for name, block in self._data.items()})


def _n_rows(block: Any) -> int:
    shape = getattr(block, "shape", None)
    return int(shape[0]) if shape is not None else len(block)


def _take(block: Any, idx: np.ndarray) -> Any:
    if _is_sparse(block):
        return take_rows(block, idx)
    return np.asarray(block)[idx]


def take_rows(A: Any, idx: Any) -> Any:
    """Rows ``idx`` of a sparse matrix as CSR, gathered with numpy (scipy's fancy indexing costs more per call).

    Examples
    --------
    >>> from scipy.sparse import csr_matrix
    >>> take_rows(csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])), [2, 0]).toarray().tolist()
    [[3.0, 0.0], [1.0, 0.0]]
    """
    from scipy.sparse import csr_matrix

    A = A.tocsr()
    idx = np.asarray(idx, dtype=np.int64)
    starts, ends = A.indptr[idx], A.indptr[idx + 1]
    counts = ends - starts
    indptr = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    # position of every kept entry in A's arrays: each row's start, plus 0..count-1
    pos = np.repeat(starts - indptr[:-1], counts) + np.arange(indptr[-1])
    return csr_matrix((A.data[pos], A.indices[pos], indptr), shape=(len(idx), A.shape[1]))


def _is_sparse(block: Any) -> bool:
    return type(block).__module__.startswith("scipy.sparse")


def _block(X: Any, view: str) -> Any:
    """The ``view`` block of ``X`` (a plain array is the embedding block)."""
    if isinstance(X, Views):
        if view not in X:
            raise InvalidInputError(
                f"this kernel reads the {view!r} block, but the rows only have {sorted(X)}; "
                f"pass Views(..., {view}=...) with that block."
            )
        return X[view]
    if view != EMBEDDING:
        raise InvalidInputError(
            f"this kernel reads the {view!r} block; pass the rows as Views(embeddings, {view}=...), not a plain array."
        )
    return X
