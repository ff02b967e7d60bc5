"""MMDFewShot against real dspy programs and DSPy's own test LM (dspy.utils.DummyLM), no network."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import dspy
import numpy as np
import pytest
from dspy.utils import DummyLM

from promptkd import Selector
from promptkd.embeddings import HashingEmbedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.integrations.dspy import MMDFewShot
from promptkd.integrations.hooks import RecordingHook
from promptkd.kernels import mmd2

TOPICS = {
    "sports": ["match", "goal", "team", "coach", "league", "striker"],
    "finance": ["stock", "market", "bank", "profit", "shares", "rates"],
    "science": ["cell", "atom", "energy", "galaxy", "protein", "theory"],
}


def make_trainset() -> list[dspy.Example]:
    rng = np.random.default_rng(0)
    out = []
    for topic, words in TOPICS.items():
        for i in range(6):
            a, b, c = rng.choice(words, size=3, replace=False)
            out.append(
                dspy.Example(text=f"report {i} on the {a}, the {b} and the {c}", topic=topic).with_inputs("text")
            )
    return out


class TwoStep(dspy.Module):
    """A real multi-predictor program."""

    def __init__(self):
        super().__init__()
        self.classify = dspy.Predict("text -> topic")
        self.explain = dspy.ChainOfThought("text, topic -> explanation")

    def forward(self, text):
        topic = self.classify(text=text).topic
        return self.explain(text=text, topic=topic)


@pytest.fixture(scope="module")
def trainset():
    return make_trainset()


def test_shared_mode_assigns_examples_matching_the_valset(trainset):
    emb = HashingEmbedder(dim=128)
    valset = [
        dspy.Example(text=f"the bank said the {w} rose", topic="finance").with_inputs("text") for w in TOPICS["finance"]
    ]
    tp = MMDFewShot(k=4, embedder=emb)
    student = TwoStep()
    compiled = tp.compile(student, trainset=trainset, valset=valset)
    assert compiled is not student and student.classify.demos == []
    for _, predictor in compiled.named_predictors():
        assert len(predictor.demos) == 4 and all(d in trainset for d in predictor.demos)
        assert predictor.demos == [trainset[i] for i in tp.selection_.indices]
    topics = [d.topic for d in compiled.classify.demos]
    assert topics.count("finance") == max(topics.count(t) for t in TOPICS)
    # the chosen set matches the valset distribution better than the average random 4-subset
    X, T = tp.pool_.embeddings, tp.pool_.encode_texts([v.text for v in valset])
    chosen = mmd2(X[list(tp.selection_.indices)], T, bandwidth=tp.selector_.bandwidth_)
    rng = np.random.default_rng(1)
    rand = [mmd2(X[rng.choice(len(X), 4, replace=False)], T, bandwidth=tp.selector_.bandwidth_) for _ in range(50)]
    assert chosen < np.mean(rand)


def test_compiled_program_runs_with_dummy_lm_and_prompts_contain_the_demos(trainset):
    compiled = MMDFewShot(k=3, embedder=HashingEmbedder(dim=128)).compile(
        dspy.Predict("text -> topic"), trainset=trainset
    )
    lm = DummyLM([{"topic": "finance"}])
    with dspy.context(lm=lm):
        assert compiled(text="the stock market and the bank").topic == "finance"
    sent = "\n".join(m["content"] for m in lm.history[-1]["messages"])
    for demo in compiled.demos:
        assert demo.text in sent


def test_per_call_mode_selects_for_each_call_without_patching_forward(trainset, tmp_path):
    tp = MMDFewShot(k=2, embedder=HashingEmbedder(dim=128), mode="per_call")
    student = dspy.Predict("text -> topic")
    compiled = tp.compile(student, trainset=trainset)
    assert "forward" not in vars(compiled)  # a class's forward is used, not one patched on the instance
    assert isinstance(compiled, dspy.Predict) and type(student) is dspy.Predict  # the student is untouched
    # the demos are a plain list of the shared set: every list operation and JSON agree on them
    shared = [trainset[i] for i in tp.selection_.indices]
    assert type(compiled.demos) is list and compiled.demos == shared
    assert shared[0] in compiled.demos and compiled.demos.index(shared[1]) == 1 and compiled.demos.copy() == shared
    # DummyLM(follow_examples=True) answers with the output of the demo whose input equals the query:
    # it can only answer correctly if the call's own nearest example was put in the prompt
    lm = DummyLM([{"topic": "unused"}], follow_examples=True)
    with dspy.context(lm=lm):
        for ex in (trainset[1], trainset[8], trainset[15]):
            assert compiled(text=ex.text).topic == ex.topic
    # outside a call, the demos are the shared set, and the program saves/loads like any DSPy program
    assert list(compiled.demos) == [trainset[i] for i in tp.selection_.indices]
    path = tmp_path / "program.json"
    compiled.save(str(path))
    fresh = dspy.Predict("text -> topic")
    fresh.load(str(path))
    assert [d["text"] for d in fresh.demos] == [d.text for d in compiled.demos]


def test_per_call_matches_direct_selector_and_is_thread_and_task_local(trainset):
    rec = RecordingHook()
    tp = MMDFewShot(k=2, embedder=HashingEmbedder(dim=128), mode="per_call", hooks=[rec])
    compiled = tp.compile(dspy.Predict("text -> topic"), trainset=trainset)
    direct = Selector(k=2).fit(tp.pool_)
    queries = [trainset[i].text for i in (0, 7, 13, 16)]
    seen: dict[str, list[str]] = {}

    class Spy(dspy.utils.callback.BaseCallback):
        def on_adapter_format_start(self, call_id, instance, inputs):
            seen[inputs["inputs"]["text"]] = [d.text for d in inputs["demos"]]

    lm = DummyLM([{"topic": "x"}] * 20)
    with dspy.context(lm=lm, callbacks=[Spy()]):
        # each thread runs in a copy of this context (so it sees the LM), as dspy.Parallel does
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(compiled,), kwargs={"text": q})
            for q in queries
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        async def run_async():
            return await asyncio.gather(*(compiled.acall(text=q) for q in queries[:2]))

        assert len(asyncio.run(run_async())) == 2
    for q in queries:
        expected = [tp.pool_[i].input for i in direct.select(q).indices]
        assert seen[q] == expected
    per_call = [c for c in rec.contexts if "predictor" in c]
    assert len(per_call) == len(queries) + 2


def test_per_call_with_multi_predictor_program_and_deepcopy(trainset):
    tp = MMDFewShot(k=2, embedder=HashingEmbedder(dim=128), mode="per_call")
    compiled = tp.compile(TwoStep(), trainset=trainset)
    copy_ = compiled.deepcopy()
    lm = DummyLM([{"topic": "sports"}, {"reasoning": "r", "explanation": "about a match"}])
    with dspy.context(lm=lm):
        assert copy_(text="the coach and the team").explanation == "about a match"
    assert len(copy_.classify.demos) == 2 and len(compiled.explain.predict.demos) == 2


def test_per_call_passes_the_selection_as_the_calls_demos(trainset):
    tp = MMDFewShot(k=2, embedder=HashingEmbedder(dim=128), mode="per_call")
    compiled = tp.compile(dspy.Predict("text -> topic"), trainset=trainset)
    seen: list[list[str]] = []

    class Spy(dspy.utils.callback.BaseCallback):
        def on_adapter_format_start(self, call_id, instance, inputs):
            seen.append([d.text for d in inputs["demos"]])

    mine = [trainset[3], trainset[4]]
    with dspy.context(lm=DummyLM([{"topic": "x"}] * 3), callbacks=[Spy()]):
        compiled(text=trainset[9].text)
        compiled(text=trainset[9].text, demos=mine)  # demos given by the caller are kept
        compiled(text="   ")  # no text to select with: the shared set
    direct = Selector(k=2).fit(tp.pool_).select(trainset[9].text)
    assert seen[0] == [tp.pool_[i].input for i in direct.indices]
    assert seen[1] == [d.text for d in mine]
    assert seen[2] == [d.text for d in compiled.demos]
    assert type(compiled.demos) is list  # a call never changes the shared list


def test_real_minilm_shared_selection(trainset, st_embedder):
    valset = [dspy.Example(text="The galaxy emits enormous energy.", topic="science").with_inputs("text")]
    tp = MMDFewShot(k=3, embedder=st_embedder)
    compiled = tp.compile(dspy.Predict("text -> topic"), trainset=trainset, valset=valset)
    assert [d.topic for d in compiled.demos].count("science") >= 2


def test_errors(trainset):
    with pytest.raises(InvalidInputError, match="mode"):
        MMDFewShot(mode="sometimes")
    tp = MMDFewShot(k=2, embedder=HashingEmbedder())
    with pytest.raises(InvalidInputError, match="empty"):
        tp.compile(dspy.Predict("text -> topic"), trainset=[])
    with pytest.raises(InvalidTypeError, match=r"dspy\.Module"):
        tp.compile("not a program", trainset=trainset)
    with pytest.raises(InvalidInputError, match="with_inputs"):
        tp.compile(dspy.Predict("text -> topic"), trainset=[dspy.Example(text="a", topic="b")])
    assert (
        len(
            MMDFewShot(k=1, input_keys="text", embedder=HashingEmbedder())
            .compile(dspy.Predict("text -> topic"), trainset=[dspy.Example(text="a", topic="b")])
            .demos
        )
        == 1
    )
