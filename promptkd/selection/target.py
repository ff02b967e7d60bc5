"""Turning what the caller passes to ``select`` into a weighted target sample.

A target is a weighted sample ``T = {(t_j, v_j)}`` of embeddings; selectors
choose demonstrations whose empirical distribution matches it in (weighted)
MMD. It is built from

* the query: one string, a list of strings (one distribution, e.g. a whole
  deployment batch) or an embedding array (1-D = one point, 2-D = a sample);
* optionally ``context``: expected or unlabeled queries that join the target;
* optionally ``target_pool``: unlabeled inputs from which each query row's
  ``n_neighbors`` nearest neighbours (cosine) join the target.

The query rows share ``query_weight`` of the mass (split by ``weights``,
uniform by default) and the added rows share the rest; with neither
``context`` nor ``target_pool`` the query carries all the mass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptkd._validation import as_matrix, check_float, check_int, check_weights
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.pool import DemoPool

__all__ = ["Target", "TargetSpec", "build_target", "normalise_rows", "resolve_target"]


@dataclass(frozen=True)
class Target:
    """Target sample: embeddings (n, d), simplex weights (n,), and the query text if any.

    Attributes
    ----------
    embeddings
        (n, d) float32 target points; the first ``n_query`` rows are the query.
    weights
        (n,) non-negative weights summing to one.
    query
        The query text when the query was a single string.
    texts
        The query texts when the query was given as text.
    n_query
        How many leading rows of ``embeddings`` are query rows (the rest came
        from ``context`` or ``target_pool``).

    Examples
    --------
    >>> t = Target(np.eye(2, dtype=np.float32), np.array([0.5, 0.5]))
    >>> t.size, t.n_query
    (2, 2)
    """

    embeddings: np.ndarray
    weights: np.ndarray
    query: str | None = None
    texts: tuple[str, ...] | None = None
    n_query: int = -1

    def __post_init__(self) -> None:
        if self.n_query < 0:
            object.__setattr__(self, "n_query", int(self.embeddings.shape[0]))

    @property
    def size(self) -> int:
        """Number of target points."""
        return int(self.embeddings.shape[0])

    def direction(self) -> np.ndarray:
        """Weighted mean of the unit-normalised target rows (d,), float32.

        Ranking pool items by their cosine to each target row, averaged with the
        target weights, equals ranking them by the inner product of their unit
        vector with this direction (one GEMV instead of ``n`` of them).
        """
        return (normalise_rows(self.embeddings).T @ self.weights.astype(np.float32)).astype(np.float32)


@dataclass(frozen=True)
class TargetSpec:
    """How a query becomes a target: neighbourhood and weights (validated once per call).

    Examples
    --------
    >>> TargetSpec(n_neighbors=4, query_weight=0.7).query_weight
    0.7
    """

    context: Any = None
    target_pool: Any = None
    n_neighbors: int = 8
    query_weight: float = 0.5
    weights: Any = None

    def __post_init__(self) -> None:
        check_int(self.n_neighbors, "n_neighbors", minimum=1)
        check_float(self.query_weight, "query_weight", minimum=0.0, maximum=1.0)
        if self.query_weight == 0.0 and self.context is None and self.target_pool is None:
            raise InvalidInputError(
                "query_weight=0 leaves the target empty without context= or target_pool=; "
                "pass query_weight > 0 or a neighbourhood."
            )

    @property
    def plain(self) -> bool:
        """True when the target is the query alone."""
        return self.context is None and self.target_pool is None


def normalise_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32.

    Examples
    --------
    >>> normalise_rows(np.array([[3.0, 4.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def _is_text_list(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes, bytearray))
        and len(value) > 0
        and all(isinstance(q, str) for q in value)
    )


def resolve_target(pool: DemoPool, query: Any, *, dim: int, weights: Any = None) -> Target:
    """Embed and validate ``query``: a string, a list of strings, or an embedding array.

    A list of strings is one target distribution (uniform weights unless
    ``weights`` is given). A :class:`Target` is passed through.

    Examples
    --------
    >>> from promptkd.embeddings import HashingEmbedder
    >>> pool = DemoPool([{"input": "a", "output": "b"}], embedder=HashingEmbedder(dim=8))
    >>> resolve_target(pool, ["x", "y"], dim=8).weights.tolist()
    [0.5, 0.5]
    """
    if isinstance(query, Target):
        as_matrix(query.embeddings, "query embeddings", dim=dim)
        return query
    if isinstance(query, str):
        if not query.strip():
            raise InvalidInputError("query is an empty string; pass the text to select demonstrations for.")
        X = as_matrix(pool.encode_texts([query]), "query embedding", dim=dim)
        return Target(X, check_weights(weights, 1, "weights"), query=query, texts=(query,))
    if _is_text_list(query):
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


def embed_rows(pool: DemoPool, rows: Any, name: str, *, dim: int) -> np.ndarray:
    """Embed ``rows`` (texts, an embedding array or a :class:`DemoPool`) into an (n, d) float32 array."""
    if isinstance(rows, DemoPool):
        if len(rows) == 0:
            raise InvalidInputError(f"{name} is an empty pool; pass at least one input.")
        return as_matrix(rows.embeddings, name, dim=dim)
    if isinstance(rows, str):
        raise InvalidTypeError(f"{name} must be a list of texts or an embedding array, not one string; wrap it in [].")
    if _is_text_list(rows):
        for i, q in enumerate(rows):
            if not q.strip():
                raise InvalidInputError(f"{name}[{i}] is an empty string; drop it or pass real text.")
        return as_matrix(pool.encode_texts(list(rows)), name, dim=dim)
    if isinstance(rows, Sequence) and len(rows) == 0:
        raise InvalidInputError(f"{name} is empty; pass at least one row or leave it as None.")
    return as_matrix(rows, name, dim=dim)


def neighbour_rows(
    query_rows: np.ndarray, candidates_unit: np.ndarray, n_neighbors: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per query row, the ``n_neighbors`` most cosine-similar candidate rows.

    Candidates identical to the query row (cosine above ``1 - 1e-6``) are
    skipped, so a query that is itself part of ``target_pool`` is not counted
    as its own neighbour. Returns (indices (n_q, r), valid mask (n_q, r)).
    """
    Q = normalise_rows(query_rows)
    sims = Q @ candidates_unit.T
    r = min(n_neighbors, candidates_unit.shape[0])
    sims = np.where(sims > 1.0 - 1e-6, -np.inf, sims)
    if r < sims.shape[1]:
        part = np.argpartition(-sims, r - 1, axis=1)[:, :r]
    else:
        part = np.tile(np.arange(sims.shape[1]), (sims.shape[0], 1))
    top = np.take_along_axis(sims, part, axis=1)
    order = np.lexsort((part, -top), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    valid = np.isfinite(np.take_along_axis(top, order, axis=1))
    return idx, valid


def build_target(
    base: Target,
    spec: TargetSpec,
    *,
    context_rows: np.ndarray | None = None,
    target_pool_unit: np.ndarray | None = None,
    target_pool_rows: np.ndarray | None = None,
) -> Target:
    """Add the neighbourhood of ``spec`` to the query target ``base``.

    ``context_rows`` are the embedded ``context``; ``target_pool_rows`` and
    ``target_pool_unit`` the raw and unit-normalised rows of ``target_pool``.
    Context rows share the non-query mass uniformly; neighbours share it in
    proportion to the weight of the query row they are neighbours of; when
    both are present each family gets half. A neighbour found for several
    query rows appears once with the summed weight.

    Examples
    --------
    >>> base = Target(np.array([[1.0, 0.0]], dtype=np.float32), np.ones(1))
    >>> t = build_target(base, TargetSpec(query_weight=0.75), context_rows=np.array([[0.0, 1.0]], dtype=np.float32))
    >>> t.weights.tolist(), t.n_query
    ([0.75, 0.25], 1)
    """
    if context_rows is None and target_pool_rows is None:
        return base
    rows = [base.embeddings.astype(np.float32, copy=False)]
    masses = [spec.query_weight * base.weights]
    families = int(context_rows is not None) + int(target_pool_rows is not None)
    share = (1.0 - spec.query_weight) / families
    if context_rows is not None:
        rows.append(context_rows.astype(np.float32, copy=False))
        masses.append(np.full(context_rows.shape[0], share / context_rows.shape[0]))
    if target_pool_rows is not None and target_pool_unit is not None:
        idx, valid = neighbour_rows(base.embeddings, target_pool_unit, spec.n_neighbors)
        mass: dict[int, float] = {}
        for i in range(idx.shape[0]):
            picked = idx[i][valid[i]]
            for j in picked:
                mass[int(j)] = mass.get(int(j), 0.0) + float(base.weights[i]) / len(picked)
        if mass:
            keys = sorted(mass)
            rows.append(target_pool_rows[keys].astype(np.float32, copy=False))
            masses.append(share * np.array([mass[j] for j in keys]))
    w = np.concatenate(masses)
    if w.sum() <= 0:
        raise InvalidInputError(
            "the target has no mass: query_weight=0 and the neighbourhood is empty; raise query_weight "
            "or pass context= / target_pool= with rows different from the query."
        )
    return Target(
        np.concatenate(rows, 0),
        w / w.sum(),
        query=base.query,
        texts=base.texts,
        n_query=base.n_query,
    )
