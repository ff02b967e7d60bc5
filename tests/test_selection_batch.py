"""select_batch: one chunked GEMM, same results as select; thread safety; async."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from promptkd import DemoPool, Selector
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.selection.selection import Selection


def unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def big_pool() -> DemoPool:
    rng = np.random.default_rng(0)
    E = unit(rng.normal(size=(800, 24)))
    demos = [
        {"input": f"demo {i} " + "w " * (i % 7), "output": f"y{i % 4}", "metadata": {"g": i % 3}} for i in range(800)
    ]
    return DemoPool(demos, embeddings=E)


def same(a: Selection, b: Selection) -> None:
    assert a.indices == b.indices
    assert a.selection_rank == b.selection_rank
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
    assert a.mmd2 == pytest.approx(b.mmd2, abs=1e-9)
    np.testing.assert_allclose(a.mmd2_path, b.mmd2_path, atol=1e-9)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"swaps": 3, "order": "herding"},
        {
            "label_balance": "stratified",
            "dedup_threshold": 0.6,
            "max_tokens": 60,
            "tokenizer": lambda t: len(t.split()),
        },
        {"where": {"g": [0, 2]}, "label_balance": "cover", "order": "interleave_labels"},
    ],
)
@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_select_batch_equals_select(big_pool: DemoPool, settings: dict, chunk: int) -> None:
    rng = np.random.default_rng(1)
    Q = unit(rng.normal(size=(20, 24)))
    sel = Selector(k=6, candidates=64, batch_chunk=chunk, **settings).fit(big_pool)
    batch = sel.select_batch(Q)
    assert len(batch) == 20
    for q, b in zip(Q, batch, strict=True):
        same(sel.select(q), b)


def test_select_batch_with_text_queries_and_neighbourhoods(hashing_pool: DemoPool) -> None:
    sel = Selector(k=3, batch_chunk=2).fit(hashing_pool)
    queries = ["the coach and the team", "profit at the bank", "the galaxy and the atom"]
    unlabeled = ["a goal in the match", "shares and rates", "energy of the cell", "the league season"]
    batch = sel.select_batch(queries, context=["the market"], target_pool=unlabeled, n_neighbors=2, query_weight=0.6)
    for q, b in zip(queries, batch, strict=True):
        same(sel.select(q, context=["the market"], target_pool=unlabeled, n_neighbors=2, query_weight=0.6), b)
        assert b.target_size == 1 + 1 + 2 and b.query == q


def test_select_batch_chunks_bound_the_similarity_block(big_pool: DemoPool, monkeypatch: pytest.MonkeyPatch) -> None:
    sel = Selector(k=4, batch_chunk=5).fit(big_pool)
    shapes: list[tuple[int, int]] = []
    original = Selector._similarity_rows

    def spy(self, directions):
        out = original(self, directions)
        shapes.append(out.shape)
        return out

    monkeypatch.setattr(Selector, "_similarity_rows", spy)
    sel.select_batch(unit(np.random.default_rng(2).normal(size=(12, 24))))
    assert shapes == [(5, 800), (5, 800), (2, 800)]  # one GEMM per chunk, never more than chunk x pool


def test_select_batch_errors(hashing_pool: DemoPool) -> None:
    sel = Selector(k=2).fit(hashing_pool)
    assert sel.select_batch([]) == []
    with pytest.raises(InvalidTypeError, match="list of queries"):
        sel.select_batch("one query")
    with pytest.raises(InvalidInputError, match="empty string"):
        sel.select_batch(["ok", " "])
    with pytest.raises(InvalidInputError, match="2-D"):
        sel.select_batch(np.ones(128, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="batch_chunk"):
        Selector(batch_chunk=0).fit(hashing_pool)


def test_concurrent_select_from_threads(big_pool: DemoPool) -> None:
    rng = np.random.default_rng(3)
    Q = unit(rng.normal(size=(48, 24)))
    sel = Selector(k=5, swaps=2, label_balance="cover", candidates=64).fit(big_pool)
    expected = [sel.select(q) for q in Q]
    with ThreadPoolExecutor(max_workers=8) as ex:
        got = list(ex.map(sel.select, Q))
        batches = list(ex.map(lambda i: sel.select_batch(Q[i : i + 12]), range(0, 48, 12)))
    for e, g in zip(expected, got, strict=True):
        same(e, g)
    for e, g in zip(expected, [s for b in batches for s in b], strict=True):
        same(e, g)


def test_async_select(hashing_pool: DemoPool) -> None:
    sel = Selector(k=3).fit(hashing_pool)

    async def run() -> tuple[Selection, list[Selection]]:
        one, many = await asyncio.gather(
            sel.aselect("the coach", context=["the team"]), sel.aselect_batch(["the coach", "the bank"])
        )
        return one, many

    one, many = asyncio.run(run())
    same(one, sel.select("the coach", context=["the team"]))
    same(many[1], sel.select("the bank"))


def test_torch_similarity_stage_matches_numpy(big_pool: DemoPool) -> None:
    Q = unit(np.random.default_rng(4).normal(size=(15, 24)))
    numpy_sel = Selector(k=5, device=None).fit(big_pool)
    torch_sel = Selector(k=5, device="cpu", batch_chunk=4).fit(big_pool)
    assert numpy_sel.device_ == "numpy" and torch_sel.device_ == "cpu"
    for a, b in zip(numpy_sel.select_batch(Q), torch_sel.select_batch(Q), strict=True):
        same(a, b)
    half = DemoPool(big_pool.demos, embeddings=big_pool.embeddings.astype(np.float16))
    for a, b in zip(
        Selector(k=5, device=None).fit(half).select_batch(Q),
        Selector(k=5, device="cpu").fit(half).select_batch(Q),
        strict=True,
    ):
        same(a, b)
    import torch

    if not torch.cuda.is_available():  # "auto" keeps numpy on a CPU-only machine
        assert Selector(k=5).fit(big_pool).device_ == "numpy"
    with pytest.raises(InvalidInputError, match="device"):
        Selector(k=5, device="tpu").fit(big_pool)


def test_progress_bar_and_large_per_call_k(big_pool: DemoPool, capsys: pytest.CaptureFixture) -> None:
    sel = Selector(k=3, candidates=4, index="exact", ann_threshold=0).fit(big_pool)
    out = sel.select_batch(unit(np.random.default_rng(5).normal(size=(3, 24))), k=9, show_progress_bar=True)
    assert [len(s) for s in out] == [9, 9, 9]  # more than the ANN hits: the exact fallback fills k
    assert "select_batch" in capsys.readouterr().err
