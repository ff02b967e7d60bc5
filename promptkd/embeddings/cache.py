"""An on-disk embedding cache keyed by (embedder id, sha256 of the text)."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from promptkd.embeddings.base import Embedder, check_output, check_texts
from promptkd.exceptions import InvalidTypeError, PersistenceError

__all__ = ["CachedEmbedder", "EmbeddingCache", "cache_key_of", "default_cache_path"]


def default_cache_path() -> Path | None:
    """Where :class:`~promptkd.DemoPool` caches embeddings by default, or None when caching is off.

    ``PROMPTKD_EMBEDDING_CACHE`` overrides it (a file path, or ``off``/``0`` to disable);
    otherwise the file ``embeddings.sqlite`` under ``PROMPTKD_CACHE_DIR`` or the user cache
    directory of promptkd.

    Examples
    --------
    >>> import os
    >>> os.environ["PROMPTKD_EMBEDDING_CACHE"] = "off"
    >>> default_cache_path() is None
    True
    >>> del os.environ["PROMPTKD_EMBEDDING_CACHE"]
    """
    import os

    chosen = os.environ.get("PROMPTKD_EMBEDDING_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "0", "off", "false", "no") else Path(chosen).expanduser()
    root = os.environ.get("PROMPTKD_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("promptkd")
    return Path(root) / "embeddings.sqlite"


def cache_key_of(embedder: Embedder) -> str:
    """The key an embedder's vectors are cached under: its ``cache_key`` when it has one, else its id.

    A ``cache_key`` identifies the weights themselves (e.g. the model folder's files), so two
    different models that share a display id never share cached vectors.
    """
    return str(getattr(embedder, "cache_key", None) or embedder.id)


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A SQLite file mapping (embedder id, text hash, normalize) to a float32 vector.

    SQLite gives atomic commits, so a crash never leaves a half-written entry.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> cache = EmbeddingCache(tempfile.mkdtemp() + "/emb.sqlite")
    >>> cache.put("m", ["hi"], np.ones((1, 3), dtype=np.float32), normalize=True)
    >>> cache.get("m", ["hi", "new"], normalize=True)[1]
    [1]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False)
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS emb (model TEXT, key TEXT, norm INTEGER, dim INTEGER, vec BLOB, "
                "PRIMARY KEY (model, key, norm))"
            )
            self._conn.commit()
        except sqlite3.Error as err:
            raise PersistenceError(
                f"cannot open the embedding cache at {self.path}: {err}; pass another cache path."
            ) from err

    def get(self, model: str, texts: Sequence[str], *, normalize: bool) -> tuple[list[np.ndarray | None], list[int]]:
        """Return cached vectors (None where missing) and the indices of the misses."""
        keys = [_text_key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        try:
            self._lookup(model, keys, normalize, found)
        except sqlite3.Error as err:
            raise PersistenceError(
                f"the embedding cache at {self.path} cannot be read ({err}); delete the file to rebuild it."
            ) from err
        vectors = [found.get(k) for k in keys]
        misses = [i for i, v in enumerate(vectors) if v is None]
        return vectors, misses

    def _lookup(self, model: str, keys: list[str], normalize: bool, found: dict[str, np.ndarray]) -> None:
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, dim, vec FROM emb WHERE model=? AND norm=? AND key IN ({marks})",
                    (model, int(normalize), *chunk),
                ).fetchall()
                for key, dim, blob in rows:
                    if not isinstance(blob, bytes) or len(blob) % 4:
                        continue  # a damaged entry counts as a miss and is re-embedded
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape[0] == dim and np.all(np.isfinite(vec)):
                        found[key] = vec

    def put(self, model: str, texts: Sequence[str], vectors: np.ndarray, *, normalize: bool) -> None:
        """Store one vector per text."""
        rows = [
            (model, _text_key(t), int(normalize), int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes())
            for t, v in zip(texts, vectors, strict=False)
        ]
        try:
            with self._lock:
                self._conn.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?, ?, ?)", rows)
                self._conn.commit()
        except sqlite3.Error as err:
            raise PersistenceError(
                f"the embedding cache at {self.path} cannot be written ({err}); check disk space or pass another path."
            ) from err

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM emb").fetchone()[0])

    def close(self) -> None:
        """Close the underlying database."""
        with self._lock:
            self._conn.close()


class CachedEmbedder:
    """Wrap any :class:`Embedder` so unchanged texts are read from an :class:`EmbeddingCache`.

    Examples
    --------
    >>> import tempfile
    >>> from promptkd.embeddings import HashingEmbedder
    >>> emb = CachedEmbedder(HashingEmbedder(dim=16), tempfile.mkdtemp() + "/c.sqlite")
    >>> a = emb.encode(["hello"]); b = emb.encode(["hello"])
    >>> emb.misses, emb.hits
    (1, 1)
    """

    def __init__(self, embedder: Embedder, cache: EmbeddingCache | str | Path) -> None:
        if not isinstance(embedder, Embedder):
            raise InvalidTypeError(
                f"embedder must implement encode(texts, ...) and id (an Embedder), got {type(embedder).__name__}."
            )
        if not isinstance(cache, (EmbeddingCache, str, Path)):
            raise InvalidTypeError(f"cache must be an EmbeddingCache or a file path, got {type(cache).__name__}.")
        self.embedder = embedder
        self.cache = cache if isinstance(cache, EmbeddingCache) else EmbeddingCache(cache)
        self.hits = 0
        self.misses = 0

    @property
    def id(self) -> str:
        """The wrapped embedder's id (the cache does not change the vectors)."""
        return self.embedder.id

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        """Embed ``texts``, calling the model only for texts not in the cache."""
        items = check_texts(texts)
        if not items:  # no lookup; the wrapped embedder knows the output width
            empty = self.embedder.encode([], batch_size=batch_size, show_progress_bar=False, normalize=normalize)
            empty = np.asarray(empty, dtype=np.float32)
            return empty if empty.ndim == 2 else empty.reshape(0, 0)
        key = cache_key_of(self.embedder)
        vectors, misses = self.cache.get(key, items, normalize=normalize)
        self.hits += len(items) - len(misses)
        self.misses += len(misses)
        if misses:
            new = self.embedder.encode(
                [items[i] for i in misses],
                batch_size=batch_size,
                show_progress_bar=show_progress_bar,
                normalize=normalize,
            )
            new = check_output(new, len(misses), self.id)
            self.cache.put(key, [items[i] for i in misses], new, normalize=normalize)
            for j, i in enumerate(misses):
                vectors[i] = new[j]
        return np.stack(vectors).astype(np.float32, copy=False)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.embedder!r}, cache={str(self.cache.path)!r})"
