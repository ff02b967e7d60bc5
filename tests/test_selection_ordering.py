"""Ordering policies are separate, swappable objects; the selector never branches on them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptkd import Demo, DemoPool, Selector
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.selection.ordering import (
    InterleaveLabelsOrder,
    OrderContext,
    apply_ordering,
    available_orderings,
    get_ordering,
    register_ordering,
)


def context_of(labels: list[str], sims: list[float]) -> OrderContext:
    demos = tuple(Demo(input=f"d{i}", output=lab, id=f"d{i}") for i, lab in enumerate(labels))
    return OrderContext(demos, tuple(sims), None)


@settings(max_examples=200, deadline=None)
@given(
    labels=st.lists(st.sampled_from("abcd"), min_size=1, max_size=12),
    seed=st.integers(0, 1000),
)
def test_interleave_labels_never_ends_with_a_run(labels: list[str], seed: int) -> None:
    sims = np.random.default_rng(seed).random(len(labels)).tolist()
    ctx = context_of(labels, sims)
    perm = apply_ordering(InterleaveLabelsOrder(), ctx)
    out = [labels[i] for i in perm]
    assert sorted(out) == sorted(labels)
    if len(set(labels)) >= 2:
        assert out[-1] != out[-2]
    most = max(labels.count(x) for x in set(labels))
    if most <= (len(labels) + 1) // 2:  # a perfect alternation exists: it is found
        assert all(a != b for a, b in itertools.pairwise(out))
    # within one label, demos keep the "most similar later" order
    for lab in set(labels):
        got = [sims[i] for i in perm if labels[i] == lab]
        assert got == sorted(got)


def test_builtin_policies(hashing_pool: DemoPool) -> None:
    query = "the coach and the market"
    base = Selector(k=6, order="herding").fit(hashing_pool).select(query)
    assert base.selection_rank == tuple(range(6))
    for name in ("similarity", "reverse", "random", "interleave_labels"):
        s = Selector(k=6, order=name).fit(hashing_pool).select(query)
        assert set(s.indices) == set(base.indices)  # the set does not depend on the order
        if name == "similarity":
            assert list(s.scores) == sorted(s.scores)
        if name == "reverse":
            assert s.selection_rank == tuple(range(5, -1, -1))
        if name == "interleave_labels" and len(set(s.labels)) > 1:
            assert s.labels[-1] != s.labels[-2]
    assert {"similarity", "herding", "reverse", "random", "interleave_labels"} <= set(available_orderings())


def test_callable_hook_sees_the_whole_context(hashing_pool: DemoPool) -> None:
    seen: list[OrderContext] = []

    def shortest_last(ctx: OrderContext) -> list[int]:
        seen.append(ctx)
        return sorted(range(len(ctx.demos)), key=lambda i: -len(ctx.demos[i].input))

    sel = Selector(k=4, order=shortest_last).fit(hashing_pool)
    s = sel.select("the coach and the team", context=["a goal"])
    ctx = seen[-1]
    assert ctx.query == "the coach and the team"
    assert ctx.embeddings.shape == (4, 128) and ctx.target_embeddings.shape == (2, 128)
    assert ctx.target_weights.sum() == pytest.approx(1.0)
    assert [hashing_pool[i].id for i in ctx.indices] == [d.id for d in ctx.demos]
    assert [len(d.input) for d in s.demos] == sorted((len(d.input) for d in s.demos), reverse=True)


def test_register_and_errors(hashing_pool: DemoPool) -> None:
    class LabelSorted:
        name = "label_sorted"

        def __call__(self, ctx: OrderContext) -> list[int]:
            return sorted(range(len(ctx.demos)), key=lambda i: ctx.demos[i].output)

    register_ordering("label_sorted_test", LabelSorted, overwrite=True)
    s = Selector(k=5, order="label_sorted_test").fit(hashing_pool).select("the coach and the bank")
    assert list(s.labels) == sorted(s.labels)
    with pytest.raises(InvalidInputError, match="already registered"):
        register_ordering("label_sorted_test", LabelSorted)
    with pytest.raises(InvalidInputError, match="not known"):
        get_ordering("alphabetical")
    with pytest.raises(InvalidTypeError, match="policy name or a callable"):
        get_ordering(3)
    bad = Selector(k=3, order=lambda ctx: [0, 0, 1]).fit(hashing_pool)
    with pytest.raises(InvalidInputError, match="permutation"):
        bad.select("a goal")
