"""Word-level features of the pool's texts: one TF-IDF vocabulary fitted on the pool, queries encoded with it.

The lexical kernel (``LexicalKernel``) and the lexical label vote
(``LabelPriorOrder(vote="embedding+lexical")``) both compare a query with the
pool's demos word by word. Both read the pool's texts as columns, so a lazily
opened pool builds no :class:`~promptkd.pool.Demo` object for them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptkd.kernels.feature_kernels import cross_rows
from promptkd.pool.demo import join_pair
from promptkd.pool.lazy import demo_field

__all__ = ["LexicalIndex", "demo_texts"]


def demo_texts(demos: Sequence[Any]) -> list[str]:
    """The whole input of every demo (``input``, or ``input`` and ``input_pair`` on two lines).

    Examples
    --------
    >>> from promptkd.pool import Demo
    >>> demo_texts([Demo(input="a", output="x"), Demo(input="b", input_pair="c", output="y")])
    ['a', 'b\\nc']
    """
    inputs = demo_field(demos, "input")
    pairs = demo_field(demos, "input_pair")
    return [join_pair(str(t), p) for t, p in zip(inputs, pairs, strict=True)]


#: a word: a run of two or more letters, digits or underscores, read from the lowercased text
_WORD = re.compile(r"(?u)\b\w\w+\b")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _unit(data: np.ndarray, indptr: np.ndarray) -> None:
    """Divide every row's entries by the row's L2 norm, in place; squares summed in stored order, empty rows kept."""
    for start, end in itertools.pairwise(indptr.tolist()):
        if end > start:
            row = data[start:end]
            row /= np.sqrt(np.add.accumulate(row * row)[-1])


class LexicalIndex:
    """Sublinear TF-IDF rows of the pool's texts, and the cosine of any text to every row.

    The weighting is the usual smoothed one: a word seen ``c`` times in a text
    weighs ``(1 + ln c) * (1 + ln((1 + n) / (1 + df)))`` for ``n`` pool texts of
    which ``df`` contain it, and every row is scaled to unit length. (It gives
    the same floats as scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``,
    which the tests check, without importing it.)

    Parameters
    ----------
    texts
        The pool's texts; they fit the vocabulary and the inverse document
        frequencies. Words a query has and the pool lacks are ignored. Words are
        runs of two or more letters or digits, lowercased; a pool without any
        (inputs such as ``"1"`` or ``"?"``) has an empty vocabulary, and every
        cosine is 0.

    Examples
    --------
    >>> index = LexicalIndex(["red apple pie", "blue sea", "apple tree"])
    >>> [round(float(x), 2) for x in index.cosine(["apple pie"])[0]]
    [0.78, 0.0, 0.37]
    >>> LexicalIndex(["1", "?"]).cosine(["1"]).tolist()
    [[0.0, 0.0]]
    """

    def __init__(self, texts: Sequence[str]) -> None:
        words = [_words(str(t)) for t in texts]
        self._last: tuple[tuple[str, ...], Any] | None = None  # the last call's texts and rows
        self._columns: dict[str, int] = {w: j for j, w in enumerate(sorted({w for ws in words for w in ws}))}
        n, width = len(words), len(self._columns)
        # (text, word) of every occurrence. A row's entries are stored in the order the pool first shows
        # its words (scikit-learn's order, so the same sums round the same way); columns are alphabetical.
        doc = np.repeat(np.arange(n, dtype=np.int64), [len(ws) for ws in words])
        col = np.fromiter((self._columns[w] for ws in words for w in ws), dtype=np.int64, count=len(doc))
        by_first_seen = np.argsort(np.unique(col, return_index=True)[1])  # column of the r-th word seen
        seen_rank = np.empty(width, dtype=np.int64)
        seen_rank[by_first_seen] = np.arange(width)
        pairs, counts = np.unique(doc * max(width, 1) + seen_rank[col], return_counts=True)
        rows_of, ranks = np.divmod(pairs, max(width, 1))
        cols = by_first_seen[ranks]
        df = np.bincount(cols, minlength=width).astype(np.float64) + 1.0
        self._idf = np.full(width, n + 1, dtype=np.float64)
        self._idf /= df
        np.log(self._idf, out=self._idf)
        self._idf += 1.0
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows_of, minlength=n), out=indptr[1:])
        self.rows = self._weighted(counts, cols, indptr)

    @property
    def vocabulary(self) -> dict[str, int]:
        """Word -> column of the TF-IDF rows."""
        return dict(self._columns)

    def transform(self, texts: Sequence[str]) -> Any:
        """Sparse TF-IDF rows (unit length, or zero) of ``texts`` in the pool's vocabulary.

        The last call's rows are kept: a selection asks twice for the same query (its label vote
        and its kernel's feature block). Treat the result as read-only.
        """
        key = tuple(texts)
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        rows = self._transform(key)
        self._last = (key, rows)
        return rows

    def _transform(self, texts: tuple[str, ...]) -> Any:
        # counts of the known words, columns ascending, then the pool's weighting
        indptr, indices, counts = [0], [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for text in texts:
            known = [self._columns[w] for w in _words(text) if w in self._columns]
            cols, c = np.unique(np.array(known, dtype=np.int64), return_counts=True)
            indices.append(cols)
            counts.append(c)
            indptr.append(indptr[-1] + len(cols))
        return self._weighted(np.concatenate(counts), np.concatenate(indices), np.asarray(indptr, dtype=np.int64))

    def _weighted(self, counts: np.ndarray, cols: np.ndarray, indptr: np.ndarray) -> Any:
        """CSR rows of word counts weighed as TF-IDF: 1 + ln(count), times the idf, then unit length."""
        data = np.log(counts.astype(np.float64))
        data += 1.0
        data *= self._idf[cols]
        _unit(data, indptr)
        return _csr(data, cols, indptr, (len(indptr) - 1, len(self._idf)))

    def cosine(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), n_pool) cosine similarity of each text to every pool row."""
        return np.ascontiguousarray(cross_rows(self.rows, self.transform(texts)).T)


def _csr(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]) -> Any:
    from scipy.sparse import csr_matrix

    return csr_matrix((data, indices, indptr), shape=shape)  # scipy stores 32-bit indices where they fit
