"""The LM-aware mode (promptkd.rerank): ConE scores, the rerank, k, the LM cost it records, bad arguments.

The fast tests use a tiny deterministic "copy" LM (a token's logit is 3 x the number of times it was
already read), so scores can be checked against a direct computation; one slow test uses SmolLM2.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from promptkd import Demo, DemoPool, InvalidInputError, InvalidTypeError, NotFittedError, Selector, TopKSelector
from promptkd.embeddings import HashingEmbedder
from promptkd.rendering import PromptTemplate
from promptkd.rerank import LMReranker, query_logprobs, split_prompt
from promptkd.rerank._toy import toy_lm
from promptkd.selection.ordering import LabelPriorOrder

TEMPLATE = "Review: {input}\nSentiment: {output}"
ROOT = Path(__file__).resolve().parents[1]

WORDS = {
    "pos": ["great", "lovely", "moving", "funny", "brilliant", "warm"],
    "neg": ["dull", "slow", "boring", "awful", "flat", "tedious"],
}


def _pool(n_per_label: int = 12) -> DemoPool:
    rng = np.random.default_rng(0)
    records = []
    for label, words in WORDS.items():
        for i in range(n_per_label):
            a, b, c = rng.choice(words, size=3, replace=False)
            records.append({"input": f"a {a} film , {b} and {c} number {i}", "output": label, "id": f"{label}{i}"})
    return DemoPool(records, embedder=HashingEmbedder(dim=64))


def _naive_scores(model, tok, template, demos, query):
    """Each demo's score from its own unpadded full forward pass (no batching, no logits_to_keep)."""
    out = []
    for d in demos:
        ctx, scored = split_prompt(as_tmpl(template), d, query)
        c = tok(ctx, add_special_tokens=True)["input_ids"]
        s = tok(scored, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([c + s])
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float(), -1)[0]
        out.append(float(np.mean([logp[len(c) - 1 + j, t].item() for j, t in enumerate(s)])))
    return np.array(out)


def as_tmpl(t):
    return t if isinstance(t, PromptTemplate) else PromptTemplate.from_string(t)


# ---------------------------------------------------------------------- prompt split and scores
def test_split_prompt_is_the_rendered_prompt_up_to_the_query_text():
    t = PromptTemplate.from_string(TEMPLATE, prefix="Classify the reviews.")
    d = Demo(input="a warm film", output="pos")
    ctx, scored = split_prompt(t, d, "dull and slow")
    full = t.render([d], "dull and slow")
    assert full.startswith(ctx + scored)
    assert scored == " dull and slow" and ctx.endswith("\n\nReview:")
    assert full[len(ctx + scored) :] == "\nSentiment:"
    # a query pattern with no space before {input}
    t2 = PromptTemplate(example="Q:{input}|A:{output}", query="Q:{input}|A:")
    assert split_prompt(t2, d, "why") == ("Q:a warm film|A:pos\n\nQ:", "why")


def test_scores_match_a_direct_unbatched_computation():
    model, tok = toy_lm()
    demos = [
        Demo(input="the plot was dull and slow", output="neg"),
        Demo(input="short", output="pos"),
        Demo(input="a long and winding review with many many words in it", output="pos"),
    ]
    got = query_logprobs((model, tok), demos, "a dull slow plot", TEMPLATE)
    want = _naive_scores(model, tok, TEMPLATE, demos, "a dull slow plot")
    np.testing.assert_allclose(got.scores, want, rtol=1e-6, atol=1e-6)
    assert got.passes == 3 and got.forward_calls == 1 and got.query_tokens == 4
    one_by_one = query_logprobs((model, tok), demos, "a dull slow plot", TEMPLATE, batch_size=1)
    np.testing.assert_allclose(one_by_one.scores, got.scores, rtol=1e-6, atol=1e-6)
    assert one_by_one.forward_calls == 3 and one_by_one.passes == 3
    assert got.tokens == sum(len(tok(split_prompt(as_tmpl(TEMPLATE), d, "x")[0])["input_ids"]) for d in demos) + 3 * 4


def test_a_demo_sharing_the_query_words_scores_higher():
    demos = [Demo(input="stocks rose today", output="biz"), Demo(input="the plot was dull", output="neg")]
    s = query_logprobs(toy_lm(), demos, "dull plot", TEMPLATE).scores
    assert s[1] > s[0]
    assert np.all(s <= 0)


def test_no_demos_costs_nothing():
    out = query_logprobs(toy_lm(), [], "q", TEMPLATE)
    assert out.scores.shape == (0,) and out.passes == 0 and out.forward_calls == 0


# ---------------------------------------------------------------------- the reranker
def test_keeps_the_k_best_candidates_by_lm_score():
    pool = _pool()
    rr = LMReranker(toy_lm(), k=4, n_candidates=10, template=TEMPLATE).fit(pool)
    query = "a dull and boring film"
    cand = rr.selector_.select(query, k=10)
    scores = dict(zip(cand.indices, rr.score(query, list(cand.demos)), strict=True))
    sel = rr.select(query)
    assert len(sel) == 4 and set(sel.indices) <= set(cand.indices)
    kept = [scores[i] for i in sel.indices]
    dropped = [scores[i] for i in cand.indices if i not in sel.indices]
    assert min(kept) >= max(dropped) and len(set(scores.values())) > 2
    assert set(sel.labels) == {"neg"}
    assert sel.method == "promptkd+lm" and sel.query == query
    # selection_rank is the LM rank: rank 0 has the highest score among the kept demos
    by_rank = [sel.demos[sel.selection_rank.index(r)] for r in range(4)]
    kept_scores = rr.score(query, by_rank)
    assert list(kept_scores) == sorted(kept_scores, reverse=True)


def test_k_and_n_candidates():
    pool = _pool(4)  # 8 demos
    rr = LMReranker(toy_lm(), k=3, n_candidates=30, template=TEMPLATE).fit(pool)
    sel = rr.select("a great film")
    assert len(sel) == 3
    assert sel.phases["lm_passes"] == 8.0  # n_candidates is capped at the pool size
    assert len(rr.select("a great film", k=5)) == 5
    with pytest.raises(InvalidInputError, match="larger than the 8 candidates"):
        rr.select("a great film", k=9)
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        rr.select("a great film", k=0)


def test_records_the_lm_cost_and_the_passes_are_the_candidates():
    model, tok = toy_lm()
    rr = LMReranker((model, tok), k=2, n_candidates=10, template=TEMPLATE).fit(_pool())
    before_calls, before_seqs = model.n_calls, model.n_sequences
    sel = rr.select("a funny and warm film")
    assert model.n_calls - before_calls == 1  # one batched forward pass per query
    assert model.n_sequences - before_seqs == 10
    assert sel.phases["lm_passes"] == 10.0 and sel.phases["lm_calls"] == 1.0
    assert sel.phases["lm_tokens"] > 10 and sel.phases["lm_seconds"] >= 0.0
    assert math.isfinite(sel.phases["candidate_mmd2"])
    assert "lm_passes" in sel.to_dict()["phases"] and "lm_passes=10" in sel.explain()
    split = LMReranker((model, tok), k=2, n_candidates=10, template=TEMPLATE, batch_size=4).fit(_pool())
    s2 = split.select("a funny and warm film")
    assert s2.phases["lm_passes"] == 10.0 and s2.phases["lm_calls"] == 3.0
    assert s2.indices == sel.indices


def test_orders_with_the_wrapped_selectors_policy():
    pool = _pool()
    query = "flat awful film moving"
    # the default Selector orders by label_prior_lexical: the demos of the query's likeliest label last,
    # "likeliest" voted by the nearest pool demos with shared words counted
    rr = LMReranker(toy_lm(), k=6, n_candidates=16, template=TEMPLATE).fit(pool)
    sel = rr.select(query)
    from promptkd.selection.labels import neighbour_label_vote

    inner = rr.selector_
    assert isinstance(inner.ordering_, LabelPriorOrder) and inner.ordering_.vote == "embedding+lexical"
    target = inner.make_target(query)
    prior = inner._label_prior(inner.similarities(target), 16, target)
    keys = [(prior.get(d.output, 0.0), s) for d, s in zip(sel.demos, sel.scores, strict=True)]
    assert keys == sorted(keys) and sel.demos[-1].output == "neg"
    # the words decide this query's vote: on embeddings alone it goes the other way
    dense = neighbour_label_vote(inner.similarities(target), inner.label_codes_, len(inner.label_names_), 16)
    assert inner.label_names_[int(np.argmax(dense))] == "pos" and {d.output for d in sel.demos} == {"pos", "neg"}
    query = "a dull film , great and funny"
    sel = rr.select(query)
    # "similarity": most similar last; "herding": the selection order, which here is the LM rank
    by_sim = LMReranker(toy_lm(), selector=Selector(order="similarity"), k=6, n_candidates=16, template=TEMPLATE)
    s_sim = by_sim.fit(pool).select(query)
    assert list(s_sim.scores) == sorted(s_sim.scores)
    by_rank = LMReranker(toy_lm(), selector=Selector(order="herding"), k=6, n_candidates=16, template=TEMPLATE)
    s_rank = by_rank.fit(pool).select(query)
    assert s_rank.selection_rank == tuple(range(6))
    assert set(s_rank.indices) == set(sel.indices) == set(s_sim.indices)


def test_wraps_a_baseline_and_leaves_the_given_selector_unfitted():
    topk = TopKSelector(k=2)
    rr = LMReranker(toy_lm(), selector=topk, k=3, n_candidates=8, template=TEMPLATE).fit(_pool())
    sel = rr.select("a brilliant and moving film")
    assert sel.method == "topk+lm" and len(sel) == 3 and sel.phases["lm_passes"] == 8.0
    assert not hasattr(topk, "pool_") and rr.selector_ is not topk


def test_select_batch_equals_select():
    rr = LMReranker(toy_lm(), k=3, n_candidates=10, template=TEMPLATE).fit(_pool())
    queries = ["a dull film", "a lovely warm film", "slow and tedious"]
    batch = rr.select_batch(queries)
    for q, b in zip(queries, batch, strict=True):
        one = rr.select(q)
        assert b.indices == one.indices and b.phases["lm_passes"] == 10.0
    assert rr.select_batch([]) == []


def test_params_round_trip():
    rr = LMReranker(toy_lm(), k=2, n_candidates=5, batch_size=3)
    params = rr.get_params()
    assert params["k"] == 2 and params["n_candidates"] == 5 and params["batch_size"] == 3
    copy = LMReranker(**params)
    assert copy.get_params()["n_candidates"] == 5
    assert "n_candidates=5" in repr(rr)


# ---------------------------------------------------------------------- bad arguments
def test_bad_arguments_say_what_to_do():
    with pytest.raises(InvalidInputError, match="pass n_candidates >= k"):
        LMReranker(toy_lm(), k=10, n_candidates=5)
    with pytest.raises(InvalidInputError, match="n_candidates"):
        LMReranker(toy_lm(), n_candidates=0)
    with pytest.raises((InvalidInputError, InvalidTypeError), match="k"):
        LMReranker(toy_lm(), k="8")  # type: ignore[arg-type]
    pool = _pool(2)
    with pytest.raises(InvalidTypeError, match="lm must be"):
        LMReranker(lm=3, k=1).fit(pool)
    with pytest.raises(InvalidTypeError, match="promptkd selector"):
        LMReranker(toy_lm(), selector="topk", k=1).fit(pool)
    with pytest.raises(InvalidInputError, match="batch_size"):
        LMReranker(toy_lm(), k=1, batch_size=0).fit(pool)
    with pytest.raises(InvalidTypeError, match="DemoPool"):
        LMReranker(toy_lm(), k=1).fit([Demo(input="a", output="b")])  # type: ignore[arg-type]
    with pytest.raises(NotFittedError, match="fit"):
        LMReranker(toy_lm(), k=1).select("q")
    rr = LMReranker(toy_lm(), k=1, n_candidates=2).fit(pool)
    with pytest.raises(InvalidTypeError, match="must be a string"):
        rr.select(["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="list of query strings"):
        rr.select_batch("one query")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"queries\[1\]"):
        rr.select_batch(["a", 2])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="tokenizes to nothing"):
        query_logprobs(toy_lm(), [Demo(input="a", output="b")], "   ")
    with pytest.raises(InvalidTypeError, match="demos"):
        query_logprobs(toy_lm(), "not demos", "q")  # type: ignore[arg-type]


def test_public_names_are_on_an_api_page():
    import promptkd.rerank

    pages = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs" / "api").glob("*.md"))
    blocks = set(re.findall(r"^:::\s+(\S+)\s*$", pages, flags=re.M))
    missing = [n for n in promptkd.rerank.__all__ if f"promptkd.rerank.{n}" not in blocks]
    assert not missing, f"in promptkd.rerank.__all__ but on no page under docs/api: {missing}"


# ---------------------------------------------------------------------- the real LM
@pytest.mark.slow
def test_smollm2_prefers_the_demo_that_shares_the_query_words(smollm2):
    template = "Review: {input}\nSentiment: {output}"
    query = "The cinematography of the mountain scenes is breathtaking."
    demos = [
        Demo(input="Quarterly earnings beat analyst forecasts by a wide margin.", output="neutral", id="finance"),
        Demo(input="The cinematography of the mountain scenes is simply breathtaking.", output="positive", id="same"),
        Demo(input="The soup was cold and the waiter ignored us.", output="negative", id="food"),
        Demo(input="Stir the flour into the butter before adding milk.", output="neutral", id="recipe"),
        Demo(input="A bland sequel with nothing new to say.", output="negative", id="film"),
    ]
    scores = query_logprobs(smollm2, demos, query, template).scores
    assert int(np.argmax(scores)) == 1
    assert scores[1] > scores[0] + 0.5 and scores[1] > scores[3] + 0.5

    pool = DemoPool(demos, embedder=HashingEmbedder(dim=64))
    rr = LMReranker(smollm2, k=2, n_candidates=5, template=template).fit(pool)
    sel = rr.select(query)
    assert "same" in sel.ids and sel.phases["lm_passes"] == 5.0 and sel.phases["lm_calls"] == 1.0
    assert sel.demos[sel.selection_rank.index(0)].id == "same"
