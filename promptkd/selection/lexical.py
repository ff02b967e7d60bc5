"""Word-level features of the pool's texts: one TF-IDF vocabulary fitted on the pool, queries encoded with it.

The lexical kernel (``LexicalKernel``) and the lexical label vote
(``LabelPriorOrder(vote="embedding+lexical")``) both compare a query with the
pool's demos word by word. Both read the pool's texts as columns, so a lazily
opened pool builds no :class:`~promptkd.pool.Demo` object for them.
"""

from __future__ import annotations

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


class LexicalIndex:
    """Sublinear TF-IDF rows of the pool's texts, and the cosine of any text to every row.

    Parameters
    ----------
    texts
        The pool's texts; they fit the vocabulary and the inverse document
        frequencies. Words a query has and the pool lacks are ignored. Words are
        runs of two or more letters or digits; a pool without any (inputs such as
        ``"1"`` or ``"?"``) has an empty vocabulary, and every cosine is 0.

    Examples
    --------
    >>> index = LexicalIndex(["red apple pie", "blue sea", "apple tree"])
    >>> [round(float(x), 2) for x in index.cosine(["apple pie"])[0]]
    [0.78, 0.0, 0.37]
    >>> LexicalIndex(["1", "?"]).cosine(["1"]).tolist()
    [[0.0, 0.0]]
    """

    def __init__(self, texts: Sequence[str]) -> None:
        from scipy.sparse import csr_matrix
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = list(texts)
        self._last: tuple[tuple[str, ...], Any] | None = None  # the last call's texts and rows
        self.vectorizer: Any = TfidfVectorizer(sublinear_tf=True)
        try:
            self.rows = self.vectorizer.fit_transform(texts).tocsr()
        except ValueError:  # no word in any text: sklearn refuses an empty vocabulary
            self.vectorizer = None
            self.rows = csr_matrix((len(texts), 0))
            return
        # what a query's row needs, read once: sklearn's transform validates its input on every call,
        # which costs more than the arithmetic for the one or two texts a selection encodes
        self._analyze = self.vectorizer.build_analyzer()
        self._columns = self.vectorizer.vocabulary_
        self._idf = np.asarray(self.vectorizer.idf_, dtype=np.float64)

    @property
    def vocabulary(self) -> dict[str, int]:
        """Word -> column of the TF-IDF rows."""
        return {} if self.vectorizer is None else dict(self.vectorizer.vocabulary_)

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
        from scipy.sparse import csr_matrix

        if self.vectorizer is None:
            return csr_matrix((len(texts), 0))
        # sklearn's sublinear TF-IDF, step for step: counts of the known words (columns ascending),
        # 1 + log(count), times the idf, divided by the row's L2 norm (squares summed in column order)
        indptr, indices, data = [0], [], []
        for text in texts:
            cols, counts = np.unique(
                np.array([self._columns[w] for w in self._analyze(text) if w in self._columns], dtype=np.int64),
                return_counts=True,
            )
            row = (np.log(counts.astype(np.float64)) + 1.0) * self._idf[cols]
            if len(row):
                row /= np.sqrt(np.add.accumulate(row * row)[-1])
            indices.append(cols)
            data.append(row)
            indptr.append(indptr[-1] + len(cols))
        return csr_matrix(
            (np.concatenate(data), np.concatenate(indices), np.asarray(indptr)), shape=(len(texts), len(self._idf))
        )

    def cosine(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), n_pool) cosine similarity of each text to every pool row."""
        return np.ascontiguousarray(cross_rows(self.rows, self.transform(texts)).T)
