"""The :class:`Embedder` protocol and helpers shared by every backend."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from promptkd._progress import default_show_progress_bar
from promptkd.exceptions import InvalidInputError, InvalidTypeError

__all__ = ["Embedder", "check_texts", "default_show_progress_bar"]

logger = logging.getLogger("promptkd")


@runtime_checkable
class Embedder(Protocol):
    """What promptkd needs from an embedding model.

    ``id`` is a stable string that changes whenever the vectors would change
    (model, revision, pooling, normalisation); caches and saved pools key on it.
    ``encode`` returns one float32 row per text.
    """

    @property
    def id(self) -> str:  # pragma: no cover - protocol
        """Stable identifier of the model and its settings."""
        ...

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        normalize: bool = True,
    ) -> np.ndarray:  # pragma: no cover - protocol
        """Embed ``texts`` into a float32 array of shape (len(texts), dim)."""
        ...


def check_texts(texts: object, name: str = "texts") -> list[str]:
    """Validate a sequence of strings (a single string is rejected to avoid char-splitting).

    Examples
    --------
    >>> check_texts(["a", "b"])
    ['a', 'b']
    """
    if isinstance(texts, str):
        raise InvalidTypeError(f"{name} must be a list of strings, got a single string; wrap it: [{texts[:30]!r}].")
    if isinstance(texts, np.ndarray) and texts.ndim == 1:
        texts = texts.tolist()
    if texts is None or not isinstance(texts, Sequence):
        raise InvalidTypeError(f"{name} must be a list of strings, got {type(texts).__name__}.")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InvalidTypeError(f"{name}[{i}] must be a string, got {type(t).__name__}.")
    return out


def l2_normalise(X: np.ndarray) -> np.ndarray:
    """Scale rows to unit norm (zero rows stay zero).

    Examples
    --------
    >>> l2_normalise(np.array([[3.0, 4.0]], dtype=np.float32)).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def check_output(X: np.ndarray, n: int, embedder_id: str) -> np.ndarray:
    """Check an embedder's output: 2-D, n rows, finite; return it as float32."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != n:
        raise InvalidInputError(f"embedder {embedder_id!r} returned shape {X.shape} for {n} texts.")
    if not np.all(np.isfinite(X)):
        raise InvalidInputError(f"embedder {embedder_id!r} returned NaN or infinite values.")
    return X
