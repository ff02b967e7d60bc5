"""Input checks shared by the pool's constructors and mutators (demos, ids, embeddings, caches)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promptkd._validation import as_matrix
from promptkd.embeddings.base import Embedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.demo import Demo

__all__ = ["PRECOMPUTED"]

PRECOMPUTED = "precomputed"


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


def _matches(demo: Demo, predicate: Callable[[Demo], bool] | None, where: Mapping[str, Any] | None) -> bool:
    if where and not _matches_fields(demo.output, demo.metadata, where):
        return False
    return bool(predicate(demo)) if predicate is not None else True


def _matches_fields(output: str, metadata: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    """Whether a demo with this output and metadata passes the ``where`` equalities."""
    for key, wanted in (where or {}).items():
        value = metadata.get(key, output if key == "output" else None)
        if isinstance(wanted, (list, tuple, set, frozenset)):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True
