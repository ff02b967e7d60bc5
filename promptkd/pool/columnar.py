"""The columnar pool layout (schema 2): demos in an Arrow IPC file, opened without reading it.

Layout of a pool saved with ``DemoPool.save(path, layout="arrow")``::

    manifest.json            as for every pool, with "schema_version": 2 and "layout": "arrow"
    demos-<token>.arrow      Arrow IPC file: id, input, output, input_pair, metadata (JSON text)
    embeddings-<token>.npy   float32/float16 array (optional), memory-mapped when opened
    norms-<token>.npy        float32 norm of every embedding row (with the embeddings), so fitting a
                             selector need not read every embedding for them
    index-<token>.faiss      a saved candidate index (optional, see :mod:`promptkd.pool.index_store`)

The save is the same atomic protocol as the JSONL layout (fresh file names,
``fsync``, one ``os.replace`` of the manifest, then clean-up). Opening reads the
manifest, the Arrow footer and the ``.npy`` header and maps both files: no demo
record is parsed and no :class:`~promptkd.pool.Demo` is built. ``verify=True``
also checks the SHA-256 checksums and every record (ids unique and non-empty,
metadata a JSON object, embeddings finite), which reads every byte.
"""

from __future__ import annotations

import json
import os
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from promptkd._optional import require
from promptkd.exceptions import PoolFormatError
from promptkd.pool.persistence import (
    ARROW_SCHEMA_VERSION,
    FORMAT,
    checked_member,
    commit_manifest,
    dir_lock,
    prepare_pool_dir,
    sha256_file,
    write_vector_files,
)

__all__ = ["open_arrow_table", "read_arrow_records", "write_arrow_pool"]

LAYOUT = "arrow"
BATCH_ROWS = 65_536  # rows per Arrow record batch: string offsets stay small, a batch is a few MB


def _pyarrow() -> Any:
    return require("pyarrow", "ray", purpose="the columnar pool layout (layout='arrow', DemoPool.open)")


def write_arrow_pool(
    path: str | os.PathLike[str],
    table: Any,
    embeddings: np.ndarray | None,
    embedder_id: str | None,
) -> Path:
    """Write a pool directory in the columnar layout, atomically.

    ``table`` is an Arrow table with the columns of :func:`~promptkd.pool.lazy.arrow_schema`
    (see :func:`~promptkd.pool.lazy.records_table`).
    """
    pa = _pyarrow()
    from promptkd.pool.lazy import arrow_schema

    schema = arrow_schema()
    table = table.select(list(schema.names)).cast(schema)
    root = prepare_pool_dir(path)
    with dir_lock(root):
        token = secrets.token_hex(6)
        demos_name = f"demos-{token}.arrow"
        with open(root / demos_name, "wb") as fh:
            with pa.ipc.new_file(fh, schema) as writer:
                for batch in table.to_batches(max_chunksize=BATCH_ROWS):
                    writer.write_batch(batch)
            fh.flush()
            os.fsync(fh.fileno())
        vectors, dim = write_vector_files(root, token, embeddings)
        files = {
            "demos": {"name": demos_name, "sha256": sha256_file(root / demos_name), "rows": int(table.num_rows)},
            **vectors,
        }
        manifest = {
            "format": FORMAT,
            "schema_version": ARROW_SCHEMA_VERSION,
            "layout": LAYOUT,
            "count": int(table.num_rows),
            "embedder": {"id": embedder_id, "dim": dim},
            "files": files,
        }
        commit_manifest(root, manifest)
    return root


def open_arrow_table(root: Path, manifest: dict[str, Any], *, verify: bool) -> Any:
    """The demos table of a columnar pool, memory-mapped (zero-copy); checked as ``verify`` asks."""
    pa = _pyarrow()
    from promptkd.pool.lazy import arrow_schema

    if manifest.get("layout") != LAYOUT:
        raise PoolFormatError(f"{root}: schema version 2 needs layout {LAYOUT!r}, got {manifest.get('layout')!r}.")
    spec = manifest["files"]["demos"]
    demos_path = checked_member(root, spec, "demos", verify=verify)
    try:
        table = pa.ipc.open_file(pa.memory_map(str(demos_path), "r")).read_all()
    except (pa.ArrowException, OSError, ValueError) as err:
        raise PoolFormatError(f"{demos_path}: not a readable Arrow IPC file ({err}); the pool is damaged.") from err
    if not table.schema.equals(arrow_schema()):
        raise PoolFormatError(f"{demos_path}: unexpected columns {table.schema.names}; the pool is damaged.")
    if table.num_rows != manifest["count"]:
        raise PoolFormatError(f"{demos_path}: holds {table.num_rows} demos but the manifest says {manifest['count']}.")
    if verify:
        _check_rows(table, demos_path)
    return table


def _check_rows(table: Any, where: Path) -> None:
    """Content checks that need every row: no null field, ids non-empty and unique, metadata JSON objects."""
    for name in ("id", "input", "output", "metadata"):
        if table.column(name).null_count:
            raise PoolFormatError(f"{where}: column {name!r} has missing values; the pool is damaged.")
    ids = table.column("id").to_pylist()
    if any(not i for i in ids):
        raise PoolFormatError(f"{where}: a demo has an empty id; the pool is damaged.")
    if len(set(ids)) != len(ids):
        dup = next(i for i, c in Counter(ids).items() if c > 1)
        raise PoolFormatError(f"{where}: duplicate demo id {dup!r}; the pool is damaged.")
    for row, text in enumerate(table.column("metadata").to_pylist()):
        try:
            ok = isinstance(json.loads(text), dict)
        except ValueError:
            ok = False
        if not ok:
            raise PoolFormatError(f"{where}: demo {row} has metadata that is not a JSON object; the pool is damaged.")


def read_arrow_records(root: Path, manifest: dict[str, Any], *, verify: bool) -> list[dict[str, Any]]:
    """Every record of a columnar pool as a plain dict (for :meth:`DemoPool.load`, which builds all demos)."""
    from promptkd.pool.lazy import LazyDemos

    table = open_arrow_table(root, manifest, verify=verify)
    try:
        return list(LazyDemos(table).records())
    except ValueError as err:
        raise PoolFormatError(f"{root}: {err}") from err
