"""Selection over Ray Datasets: :func:`select_dataset` (embedding: :mod:`promptkd.distributed.embed`).

Both run a pool of Ray Data actors (``map_batches`` with a callable class and an
:class:`~ray.data.ActorPoolStrategy`). A selection worker opens the pool once
and fits its selector once, then serves every batch it is given:

* a pool given as a **path** is opened on each worker with
  :meth:`DemoPool.open <promptkd.pool.DemoPool.open>` (memory-mapped: workers on
  one node share the page cache, and a saved candidate index is loaded, not
  rebuilt); the path must be readable from every node (shared file system);
* a pool given as a :class:`~promptkd.pool.DemoPool` is put in the Ray object
  store once (``ray.put``: its demos as an Arrow table, its embeddings as an
  array) and every worker maps it from there.

When the cluster has GPUs (and ``num_gpus`` is not given), each worker takes
one and the selector's similarity stage and the embedder run on it; workers
without a GPU run a ``device="auto"`` selector's similarity stage in numpy.

Needs the ``ray`` extra (``pip install "promptkd[ray]"``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from promptkd._optional import require
from promptkd._validation import check_int
from promptkd.embeddings.registry import embedder_from_id
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.integrations.registry import make_selector, selector_params
from promptkd.pool import DemoPool
from promptkd.pool.lazy import LazyDemos, records_table
from promptkd.selection import BaseSelector

__all__ = ["SELECTION_FIELDS", "select_dataset"]

logger = logging.getLogger("promptkd")

#: Fields of the struct column :func:`select_dataset` adds, one per query.
SELECTION_FIELDS = ("indices", "ids", "scores", "mmd2")


def _ray() -> Any:
    require("ray", "ray", purpose="promptkd.distributed")
    return require("ray.data", "ray", purpose="promptkd.distributed (Ray Data)")


def _selection_type() -> Any:
    import pyarrow as pa

    return pa.struct(
        [
            ("indices", pa.list_(pa.int64())),
            ("ids", pa.list_(pa.string())),
            ("scores", pa.list_(pa.float64())),
            ("mmd2", pa.float64()),
        ]
    )


# ---------------------------------------------------------------------------------------------- pools on workers
def _pool_source(pool: DemoPool | str | os.PathLike[str]) -> tuple[dict[str, Any], int]:
    """How workers get the pool (a path, or one object-store reference) and its size."""
    import ray

    if isinstance(pool, (str, os.PathLike)):
        opened = DemoPool.open(pool)  # checks the directory here, before any worker starts
        if not opened.has_embeddings:
            raise InvalidInputError(f"the pool at {pool} has no embeddings; embed it and save it again.")
        return {"path": str(Path(pool).resolve())}, len(opened)
    if not isinstance(pool, DemoPool):
        raise InvalidTypeError(f"pool must be a DemoPool or a saved pool's directory, got {type(pool).__name__}.")
    snap = pool.snapshot()
    embeddings = snap.embeddings if snap.embeddings is not None else pool.embed()
    snap = pool.snapshot()
    demos = snap.demos
    table = demos.to_table() if isinstance(demos, LazyDemos) else records_table(d.to_record() for d in demos)
    embedder_id = pool.embedder_id
    shipped = None
    if embedder_id is not None and embedder_from_id(embedder_id) is None and pool._embedder is not None:
        shipped = pool._embedder  # not recreatable from its id on a worker: send the object itself
    payload = {"table": table, "embeddings": np.asarray(embeddings), "embedder_id": embedder_id, "embedder": shipped}
    payload["norms"] = np.asarray(snap.row_norms())  # computed once here, not by every worker's fit
    ref = ray.put(payload)
    return {"ref": ref}, len(demos)


def _worker_pool(source: dict[str, Any]) -> DemoPool:
    """Open (path) or map (object store) the pool on a worker."""
    if "path" in source:
        return DemoPool.open(source["path"])
    import ray

    payload = source["ref"] if isinstance(source["ref"], dict) else ray.get(source["ref"])
    embedder = payload["embedder"]
    pool = DemoPool((), embedder=embedder)
    from promptkd.pool.pool import PoolSnapshot

    pool._snapshot = PoolSnapshot(LazyDemos(payload["table"]), payload["embeddings"], payload.get("norms"))
    if embedder is None:
        pool._embedder_id = payload["embedder_id"]
    return pool


def _column_queries(batch: Any, column: str, keep_dtype: bool = False) -> Any:
    """Texts (list of str) or embeddings (2-D float32 array) from a batch's query column."""
    import pyarrow as pa

    if column not in batch.column_names:
        raise InvalidInputError(
            f"the dataset has no column {column!r} (columns: {batch.column_names}); pass query_column=."
        )
    col = batch.column(column)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        texts = col.to_pylist()
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise InvalidInputError(
                    f"query column {column!r} holds an empty or missing text ({t!r}) in a batch row {i}."
                )
        return texts
    if isinstance(col.type, pa.ExtensionType):  # Ray's tensor columns (from numpy arrays)
        X = np.asarray(col.combine_chunks().to_numpy(), dtype=None if keep_dtype else np.float32)
    elif pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or pa.types.is_large_list(col.type):
        X = np.asarray(col.to_pylist(), dtype=np.float32)
    else:
        raise InvalidTypeError(f"query column {column!r} has type {col.type}; it must hold texts or embedding vectors.")
    if X.ndim != 2:
        raise InvalidInputError(
            f"query column {column!r} must hold 1-D embedding vectors of one length, got {X.shape}."
        )
    return X


class _SelectWorker:
    """Ray Data callable class: opens the pool and fits the selector once, then selects for each batch."""

    def __init__(
        self,
        source: dict[str, Any],
        selector_cls: type,
        params: dict[str, Any],
        k: int | None,
        query_column: str,
        output_column: str,
        select_kwargs: dict[str, Any],
        as_objects: bool = False,
    ) -> None:
        self.as_objects = as_objects
        self.pool = _worker_pool(source)
        self.selector = selector_cls(**params).fit(self.pool)
        self.k = k
        self.query_column = query_column
        self.output_column = output_column
        self.select_kwargs = select_kwargs

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        queries = _column_queries(batch, self.query_column)
        selections = self.selector.select_batch(queries, self.k, show_progress_bar=False, **self.select_kwargs)
        if self.output_column in batch.column_names:
            batch = batch.drop_columns([self.output_column])
        if self.as_objects:  # whole Selection objects, for select_with_ray: Ray carries an object column itself
            out: dict[str, np.ndarray] = {
                name: batch.column(name).to_numpy(zero_copy_only=False)
                for name in batch.column_names
                if not isinstance(batch.column(name).type, pa.ExtensionType)  # query vectors are not sent back
            }
            column = np.empty(len(selections), dtype=object)
            column[:] = selections
            out[self.output_column] = column
            return out
        rows = [
            {
                "indices": list(s.indices),
                "ids": [d.id for d in s.demos],
                "scores": [float(x) for x in s.scores],
                "mmd2": float(s.mmd2),
            }
            for s in selections
        ]
        return batch.append_column(self.output_column, pa.array(rows, type=_selection_type()))


def _compute(concurrency: int | tuple[int, int] | None, default: int) -> Any:
    from ray.data import ActorPoolStrategy

    if concurrency is None:
        return ActorPoolStrategy(size=default)
    if isinstance(concurrency, tuple):
        if len(concurrency) != 2:
            raise InvalidInputError(f"concurrency must be an int or a (min, max) pair, got {concurrency!r}.")
        lo, hi = (check_int(c, "concurrency", minimum=1) for c in concurrency)
        if lo > hi:
            raise InvalidInputError(f"concurrency=({lo}, {hi}) has min above max; pass (min, max).")
        return ActorPoolStrategy(min_size=lo, max_size=hi)
    return ActorPoolStrategy(size=check_int(concurrency, "concurrency", minimum=1))


def _resources(num_cpus: float, num_gpus: float | None) -> tuple[float, float, int]:
    """(CPUs, GPUs) per worker and the default number of workers for this cluster."""
    import ray

    if isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float)) or num_cpus < 0:
        raise InvalidInputError(f"num_cpus must be a non-negative number, got {num_cpus!r}.")
    if num_gpus is not None and (isinstance(num_gpus, bool) or not isinstance(num_gpus, (int, float)) or num_gpus < 0):
        raise InvalidInputError(f"num_gpus must be None or a non-negative number, got {num_gpus!r}.")
    if not ray.is_initialized():
        ray.init()  # connects to RAY_ADDRESS or a running local cluster, else starts one (as Ray Data would)
    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0.0))
    if num_gpus is None:
        num_gpus = 1.0 if gpus >= 1 else 0.0
    if num_gpus > 0:
        workers = max(1, int(gpus // num_gpus))
    else:
        workers = max(1, int(float(resources.get("CPU", 1.0)) // max(num_cpus, 1e-9)))
    return float(num_cpus), float(num_gpus), workers


def select_dataset(
    dataset: Any,
    selector: BaseSelector | str = "promptkd",
    *,
    pool: DemoPool | str | os.PathLike[str] | None = None,
    k: int | None = None,
    query_column: str = "text",
    output_column: str = "selection",
    batch_size: int = 256,
    concurrency: int | tuple[int, int] | None = None,
    num_cpus: float = 1.0,
    num_gpus: float | None = None,
    **select_kwargs: Any,
) -> Any:
    """Add each query's selection to a Ray Dataset of queries, with actor workers.

    Parameters
    ----------
    dataset
        A :class:`ray.data.Dataset` with one query per row.
    selector
        A selector name (``"promptkd"``, ``"topk"``, ...) or instance. A fitted
        instance brings its pool; its settings (not its state) are sent to the
        workers, each of which fits its own copy once.
    pool
        The pool: a saved pool's directory, readable from every node (opened
        lazily on each worker), or a :class:`~promptkd.pool.DemoPool` (put in
        the object store once). Default: the fitted selector's pool.
    k
        Demonstrations per query (default: the selector's ``k``).
    query_column
        Column holding the queries: texts (embedded on the workers with the
        pool's embedder) or embedding vectors (fixed-length float lists or
        tensors).
    output_column
        Name of the added column: a struct of ``indices`` (pool positions, in
        prompt order), ``ids`` (demo ids), ``scores`` (similarities) and ``mmd2``.
    batch_size
        Queries per worker call (one ``select_batch`` each).
    concurrency
        Workers: an int, or ``(min, max)`` for an autoscaling pool. Default: one
        per GPU when workers take GPUs, else one per ``num_cpus`` CPUs.
    num_cpus
        CPUs reserved per worker.
    num_gpus
        GPUs per worker; None uses one per worker when the cluster has GPUs.
    **select_kwargs
        Passed to ``select_batch`` (``context=``, ``target_pool=``, ...).

    Returns
    -------
    ray.data.Dataset
        The input rows (all columns kept) with ``output_column`` added; lazy,
        like every Ray Dataset. Row order follows Ray Data's execution order;
        keep an id column to join results back.

    Examples
    --------
    >>> callable(select_dataset)
    True

    With a Ray runtime (not run here: starting Ray takes seconds)::

        import ray
        ray.init(num_cpus=2)
        queries = ray.data.from_items([{"qid": 0, "text": "a gripping thriller"}])
        out = select_dataset(queries, "promptkd", pool="pools/reviews", k=4, concurrency=2)
        out.take_all()[0]["selection"]["ids"]
    """
    return _select_mapped(
        dataset,
        selector,
        pool=pool,
        k=k,
        query_column=query_column,
        output_column=output_column,
        batch_size=batch_size,
        concurrency=concurrency,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        select_kwargs=select_kwargs,
    )


def _select_mapped(
    dataset: Any,
    selector: BaseSelector | str,
    *,
    pool: DemoPool | str | os.PathLike[str] | None,
    k: int | None,
    query_column: str,
    output_column: str,
    batch_size: int,
    concurrency: int | tuple[int, int] | None,
    num_cpus: float,
    num_gpus: float | None,
    select_kwargs: dict[str, Any],
    as_objects: bool = False,
) -> Any:
    rd = _ray()
    if not isinstance(dataset, rd.Dataset):
        raise InvalidTypeError(f"dataset must be a ray.data.Dataset, got {type(dataset).__name__}.")
    for name, value in (("query_column", query_column), ("output_column", output_column)):
        if not isinstance(value, str) or not value:
            raise InvalidTypeError(f"{name} must be a non-empty column name, got {value!r}.")
    check_int(batch_size, "batch_size", minimum=1)
    if k is not None:
        check_int(k, "k", minimum=1)
    template = make_selector(selector, k=k if k is not None else 8) if isinstance(selector, str) else selector
    if not isinstance(template, BaseSelector):
        raise InvalidTypeError(f"selector must be a name or a promptkd selector, got {type(selector).__name__}.")
    if pool is None:
        if not hasattr(template, "pool_"):
            raise InvalidInputError("pass pool= (a DemoPool or a saved pool's directory), or a fitted selector.")
        pool = template.pool_
    params = selector_params(template)
    type(template)(**params)._check_settings()  # bad settings fail here, not on every worker
    cpus, gpus, workers = _resources(num_cpus, num_gpus)
    if gpus == 0 and params.get("device") == "auto":
        # a worker without a GPU would resolve "auto" to numpy on the CPU anyway; None says so without importing torch
        params["device"] = None
    source, n = _pool_source(pool)
    wanted = k if k is not None else template.k
    if isinstance(wanted, int) and wanted > n:
        raise InvalidInputError(f"k={wanted} is larger than the pool ({n} demos); pass k <= {n}.")
    schema = dataset.schema(fetch_if_missing=False)
    if schema is not None and query_column not in schema.names:
        raise InvalidInputError(
            f"the dataset has no column {query_column!r} (columns: {schema.names}); pass query_column=."
        )
    logger.info("select_dataset: %s workers, %s CPU and %s GPU each, batches of %d", workers, cpus, gpus, batch_size)
    return dataset.map_batches(
        _SelectWorker,
        fn_constructor_args=(
            source,
            type(template),
            params,
            k,
            query_column,
            output_column,
            dict(select_kwargs),
            as_objects,
        ),
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=_compute(concurrency, workers),
        num_cpus=cpus,
        num_gpus=gpus,
        udf_modifying_row_count=False,
    )
