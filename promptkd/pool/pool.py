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

from promptkd._validation import as_matrix, check_int
from promptkd.embeddings.base import Embedder, check_output, check_texts
from promptkd.embeddings.registry import embedder_from_id
from promptkd.exceptions import InvalidInputError, InvalidTypeError, PersistenceError, PoolFormatError
from promptkd.pool.demo import Demo
from promptkd.pool.persistence import read_pool_dir, write_pool_dir
from promptkd.pool.records import (  # noqa: F401 - read_jsonl and count_repeats are re-exported here
    DEDUPE,
    _dedupe_records,
    count_repeats,
    read_csv_records,
    read_jsonl,
    read_jsonl_lines,
)

__all__ = ["DemoPool", "PoolSnapshot"]

logger = logging.getLogger("promptkd")

PRECOMPUTED = "precomputed"


@dataclass(frozen=True)
class PoolSnapshot:
    """A consistent view of a pool at one moment: demos and their embeddings."""

    demos: tuple[Demo, ...]
    embeddings: np.ndarray | None


def _as_demo(item: Any, position: int) -> Demo:
    if isinstance(item, Demo):
        return item
    if isinstance(item, Mapping):
        try:
            return Demo(**item)
        except InvalidTypeError as err:
            raise InvalidTypeError(f"demos[{position}] is not a valid demo: {err}") from err
        except InvalidInputError as err:
            raise InvalidInputError(f"demos[{position}] is not a valid demo: {err}") from err
        except TypeError as err:  # e.g. non-string keys in the mapping
            raise InvalidTypeError(
                f"demos[{position}] is not a valid demo: {err}; keys must be input, output, id, metadata."
            ) from err
    raise InvalidTypeError(
        f"demos[{position}] must be a Demo or a mapping with 'input' and 'output', got {type(item).__name__}."
    )


def _as_demos(demos: Any, name: str = "demos") -> list[Demo]:
    if demos is None:
        raise InvalidTypeError(f"{name} must be a list of Demo objects or mappings, got None.")
    if isinstance(demos, (Demo, Mapping)):
        demos = [demos]
    if isinstance(demos, (str, bytes)) or not isinstance(demos, Iterable):
        raise InvalidTypeError(f"{name} must be a list of Demo objects or mappings, got {type(demos).__name__}.")
    return [_as_demo(d, i) for i, d in enumerate(demos)]


def _check_unique(demos: Sequence[Demo], existing: Iterable[str] = ()) -> None:
    seen: dict[str, int | None] = dict.fromkeys(existing)
    for i, d in enumerate(demos):
        if d.id in seen:
            first = seen[d.id]
            where = "a demo already in the pool" if first is None else f"demos[{first}]"
            raise InvalidInputError(
                f"duplicate demo id {d.id!r} at demos[{i}] (first used by {where}); ids must be unique: "
                "drop the duplicate or give it another id."
            )
        seen[d.id] = i


def _with_cache(embedder: Embedder | None, cache: bool | str | os.PathLike[str]) -> Embedder | None:
    """``embedder`` behind the on-disk embedding cache, for model-based embedders (those with a ``cache_key``).

    Cheap embedders (hashing) and ones already cached are returned as they are, and so is every
    embedder when ``cache`` is False or ``PROMPTKD_EMBEDDING_CACHE=off``.
    """
    if embedder is None or cache is False or getattr(embedder, "cache_key", None) is None:
        return embedder
    from promptkd.embeddings.cache import CachedEmbedder, default_cache_path

    if isinstance(embedder, CachedEmbedder):
        return embedder
    path = default_cache_path() if cache is True else Path(cache)
    return embedder if path is None else CachedEmbedder(embedder, path)


def _check_embeddings(embeddings: Any, n: int, name: str = "embeddings") -> np.ndarray:
    keep16 = getattr(embeddings, "dtype", None) == np.float16
    mat = as_matrix(embeddings, name, allow_empty=True, dtype=None if keep16 else np.float32)
    if mat.shape[0] != n:
        raise InvalidInputError(f"{name} has {mat.shape[0]} rows but there are {n} demos; pass one row per demo.")
    return mat


class DemoPool:
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

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        input_key: str = "input",
        output_key: str = "output",
        id_key: str | None = None,
        metadata_keys: Sequence[str] | None = None,
        embedder: Embedder | None = None,
        dedupe: str = "none",
        locations: Sequence[str] | None = None,
        pair_key: str | None = None,
        cache: bool | str | os.PathLike[str] = True,
    ) -> DemoPool:
        """Build a pool from dict-like records, mapping their keys to demo fields.

        ``metadata_keys=None`` keeps every other key as metadata. ``pair_key``
        names the second text of sentence-pair records (e.g. ``"text_pair"``),
        which becomes :attr:`Demo.input_pair`. Real datasets
        repeat rows: with ``dedupe="none"`` (default) every copy is kept and a
        repeated content id gets a suffix (``<id>.2``, ``<id>.3``, ...);
        ``dedupe="exact"`` keeps only the first copy of each (input, output).
        Ids taken from ``id_key`` must be unique. ``locations`` (one string per
        record, e.g. ``"train.jsonl:12"``) names the records in error messages.

        Examples
        --------
        >>> from promptkd.embeddings import HashingEmbedder
        >>> rows = [{"text": "fine", "label": 1, "src": "a"}, {"text": "bad", "label": 0, "src": "b"}]
        >>> pool = DemoPool.from_records(rows, input_key="text", output_key="label", embedder=HashingEmbedder())
        >>> pool[0].output, pool[0].metadata
        ('1', {'src': 'a'})
        """
        if records is None or isinstance(records, (str, bytes, Mapping)):
            raise InvalidTypeError("records must be an iterable of mappings (e.g. a list of dicts).")
        if dedupe not in DEDUPE:
            raise InvalidInputError(f"dedupe={dedupe!r} is not supported; use one of {', '.join(DEDUPE)}.")
        demos = []
        explicit = []
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                raise InvalidTypeError(f"records[{i}] must be a mapping, got {type(rec).__name__}.")
            for key in (input_key, output_key):
                if key not in rec:
                    raise InvalidInputError(
                        f"records[{i}] has no key {key!r} (keys: {sorted(rec)[:8]}); pass input_key=/output_key= to match your data."
                    )
            if pair_key is not None and pair_key not in rec:
                raise InvalidInputError(
                    f"records[{i}] has no pair key {pair_key!r} (keys: {sorted(rec)[:8]}); every record of a "
                    "pair task needs its second text."
                )
            used = {input_key, output_key} | ({id_key} if id_key else set()) | ({pair_key} if pair_key else set())
            if metadata_keys is None:
                meta = {k: v for k, v in rec.items() if k not in used}
            else:
                meta = {k: rec[k] for k in metadata_keys if k in rec}
            demos.append(
                _as_demo(
                    {
                        "input": rec[input_key],
                        "input_pair": rec[pair_key] if pair_key else None,
                        "output": rec[output_key],
                        "id": rec.get(id_key) if id_key else None,
                        "metadata": meta,
                    },
                    i,
                )
            )
            explicit.append(bool(id_key) and rec.get(id_key) not in (None, ""))
        where = (lambda i: locations[i]) if locations is not None else (lambda i: f"records[{i}]")
        demos = _dedupe_records(demos, explicit, dedupe, where)
        return cls(demos, embedder=embedder, cache=cache)

    @classmethod
    def from_jsonl(
        cls,
        path: str | os.PathLike[str],
        *,
        input_key: str = "input",
        output_key: str = "output",
        id_key: str | None = None,
        metadata_keys: Sequence[str] | None = None,
        embedder: Embedder | None = None,
        dedupe: str = "none",
        pair_key: str | None = None,
        cache: bool | str | os.PathLike[str] = True,
    ) -> DemoPool:
        """Read a JSON-lines file of records (see :meth:`from_records`); errors name the file's line.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
        >>> _ = p.write_text('{"input": "hi", "output": "greeting"}\\n')
        >>> len(DemoPool.from_jsonl(p))
        1
        """
        records, lines = read_jsonl_lines(path)
        return cls.from_records(
            records,
            input_key=input_key,
            output_key=output_key,
            id_key=id_key,
            metadata_keys=metadata_keys,
            embedder=embedder,
            dedupe=dedupe,
            locations=[f"{path}:{n}" for n in lines],
            pair_key=pair_key,
            cache=cache,
        )

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        input_key: str = "input",
        output_key: str = "output",
        id_key: str | None = None,
        pair_key: str | None = None,
        metadata_keys: Sequence[str] | None = None,
        embedder: Embedder | None = None,
        dedupe: str = "none",
        delimiter: str = ",",
        cache: bool | str | os.PathLike[str] = True,
    ) -> DemoPool:
        """Read a CSV (or, with ``delimiter="\\t"``, TSV) file with a header line (see :meth:`from_records`).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from promptkd.embeddings import HashingEmbedder
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
        >>> _ = p.write_text("text,label\\ngood,pos\\nbad,neg\\n")
        >>> DemoPool.from_csv(p, input_key="text", output_key="label", embedder=HashingEmbedder()).outputs
        ['pos', 'neg']
        """
        records = read_csv_records(path, delimiter)
        return cls.from_records(
            records,
            input_key=input_key,
            output_key=output_key,
            id_key=id_key,
            metadata_keys=metadata_keys,
            embedder=embedder,
            dedupe=dedupe,
            locations=[f"{path} row {i + 1}" for i in range(len(records))],
            pair_key=pair_key,
            cache=cache,
        )

    # ------------------------------------------------------------------ container protocol
    def snapshot(self) -> PoolSnapshot:
        """A consistent (demos, embeddings) pair; later ``add`` calls do not change it."""
        return self._snapshot

    @property
    def demos(self) -> tuple[Demo, ...]:
        """All demos, in insertion order."""
        return self._snapshot.demos

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

    @property
    def inputs(self) -> list[str]:
        """The demos' inputs."""
        return [d.input for d in self._snapshot.demos]

    @property
    def outputs(self) -> list[str]:
        """The demos' outputs (labels)."""
        return [d.output for d in self._snapshot.demos]

    @property
    def ids(self) -> list[str]:
        """The demos' ids."""
        return [d.id for d in self._snapshot.demos]

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
            )
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
        the old or the new pool, never a mix.

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
            _check_unique(new, (d.id for d in snap.demos))
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
            self._snapshot = PoolSnapshot(snap.demos + tuple(new), merged)

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
        out._snapshot = PoolSnapshot(tuple(snap.demos[i] for i in idx), emb)
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
        return np.array([_matches(d, predicate, where) for d in demos], dtype=bool)

    def index_of(self, demo_id: str) -> int:
        """Position of the demo with id ``demo_id``."""
        for i, d in enumerate(self._snapshot.demos):
            if d.id == demo_id:
                return i
        raise InvalidInputError(f"no demo with id {demo_id!r} in this pool.")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to a directory atomically (manifest + JSONL + ``.npy``).

        A crash during ``save`` leaves the previously saved pool at ``path``
        intact. Returns the directory.

        Examples
        --------
        >>> import tempfile
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": "a", "output": "x"}], embedder=HashingEmbedder(dim=8))
        >>> d = pool.save(tempfile.mkdtemp() + "/pool")
        >>> DemoPool.load(d)[0].input
        'a'
        """
        snap = self._snapshot
        try:
            return write_pool_dir(
                path,
                [d.to_record() for d in snap.demos],
                None if snap.embeddings is None else np.asarray(snap.embeddings),
                self._embedder_id,
            )
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


def _matches(demo: Demo, predicate: Callable[[Demo], bool] | None, where: Mapping[str, Any] | None) -> bool:
    if where:
        for key, wanted in where.items():
            value = demo.metadata.get(key, demo.output if key == "output" else None)
            if isinstance(wanted, (list, tuple, set, frozenset)):
                if value not in wanted:
                    return False
            elif value != wanted:
                return False
    return bool(predicate(demo)) if predicate is not None else True
