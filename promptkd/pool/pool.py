"""The :class:`DemoPool`: demonstrations plus their cached embeddings."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from promptkd._validation import check_int
from promptkd.embeddings.base import Embedder, check_output, check_texts
from promptkd.embeddings.registry import embedder_from_id
from promptkd.exceptions import InvalidInputError, InvalidTypeError
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
from promptkd.pool.lazy import LazyDemos, demo_field, demo_field_codes
from promptkd.pool.persistence import row_norms
from promptkd.pool.records import (  # noqa: F401 - read_jsonl and count_repeats are re-exported here
    count_repeats,
    read_jsonl,
)
from promptkd.pool.storage import LAYOUTS, PoolStorage

__all__ = ["LAYOUTS", "DemoPool", "PoolSnapshot"]

logger = logging.getLogger("promptkd")


@dataclass(frozen=True)
class PoolSnapshot:
    """A consistent view of a pool at one moment: demos and their embeddings.

    ``demos`` is a tuple, or a :class:`~promptkd.pool.lazy.LazyDemos` sequence
    (demos read on access) for a pool opened with :meth:`DemoPool.open`.
    """

    demos: Sequence[Demo]
    embeddings: np.ndarray | None
    #: the (N,) float32 row norms of ``embeddings`` when known (stored with a saved pool), else None
    norms: np.ndarray | None = None

    def row_norms(self) -> np.ndarray:
        """(N,) float32 norm of every embedding row: the stored ones, or computed once and kept.

        Equal bit for bit to ``numpy.linalg.norm(embeddings.astype(numpy.float32), axis=1)``.

        Examples
        --------
        >>> snap = PoolSnapshot((), np.array([[3.0, 4.0]], dtype=np.float32))
        >>> snap.row_norms().tolist()
        [5.0]
        """
        if self.embeddings is None:
            raise InvalidInputError("the pool has no embeddings yet; call pool.embed() first.")
        if self.norms is None:
            object.__setattr__(self, "norms", row_norms(self.embeddings))  # deterministic, so caching is safe
        return self.norms  # type: ignore[return-value]


class DemoPool(RecordConstructors, PoolStorage):
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

    def column(self, name: str) -> list[Any]:
        """One text field of every demo (``id``, ``input``, ``output`` or ``input_pair``).

        A pool opened with :meth:`open` reads the stored Arrow column and builds
        no :class:`Demo`.

        Examples
        --------
        >>> pool = DemoPool([{"input": "a", "output": "x"}, {"input": "b", "output": "y"}])
        >>> pool.column("output")
        ['x', 'y']
        """
        return demo_field(self._snapshot.demos, _text_field(name))

    def column_codes(self, name: str) -> tuple[tuple[str, ...], np.ndarray]:
        """Sorted distinct values of a text field and the int64 code of every demo's value.

        Equals ``numpy.unique(pool.column(name), return_inverse=True)``; an opened
        pool dictionary-encodes its Arrow column (milliseconds for a million
        demos) instead of building a Python string per demo.

        Examples
        --------
        >>> pool = DemoPool([{"input": "a", "output": "y"}, {"input": "b", "output": "x"}])
        >>> names, codes = pool.column_codes("output")
        >>> names, codes.tolist()
        (('x', 'y'), [1, 0])
        """
        return demo_field_codes(self._snapshot.demos, _text_field(name))

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

    def embedding_norms(self) -> np.ndarray:
        """(N,) float32 norm of every embedding row, without reading the embeddings when the pool stored them.

        A pool saved by this version stores its row norms beside the embeddings
        (4 MB for 1M demos), and :meth:`open` maps them; otherwise they are
        computed once from the embeddings and kept with them. A selector's fit
        needs them (cosine similarities), so this spares it a pass over every
        embedding of a large opened pool.

        Examples
        --------
        >>> pool = DemoPool([{"input": "a", "output": "x"}], embeddings=np.array([[3.0, 4.0]]))
        >>> pool.embedding_norms().tolist()
        [5.0]
        """
        return self._snapshot.row_norms()

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
            norms = None
            if snap.embeddings is not None:
                if new_emb is None:
                    new_emb = self.encode_texts([d.text for d in new])
                if new_emb.shape[1] != snap.embeddings.shape[1]:
                    raise InvalidInputError(
                        f"embeddings has dimension {new_emb.shape[1]} but the pool's is {snap.embeddings.shape[1]}."
                    )
                new_emb = new_emb.astype(snap.embeddings.dtype)
                merged = np.concatenate([np.asarray(snap.embeddings), new_emb], 0)
                if snap.norms is not None:  # known norms stay known: only the new rows' are computed
                    norms = np.concatenate([np.asarray(snap.norms), row_norms(new_emb)])
            elif new_emb is not None and snap.demos:
                raise InvalidInputError(
                    "embeddings were given for the new demos but the pool has none yet; call pool.embed() first "
                    "or add without embeddings."
                )
            else:
                merged = new_emb
            self._snapshot = PoolSnapshot(snap.demos + tuple(new), merged, norms)  # type: ignore[operator]

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
        norms = None if snap.norms is None else np.asarray(snap.norms)[idx]
        demos = snap.demos.take(idx) if isinstance(snap.demos, LazyDemos) else tuple(snap.demos[i] for i in idx)
        out._snapshot = PoolSnapshot(demos, emb, norms)
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


_TEXT_FIELDS = ("id", "input", "output", "input_pair")


def _text_field(name: Any) -> str:
    if name not in _TEXT_FIELDS:
        raise InvalidInputError(f"column {name!r} is not a demo text field; use one of {', '.join(_TEXT_FIELDS)}.")
    return str(name)
