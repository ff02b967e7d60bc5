"""``select_with_ray``: a list of queries in, a list of :class:`~promptkd.selection.Selection` out.

A thin wrapper over :func:`promptkd.distributed.select_dataset`: the queries
become a Ray Dataset, the pool is put in the object store once, and the full
:class:`~promptkd.selection.Selection` objects come back in query order. For
millions of queries, or a pool saved on shared storage, call
:func:`~promptkd.distributed.select_dataset` directly and keep the results as
a dataset.

Needs the ``ray`` extra (``pip install "promptkd[ray]"``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptkd._validation import check_int
from promptkd.distributed.data import _ray, _select_mapped
from promptkd.embeddings.registry import embedder_from_id
from promptkd.exceptions import InvalidInputError, InvalidTypeError, PromptKDError
from promptkd.integrations.registry import make_selector, selector_params
from promptkd.pool import DemoPool
from promptkd.selection import BaseSelector, Selection

__all__ = ["select_with_ray"]

logger = logging.getLogger("promptkd")

EMBED_ON = ("auto", "workers", "driver")


def select_with_ray(
    pool: DemoPool,
    queries: Sequence[str],
    selector: str | BaseSelector = "promptkd",
    *,
    k: int | None = None,
    batch_size: int = 64,
    concurrency: int | None = None,
    num_cpus: float = 1.0,
    embed_on: str = "auto",
    **select_kwargs: Any,
) -> list[Selection]:
    """Select demonstrations for many queries in parallel with Ray Data.

    Parameters
    ----------
    pool
        The demonstration pool (embedded here if it is not yet).
    queries
        Query texts; each query is its own target.
    selector
        A selector name (``"promptkd"``, ``"topk"``, ...) or instance (its
        settings are copied to the workers; the instance itself is not shipped).
    k
        Demonstrations per query (default: the selector's ``k``).
    batch_size
        Queries per ``map_batches`` batch (one ``select_batch`` call each).
    concurrency
        Number of worker actors (default: 1).
    num_cpus
        CPUs reserved per worker actor.
    embed_on
        ``"workers"``, ``"driver"`` or ``"auto"`` (workers when the embedder can
        be recreated there from its id).
    **select_kwargs
        Passed to ``select_batch`` (``context=``, ``target_pool=``, ...).

    Returns
    -------
    list of Selection
        One per query, in the order of ``queries``.

    Examples
    --------
    >>> callable(select_with_ray)
    True

    With a Ray runtime (not run here: starting Ray takes seconds)::

        import ray
        ray.init(num_cpus=2, include_dashboard=False)
        selections = select_with_ray(pool, ["query one", "query two"], "promptkd", k=4)
    """
    _ray()
    if not isinstance(pool, DemoPool):
        raise InvalidTypeError(f"pool must be a promptkd.DemoPool, got {type(pool).__name__}.")
    if isinstance(queries, str) or not isinstance(queries, Sequence):
        raise InvalidTypeError("queries must be a list of query strings; for one query use Selector.select.")
    queries = list(queries)
    for i, q in enumerate(queries):
        if not isinstance(q, str) or not q.strip():
            raise InvalidInputError(f"queries[{i}] must be a non-empty string, got {q!r:.40}.")
    check_int(batch_size, "batch_size", minimum=1)
    if concurrency is not None:
        check_int(concurrency, "concurrency", minimum=1)
    if embed_on not in EMBED_ON:
        raise InvalidInputError(f"embed_on={embed_on!r} is not known; use one of {', '.join(EMBED_ON)}.")
    if not queries:
        return []
    template = make_selector(selector, k=k if k is not None else 8) if isinstance(selector, str) else selector
    if not isinstance(template, BaseSelector):
        raise InvalidTypeError(f"selector must be a name or a promptkd selector, got {type(selector).__name__}.")
    if k is not None:
        check_int(k, "k", minimum=1)
    # validate the settings on the driver (fast failure with a clear message) before Ray starts
    fitted = type(template)(**selector_params(template)).fit(pool)
    if k is not None:
        fitted._resolve_k(k)
    recreatable = pool.embedder_id is not None and embedder_from_id(pool.embedder_id) is not None
    if embed_on == "workers" and not recreatable:
        raise InvalidInputError(
            f"the pool's embedder {pool.embedder_id!r} cannot be recreated on Ray workers; use embed_on='driver'."
        )
    from ray import data as ray_data

    if embed_on == "workers" or (embed_on == "auto" and recreatable):
        ds, column = ray_data.from_items([{"qid": i, "query": q} for i, q in enumerate(queries)]), "query"
    else:
        Q = pool.encode_texts(queries)
        ds = ray_data.from_items([{"qid": i, "embedding": Q[i].astype(np.float32)} for i in range(len(queries))])
        column = "embedding"
    mapped = _select_mapped(
        ds,
        template,
        pool=pool,
        k=k,
        query_column=column,
        output_column="selection",
        batch_size=batch_size,
        concurrency=concurrency or 1,
        num_cpus=num_cpus,
        num_gpus=0.0,
        select_kwargs=dict(select_kwargs),
        as_objects=True,
    )
    rows = mapped.select_columns(["qid", "selection"]).take_all()
    logger.info("select_with_ray: %d queries in %d-query batches", len(rows), batch_size)
    by_qid: dict[int, Selection] = {int(r["qid"]): r["selection"] for r in rows}
    if len(by_qid) != len(queries):
        raise PromptKDError(
            f"Ray returned {len(by_qid)} selections for {len(queries)} queries; a worker failed, rerun or lower batch_size."
        )
    out = []
    for i, q in enumerate(queries):
        s = by_qid[i]
        out.append(s if s.query == q else dataclasses.replace(s, query=q))
    return out
