"""Baseline selectors: each one's defining property, the shared Selection contract, errors."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptkd import DemoPool
from promptkd.embeddings import HashingEmbedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError, NotFittedError, PromptKDError
from promptkd.integrations import make_selector
from promptkd.kernels import mmd2
from promptkd.selection import Selection
from promptkd.selection.baselines import (
    BM25Selector,
    DPPSelector,
    MMRSelector,
    RandomSelector,
    TopKSelector,
    VoteKSelector,
    top_indices,
)

ALL = [RandomSelector, TopKSelector, MMRSelector, DPPSelector, VoteKSelector, BM25Selector]
VECTOR = [RandomSelector, TopKSelector, MMRSelector, DPPSelector, VoteKSelector]


def unit_rows(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def vector_pool(n: int = 60, d: int = 16, seed: int = 0) -> DemoPool:
    rng = np.random.default_rng(seed)
    X = unit_rows(rng.normal(size=(n, d))).astype(np.float32)
    demos = [{"input": f"item {i}", "output": f"l{i % 3}"} for i in range(n)]
    return DemoPool(demos, embeddings=X)


def cosine_to(pool: DemoPool, q: np.ndarray) -> np.ndarray:
    E = unit_rows(np.asarray(pool.embeddings, dtype=np.float64))
    return E @ (q / np.linalg.norm(q))


# ---------------------------------------------------------------- shared contract
@pytest.mark.parametrize("cls", ALL)
def test_every_baseline_returns_a_valid_selection(cls, hashing_pool):
    sel = cls(k=5).fit(hashing_pool)
    query = "finance news: the stock market and the bank"
    s = sel.select(query)
    assert isinstance(s, Selection)
    assert s.method == cls.method and len(s) == 5
    assert len(set(s.indices)) == 5 and all(0 <= i < len(hashing_pool) for i in s.indices)
    assert [d.id for d in s.demos] == [hashing_pool[i].id for i in s.indices]
    assert sorted(s.selection_rank) == list(range(5))
    # scores are cosine similarities to the query, mmd2 uses the selector's kernel and bandwidth
    q = hashing_pool.encode_texts([query])[0]
    np.testing.assert_allclose(s.scores, cosine_to(hashing_pool, q)[list(s.indices)], atol=1e-5)
    X = hashing_pool.embeddings[list(s.indices)]
    expected = mmd2(X, q[None, :], kernel="rbf", bandwidth=sel.bandwidth_)
    assert s.mmd2 == pytest.approx(expected, rel=1e-5)
    assert len(s.mmd2_path) == 5 and s.mmd2_path[-1] == pytest.approx(s.mmd2, abs=1e-6)
    in_selection_order = [i for _, i in sorted(zip(s.selection_rank, s.indices, strict=True))]
    for t in range(1, 6):
        prefix = hashing_pool.embeddings[in_selection_order[:t]]
        assert s.mmd2_path[t - 1] == pytest.approx(mmd2(prefix, q[None, :], bandwidth=sel.bandwidth_), rel=1e-5)
    # the public helper gives the same number for another target (no stale reuse)
    other = sel._target("science news: the galaxy")
    direct = mmd2(X, other.embeddings, bandwidth=sel.bandwidth_)
    assert sel.target_mmd2(list(s.indices), other) == pytest.approx(direct, rel=1e-5)
    assert s.gains is None and s.query == query
    assert s.to_dict()["demos"][0]["running_mmd2"] is not None
    assert "MMD2" in s.explain()


@pytest.mark.parametrize("cls", ALL)
def test_select_batch_matches_select(cls, hashing_pool):
    sel = cls(k=4, batch_chunk=2).fit(hashing_pool)
    queries = ["sports match and the goal", "a protein in the cell", "bank profit", "coach of the team", "atoms"]
    batch = sel.select_batch(queries)
    singles = [sel.select(q) for q in queries]
    assert [b.indices for b in batch] == [s.indices for s in singles]
    for b, s in zip(batch, singles, strict=True):
        assert b.mmd2 == pytest.approx(s.mmd2, abs=1e-6)
        np.testing.assert_allclose(b.scores, s.scores, atol=1e-5)


@pytest.mark.parametrize("cls", VECTOR)
def test_select_batch_with_embedding_matrix(cls):
    pool = vector_pool()
    Q = unit_rows(np.random.default_rng(5).normal(size=(7, 16))).astype(np.float32)
    sel = cls(k=3, batch_chunk=3).fit(pool)
    batch = sel.select_batch(Q)
    assert [b.indices for b in batch] == [sel.select(q).indices for q in Q]
    assert sel.select_batch([]) == []


@pytest.mark.parametrize("cls", ALL)
def test_async_variants(cls, hashing_pool):
    sel = cls(k=3).fit(hashing_pool)
    one = asyncio.run(sel.aselect("the bank and the shares"))
    many = asyncio.run(sel.aselect_batch(["the bank and the shares", "the galaxy"]))
    assert one.indices == many[0].indices and len(many) == 2


# ---------------------------------------------------------------- defining properties
def test_topk_returns_the_k_highest_cosine():
    pool = vector_pool(n=200, d=24)
    rng = np.random.default_rng(1)
    sel = TopKSelector(k=8, order="herding").fit(pool)
    for _ in range(5):
        q = rng.normal(size=24).astype(np.float32)
        cos = cosine_to(pool, q)
        s = sel.select(q)
        assert list(s.indices) == list(np.argsort(-cos)[:8])  # herding order = selection order = best first
        assert min(s.scores) >= np.sort(cos)[-8] - 1e-6


def test_topk_default_order_puts_most_similar_last(hashing_pool):
    s = TopKSelector(k=4).fit(hashing_pool).select("science news: the cell and the atom")
    assert list(s.scores) == sorted(s.scores)


def test_topk_float16_pool_and_batch_chunks_agree():
    pool = vector_pool(n=100)
    half = DemoPool(list(pool.demos), embeddings=pool.embeddings.astype(np.float16))
    Q = unit_rows(np.random.default_rng(2).normal(size=(9, 16))).astype(np.float32)
    a = TopKSelector(k=5, batch_chunk=1).fit(half).select_batch(Q)
    b = TopKSelector(k=5, batch_chunk=64).fit(half).select_batch(Q)
    assert [x.indices for x in a] == [y.indices for y in b]
    full = TopKSelector(k=5).fit(pool).select_batch(Q)
    overlap = np.mean([len(set(x.indices) & set(y.indices)) / 5 for x, y in zip(a, full, strict=True)])
    assert overlap >= 0.8  # float16 rounding may swap near-ties only


def test_top_indices_breaks_ties_by_index():
    scores = np.array([0.5, 0.9, 0.5, 0.5, 0.1])
    assert top_indices(scores, 3).tolist() == [1, 0, 2]
    assert top_indices(scores, 10).tolist() == [1, 0, 2, 3, 4]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), k=st.integers(1, 10))
def test_mmr_with_diversity_zero_equals_topk(seed, k):
    pool = vector_pool(n=40, d=8, seed=seed % 7)
    q = np.random.default_rng(seed).normal(size=8)
    top = TopKSelector(k=k, order="herding").fit(pool).select(q)
    mmr = MMRSelector(k=k, diversity=0.0, candidates=20, order="herding").fit(pool).select(q)
    assert mmr.indices == top.indices


def test_mmr_higher_diversity_is_more_diverse():
    pool = vector_pool(n=300, d=8)
    q = np.random.default_rng(3).normal(size=8)
    E = unit_rows(pool.embeddings.astype(np.float64))

    def mean_pairwise(idx):
        S = E[list(idx)] @ E[list(idx)].T
        return S[np.triu_indices(len(idx), 1)].mean()

    rel = MMRSelector(k=6, diversity=0.0).fit(pool).select(q)
    div = MMRSelector(k=6, diversity=0.8).fit(pool).select(q)
    assert mean_pairwise(div.indices) < mean_pairwise(rel.indices)


def duplicated_pool() -> DemoPool:
    rng = np.random.default_rng(4)
    base = unit_rows(rng.normal(size=(15, 12))).astype(np.float32)
    X = np.concatenate([base, base, base])  # every vector three times
    demos = [{"input": f"dup {i}", "output": "x"} for i in range(len(X))]
    return DemoPool(demos, embeddings=X)


@pytest.mark.parametrize("k", [2, 5, 12, 15])
def test_dpp_never_picks_exact_duplicates(k):
    pool = duplicated_pool()
    E = pool.embeddings
    sel = DPPSelector(k=k, candidates=45).fit(pool)
    for q in np.random.default_rng(k).normal(size=(4, 12)):
        idx = sel.select(q).indices
        rows = {E[i].tobytes() for i in idx}
        assert len(rows) == k


def test_dpp_fills_without_duplicates_when_the_greedy_stalls(caplog):
    pool = duplicated_pool()
    # few candidates: the top 9 by similarity hold only 3 distinct vectors (each three times)
    sel = DPPSelector(k=5, candidates=9).fit(pool)
    q = pool.embeddings[0]
    idx = sel.select(q).indices
    assert len({pool.embeddings[i].tobytes() for i in idx}) == 5
    # fewer distinct vectors than k: duplicates are unavoidable and a warning says so
    tiny = DemoPool([{"input": f"t{i}", "output": "x"} for i in range(4)], embeddings=np.repeat(np.eye(2), 2, axis=0))
    with caplog.at_level("WARNING", logger="promptkd.selection.baselines"):
        assert len(set(DPPSelector(k=3).fit(tiny).select(np.array([1.0, 0.0])).indices)) == 3
    assert "distinct" in caplog.text


@pytest.mark.parametrize("seed", range(4))
def test_dpp_with_k_one_equals_topk(seed):
    pool = vector_pool(n=80, seed=seed)
    q = np.random.default_rng(seed + 10).normal(size=16)
    assert DPPSelector(k=1).fit(pool).select(q).indices == TopKSelector(k=1).fit(pool).select(q).indices


def test_dpp_fast_greedy_matches_naive_log_det_greedy():
    pool = vector_pool(n=50, d=10, seed=8)
    q = np.random.default_rng(9).normal(size=10)
    scale, k = 0.3, 6
    s = DPPSelector(k=k, candidates=50, diversity=scale, order="herding").fit(pool).select(q)
    # naive greedy on the explicit kernel L = diag(q) S diag(q)
    E = unit_rows(pool.embeddings.astype(np.float64))
    r = (1 + E @ (q / np.linalg.norm(q))) / 2
    quality = np.exp((r - r.max()) / (2 * scale))
    L = quality[:, None] * (E @ E.T) * quality[None, :]
    chosen: list[int] = []
    for _ in range(k):
        best, best_val = -1, -np.inf
        for j in range(len(E)):
            if j in chosen:
                continue
            idx = [*chosen, j]
            val = np.linalg.slogdet(L[np.ix_(idx, idx)])[1]
            if val > best_val:
                best, best_val = j, val
        chosen.append(best)
    assert list(s.indices) == chosen


def test_random_is_reproducible_and_seed_dependent(hashing_pool):
    q = "sports news: the coach of the team"
    a = RandomSelector(k=5, seed=3).fit(hashing_pool)
    b = RandomSelector(k=5, seed=3).fit(hashing_pool)
    assert a.select(q).indices == b.select(q).indices == a.select(q).indices
    draws = {RandomSelector(k=5, seed=s).fit(hashing_pool).select(q).indices for s in range(6)}
    assert len(draws) > 1
    # per-query draws: different queries get different sets, batch equals single
    per_query = {a.select(f"query number {i}").indices for i in range(6)}
    assert len(per_query) > 1
    assert [s.indices for s in a.select_batch([q, "other"])] == [a.select(q).indices, a.select("other").indices]


def test_random_is_roughly_uniform():
    pool = vector_pool(n=20)
    sel = RandomSelector(k=4).fit(pool)
    counts = np.zeros(20)
    for q in np.random.default_rng(0).normal(size=(500, 16)):
        for i in sel.select(q).indices:
            counts[i] += 1
    expected = 500 * 4 / 20
    assert np.all(np.abs(counts - expected) < 0.5 * expected)


def test_votek_set_is_query_independent(hashing_pool):
    sel = VoteKSelector(k=6, graph_degree=5).fit(hashing_pool)
    sets = {frozenset(sel.select(q).indices) for q in ["the goal", "the bank", "a galaxy", "protein energy"]}
    assert len(sets) == 1
    assert set(sel.select("x", k=3).indices) <= next(iter(sets))  # prefix-consistent


def naive_votek(graph: np.ndarray, k: int, rho: float) -> list[int]:
    n = graph.shape[0]
    chosen: list[int] = []
    for _ in range(k):
        best, best_score = -1, -np.inf
        for u in range(n):
            if u in chosen:
                continue
            score = 0.0
            for v in range(n):
                if v in chosen or u not in graph[v]:
                    continue
                score += rho ** -len(set(graph[v]) & set(chosen))
            if score > best_score:
                best, best_score = u, score
        chosen.append(best)
    return chosen


def test_votek_greedy_matches_the_naive_definition():
    pool = vector_pool(n=40, d=6, seed=2)
    sel = VoteKSelector(k=8, graph_degree=5, discount=10.0).fit(pool)
    assert list(sel.representatives(8)) == naive_votek(sel.graph_, 8, 10.0)
    # graph: each node's out-neighbours are its 5 nearest others by cosine
    E = unit_rows(pool.embeddings.astype(np.float64))
    S = E @ E.T
    np.fill_diagonal(S, -np.inf)
    for v in range(40):
        assert set(sel.graph_[v]) == set(np.argsort(-S[v])[:5])


def test_votek_covers_separated_clusters():
    rng = np.random.default_rng(0)
    centres = unit_rows(rng.normal(size=(4, 32)))
    X = np.concatenate([unit_rows(c + 0.05 * rng.normal(size=(25, 32))) for c in centres]).astype(np.float32)
    pool = DemoPool([{"input": f"c{i // 25} {i}", "output": str(i // 25)} for i in range(100)], embeddings=X)
    s = VoteKSelector(k=4, graph_degree=10).fit(pool).select(X[0])
    assert sorted(d.output for d in s.demos) == ["0", "1", "2", "3"]


def test_bm25_ranks_lexical_matches_first():
    texts = [
        "the weather is sunny today",
        "quarterly earnings beat expectations",
        "a volcano erupted near the village",
        "earnings and revenue rose this quarter",
        "the team won the final match",
        "volcano ash grounded flights",
    ]
    pool = DemoPool([{"input": t, "output": "x"} for t in texts], embedder=HashingEmbedder(dim=64))
    sel = BM25Selector(k=2, order="herding").fit(pool)
    assert set(sel.select("volcano eruption").indices) == {2, 5}
    s = sel.select("earnings report")
    assert set(s.indices) == {1, 3}
    scores = sel.bm25_scores(sel._target("earnings report"))
    assert np.all(scores[[1, 3]] > 0) and np.all(scores[[0, 2, 4, 5]] == 0)


def test_real_embedder_topk_dpp_and_bm25(st_embedder):
    texts = [
        "a moving and beautifully acted film",
        "the movie was a tedious, boring mess",
        "stocks fell sharply after the rate decision",
        "the central bank raised interest rates",
        "the striker scored twice in the final",
        "the goalkeeper saved a late penalty",
        "a delightful comedy with a great cast",
        "inflation data worried bond markets",
    ]
    pool = DemoPool([{"input": t, "output": "x"} for t in texts], embedder=st_embedder)
    query = "an enjoyable film with wonderful acting"
    top = TopKSelector(k=2).fit(pool).select(query)
    assert set(top.indices) <= {0, 1, 6}
    dpp = DPPSelector(k=3).fit(pool).select(query)
    assert len(set(dpp.indices)) == 3 and dpp.mmd2 >= 0
    bm = BM25Selector(k=1).fit(pool).select("interest rates")
    assert bm.indices == (3,)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", ALL)
def test_bad_inputs_raise_promptkd_errors(cls, hashing_pool):
    with pytest.raises(NotFittedError):
        cls(k=2).select("q")
    with pytest.raises(InvalidTypeError):
        cls(k=2).fit("not a pool")
    with pytest.raises(InvalidInputError):
        cls(k=0).fit(hashing_pool)
    sel = cls(k=2).fit(hashing_pool)
    with pytest.raises(InvalidInputError):
        sel.select("q", k=len(hashing_pool) + 1)
    with pytest.raises(InvalidTypeError):
        sel.select_batch("a single string")
    with pytest.raises(InvalidInputError):
        sel.select_batch(["ok", "  "])
    with pytest.raises(PromptKDError):
        sel.select("")
    if cls is not BM25Selector:
        with pytest.raises(InvalidInputError):
            sel.select(np.ones(7))  # wrong dimension
    with pytest.raises(InvalidInputError):
        cls(k=2, batch_chunk=0).fit(hashing_pool)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (MMRSelector, {"diversity": 1.5}),
        (MMRSelector, {"candidates": 0}),
        (DPPSelector, {"diversity": 0.0}),
        (DPPSelector, {"candidates": -1}),
        (VoteKSelector, {"discount": 1.0}),
        (VoteKSelector, {"graph_degree": 0}),
        (BM25Selector, {"b": 2.0}),
    ],
)
def test_bad_settings_raise_at_fit(cls, kwargs, hashing_pool):
    with pytest.raises(InvalidInputError) as err:
        cls(k=2, **kwargs).fit(hashing_pool)
    assert next(iter(kwargs)) in str(err.value)


def test_bm25_rejects_embedding_queries(hashing_pool):
    sel = BM25Selector(k=2).fit(hashing_pool)
    with pytest.raises(InvalidTypeError, match="text"):
        sel.select(hashing_pool.embeddings[0])
    with pytest.raises(InvalidTypeError, match="text"):
        sel.select_batch(hashing_pool.embeddings[:2])


def test_votek_representatives_checks_k(hashing_pool):
    sel = VoteKSelector(k=2, graph_degree=3).fit(hashing_pool)
    with pytest.raises(InvalidInputError):
        sel.representatives(len(hashing_pool) + 1)
    with pytest.raises(InvalidTypeError):
        sel.representatives(2.5)


def test_selectors_are_thread_safe(hashing_pool):
    from concurrent.futures import ThreadPoolExecutor

    queries = [f"{a} and {b}" for a, b in itertools.product(["goal", "bank", "cell"], ["team", "stock", "atom"])]
    for cls in (TopKSelector, VoteKSelector, RandomSelector):
        sel = cls(k=3).fit(hashing_pool)
        expected = [sel.select(q).indices for q in queries]
        with ThreadPoolExecutor(4) as ex:
            got = list(ex.map(lambda q, s=sel: s.select(q).indices, queries))
        assert got == expected


def test_votek_old_keyword_names_still_work_and_warn(hashing_pool) -> None:
    with pytest.warns(DeprecationWarning, match="graph_degree"):
        old = VoteKSelector(k=3, n_neighbors=4)
    with pytest.warns(DeprecationWarning, match="discount"):
        assert VoteKSelector(k=3, rho=5.0).discount == 5.0
    assert old.graph_degree == 4 and "n_neighbors" not in old.get_params()
    new = VoteKSelector(k=3, graph_degree=4).fit(hashing_pool)
    assert old.fit(hashing_pool).select("a goal").indices == new.select("a goal").indices
    with pytest.raises(TypeError, match="unexpected keyword"):
        VoteKSelector(k=3, neighbours=4)


def test_trade_off_old_keywords_still_work_and_warn(hashing_pool) -> None:
    with pytest.warns(DeprecationWarning, match="use diversity="):
        old_mmr = MMRSelector(k=3, lambda_=0.25)
    assert old_mmr.diversity == 0.75 and "lambda_" not in old_mmr.get_params()
    with pytest.warns(DeprecationWarning, match="use diversity="):
        old_dpp = DPPSelector(k=3, scale=0.4)
    assert old_dpp.diversity == 0.4 and "scale" not in old_dpp.get_params()
    for old, new in ((old_mmr, MMRSelector(k=3, diversity=0.75)), (old_dpp, DPPSelector(k=3, diversity=0.4))):
        assert old.fit(hashing_pool).select("a goal").indices == new.fit(hashing_pool).select("a goal").indices
    with pytest.raises(InvalidInputError, match="both"):
        MMRSelector(k=3, lambda_=0.5, diversity=0.5)
    with pytest.warns(DeprecationWarning):  # saved configs and option dicts with the old names still load
        assert make_selector("dpp", k=2, scale=0.2).diversity == 0.2
