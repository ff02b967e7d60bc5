"""Pools cache model embeddings on disk by default, keyed by the model's files, not its folder name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from promptkd import DemoPool
from promptkd.embeddings import CachedEmbedder, HashingEmbedder, SentenceTransformerEmbedder


class CountingEmbedder:
    """A model-like embedder (it has a cache key) that counts the texts it really embeds."""

    def __init__(self, key: str = "counting@v1") -> None:
        self.cache_key = key
        self.embedded = 0

    @property
    def id(self) -> str:
        return "counting"

    def encode(self, texts, *, batch_size=32, show_progress_bar=None, normalize=True):
        self.embedded += len(texts)
        rng = np.random.default_rng([len(t) for t in texts] or [0])
        X = rng.normal(size=(len(texts), 8)).astype(np.float32)
        return X / np.linalg.norm(X, axis=1, keepdims=True) if len(texts) else X.reshape(0, 8)


DEMOS = [{"input": f"text number {i}", "output": "x" if i % 2 else "y"} for i in range(20)]


def test_a_second_pool_reads_every_vector_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "emb.sqlite"
    first, second = CountingEmbedder(), CountingEmbedder()
    a = DemoPool(DEMOS, embedder=first, cache=cache).embeddings
    b = DemoPool(DEMOS, embedder=second, cache=cache).embeddings
    assert first.embedded == 20 and second.embedded == 0
    np.testing.assert_array_equal(a, b)


def test_the_cache_can_be_turned_off_and_skips_cheap_embedders(tmp_path: Path, monkeypatch) -> None:
    emb = CountingEmbedder()
    DemoPool(DEMOS, embedder=emb, cache=False).embed()
    DemoPool(DEMOS, embedder=emb, cache=False).embed()
    assert emb.embedded == 40
    assert isinstance(DemoPool(DEMOS, embedder=HashingEmbedder()).embedder, HashingEmbedder)
    monkeypatch.setenv("PROMPTKD_EMBEDDING_CACHE", "off")
    assert not isinstance(DemoPool(DEMOS, embedder=CountingEmbedder()).embedder, CachedEmbedder)
    monkeypatch.setenv("PROMPTKD_EMBEDDING_CACHE", str(tmp_path / "c.sqlite"))
    assert isinstance(DemoPool(DEMOS, embedder=CountingEmbedder()).embedder, CachedEmbedder)
    with pytest.raises(TypeError, match="cache must be"):
        DemoPool(DEMOS, embedder=emb, cache=3)


def test_two_models_in_folders_of_the_same_name_never_share_cached_vectors(tmp_path: Path) -> None:
    for root, size in (("a", 10), ("b", 20)):
        folder = tmp_path / root / "model"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"0" * size)
    one = SentenceTransformerEmbedder(tmp_path / "a" / "model", device="cpu")
    two = SentenceTransformerEmbedder(tmp_path / "b" / "model", device="cpu")
    assert one.id == two.id  # the display id is the folder name ...
    assert one.cache_key != two.cache_key  # ... but the cache keys tell the weights apart


@pytest.mark.slow
def test_real_minilm_pool_is_cached_between_runs(tmp_path: Path) -> None:
    cache = tmp_path / "emb.sqlite"
    texts = [{"input": f"a short review, number {i}", "output": "pos"} for i in range(40)]
    first = DemoPool(texts, embedder=SentenceTransformerEmbedder(device="cpu"), cache=cache)
    X = first.embeddings
    again = DemoPool(texts, embedder=SentenceTransformerEmbedder(device="cpu"), cache=cache)
    Y = again.embeddings
    assert again.embedder.hits == 40 and again.embedder.misses == 0
    np.testing.assert_allclose(X, Y)
