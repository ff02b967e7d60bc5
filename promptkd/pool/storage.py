"""Saving, loading and opening pools: the ``save`` / ``load`` / ``open`` methods of :class:`DemoPool`.

The on-disk formats and their atomic save protocol are in :mod:`promptkd.pool.persistence`
(both layouts) and :mod:`promptkd.pool.columnar` (the Arrow layout that :meth:`open` maps lazily).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from promptkd.embeddings.base import Embedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError, PersistenceError, PoolFormatError
from promptkd.pool.checks import PRECOMPUTED, _check_unique
from promptkd.pool.demo import Demo
from promptkd.pool.lazy import LazyDemos
from promptkd.pool.norms import read_pool_norms
from promptkd.pool.persistence import (
    ARROW_SCHEMA_VERSION,
    manifest_embedder_id,
    read_jsonl_records,
    read_manifest,
    read_pool_dir,
    read_pool_embeddings,
    with_retries,
    write_pool_dir,
)

__all__ = ["LAYOUTS", "PoolStorage"]

#: How :meth:`DemoPool.save` writes the demos: one JSON line each, or an Arrow file opened lazily.
LAYOUTS = ("jsonl", "arrow")

Self = TypeVar("Self", bound="PoolStorage")


class PoolStorage:
    """Persistence methods of :class:`~promptkd.pool.DemoPool` (mixed into it)."""

    _snapshot: Any
    _embedder_id: str | None

    def save(self, path: str | os.PathLike[str], *, layout: str = "jsonl") -> Path:
        """Save to a directory atomically (manifest + demos file + ``.npy``).

        A crash during ``save`` leaves the previously saved pool at ``path``
        intact. Returns the directory.

        Parameters
        ----------
        path
            The pool directory (created if needed).
        layout
            ``"jsonl"`` (default): one JSON line per demo, read whole by
            :meth:`load`. ``"arrow"``: an Arrow IPC file (needs ``pyarrow``)
            that :meth:`open` maps without reading, for pools of millions of
            demos. Either layout is checksummed and loads with :meth:`load`.
            Saving rewrites every file; a pool opened with :meth:`open` is
            written from its memory maps without building its demos.

        Examples
        --------
        >>> import tempfile
        >>> from promptkd import DemoPool
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": "a", "output": "x"}], embedder=HashingEmbedder(dim=8))
        >>> d = pool.save(tempfile.mkdtemp() + "/pool")
        >>> DemoPool.load(d)[0].input
        'a'
        >>> DemoPool.open(pool.save(tempfile.mkdtemp() + "/big", layout="arrow")).ids == pool.ids
        True
        """
        if layout not in LAYOUTS:
            raise InvalidInputError(f"layout={layout!r} is not known; use one of {', '.join(LAYOUTS)}.")
        snap = self._snapshot
        embeddings = None if snap.embeddings is None else np.asarray(snap.embeddings)
        try:
            if layout == "arrow":
                from promptkd.pool.columnar import write_arrow_pool
                from promptkd.pool.lazy import records_table

                demos = snap.demos
                table = (
                    demos.to_table() if isinstance(demos, LazyDemos) else records_table(d.to_record() for d in demos)
                )
                return write_arrow_pool(path, table, embeddings, self._embedder_id)
            records = (
                list(snap.demos.records()) if isinstance(snap.demos, LazyDemos) else [d.to_record() for d in snap.demos]
            )
            return write_pool_dir(path, records, embeddings, self._embedder_id)
        except (TypeError, ValueError) as err:
            if isinstance(err, PersistenceError):
                raise
            raise InvalidInputError(
                f"a demo's metadata is not JSON-serialisable ({err}); keep metadata to JSON types."
            ) from err
        except OSError as err:
            if isinstance(err, PersistenceError):
                raise
            raise PersistenceError(f"could not save the pool to {path}: {err}.") from err

    @classmethod
    def load(
        cls: type[Self],
        path: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        mmap: bool = False,
        verify: bool = True,
    ) -> Self:
        """Load a directory written by :meth:`save`.

        Parameters
        ----------
        path
            The pool directory.
        embedder
            Embedder for new texts; by default recreated from the stored id
            when promptkd knows it.
        mmap
            Memory-map the embeddings read-only instead of reading them.
        verify
            Check the manifest checksums (detects truncated or modified files).
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidTypeError(f"path must be a directory path, got {type(path).__name__}.")
        if embedder is not None and not isinstance(embedder, Embedder):
            raise InvalidTypeError(f"embedder must implement encode(texts, ...) and id, got {type(embedder).__name__}.")
        records, embeddings, embedder_id = read_pool_dir(path, mmap=mmap, verify=verify)
        demos = []
        for lineno, rec in enumerate(records, start=1):
            try:
                demos.append(Demo(**rec))
            except (InvalidInputError, TypeError) as err:
                raise PoolFormatError(f"{path}: demo record {lineno} is malformed ({err}).") from err
        try:
            _check_unique(demos)
        except InvalidInputError as err:
            raise PoolFormatError(f"{path}: {err}") from err
        if embedder is not None and embedder_id not in (None, PRECOMPUTED) and embedder.id != embedder_id:
            raise InvalidInputError(
                f"embedder {embedder.id!r} differs from the one that embedded this pool ({embedder_id!r}); "
                "pass the same embedder or re-embed with pool.embed(force=True)."
            )
        from promptkd.pool.pool import PoolSnapshot

        pool = cls(demos, embedder=embedder, embeddings=None)  # type: ignore[call-arg]
        pool._snapshot = PoolSnapshot(pool._snapshot.demos, embeddings)
        if embedder is None:
            pool._embedder_id = embedder_id
        return pool

    @classmethod
    def open(
        cls: type[Self],
        path: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        verify: bool = False,
        cache: bool | str | os.PathLike[str] = True,
    ) -> Self:
        """Open a saved pool lazily: embeddings memory-mapped, demos read on access.

        Opening a pool saved with ``layout="arrow"`` reads only the manifest,
        the Arrow footer and the ``.npy`` header, so it takes about as long for
        a million demos as for ten, and builds no :class:`Demo`: ``pool[i]``
        builds one, ``pool.ids`` / ``pool.outputs`` read a column. Iterating
        the pool (or fitting a selector, which reads every label) builds them
        batch by batch. A JSONL-layout pool opens too, but its file is parsed
        whole (no demo objects are built). A faiss index saved beside the pool
        (:func:`~promptkd.pool.index_store.build_pool_index`) is loaded by
        selectors instead of being rebuilt.

        Parameters
        ----------
        path
            The pool directory.
        embedder
            Embedder for new texts; by default recreated from the stored id.
        verify
            ``False`` (default) checks the structure: manifest, columns, row
            counts, the ``.npy`` header against the file size. ``True`` also
            checks every checksum and record (ids unique, metadata, finite
            embeddings), which reads every byte (about a second per GB).
        cache
            As for :class:`DemoPool`.

        Examples
        --------
        >>> import tempfile
        >>> from promptkd import DemoPool
        >>> from promptkd.embeddings import HashingEmbedder
        >>> src = DemoPool([{"input": f"t{i}", "output": "x"} for i in range(3)], embedder=HashingEmbedder(dim=8))
        >>> src.embed().shape
        (3, 8)
        >>> pool = DemoPool.open(src.save(tempfile.mkdtemp() + "/pool", layout="arrow"))
        >>> pool.is_lazy, pool.snapshot().demos.built
        (True, 0)
        >>> pool[2].input, pool.snapshot().demos.built
        ('t2', 1)
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidTypeError(f"path must be a directory path, got {type(path).__name__}.")
        if embedder is not None and not isinstance(embedder, Embedder):
            raise InvalidTypeError(f"embedder must implement encode(texts, ...) and id, got {type(embedder).__name__}.")
        if not isinstance(verify, bool):
            raise InvalidTypeError(f"verify must be True or False, got {type(verify).__name__}.")
        table, embeddings, norms, embedder_id = with_retries(Path(path), lambda root: _open_dir(root, verify))
        if embedder is not None and embedder_id not in (None, PRECOMPUTED) and embedder.id != embedder_id:
            raise InvalidInputError(
                f"embedder {embedder.id!r} differs from the one that embedded this pool ({embedder_id!r}); "
                "pass the same embedder or re-embed with pool.embed(force=True)."
            )
        from promptkd.pool.pool import PoolSnapshot

        pool = cls((), embedder=embedder, cache=cache)  # type: ignore[call-arg]
        pool._snapshot = PoolSnapshot(LazyDemos(table), embeddings, norms)
        if embedder is None:
            pool._embedder_id = embedder_id
        return pool


def _open_dir(root: Path, verify: bool) -> tuple[Any, np.ndarray | None, np.ndarray | None, str | None]:
    """(demos table, memory-mapped embeddings, their stored row norms or None, embedder id) of a saved pool."""
    manifest = read_manifest(root)
    if manifest["schema_version"] >= ARROW_SCHEMA_VERSION:
        from promptkd.pool.columnar import open_arrow_table

        table = open_arrow_table(root, manifest, verify=verify)
    else:
        from promptkd.pool.lazy import records_table

        records = read_jsonl_records(root, manifest, verify=verify)
        try:
            table = records_table(Demo(**r).to_record() for r in records)
        except (InvalidInputError, TypeError, KeyError) as err:
            raise PoolFormatError(f"{root}: a demo record is malformed ({err}).") from err
    embeddings = read_pool_embeddings(root, manifest, mmap=True, verify=verify, check_finite=verify)
    if verify and embeddings is not None and manifest["files"].get("index") is not None:
        from promptkd.pool.index_store import find_saved_index

        find_saved_index(embeddings, verify=True, strict=True)  # a damaged index is reported here and not used later
    norms = read_pool_norms(root, manifest, embeddings, verify=verify)
    return table, embeddings, norms, manifest_embedder_id(manifest)
