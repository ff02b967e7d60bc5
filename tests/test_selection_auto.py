"""k='auto': the Selector asks promptkd.bounds.BoundEstimator for the budget along the herding path."""

from __future__ import annotations

import pytest

from promptkd import DemoPool, Selector
from promptkd.bounds import BoundEstimator
from promptkd.exceptions import InvalidInputError


def test_auto_k_uses_the_budget(hashing_pool: DemoPool) -> None:
    default = Selector(k="auto", k_max=8, candidates=30).fit(hashing_pool).select("the coach and the team")
    assert default.budget is not None and len(default) == default.budget.k_star
    # the budget herds with an RBF on the embeddings: a Selector with that kernel and no constraints
    # selects the budget's herding prefix
    sel = Selector(k="auto", k_max=8, candidates=30, kernel="rbf").fit(hashing_pool)
    s = sel.select("the coach and the team")
    assert s.budget is not None and 1 <= s.budget.k_star <= 8
    assert len(s) == s.budget.k_star and s.budget.k_star == default.budget.k_star
    assert set(s.indices) == set(s.budget.indices[: s.budget.k_star])
    assert s.to_dict()["budget"]["k_star"] == s.budget.k_star
    assert f"budget: k*={s.budget.k_star}" in s.explain()
    batch = sel.select_batch(["the coach and the team", "profit at the bank"])
    assert batch[0].indices == s.indices and len(batch[1]) == batch[1].budget.k_star


def test_auto_k_with_a_token_budget_and_a_configured_estimator(hashing_pool: DemoPool) -> None:
    def words(text: str) -> int:
        return len(text.split())

    est = BoundEstimator(C=5.0, candidates=30)
    sel = Selector(k="auto", k_max=8, max_tokens=45, tokenizer=words, token_cost=0.01, bound_estimator=est)
    s = sel.fit(hashing_pool).select("the coach and the team")
    assert len(s) <= s.budget.k_star and s.tokens <= 45
    assert sel.estimator_ is est


def test_auto_k_errors(hashing_pool: DemoPool) -> None:
    with pytest.raises(InvalidInputError, match="'auto'"):
        Selector(k="many").fit(hashing_pool)
    from promptkd.selection.baselines import TopKSelector

    with pytest.raises(InvalidInputError, match="k='auto' is not supported by TopKSelector"):
        TopKSelector(k=3).fit(hashing_pool).select("a goal", k="auto")
    # a fixed-k Selector builds no estimator, so a per-call k='auto' says how to get one
    sel = Selector(k=3).fit(hashing_pool)
    assert sel.estimator_ is None
    with pytest.raises(InvalidInputError, match="fitted with k=3"):
        sel.select("a goal", k="auto")
    # with a budget setting the estimator is built in fit, and a per-call k='auto' uses it
    est = BoundEstimator(candidates=30)
    sel = Selector(k=3, bound_estimator=est).fit(hashing_pool)
    assert sel.estimator_ is est
    s = sel.select("a goal", k="auto")
    assert len(s) == s.budget.k_star
    assert Selector(k=3, token_cost=0.01).fit(hashing_pool).estimator_ is not None


def test_auto_k_budget_stays_inside_the_where_filter(hashing_pool: DemoPool) -> None:
    sel = Selector(k="auto", k_max=6, candidates=30, where={"topic": "sports"}).fit(hashing_pool)
    s = sel.select("profit at the bank and the market")  # a finance query, but only sports demos are allowed
    allowed = {i for i, d in enumerate(hashing_pool) if d.metadata["topic"] == "sports"}
    assert set(s.budget.indices) <= allowed
    assert set(s.indices) <= allowed


def test_auto_k_estimator_comes_from_the_registered_factory(hashing_pool: DemoPool) -> None:
    from promptkd.selection.budget import default_estimator_factory, set_default_estimator_factory

    assert default_estimator_factory() is BoundEstimator  # promptkd.bounds registers it at import
    built: list[dict] = []

    def factory(**kwargs):
        built.append(kwargs)
        return BoundEstimator(**kwargs)

    previous = set_default_estimator_factory(factory)
    try:
        sel = Selector(k="auto", k_max=6, candidates=30).fit(hashing_pool)
        assert isinstance(sel.estimator_, BoundEstimator)
        assert built == [{"kernel": "rbf", "bandwidth": sel.bandwidth_, "candidates": 30, "seed": 0}]
        set_default_estimator_factory(None)
        # without a factory a fixed k still works; k='auto' names the ways out
        fixed = Selector(k=3, candidates=30).fit(hashing_pool)
        assert len(fixed.select("the coach and the team")) == 3
        with pytest.raises(InvalidInputError, match="bound_estimator="):
            fixed.select("the coach and the team", k="auto")
        with pytest.raises(InvalidInputError, match="bound_estimator="):
            Selector(k="auto", candidates=30).fit(hashing_pool).select("the coach and the team")
        # an estimator passed by the user needs no factory
        est = BoundEstimator(candidates=30)
        assert Selector(k="auto", bound_estimator=est).fit(hashing_pool).estimator_ is est
    finally:
        set_default_estimator_factory(previous)
    assert default_estimator_factory() is BoundEstimator
