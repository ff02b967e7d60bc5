"""Turning what the caller passes to ``select`` into a weighted target sample."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptkd._validation import as_matrix, check_weights
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.pool import DemoPool

__all__ = ["Target", "resolve_target"]


@dataclass(frozen=True)
class Target:
    """Target sample: embeddings (n, d), simplex weights (n,), and the query text if any."""

    embeddings: np.ndarray
    weights: np.ndarray
    query: str | None = None
    texts: tuple[str, ...] | None = None

    @property
    def size(self) -> int:
        """Number of target points."""
        return int(self.embeddings.shape[0])


def resolve_target(pool: DemoPool, query: Any, *, dim: int, weights: Any = None) -> Target:
    """Embed and validate ``query``: a string, a list of strings, or an embedding array.

    A list of strings is one target distribution (uniform weights unless
    ``weights`` is given).
    """
    if isinstance(query, str):
        if not query.strip():
            raise InvalidInputError("query is an empty string; pass the text to select demonstrations for.")
        X = as_matrix(pool.encode_texts([query]), "query embedding", dim=dim)
        return Target(X, check_weights(weights, 1, "weights"), query=query, texts=(query,))
    if (
        isinstance(query, Sequence)
        and not isinstance(query, (bytes, bytearray))
        and query
        and all(isinstance(q, str) for q in query)
    ):
        texts = list(query)
        for i, q in enumerate(texts):
            if not q.strip():
                raise InvalidInputError(f"query[{i}] is an empty string; drop it or pass real text.")
        X = as_matrix(pool.encode_texts(texts), "query embeddings", dim=dim)
        return Target(
            X,
            check_weights(weights, len(texts), "weights"),
            query=texts[0] if len(texts) == 1 else None,
            texts=tuple(texts),
        )
    if isinstance(query, Sequence) and not isinstance(query, (bytes, bytearray)) and len(query) == 0:
        raise InvalidInputError("query is an empty list; pass at least one query.")
    if query is None:
        raise InvalidTypeError("query must be a string, a list of strings or an embedding array, got None.")
    if isinstance(query, (bytes, bytearray, dict, set)) or (
        isinstance(query, Sequence) and any(isinstance(q, str) for q in query)
    ):
        raise InvalidTypeError(
            f"query must be a string, a list of strings or an embedding array, got {type(query).__name__}."
        )
    X = as_matrix(query, "query", dim=dim)
    return Target(X, check_weights(weights, X.shape[0], "weights"))
