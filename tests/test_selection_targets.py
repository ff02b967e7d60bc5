"""Targets: query, neighbourhood (context / target_pool), shared sets and weights."""

from __future__ import annotations

import numpy as np
import pytest

from promptkd import DemoPool, Selector
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.kernels import mmd2
from promptkd.selection.target import Target, TargetSpec, build_target, neighbour_rows


def unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def array_pool() -> DemoPool:
    rng = np.random.default_rng(0)
    E = unit(rng.normal(size=(60, 6)))
    return DemoPool([{"input": f"d{i}", "output": f"y{i % 3}"} for i in range(60)], embeddings=E)


def test_context_joins_the_target_with_the_query_weight(hashing_pool: DemoPool) -> None:
    sel = Selector(k=3).fit(hashing_pool)
    t = sel.make_target(
        "the coach and the team", context=["a goal in the league", "stock market news"], query_weight=0.4
    )
    assert t.size == 3 and t.n_query == 1
    np.testing.assert_allclose(t.weights, [0.4, 0.3, 0.3])
    expected = hashing_pool.encode_texts(["the coach and the team", "a goal in the league", "stock market news"])
    np.testing.assert_allclose(t.embeddings, expected, atol=1e-6)


def test_target_pool_adds_the_nearest_neighbours(array_pool: DemoPool) -> None:
    rng = np.random.default_rng(1)
    unlabeled = unit(rng.normal(size=(40, 6)))
    q = unlabeled[7]  # the query is itself in the unlabeled set: it must not count as its own neighbour
    sel = Selector(k=4).fit(array_pool)
    t = sel.make_target(q, target_pool=unlabeled, n_neighbors=5, query_weight=0.5)
    cos = unlabeled @ q
    cos[7] = -np.inf
    nearest = set(np.argsort(-cos)[:5].tolist())
    got = {int(np.argmax(unlabeled @ row)) for row in t.embeddings[1:]}
    assert got == nearest
    np.testing.assert_allclose(t.weights, [0.5] + [0.1] * 5)


def test_target_pool_as_demopool_and_both_families(array_pool: DemoPool) -> None:
    rng = np.random.default_rng(2)
    other = DemoPool([{"input": f"u{i}", "output": "?"} for i in range(20)], embeddings=unit(rng.normal(size=(20, 6))))
    sel = Selector(k=4).fit(array_pool)
    ctx = unit(rng.normal(size=(2, 6)))
    t = sel.make_target(
        unit(rng.normal(size=(1, 6)))[0], context=ctx, target_pool=other, n_neighbors=3, query_weight=0.2
    )
    assert t.size == 1 + 2 + 3
    np.testing.assert_allclose(t.weights, [0.2, 0.2, 0.2] + [0.4 / 3] * 3)
    assert t.weights.sum() == pytest.approx(1.0)


def test_neighbours_of_several_query_rows_are_merged() -> None:
    base = Target(np.array([[1, 0], [0.9, 0.1]], dtype=np.float32), np.array([0.5, 0.5]))
    cands = unit(np.array([[1.0, 0.05], [0.0, 1.0], [-1.0, 0.0]]))
    t = build_target(base, TargetSpec(n_neighbors=1), target_pool_rows=cands, target_pool_unit=cands)
    assert t.size == 3  # both rows share the same nearest neighbour: it appears once with the summed weight
    np.testing.assert_allclose(t.weights, [0.25, 0.25, 0.5])
    idx, valid = neighbour_rows(base.embeddings, cands, 2)
    assert idx[0].tolist() == [0, 1] and valid.all()


def test_selection_uses_the_weighted_target(array_pool: DemoPool) -> None:
    rng = np.random.default_rng(3)
    ctx = unit(rng.normal(size=(6, 6)))
    q = unit(rng.normal(size=(1, 6)))[0]
    sel = Selector(k=5, candidates=60).fit(array_pool)
    s = sel.select(q, context=ctx, query_weight=0.3)
    assert s.target_size == 7
    X = array_pool.embeddings[list(s.indices)]
    T = np.vstack([q[None], ctx])
    w = np.array([0.3] + [0.7 / 6] * 6)
    assert s.objective == pytest.approx(mmd2(X, T, bandwidth=sel.bandwidth_, weights_y=w), abs=1e-6)
    assert s.mmd2 == pytest.approx(mmd2(X, T, bandwidth=sel.reference_bandwidth_, weights_y=w), abs=1e-6)
    # ignoring the weights would give a different value
    assert s.mmd2 != pytest.approx(mmd2(X, T, bandwidth=sel.bandwidth_), abs=1e-6)


def test_a_list_of_queries_gives_one_shared_set(hashing_pool: DemoPool) -> None:
    sel = Selector(k=4, candidates=30).fit(hashing_pool)
    queries = ["the coach and the team", "the stock market and the bank", "the atom and the cell"]
    shared = sel.select(queries)
    assert len(shared) == 4 and shared.target_size == 3 and shared.query is None
    # a representative set of a three-topic batch covers more than one topic
    assert len(set(shared.labels)) >= 2
    weighted = sel.select(queries, weights=[1.0, 0.0, 0.0])
    single = sel.select(queries[0])
    assert set(weighted.indices) == set(single.indices)


def test_target_errors(hashing_pool: DemoPool) -> None:
    sel = Selector(k=2).fit(hashing_pool)
    with pytest.raises(InvalidInputError, match="query_weight"):
        sel.select("a", query_weight=1.5)
    with pytest.raises(InvalidInputError, match="query_weight=0"):
        sel.select("a", query_weight=0.0)
    with pytest.raises(InvalidInputError, match="n_neighbors"):
        sel.select("a", target_pool=["b"], n_neighbors=0)
    with pytest.raises(InvalidTypeError, match="context"):
        sel.select("a", context="not a list")
    with pytest.raises(InvalidInputError, match="context"):
        sel.select("a", context=[])
    with pytest.raises(InvalidInputError, match="dimension"):
        sel.select("a", context=np.ones((2, 5)))
    with pytest.raises(InvalidInputError, match="weights"):
        sel.select(["a", "b"], weights=[1.0])


@pytest.mark.slow
def test_neighbourhood_target_with_the_real_embedder(st_embedder) -> None:
    demos = [
        ("a wonderful, moving film", "positive"),
        ("a dull and lifeless movie", "negative"),
        ("the stock market fell sharply today", "business"),
        ("shares rallied after the earnings report", "business"),
        ("an uplifting story with great acting", "positive"),
        ("the plot was boring and predictable", "negative"),
    ]
    pool = DemoPool([{"input": t, "output": y} for t, y in demos], embedder=st_embedder)
    unlabeled = ["a beautiful film", "terrible acting", "bank profits rose", "a brilliant movie"]
    sel = Selector(k=2).fit(pool)
    s = sel.select("what a great movie", target_pool=unlabeled, n_neighbors=2, query_weight=0.5)
    assert s.target_size == 3
    assert set(s.labels) <= {"positive", "negative"}
    assert "positive" in s.labels
