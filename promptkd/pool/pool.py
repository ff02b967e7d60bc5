"""The :class:`DemoPool`: demonstrations plus their cached embeddings."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from promptkd._validation import check_int
from promptkd.embeddings.base import Embedder, check_output, check_texts
from promptkd.embeddings.registry import embedder_from_id
from promptkd.exceptions import InvalidInputError, InvalidTypeError, PersistenceError, PoolFormatError
from promptkd.pool.checks import (  # noqa: F401 - _as_demos and friends keep their old import path
    PRECOMPUTED,
    _as_demo,
    _as_demos,
    _check_embeddings,
    _check_unique,
    _matches,
    _matches_fields,
    _with_cache,
)
from promptkd.pool.constructors import RecordConstructors
from promptkd.pool.demo import Demo
from promptkd.pool.lazy import LazyDemos
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
from promptkd.pool.records import (  # noqa: F401 - read_jsonl and count_repeats are re-exported here
    count_repeats,
    read_jsonl,
)

__all__ = ["LAYOUTS", "DemoPool", "PoolSnapshot"]

logger = logging.getLogger("promptkd")

#: How :meth:`DemoPool.save` writes the demos: one JSON line each, or an Arrow file opened lazily.
LAYOUTS = ("jsonl", "arrow")


@dataclass(frozen=True)
class PoolSnapshot:
    """A consistent view of a pool at one moment: demos and their embeddings.

    ``demos`` is a tuple, or a :class:`~promptkd.pool.lazy.LazyDemos` sequence
    (demos read on access) for a pool opened with :meth:`DemoPool.open`.
    """

    demos: Sequence[Demo]
    embeddings: np.ndarray | None


class DemoPool(RecordConstructors):
    """Demonstrations with lazily computed, cached embeddings.

    Parameters
    ----------
    demos
        :class:`Demo` objects or mappings with ``input``/``output`` (and
        optionally ``id``, ``metadata``). Ids must be unique.
    embedder
        Any :class:`~promptkd.embeddings.Embedder`. ``None`` means the default
        :class:`~promptkd.embeddings.SentenceTransformerEmbedder` when embeddings
        are needed, unless precomputed ``embeddings`` are given.
    cache
        Keep model embeddings in an on-disk cache (keyed by the model's files
        and the text), so a second run embeds nothing it has seen: ``True``
        (default) uses :func:`~promptkd.embeddings.cache.default_cache_path`
        (``PROMPTKD_EMBEDDING_CACHE``, else ``embeddings.sqlite`` under
        ``PROMPTKD_CACHE_DIR`` or the user cache directory), a path uses that
        file, ``False`` turns it off. Cheap embedders (hashing) are never cached.
    embeddings
        Optional precomputed array of shape (len(demos), d); validated (shape,
        numeric dtype, finite values) and stored as float32 (float16 is kept).

    Examples
    --------
    >>> from promptkd.embeddings import HashingEmbedder
    >>> pool = DemoPool(
    ...     [Demo(input="great film", output="positive"), {"input": "dull plot", "output": "negative"}],
    ...     embedder=HashingEmbedder(dim=32),
    ... )
    >>> len(pool), pool[1].output
    (2, 'negative')
    >>> pool.embeddings.shape
    (2, 32)
    """

    def __init__(
        self,
        demos: Iterable[Demo | Mapping[str, Any]] = (),
        embedder: Embedder | None = None,
        embeddings: Any = None,
        *,
        cache: bool | str | os.PathLike[str] = True,
    ) -> None:
        items = _as_demos(demos)
        _check_unique(items)
        if embedder is not None and not isinstance(embedder, Embedder):
            raise InvalidTypeError(f"embedder must implement encode(texts, ...) and id, got {type(embedder).__name__}.")
        if not isinstance(cache, (bool, str, os.PathLike)):
            raise InvalidTypeError(f"cache must be True, False or a file path, got {type(cache).__name__}.")
        emb = None if embeddings is None else _check_embeddings(embeddings, len(items))
        self._lock = threading.RLock()
        self._cache = cache
        self._embedder = _with_cache(embedder, cache)
        self._embedder_id: str | None = (
            embedder.id if embedder is not None else (PRECOMPUTED if emb is not None else None)
        )
        self._snapshot = PoolSnapshot(tuple(items), emb)

    # ------------------------------------------------------------------ container protocol
    def snapshot(self) -> PoolSnapshot:
        """A consistent (demos, embeddings) pair; later ``add`` calls do not change it."""
        return self._snapshot

    @property
    def demos(self) -> Sequence[Demo]:
        """All demos, in insertion order (a tuple, or a lazy sequence for an opened pool)."""
        return self._snapshot.demos

    @property
    def is_lazy(self) -> bool:
        """Whether the demos are read on access from a saved file (see :meth:`open`)."""
        return isinstance(self._snapshot.demos, LazyDemos)

    def __len__(self) -> int:
        return len(self._snapshot.demos)

    def __iter__(self) -> Iterator[Demo]:
        return iter(self._snapshot.demos)

    @overload
    def __getitem__(self, index: int) -> Demo: ...

    @overload
    def __getitem__(self, index: slice) -> DemoPool: ...

    def __getitem__(self, index: int | slice) -> Demo | DemoPool:
        snap = self._snapshot
        if isinstance(index, slice):
            return self.subset(range(len(snap.demos))[index])
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InvalidTypeError(f"pool index must be an int or a slice, got {type(index).__name__}.")
        n = len(snap.demos)
        if not -n <= int(index) < n:
            raise InvalidInputError(f"pool index {index} is out of range for a pool of {n} demos.")
        return snap.demos[int(index)]

    def __repr__(self) -> str:
        return f"DemoPool(n={len(self)}, embedder={self._embedder_id!r}, embedded={self.has_embeddings})"

    def _field(self, name: str) -> list[str]:
        demos = self._snapshot.demos
        if isinstance(demos, LazyDemos):
            return demos.column(name)
        return [getattr(d, name) for d in demos]

    @property
    def inputs(self) -> list[str]:
        """The demos' inputs."""
        return self._field("input")

    @property
    def outputs(self) -> list[str]:
        """The demos' outputs (labels)."""
        return self._field("output")

    @property
    def ids(self) -> list[str]:
        """The demos' ids."""
        return self._field("id")

    @property
    def labels(self) -> list[str]:
        """Distinct outputs, sorted."""
        return sorted(set(self.outputs))

    # ------------------------------------------------------------------ embeddings
    @property
    def embedder(self) -> Embedder:
        """The embedder, creating the default sentence-transformers one if needed."""
        with self._lock:
            if self._embedder is None:
                if self._embedder_id == PRECOMPUTED:
                    raise InvalidInputError(
                        "this pool was built from precomputed embeddings and has no embedder; pass embedder= "
                        "to DemoPool (the one that made the embeddings) or give queries as embedding arrays."
                    )
                restored = embedder_from_id(self._embedder_id)
                if restored is None and self._embedder_id is not None:
                    raise InvalidInputError(
                        f"this pool was embedded with {self._embedder_id!r}, which promptkd cannot recreate; "
                        "pass that embedder with DemoPool.load(path, embedder=...)."
                    )
                if restored is None:
                    from promptkd.embeddings.sentence_transformers import SentenceTransformerEmbedder

                    restored = SentenceTransformerEmbedder()
                restored = _with_cache(restored, getattr(self, "_cache", True))
                self._embedder = restored
                self._embedder_id = restored.id
            return self._embedder

    @property
    def embedder_id(self) -> str | None:
        """Id of the embedder that made (or will make) the embeddings."""
        return self._embedder_id

    @property
    def has_embeddings(self) -> bool:
        """Whether embeddings are already computed or given."""
        return self._snapshot.embeddings is not None

    @property
    def embeddings(self) -> np.ndarray:
        """Float32 (or float16) array of shape (n, d), computed on first access."""
        snap = self._snapshot
        if snap.embeddings is None:
            return self.embed()
        return snap.embeddings

    @property
    def dim(self) -> int:
        """Embedding dimension (embeds the pool if needed)."""
        return int(self.embeddings.shape[1])

    def embed(self, *, show_progress_bar: bool | None = None, batch_size: int = 32, force: bool = False) -> np.ndarray:
        """Compute (or return cached) embeddings for every demo.

        Parameters
        ----------
        show_progress_bar
            ``None`` shows a bar when promptkd logs at INFO.
        batch_size
            Texts per model call.
        force
            Recompute even if embeddings exist.

        Examples
        --------
        >>> from promptkd.embeddings import HashingEmbedder
        >>> DemoPool([{"input": "a", "output": "b"}], embedder=HashingEmbedder(dim=8)).embed().shape
        (1, 8)
        """
        check_int(batch_size, "batch_size", minimum=1)
        with self._lock:
            snap = self._snapshot
            if snap.embeddings is not None and not force:
                return snap.embeddings
            if not snap.demos:
                raise InvalidInputError("the pool is empty; add demos before embedding it.")
            X = self.encode_texts(
                [d.text for d in snap.demos], show_progress_bar=show_progress_bar, batch_size=batch_size
            )  # a lazy pool builds its demos here: embed large pools with embed_dataset instead
            self._snapshot = PoolSnapshot(snap.demos, X)
            return X

    def encode_texts(
        self, texts: Sequence[str], *, show_progress_bar: bool | None = None, batch_size: int = 32
    ) -> np.ndarray:
        """Embed arbitrary texts (e.g. queries) with the pool's embedder.

        Examples
        --------
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": "a", "output": "b"}], embedder=HashingEmbedder(dim=8))
        >>> pool.encode_texts(["query"]).shape
        (1, 8)
        """
        if not isinstance(texts, (str, bytes, Sequence)) and isinstance(texts, Iterable):
            texts = list(texts)  # numpy arrays, pandas Series, generators
        items = check_texts(texts)
        embedder = self.embedder
        X = embedder.encode(items, batch_size=batch_size, show_progress_bar=show_progress_bar, normalize=True)
        return check_output(X, len(items), embedder.id)

    # ------------------------------------------------------------------ mutation and views
    def add(self, demos: Demo | Mapping[str, Any] | Iterable[Demo | Mapping[str, Any]], embeddings: Any = None) -> None:
        """Append demos (ids must stay unique); embeds them if the pool is embedded.

        The pool's state is replaced in one step, so concurrent readers see either
        the old or the new pool, never a mix. Adding to an embedded pool copies
        its embeddings into one new (n + m) x d array, and a pool opened with
        :meth:`open` keeps the added demos in memory after its stored ones;
        neither touches the saved files until :meth:`save` rewrites them.

        Examples
        --------
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": "a", "output": "x"}], embedder=HashingEmbedder(dim=8))
        >>> pool.add({"input": "b", "output": "y"})
        >>> len(pool)
        2
        """
        new = _as_demos(demos)
        if not new:
            return
        with self._lock:
            snap = self._snapshot
            existing = snap.demos.positions() if isinstance(snap.demos, LazyDemos) else (d.id for d in snap.demos)
            _check_unique(new, existing)
            new_emb = None if embeddings is None else _check_embeddings(embeddings, len(new))
            if snap.embeddings is not None:
                if new_emb is None:
                    new_emb = self.encode_texts([d.text for d in new])
                if new_emb.shape[1] != snap.embeddings.shape[1]:
                    raise InvalidInputError(
                        f"embeddings has dimension {new_emb.shape[1]} but the pool's is {snap.embeddings.shape[1]}."
                    )
                merged = np.concatenate([np.asarray(snap.embeddings), new_emb.astype(snap.embeddings.dtype)], 0)
            elif new_emb is not None and snap.demos:
                raise InvalidInputError(
                    "embeddings were given for the new demos but the pool has none yet; call pool.embed() first "
                    "or add without embeddings."
                )
            else:
                merged = new_emb
            self._snapshot = PoolSnapshot(snap.demos + tuple(new), merged)  # type: ignore[operator]

    def subset(self, indices: Iterable[int]) -> DemoPool:
        """A new pool holding the demos at ``indices`` (embeddings sliced, not recomputed).

        Examples
        --------
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": str(i), "output": "x"} for i in range(5)], embedder=HashingEmbedder(dim=8))
        >>> len(pool.subset([0, 2]))
        2
        """
        snap = self._snapshot
        idx = [int(i) for i in indices]
        n = len(snap.demos)
        for i in idx:
            if not 0 <= i < n:
                raise InvalidInputError(f"index {i} is out of range for a pool of {n} demos.")
        out = DemoPool.__new__(DemoPool)
        out._lock = threading.RLock()
        out._embedder = self._embedder
        out._cache = getattr(self, "_cache", True)
        out._embedder_id = self._embedder_id
        emb = None if snap.embeddings is None else np.asarray(snap.embeddings)[idx]
        demos = snap.demos.take(idx) if isinstance(snap.demos, LazyDemos) else tuple(snap.demos[i] for i in idx)
        out._snapshot = PoolSnapshot(demos, emb)
        return out

    def filter(
        self,
        predicate: Callable[[Demo], bool] | None = None,
        *,
        where: Mapping[str, Any] | None = None,
    ) -> DemoPool:
        """Keep demos matching ``predicate`` and the metadata equalities in ``where``.

        A ``where`` value that is a list or set matches any of its members.

        Examples
        --------
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool(
        ...     [{"input": "a", "output": "x", "metadata": {"task": "t1"}}, {"input": "b", "output": "y", "metadata": {"task": "t2"}}],
        ...     embedder=HashingEmbedder(dim=8),
        ... )
        >>> [d.input for d in pool.filter(where={"task": "t2"})]
        ['b']
        """
        mask = self.mask(predicate, where=where)
        return self.subset(np.flatnonzero(mask).tolist())

    def mask(
        self, predicate: Callable[[Demo], bool] | None = None, *, where: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Boolean array: which demos pass ``predicate`` and ``where`` (see :meth:`filter`)."""
        if predicate is not None and not callable(predicate):
            raise InvalidTypeError(f"predicate must be callable, got {type(predicate).__name__}.")
        if where is not None and not isinstance(where, Mapping):
            raise InvalidTypeError(f"where must be a mapping of metadata key to value, got {type(where).__name__}.")
        demos = self._snapshot.demos
        if isinstance(demos, LazyDemos) and predicate is None:  # metadata filters read columns, building no demo
            outputs, metas = demos.column("output"), demos.metadata()
            return np.array([_matches_fields(o, m, where) for o, m in zip(outputs, metas, strict=True)], dtype=bool)
        return np.array([_matches(d, predicate, where) for d in demos], dtype=bool)

    def index_of(self, demo_id: str) -> int:
        """Position of the demo with id ``demo_id``."""
        demos = self._snapshot.demos
        if isinstance(demos, LazyDemos):
            position = demos.positions().get(demo_id)
            if position is not None:
                return position
        else:
            for i, d in enumerate(demos):
                if d.id == demo_id:
                    return i
        raise InvalidInputError(f"no demo with id {demo_id!r} in this pool.")

    # ------------------------------------------------------------------ persistence
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
        cls,
        path: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        mmap: bool = False,
        verify: bool = True,
    ) -> DemoPool:
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
        pool = cls(demos, embedder=embedder, embeddings=None)
        pool._snapshot = PoolSnapshot(pool._snapshot.demos, embeddings)
        if embedder is None:
            pool._embedder_id = embedder_id
        return pool

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        verify: bool = False,
        cache: bool | str | os.PathLike[str] = True,
    ) -> DemoPool:
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
        table, embeddings, embedder_id = with_retries(Path(path), lambda root: _open_dir(root, verify))
        if embedder is not None and embedder_id not in (None, PRECOMPUTED) and embedder.id != embedder_id:
            raise InvalidInputError(
                f"embedder {embedder.id!r} differs from the one that embedded this pool ({embedder_id!r}); "
                "pass the same embedder or re-embed with pool.embed(force=True)."
            )
        pool = cls((), embedder=embedder, cache=cache)
        pool._snapshot = PoolSnapshot(LazyDemos(table), embeddings)
        if embedder is None:
            pool._embedder_id = embedder_id
        return pool


def _open_dir(root: Path, verify: bool) -> tuple[Any, np.ndarray | None, str | None]:
    """(demos table, memory-mapped embeddings, embedder id) of a saved pool."""
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
    return table, embeddings, manifest_embedder_id(manifest)
