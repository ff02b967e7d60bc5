"""Rebuild an embedder from the id stored in a saved pool."""

from __future__ import annotations

from promptkd.embeddings.base import Embedder

__all__ = ["embedder_from_id"]

_MAX_HASHING_DIM = 1 << 16


def embedder_from_id(embedder_id: str | None) -> Embedder | None:
    """Return an embedder that reproduces ``embedder_id``, or None if unknown.

    Examples
    --------
    >>> embedder_from_id("hashing-v1:dim=32").dim
    32
    >>> embedder_from_id("something-else") is None
    True
    >>> embedder_from_id("hashing-v1:dim=99999999999") is None
    True
    """
    if not embedder_id:
        return None
    if embedder_id.startswith("hashing-v1:dim="):
        from promptkd.embeddings.hashing import HashingEmbedder

        tail = embedder_id.split("=", 1)[1]
        # ids come from files: only recreate sane dimensions (a hostile id must not allocate gigabytes)
        if not tail.isdigit() or not 2 <= int(tail) <= _MAX_HASHING_DIM:
            return None
        return HashingEmbedder(dim=int(tail))
    if embedder_id == "sentence-transformers:all-MiniLM-L6-v2":
        from promptkd.embeddings.sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder()
    return None
