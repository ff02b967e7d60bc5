"""The herding Selector: lower MMD than random subsets, sklearn-style fitting, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from promptkd import DemoPool, NotFittedError, Selection, Selector
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.kernels import mmd2

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "data" / "demos.jsonl"


def mixture_pool(n: int = 240, d: int = 16, seed: int = 0) -> tuple[DemoPool, np.ndarray]:
    """Pool of n points from 4 Gaussian clusters, with precomputed embeddings."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(4, d))
    labels = rng.integers(0, 4, size=n)
    E = centers[labels] + rng.normal(size=(n, d))
    demos = [{"input": f"item {i}", "output": f"c{labels[i]}"} for i in range(n)]
    return DemoPool(demos, embeddings=E), centers


@pytest.mark.parametrize("kernel", ["rbf", "laplacian", "imq"])
def test_herding_beats_random_subsets_of_the_same_size(kernel: str) -> None:
    pool, centers = mixture_pool()
    rng = np.random.default_rng(1)
    E = pool.embeddings
    for trial in range(4):
        # the target mixes two clusters, so matching it needs a balanced, spread set
        target = np.vstack(
            [centers[trial % 4] + rng.normal(size=(6, 16)), centers[(trial + 1) % 4] + rng.normal(size=(6, 16))]
        )
        sel = Selector(k=6, kernel=kernel, candidates=240, seed=0).fit(pool).select(target)
        bw = sel.bandwidth
        random_values = [
            mmd2(E[rng.choice(len(pool), 6, replace=False)], target, kernel=kernel, bandwidth=bw) for _ in range(200)
        ]
        assert sel.objective < np.percentile(random_values, 5), (sel.objective, np.percentile(random_values, 5))
        # the objective is the biased MMD2 of the chosen rows under the selector's kernel, recomputed independently
        assert sel.objective == pytest.approx(mmd2(E[list(sel.indices)], target, kernel=kernel, bandwidth=bw), abs=1e-6)
        # Selection.mmd2 is the same quantity under the pool's reference RBF
        ref = mmd2(E[list(sel.indices)], target, kernel="rbf", bandwidth=sel.reference_bandwidth)
        assert sel.mmd2 == pytest.approx(ref, abs=1e-6)


def test_herding_beats_topk_similarity_on_a_two_cluster_target() -> None:
    pool, centers = mixture_pool(seed=3)
    target = np.vstack([centers[0], centers[0], centers[2], centers[2]])
    sel = Selector(k=4, candidates=240).fit(pool).select(target)
    # covers both target clusters, unlike the k nearest neighbours of the target mean
    assert {pool[i].output for i in sel.indices} == {"c0", "c2"}


def test_selection_structure_and_order(hashing_pool: DemoPool) -> None:
    sel = Selector(k=5).fit(hashing_pool).select("the coach praised the team after the match")
    assert isinstance(sel, Selection) and len(sel) == 5 == sel.k
    assert len(set(sel.indices)) == 5
    assert [hashing_pool[i].id for i in sel.indices] == list(sel.ids)
    # the default order: the demos of the label the query's neighbours vote for last, most similar at the end
    assert sel.demos[-1].output == "sports"
    last_block = [s for d, s in zip(sel.demos, sel.scores, strict=True) if d.output == "sports"]
    assert last_block == sorted(last_block) and sel.scores[-1] == max(last_block)
    by_similarity = Selector(k=5, order="similarity").fit(hashing_pool).select("the coach praised the team")
    assert list(by_similarity.scores) == sorted(by_similarity.scores)  # most target-similar last
    assert sel.mmd2 >= 0 and len(sel.mmd2_path) == 5
    d = sel.to_dict()
    assert d["indices"] == list(sel.indices) and len(d["demos"]) == 5
    assert "MMD2" in sel.explain()
    assert sel.render(query="a new match").endswith("Input: a new match\nOutput:")


def test_unfitted_selector_raises_not_fitted(hashing_pool: DemoPool) -> None:
    sel = Selector(k=2)
    with pytest.raises(NotFittedError, match="fit"):
        sel.select("x")
    with pytest.raises(NotFittedError):
        sel.select_batch(["x"])
    assert not any(name.endswith("_") and not name.startswith("_") for name in vars(sel))
    assert sel.fit(hashing_pool) is sel
    learned = {name for name in vars(sel) if name.endswith("_") and not name.startswith("_")}
    assert {"bandwidth_", "pool_", "n_demos_"} <= learned
    assert sel.n_demos_ == 30 and sel.bandwidth_ > 0


def test_k_larger_than_pool_is_rejected_at_select(hashing_pool: DemoPool) -> None:
    sel = Selector(k=31).fit(hashing_pool)
    with pytest.raises(InvalidInputError, match="larger than the pool"):
        sel.select("x")
    assert len(sel.select("bank profit", k=30)) == 30


def test_same_seed_same_selection_and_batch_agrees(hashing_pool: DemoPool) -> None:
    queries = ["bank shares and market rates", "the galaxy and the atom", "league season coach"]
    a = Selector(k=4, seed=3).fit(hashing_pool)
    b = Selector(k=4, seed=3).fit(DemoPool(list(hashing_pool), embedder=hashing_pool.embedder))
    singles = [a.select(q) for q in queries]
    assert [s.indices for s in singles] == [b.select(q).indices for q in queries]
    assert [s.indices for s in a.select_batch(queries)] == [s.indices for s in singles]
    assert [s.mmd2 for s in a.select_batch(queries)] == pytest.approx([s.mmd2 for s in singles], abs=1e-9)


def test_real_embedder_selects_the_matching_task(st_embedder) -> None:
    pool = DemoPool.from_jsonl(EXAMPLES, id_key="id", embedder=st_embedder)
    sel = Selector(k=4).fit(pool)
    river = sel.select("Which river flows through Cairo?")
    # the closest demo (placed last) is a question about a river; half the set is questions
    assert river.demos[-1].metadata["task"] == "question_type" and "river" in river.demos[-1].input
    assert sum(d.metadata["task"] == "question_type" for d in river.demos) >= 2
    film = sel.select("The soundtrack was gorgeous but the plot dragged on forever.")
    assert sum(d.metadata["task"] == "sentiment" for d in film.demos) >= 3
    rng = np.random.default_rng(0)
    E = pool.embeddings
    q = pool.encode_texts(["Which river flows through Cairo?"])
    # herding with an RBF on the embeddings beats random sets on that MMD
    rbf = Selector(k=4, kernel="rbf").fit(pool).select("Which river flows through Cairo?")
    rand = [mmd2(E[rng.choice(len(pool), 4, replace=False)], q, bandwidth=rbf.bandwidth) for _ in range(100)]
    assert rbf.objective < min(rand)


def test_similarities_are_cosine_for_unit_and_non_unit_pools():
    import numpy as np

    from promptkd import DemoPool, Selector

    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 8)).astype(np.float32)
    demos = [{"input": f"d{i}", "output": "x"} for i in range(20)]
    q = rng.normal(size=8).astype(np.float32)
    expected = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    for rows in (X * 3.0, X / np.linalg.norm(X, axis=1, keepdims=True)):  # scaled rows, then unit rows
        sel = Selector(k=2).fit(DemoPool(demos, embeddings=rows))
        np.testing.assert_allclose(sel.similarities(sel.make_target(q)), expected, atol=1e-5)


@pytest.mark.parametrize("bad", ["8", 2.5, 0, True])
def test_a_bad_k_fails_where_it_is_written(bad) -> None:
    from promptkd.exceptions import PromptKDError
    from promptkd.selection.baselines import TopKSelector

    for cls in (Selector, TopKSelector):
        with pytest.raises(PromptKDError, match="k must be"):
            cls(k=bad)


def test_selectors_and_the_estimator_clone_like_scikit_learn_estimators() -> None:
    from sklearn.base import clone

    from promptkd import BoundEstimator
    from promptkd.integrations.registry import clone_selector
    from promptkd.selection.baselines import BM25Selector, DPPSelector, MMRSelector, TopKSelector

    for obj in (Selector(k=3, swaps=2), TopKSelector(k=2), MMRSelector(k=2), DPPSelector(k=2), BM25Selector(k=2),
                BoundEstimator(A=0.5, C=2.0)):  # fmt: skip
        twin = clone(obj)
        assert twin is not obj and twin.get_params() == obj.get_params()
    sel = Selector(k=3).set_params(k=5, swaps=1)
    assert (sel.k, sel.swaps) == (5, 1)
    assert clone_selector(sel) is not sel
    with pytest.raises(InvalidInputError, match="no parameter 'kk'"):
        sel.set_params(kk=2)


def test_clone_fails_loudly_instead_of_sharing_the_instance() -> None:
    from promptkd.integrations.registry import clone_selector

    class Odd(Selector):
        def __init__(self, width: int = 3) -> None:
            super().__init__(k=width)  # 'width' is not stored under its own name

    with pytest.raises(InvalidInputError, match=r"settings of Odd: .*'width'"):
        clone_selector(Odd())


def test_nothing_changes_after_fit_and_concurrent_first_selects_agree(hashing_pool: DemoPool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from promptkd.kernels.attention import AttentionKernel

    sel = Selector(k=3, token_cost=0.001).fit(hashing_pool)  # a budget setting: fit builds the estimator
    assert sel.estimator_ is not None
    before = dict(vars(sel))
    queries = ["the coach and the team", "profit and shares", "a protein in the cell"] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        auto = list(pool.map(lambda q: sel.select(q, k="auto").indices, queries))
        fixed = list(pool.map(lambda q: sel.select(q).indices, queries))
    assert auto == [sel.select(q, k="auto").indices for q in queries]
    assert fixed == [sel.select(q).indices for q in queries]
    assert vars(sel).keys() == before.keys() and all(vars(sel)[k] is v for k, v in before.items())
    # a data-dependent kernel learns its bandwidth in fit; a direct call leaves it unfitted
    kern = AttentionKernel(value_dim=2, key_kernel="rbf")
    X = np.random.default_rng(0).normal(size=(5, 4))
    kern(X)
    assert kern.bandwidth_ is None
    pool = DemoPool([{"input": f"d{i}", "output": "x"} for i in range(5)], embeddings=X.astype(np.float32))
    Selector(k=2, kernel=kern).fit(pool)
    assert kern.bandwidth_ is not None


def test_grouped_settings_and_flat_keywords_are_one_setting(hashing_pool) -> None:
    import json

    from sklearn.base import clone

    from promptkd.integrations.registry import make_selector, selector_config, selector_from_config
    from promptkd.selection import BudgetSettings, Constraints, IndexSettings
    from promptkd.selection.settings import SHORTHANDS, SettingsKeywords

    def count(text: str) -> int:
        return len(text.split())

    flat = Selector(k=3, max_tokens=400, tokenizer=count, label_balance="cover", nprobe=8, k_max=12)
    grouped = Selector(
        k=3,
        constraints=Constraints(max_tokens=400, tokenizer=count, label_balance="cover"),
        index=IndexSettings(nprobe=8),
        budget=BudgetSettings(k_max=12),
    )
    assert flat.get_params() == grouped.get_params()
    assert (flat.max_tokens, flat.nprobe, flat.k_max, flat.index_kind) == (400, 8, 12, "auto")
    q = "the bank and the league"
    assert flat.fit(hashing_pool).select(q).indices == grouped.fit(hashing_pool).select(q).indices
    # the stored values are what was passed (scikit-learn's clone checks this), and a copy is equal
    rules = Constraints(dedup_threshold=0.9)
    assert Selector(constraints=rules, index="hnsw").constraints is rules
    twin = clone(flat)
    assert twin.get_params() == flat.get_params() and twin.constraints is not flat.constraints
    # a flat keyword overrides its group's field; set_params and attributes take the flat names too
    assert Selector(constraints=rules, dedup_threshold=0.5).dedup_threshold == 0.5
    sel = Selector(k=2).set_params(where={"lang": "en"}, ef_search=64)
    assert sel.constraints == Constraints(where={"lang": "en"}) and sel.index == IndexSettings(ef_search=64)
    sel.token_cost = 0.0
    assert sel.budget == BudgetSettings(token_cost=0.0)
    # saved configs hold the flat keywords (the format before the groups) and rebuild the same selector
    config = json.loads(json.dumps(selector_config(Selector(k=2, index="exact", nprobe=4, label_balance="cover"))))
    assert config["params"]["index"] == "exact" and config["params"]["nprobe"] == 4
    assert (
        selector_from_config(config).get_params()
        == Selector(k=2, index="exact", nprobe=4, label_balance="cover").get_params()
    )
    assert make_selector("promptkd", k=2, max_tokens=9, tokenizer=count).max_tokens == 9
    assert set(SettingsKeywords.__annotations__) == set(SHORTHANDS)
    with pytest.raises(InvalidTypeError, match="unexpected keyword"):
        Selector(k=2, max_token=9)
    with pytest.raises(InvalidTypeError, match="constraints must be a Constraints"):
        Selector(k=2, constraints={"max_tokens": 9}).fit(hashing_pool)
    with pytest.raises(InvalidInputError, match="index"):
        Selector(k=2, index=IndexSettings(kind="annoy")).fit(hashing_pool)
