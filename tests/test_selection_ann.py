"""Large-pool candidate stage (faiss) and float16 pools: same results as the exact path at small sizes."""

from __future__ import annotations

import numpy as np
import pytest

from promptkd import DemoPool, Selector
from promptkd.exceptions import InvalidInputError, MissingDependencyError
from promptkd.pool import ann as ann_module
from promptkd.pool.ann import CandidateIndex


def unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def pool() -> DemoPool:
    rng = np.random.default_rng(0)
    E = unit(rng.normal(size=(1500, 16)))
    return DemoPool(
        [{"input": f"d{i}", "output": f"y{i % 3}", "metadata": {"g": i % 2}} for i in range(1500)], embeddings=E
    )


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_ann_equals_exact_on_small_pools(pool: DemoPool, kind: str) -> None:
    Q = unit(np.random.default_rng(1).normal(size=(25, 16)))
    settings = {"k": 6, "candidates": 48, "swaps": 2}
    exact = Selector(**settings).fit(pool)
    assert exact.index_ is None
    # at small sizes the approximate indexes are made exhaustive (all lists probed, wide HNSW search)
    approx = Selector(**settings, index=kind, ann_threshold=0, nprobe=10_000, ef_search=2_000).fit(pool)
    assert approx.index_ is not None and approx.index_.kind == kind
    for a, b in zip(exact.select_batch(Q), approx.select_batch(Q), strict=True):
        assert a.indices == b.indices
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
        assert a.mmd2 == pytest.approx(b.mmd2, abs=1e-9)
    assert approx.select(Q[0]).indices == exact.select(Q[0]).indices


def test_ann_with_where_and_labels_falls_back_correctly(pool: DemoPool) -> None:
    Q = unit(np.random.default_rng(2).normal(size=(10, 16)))
    settings = {"k": 5, "where": {"g": 1}, "label_balance": "stratified"}
    exact = Selector(**settings).fit(pool)
    approx = Selector(**settings, index="exact", ann_threshold=0).fit(pool)
    for a, b in zip(exact.select_batch(Q), approx.select_batch(Q), strict=True):
        assert a.indices == b.indices
        assert all(pool[i].metadata["g"] == 1 for i in b.indices)


def test_float16_pool_halves_memory_and_keeps_the_choice(pool: DemoPool) -> None:
    E = pool.embeddings
    pool16 = DemoPool(pool.demos, embeddings=E.astype(np.float16))
    Q = unit(np.random.default_rng(3).normal(size=(25, 16)))
    full = Selector(k=6).fit(pool)
    half = Selector(k=6).fit(pool16)
    cast = Selector(k=6, dtype="float16").fit(pool)
    assert half.embeddings_.dtype == np.float16 and cast.embeddings_.dtype == np.float16
    assert half.embeddings_.nbytes * 2 == full.embeddings_.nbytes
    agree = sum(a.indices == b.indices for a, b in zip(full.select_batch(Q), half.select_batch(Q), strict=True))
    assert agree >= 20  # rounding to float16 may flip near-ties only
    for a, b in zip(half.select_batch(Q), cast.select_batch(Q), strict=True):
        assert a.indices == b.indices
    hnsw16 = Selector(k=6, dtype="float16", index="hnsw", ann_threshold=0, ef_search=2_000).fit(pool)
    for a, b in zip(cast.select_batch(Q), hnsw16.select_batch(Q), strict=True):
        assert a.indices == b.indices


def test_missing_faiss(pool: DemoPool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def no_faiss(module, extra, purpose=None):
        raise MissingDependencyError(f'{purpose} needs faiss. Install it with: pip install "promptkd[{extra}]"')

    monkeypatch.setattr(ann_module, "require", no_faiss)
    with pytest.raises(MissingDependencyError, match=r"promptkd\[ann\]"):
        Selector(index="hnsw", ann_threshold=0).fit(pool)
    with caplog.at_level("WARNING", logger="promptkd"):
        sel = Selector(k=3, ann_threshold=100).fit(pool)
    assert sel.index_ is None and "faiss is not installed" in caplog.text
    assert len(sel.select(pool.embeddings[0])) == 3


def test_index_errors(pool: DemoPool) -> None:
    with pytest.raises(InvalidInputError, match="index"):
        Selector(index="annoy").fit(pool)
    with pytest.raises(InvalidInputError, match="index"):
        CandidateIndex(pool.embeddings, "lsh")
    ids = CandidateIndex(pool.embeddings, "ivf", nprobe=1000).search(pool.embeddings[:3], 1)
    assert ids[:, 0].tolist() == [0, 1, 2]


def test_fast_candidate_threshold_is_the_exact_top_m() -> None:
    rng = np.random.default_rng(5)
    n = 8_192  # the smallest pool that uses the sampled threshold
    E = rng.normal(size=(n, 8)).astype(np.float32)
    E[100:200] = E[100]  # a block of exact ties
    big = DemoPool([{"input": f"d{i}", "output": "y", "id": str(i)} for i in range(n)], embeddings=E)
    sel = Selector(k=8, candidates=64).fit(big)
    assert sel.probe_idx_ is not None
    Q = rng.normal(size=(30, 8)).astype(np.float32)
    Q[0] = E[100]  # the tied block straddles the candidate boundary
    S = sel._similarity_rows(Q)
    idx = np.arange(n)
    for row in S:
        exact = idx[np.lexsort((idx, -row))][:64]
        assert np.array_equal(sel._candidate_set(row, 8), exact)
