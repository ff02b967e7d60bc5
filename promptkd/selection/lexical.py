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
        frequencies. Words a query has and the pool lacks are ignored.

    Examples
    --------
    >>> index = LexicalIndex(["red apple pie", "blue sea", "apple tree"])
    >>> [round(float(x), 2) for x in index.cosine(["apple pie"])[0]]
    [0.78, 0.0, 0.37]
    """

    def __init__(self, texts: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(sublinear_tf=True)
        self.rows = self.vectorizer.fit_transform(list(texts)).tocsr()

    def transform(self, texts: Sequence[str]) -> Any:
        """Sparse TF-IDF rows (unit length, or zero) of ``texts`` in the pool's vocabulary."""
        return self.vectorizer.transform(list(texts))

    def cosine(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), n_pool) cosine similarity of each text to every pool row."""
        return np.asarray((self.transform(texts) @ self.rows.T).toarray(), dtype=np.float64)
