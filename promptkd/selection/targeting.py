"""From ``select``'s arguments to :class:`~promptkd.selection.Target` objects.

:class:`TargetingMixin` turns a query (text, texts or embeddings), an optional
context and an optional target pool into the weighted target samples the
selectors match, once per call, and parses ``select_batch``'s list of queries
(texts are embedded in one call). It is mixed into
:class:`~promptkd.selection.BaseSelector`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.selection.target import (
    Target,
    TargetSpec,
    build_target,
    embed_rows,
    normalise_rows,
    resolve_target,
)

__all__ = ["TargetingMixin"]


class TargetingMixin:
    """Target resolution for a fitted selector (``pool_`` and ``dim_`` are set by ``fit``)."""

    pool_: Any
    dim_: int

    def _target(self, query: Any, weights: Any = None) -> Target:
        return resolve_target(self.pool_, query, dim=self.dim_, weights=weights)

    def _neighbourhood(self, spec: TargetSpec) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """Embed ``context`` and ``target_pool`` once per call."""
        ctx = None if spec.context is None else embed_rows(self.pool_, spec.context, "context", dim=self.dim_)
        rows = unit = None
        if spec.target_pool is not None:
            rows = embed_rows(self.pool_, spec.target_pool, "target_pool", dim=self.dim_)
            unit = normalise_rows(rows)
        return ctx, rows, unit

    def _spec_target(self, query: Any, spec: TargetSpec) -> Target:
        """The target of one query under ``spec`` (its context and neighbourhood)."""
        base = self._target(query, spec.weights)
        if spec.plain:
            return base
        ctx, rows, unit = self._neighbourhood(spec)
        return build_target(base, spec, context_rows=ctx, target_pool_rows=rows, target_pool_unit=unit)

    def _batch_targets(self, queries: Any, spec: TargetSpec) -> list[Target]:
        """One target per query of ``select_batch`` (texts embedded in one call, the context shared)."""
        if isinstance(queries, str):
            raise InvalidTypeError("select_batch takes a list of queries; for one query use select(query).")
        if isinstance(queries, np.ndarray):
            if queries.ndim != 2:
                raise InvalidInputError(f"query embeddings must be 2-D (n_queries x dim), got shape {queries.shape}.")
            rows = list(queries)
        else:
            try:
                rows = list(queries)
            except TypeError as err:
                raise InvalidTypeError(f"select_batch takes a list of queries, got {type(queries).__name__}.") from err
        if not rows:
            return []
        if all(isinstance(q, str) for q in rows):
            for i, q in enumerate(rows):
                if not q.strip():
                    raise InvalidInputError(f"queries[{i}] is an empty string; drop it or pass real text.")
            X = self.pool_.encode_texts(rows)
            bases = [
                Target(X[i : i + 1].astype(np.float32), np.ones(1), query=q, texts=(q,)) for i, q in enumerate(rows)
            ]
        else:
            bases = [self._target(q) for q in rows]
        if spec.plain:
            return bases
        ctx, prow, unit = self._neighbourhood(spec)
        return [build_target(b, spec, context_rows=ctx, target_pool_rows=prow, target_pool_unit=unit) for b in bases]
