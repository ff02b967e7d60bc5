"""Embedding backends: the :class:`Embedder` protocol and its implementations."""

from promptkd.embeddings.base import Embedder
from promptkd.embeddings.cache import CachedEmbedder, EmbeddingCache
from promptkd.embeddings.hashing import HashingEmbedder
from promptkd.embeddings.sentence_transformers import SentenceTransformerEmbedder, default_model_path

__all__ = [
    "CachedEmbedder",
    "Embedder",
    "EmbeddingCache",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "default_model_path",
]
