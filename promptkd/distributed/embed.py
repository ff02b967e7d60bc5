"""Embedding over Ray Datasets (:func:`embed_dataset`) and writing the result as a pool (:func:`save_dataset_pool`).

Workers are Ray Data actors, as for :func:`~promptkd.distributed.select_dataset`:
each builds (or fetches from the object store, once) its embedder and embeds
batch after batch, on a GPU when the cluster has them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from promptkd._validation import check_int
from promptkd.distributed.data import _column_queries, _compute, _ray, _resources
from promptkd.embeddings.base import Embedder
from promptkd.embeddings.registry import embedder_from_id
from promptkd.exceptions import InvalidInputError, InvalidTypeError

__all__ = ["embed_dataset", "save_dataset_pool"]


class _EmbedWorker:
    """Ray Data callable class: loads the embedder once, then embeds each batch's texts."""

    def __init__(self, embedder: Any, text_column: str, output_column: str, dtype: str, encode_batch: int) -> None:
        if isinstance(embedder, str):
            made = embedder_from_id(embedder)
            if made is None:  # pragma: no cover - checked on the driver
                raise InvalidInputError(f"embedder id {embedder!r} cannot be recreated on a worker.")
            embedder = made
        self.embedder = embedder
        self.text_column = text_column
        self.output_column = output_column
        self.dtype = np.dtype(dtype)
        self.encode_batch = encode_batch

    def __call__(self, batch: Any) -> Any:
        from ray.data.extensions import ArrowTensorArray

        texts = _column_queries(batch, self.text_column)
        if not isinstance(texts, list):
            raise InvalidTypeError(f"column {self.text_column!r} must hold texts to embed.")
        X = self.embedder.encode(texts, batch_size=self.encode_batch, show_progress_bar=False, normalize=True)
        X = np.ascontiguousarray(np.asarray(X, dtype=self.dtype))
        if self.output_column in batch.column_names:
            batch = batch.drop_columns([self.output_column])
        return batch.append_column(self.output_column, ArrowTensorArray.from_numpy(X))


def embed_dataset(
    dataset: Any,
    embedder: Embedder | str,
    *,
    text_column: str = "text",
    output_column: str = "embedding",
    dtype: str = "float32",
    batch_size: int = 256,
    concurrency: int | tuple[int, int] | None = None,
    num_cpus: float = 1.0,
    num_gpus: float | None = None,
) -> Any:
    """Add an embedding column to a Ray Dataset of texts, with actor workers (one embedder each).

    Parameters
    ----------
    dataset
        A :class:`ray.data.Dataset`.
    embedder
        An :class:`~promptkd.embeddings.Embedder`, or an embedder id
        (``"hashing-v1:dim=384"``, ``"sentence-transformers:all-MiniLM-L6-v2"``).
        Embedders promptkd can recreate from their id are built on each worker;
        others are put in the object store once.
    text_column, output_column
        Column with the texts; name of the added embedding column (a tensor
        column of unit-norm rows).
    dtype
        ``"float32"`` or ``"float16"``.
    batch_size, concurrency, num_cpus, num_gpus
        As for :func:`select_dataset`.

    Returns
    -------
    ray.data.Dataset
        The input rows with ``output_column`` added. :func:`save_dataset_pool`
        writes it as a saved pool.

    Examples
    --------
    >>> callable(embed_dataset)
    True

    With a Ray runtime::

        rows = ray.data.from_items([{"input": "great film", "output": "pos"}])
        embedded = embed_dataset(rows, "hashing-v1:dim=384", text_column="input")
        save_dataset_pool(embedded, "pools/reviews", embedder_id="hashing-v1:dim=384")
    """
    import ray

    rd = _ray()
    if not isinstance(dataset, rd.Dataset):
        raise InvalidTypeError(f"dataset must be a ray.data.Dataset, got {type(dataset).__name__}.")
    if dtype not in ("float32", "float16"):
        raise InvalidInputError(f"dtype must be 'float32' or 'float16', got {dtype!r}.")
    check_int(batch_size, "batch_size", minimum=1)
    if isinstance(embedder, str):
        if embedder_from_id(embedder) is None:
            raise InvalidInputError(f"embedder id {embedder!r} is not one promptkd can recreate; pass the embedder.")
        shipped: Any = embedder
    elif isinstance(embedder, Embedder):
        shipped = embedder.id if embedder_from_id(embedder.id) is not None else None
    else:
        raise InvalidTypeError(f"embedder must be an Embedder or an embedder id, got {type(embedder).__name__}.")
    cpus, gpus, workers = _resources(num_cpus, num_gpus)
    if shipped is None:
        shipped = ray.put(embedder)  # one copy in the object store; workers fetch it once each
    return dataset.map_batches(
        _EmbedWorker,
        fn_constructor_args=(shipped, text_column, output_column, dtype, 64),
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=_compute(concurrency, workers),
        num_cpus=cpus,
        num_gpus=gpus,
        udf_modifying_row_count=False,
    )


def save_dataset_pool(
    dataset: Any,
    path: str | os.PathLike[str],
    *,
    input_column: str = "input",
    output_column: str = "output",
    id_column: str | None = None,
    pair_column: str | None = None,
    metadata_columns: tuple[str, ...] | list[str] = (),
    embedding_column: str = "embedding",
    embedder_id: str | None = None,
) -> Path:
    """Write an embedded Ray Dataset of demos as a saved pool (columnar layout) and return its directory.

    Rows are streamed from the dataset; their embeddings are gathered into one
    array before writing (n x d x 4 bytes of memory for float32). Ids come from
    ``id_column`` or from the content, as for :class:`~promptkd.pool.Demo`.
    Open the result with :meth:`DemoPool.open <promptkd.pool.DemoPool.open>`.

    Examples
    --------
    >>> callable(save_dataset_pool)
    True

    With a Ray runtime (see :func:`embed_dataset`)::

        path = save_dataset_pool(embedded, "pools/reviews", metadata_columns=["source"], embedder_id=embedder.id)
        pool = DemoPool.open(path)
    """
    import pyarrow as pa

    from promptkd.pool.columnar import write_arrow_pool
    from promptkd.pool.demo import content_id

    _ray()
    cols: dict[str, list[Any]] = {c: [] for c in ("id", "input", "output", "input_pair", "metadata")}
    blocks: list[np.ndarray] = []
    for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=65_536):
        for name in (input_column, output_column, embedding_column, id_column, pair_column, *metadata_columns):
            if name is not None and name not in batch.column_names:
                raise InvalidInputError(f"the dataset has no column {name!r} (columns: {batch.column_names}).")
        inputs = [_as_text(v, input_column) for v in batch.column(input_column).to_pylist()]
        outputs = [_as_text(v, output_column) for v in batch.column(output_column).to_pylist()]
        pairs = batch.column(pair_column).to_pylist() if pair_column else [None] * len(inputs)
        ids = batch.column(id_column).to_pylist() if id_column else [None] * len(inputs)
        metas = [batch.column(c).to_pylist() for c in metadata_columns]
        for j, (i_, o_, p_, id_) in enumerate(zip(inputs, outputs, pairs, ids, strict=True)):
            cols["id"].append(str(id_) if id_ not in (None, "") else content_id(i_, o_, p_))
            cols["input"].append(i_)
            cols["output"].append(o_)
            cols["input_pair"].append(p_)
            meta = {c: m[j] for c, m in zip(metadata_columns, metas, strict=True)}
            cols["metadata"].append(json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str))
        blocks.append(_column_queries(batch, embedding_column, keep_dtype=True))
    if not blocks:
        raise InvalidInputError("the dataset is empty; a pool needs at least one demo.")
    if len(set(cols["id"])) != len(cols["id"]):
        raise InvalidInputError(
            "demo ids repeat in the dataset; give each row its own id (id_column=) or drop repeats."
        )
    from promptkd.pool.checks import _check_embeddings
    from promptkd.pool.lazy import arrow_schema

    embeddings = _check_embeddings(np.concatenate([np.asarray(b) for b in blocks]), len(cols["id"]), embedding_column)
    table = pa.Table.from_pydict(cols, schema=arrow_schema())
    return write_arrow_pool(path, table, embeddings, embedder_id)


def _as_text(value: Any, column: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    raise InvalidTypeError(f"column {column!r} holds {type(value).__name__} values; demo fields must be texts.")
