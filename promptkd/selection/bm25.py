"""BM25 retrieval of demonstrations by word overlap with the query, one baseline selector."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from promptkd._validation import check_float
from promptkd.exceptions import InvalidTypeError
from promptkd.selection.baselines import _CHOICE, _BaselineSelector, _tokenise, top_indices
from promptkd.selection.target import Target

logger = logging.getLogger(__name__)

__all__ = ["BM25Selector"]


@dataclass(eq=False, repr=False, kw_only=True)
class BM25Selector(_BaselineSelector):
    """Lexical retrieval: the ``k`` pool inputs with the highest Okapi BM25 score for the query.

    Uses ``rank_bm25.BM25Okapi`` (Robertson & Zaragoza, 2009, "The
    Probabilistic Relevance Framework: BM25 and Beyond") over lower-cased
    word tokens (regex ``\\w+``) of the demo inputs. The query must be text (a
    string, or a list of strings whose scores are combined with the target
    weights); embedding-array queries raise
    :class:`~promptkd.exceptions.InvalidTypeError`. Ties are broken by lower
    pool index. ``scores`` still holds cosine similarities (like every
    selector), so BM25's choice can be compared on the same footing.

    Parameters
    ----------
    k, kernel, bandwidth, order, seed, batch_chunk
        As in :class:`~promptkd.selection.BaseSelector`.
    k1, b, epsilon
        BM25Okapi parameters (rank-bm25 defaults).

    Examples
    --------
    >>> from promptkd import DemoPool
    >>> from promptkd.embeddings import HashingEmbedder
    >>> pool = DemoPool([{"input": t, "output": "x"} for t in ["the cat sat", "dogs bark loudly", "a cat naps"]],
    ...                 embedder=HashingEmbedder())
    >>> sorted(BM25Selector(k=2).fit(pool).select("cat").indices)
    [0, 2]
    """

    method = "bm25"
    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25

    def _check_settings(self) -> None:
        super()._check_settings()
        check_float(self.k1, "k1", minimum=0.0)
        check_float(self.b, "b", minimum=0.0, maximum=1.0)
        check_float(self.epsilon, "epsilon", minimum=0.0)

    def _fit_baseline(self) -> None:
        import rank_bm25  # a core dependency, imported lazily to keep ``import promptkd`` light

        corpus = [_tokenise(d.text) or [""] for d in self.demos_]
        self.bm25_ = rank_bm25.BM25Okapi(corpus, k1=float(self.k1), b=float(self.b), epsilon=float(self.epsilon))

    def bm25_scores(self, target: Target) -> np.ndarray:
        """BM25 score of every pool input for the target's texts (weighted sum over texts)."""
        if not target.texts:
            raise InvalidTypeError(
                "BM25Selector needs text queries (a string or a list of strings), not embeddings; "
                "pass the query text, or use TopKSelector for embedding queries."
            )
        weights = np.asarray(target.weights, dtype=np.float64)[: len(target.texts)]
        scores = np.zeros(self.n_demos_)
        for w, text in zip(weights, target.texts, strict=False):
            scores += w * np.asarray(self.bm25_.get_scores(_tokenise(text)), dtype=np.float64)
        return scores

    def _choose(self, target: Target, k: int, sims: np.ndarray) -> _CHOICE:
        chosen = [int(i) for i in top_indices(self.bm25_scores(target), k)]
        path = self._path(chosen, target)
        return chosen, None, path, {"bm25": path[-1]}
