"""A deterministic, dependency-free embedder built on feature hashing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from promptkd._validation import check_int
from promptkd.embeddings.base import check_texts, l2_normalise

__all__ = ["HashingEmbedder"]

_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Embed texts by hashing word unigrams and character trigrams into ``dim`` buckets.

    It needs no model, is identical on every machine, and keeps lexically close
    texts close. Use it for tests and as a fallback where no neural model is
    wanted; use :class:`SentenceTransformerEmbedder` for real semantic similarity.

    Parameters
    ----------
    dim
        Number of hash buckets (embedding dimension).

    Examples
    --------
    >>> emb = HashingEmbedder(dim=64)
    >>> X = emb.encode(["good movie", "good film", "stock prices fell"])
    >>> X.shape, X.dtype.name
    ((3, 64), 'float32')
    >>> bool(X[0] @ X[1] > X[0] @ X[2])
    True
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = check_int(dim, "dim", minimum=2)

    @property
    def id(self) -> str:
        """Stable identifier, e.g. ``"hashing-v1:dim=256"``."""
        return f"hashing-v1:dim={self.dim}"

    def _features(self, text: str) -> list[str]:
        lowered = text.lower()
        words = _TOKEN.findall(lowered)
        grams = [f"w:{w}" for w in words]
        padded = f" {lowered} "
        grams += [f"c:{padded[i : i + 3]}" for i in range(max(len(padded) - 2, 0))]
        return grams

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape (n, dim).

        Examples
        --------
        >>> HashingEmbedder(dim=8).encode(["x"]).shape
        (1, 8)
        """
        items = check_texts(texts)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for row, text in enumerate(items):
            for feat in self._features(text):
                digest = hashlib.blake2b(feat.encode("utf-8"), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self.dim] += 1.0 if (value >> 63) & 1 else -1.0
        return l2_normalise(out) if normalize else out

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim})"
