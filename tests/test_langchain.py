"""The LangChain adapter against real langchain-core (prompts, LCEL, the framework's fake LLM)."""

from __future__ import annotations

import asyncio
import inspect
import json

import pytest
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.prompts import (
    ChatPromptTemplate,
    FewShotChatMessagePromptTemplate,
    FewShotPromptTemplate,
    MessagesPlaceholder,
    PromptTemplate,
)

from promptkd import DemoPool, Selector
from promptkd.embeddings import HashingEmbedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError, PersistenceError
from promptkd.integrations.hooks import RecordingHook, registered
from promptkd.integrations.langchain import PromptKDExampleSelector, PromptKDRunnable

EXAMPLES = [
    {"question": "Who won the football match last night?", "answer": "sports"},
    {"question": "How did the team's coach react to the league result?", "answer": "sports"},
    {"question": "Which striker scored the winning goal?", "answer": "sports"},
    {"question": "Why did the stock market fall on Monday?", "answer": "finance"},
    {"question": "Will the central bank raise interest rates?", "answer": "finance"},
    {"question": "How much profit did the company report?", "answer": "finance"},
    {"question": "What is a protein made of?", "answer": "science"},
    {"question": "How far away is the nearest galaxy?", "answer": "science"},
    {"question": "What holds an atom's nucleus together?", "answer": "science"},
]


@pytest.fixture
def hsel() -> PromptKDExampleSelector:
    return PromptKDExampleSelector.from_examples(EXAMPLES, k=3, embedder=HashingEmbedder(dim=256))


def test_is_a_real_langchain_selector_with_native_async(hsel):
    assert isinstance(hsel, BaseExampleSelector)
    # the async methods are our own, not the base class's thread fallbacks
    assert PromptKDExampleSelector.aselect_examples is not BaseExampleSelector.aselect_examples
    assert PromptKDExampleSelector.aadd_example is not BaseExampleSelector.aadd_example
    assert inspect.iscoroutinefunction(PromptKDExampleSelector.aselect_examples)


def test_keys_inferred_and_examples_returned_verbatim_in_selector_order(hsel):
    assert hsel.input_keys == ["question"] and hsel.output_key == "answer"
    examples, selection = hsel.select({"question": "Did the bank report a big profit on shares?"})
    assert len(examples) == 3
    # order is the Selection's prompt order, and the dicts are the originals
    assert [e["question"] for e in examples] == [d.input for d in selection.demos]
    assert all(e in EXAMPLES for e in examples)
    direct = Selector(k=3).fit(hsel.pool).select("Did the bank report a big profit on shares?")
    assert list(selection.indices) == list(direct.indices)


def test_real_minilm_picks_topical_examples(st_embedder):
    sel = PromptKDExampleSelector.from_examples(EXAMPLES, k=3, embedder=st_embedder)
    picked = sel.select_examples({"question": "Shares of the lender slumped after weak quarterly earnings."})
    labels = [e["answer"] for e in picked]
    assert labels.count("finance") >= 2
    # the most query-similar example is placed last (default ordering)
    assert labels[-1] == "finance"


def test_inside_few_shot_prompt_template_and_llm_chain(hsel):
    prompt = FewShotPromptTemplate(
        example_selector=hsel,
        example_prompt=PromptTemplate.from_template("Q: {question}\nA: {answer}"),
        prefix="Classify the topic.",
        suffix="Q: {question}\nA:",
        input_variables=["question"],
    )
    query = "Which goal did the striker score in the match?"
    text = prompt.format(question=query)
    expected = hsel.select_examples({"question": query})
    blocks = text.split("\n\n")
    assert blocks[0] == "Classify the topic."
    assert blocks[1:-1] == [f"Q: {e['question']}\nA: {e['answer']}" for e in expected]
    assert blocks[-1] == f"Q: {query}\nA:"
    llm = FakeListLLM(responses=["sports"])
    assert (prompt | llm).invoke({"question": query}) == "sports"
    # async formatting goes through aselect_examples
    assert asyncio.run(prompt.aformat(question=query)) == text


def test_inside_few_shot_chat_template(hsel):
    few = FewShotChatMessagePromptTemplate(
        example_selector=hsel,
        example_prompt=ChatPromptTemplate.from_messages([("human", "{question}"), ("ai", "{answer}")]),
        input_variables=["question"],
    )
    chat = ChatPromptTemplate.from_messages([("system", "Answer with a topic."), few, ("human", "{question}")])
    query = "Will rates at the central bank go up?"
    messages = chat.invoke({"question": query}).to_messages()
    assert len(messages) == 1 + 2 * 3 + 1
    expected = hsel.select_examples({"question": query})
    assert [m.content for m in messages[1:-1:2]] == [e["question"] for e in expected]
    assert [m.content for m in messages[2:-1:2]] == [e["answer"] for e in expected]
    # the async path (aformat_messages -> aselect_examples) gives the same messages
    assert asyncio.run(chat.ainvoke({"question": query})).to_messages() == messages


def test_runnable_hook_composes_with_prompt_and_llm_and_traces(hsel):
    rec = RecordingHook()
    hook = hsel.as_runnable(example_prompt="Q: {question}\nA: {answer}", hooks=[rec])
    assert isinstance(hook, PromptKDRunnable)
    prompt = PromptTemplate.from_template("{examples_text}\n\nQ: {question}\nA:")
    llm = FakeListLLM(responses=["science", "finance"])
    chain = hook | prompt | llm
    assert chain.invoke({"question": "What is an atom made of?"}) == "science"
    out = hook.invoke({"question": "What is an atom made of?", "extra": 1})
    assert out["extra"] == 1 and out["question"] == "What is an atom made of?"
    sel = out["selection"]
    assert [e["question"] for e in out["examples"]] == [d.input for d in sel.demos]
    assert out["examples_text"].split("\n\n")[0] == f"Q: {sel.demos[0].input}\nA: {sel.demos[0].output}"
    assert rec.payloads("on_select")[-1] is sel
    # chat composition via a messages placeholder
    chat = ChatPromptTemplate.from_messages(
        [("system", "Topic?"), MessagesPlaceholder("example_messages"), ("human", "{question}")]
    )
    msgs = (hook | chat).invoke({"question": "How far is the galaxy?"}).to_messages()
    assert len(msgs) == 1 + 2 * 3 + 1 and msgs[-1].content == "How far is the galaxy?"
    # async and batch paths of the Runnable
    aout = asyncio.run(hook.ainvoke({"question": "What is an atom made of?"}))
    assert aout["selection"].indices == sel.indices
    batch = hook.batch([{"question": "stock market"}, {"question": "football coach"}])
    assert [len(b["examples"]) for b in batch] == [3, 3]


def test_async_add_and_select_match_sync(hsel):
    async def run():
        new_id = await hsel.aadd_example({"question": "How many moons does a planet have?", "answer": "science"})
        got = await hsel.aselect_examples({"question": "How many moons orbit the planet?"})
        return new_id, got

    new_id, got = asyncio.run(run())
    assert len(hsel) == len(EXAMPLES) + 1 and new_id.startswith("lc-")
    assert got == hsel.select_examples({"question": "How many moons orbit the planet?"})
    assert {"question": "How many moons does a planet have?", "answer": "science"} in got


def test_added_example_becomes_selectable(hsel):
    new = {"question": "zebra quokka axolotl narwhal", "answer": "animals"}
    hsel.add_example(new)
    assert hsel.select_examples({"question": "zebra quokka axolotl narwhal"})[-1] == new


def test_save_load_roundtrip_without_pickle(hsel, tmp_path):
    hsel.add_example({"question": "What is dark energy?", "answer": "science"})
    path = hsel.save(tmp_path / "sel")
    files = {p.name for p in path.rglob("*") if p.is_file()}
    assert "promptkd_selector.json" in files and not any(f.endswith((".pkl", ".pickle")) for f in files)
    config = json.loads((path / "promptkd_selector.json").read_text())
    assert config["selector"]["name"] == "promptkd" and config["selector"]["params"]["k"] == 3
    loaded = PromptKDExampleSelector.load(path)
    for q in ["What is dark energy?", "football league", "bank profit"]:
        assert loaded.select_examples({"question": q}) == hsel.select_examples({"question": q})
    # a loaded selector keeps working inside a template
    prompt = FewShotPromptTemplate(
        example_selector=loaded,
        example_prompt=PromptTemplate.from_template("{question} -> {answer}"),
        suffix="{question} ->",
        input_variables=["question"],
    )
    assert prompt.format(question="bank profit").count("->") == 4


def test_save_refuses_custom_kernel(tmp_path):
    def my_kernel(X, Y=None, *, bandwidth=1.0):
        from promptkd.kernels import rbf

        return rbf(X, Y, bandwidth=bandwidth)

    sel = PromptKDExampleSelector.from_examples(
        EXAMPLES, k=2, embedder=HashingEmbedder(), kernel=my_kernel, bandwidth=1.0
    )
    assert len(sel.select_examples({"question": "goal"})) == 2
    with pytest.raises(PersistenceError, match="kernel"):
        sel.save(tmp_path / "x")


def test_from_pool_and_from_selector(hashing_pool):
    from_pool = PromptKDExampleSelector.from_pool(hashing_pool, k=2, kernel="laplacian")
    ex = from_pool.select_examples({"input": "the stock market and the bank profit"})
    assert set(ex[0]) >= {"input", "output"} and len(ex) == 2
    fitted = Selector(k=2, kernel="laplacian").fit(hashing_pool)
    wrapped = PromptKDExampleSelector.from_selector(fitted)
    assert wrapped.selector is fitted
    assert wrapped.select_examples({"input": "the stock market and the bank profit"}) == ex


def test_baseline_by_name_when_available(hashing_pool):
    from promptkd.integrations.registry import selector_names

    names = [n for n in selector_names() if n != "promptkd"]
    if not names:
        pytest.skip("no baseline selectors in promptkd.selection.baselines yet")
    for name in names:
        sel = PromptKDExampleSelector.from_pool(hashing_pool, selector=name, k=2)
        assert len(sel.select_examples({"input": "the goal of the team"})) == 2


def test_query_from_prompt_variables_with_other_names(hsel):
    # prompt variables need not match the example keys: all text values form the query
    assert hsel.query_text({"topic_question": "goal"}) == "goal"
    with pytest.raises(InvalidInputError, match="query_keys"):
        hsel.query_text({"n": 3})


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(InvalidInputError, match="empty"):
        PromptKDExampleSelector.from_examples([], embedder=HashingEmbedder())
    with pytest.raises(InvalidTypeError):
        PromptKDExampleSelector.from_examples("not a list", embedder=HashingEmbedder())
    sel = PromptKDExampleSelector.from_examples(EXAMPLES, k=2, embedder=HashingEmbedder())
    with pytest.raises(InvalidInputError, match="answer"):
        sel.add_example({"question": "no answer key"})
    with pytest.raises(InvalidInputError, match="accepts"):
        PromptKDExampleSelector.from_examples(EXAMPLES, embedder=HashingEmbedder(), not_an_option=1)
    with pytest.raises(PersistenceError, match="not a saved"):
        PromptKDExampleSelector.load("/nonexistent/dir")
    with pytest.raises(InvalidTypeError):
        PromptKDRunnable(sel).invoke("not a dict")


def test_global_hooks_see_selections_from_templates(hsel):
    rec = RecordingHook()
    with registered(rec):
        FewShotPromptTemplate(
            example_selector=hsel,
            example_prompt=PromptTemplate.from_template("{question}"),
            suffix="{question}",
            input_variables=["question"],
        ).format(question="goal")
    assert len(rec.payloads("on_select")) == 1 and rec.contexts[0]["source"] == "langchain"


def test_pool_of_demo_objects_roundtrip(tmp_path):
    pool = DemoPool([{"input": f"item {i}", "output": str(i % 2)} for i in range(6)], embedder=HashingEmbedder())
    sel = PromptKDExampleSelector.from_pool(pool, k=2, input_key="text", output_key="label")
    got = sel.select_examples({"text": "item 3"})
    assert all(set(e) == {"text", "label"} for e in got)
    loaded = PromptKDExampleSelector.load(sel.save(tmp_path / "s"))
    assert loaded.select_examples({"text": "item 3"}) == got


def test_k_auto_and_max_tokens_pass_through(tmp_path):
    words = lambda text: len(text.split())  # noqa: E731 - a tiny token counter
    sel = PromptKDExampleSelector.from_examples(
        EXAMPLES, k=5, embedder=HashingEmbedder(dim=256), max_tokens=20, tokenizer=words, template="{input} {output}"
    )
    examples, selection = sel.select({"question": "Which striker scored the goal in the match?"})
    assert selection.tokens is not None and selection.tokens <= 20
    assert sum(words(f"{e['question']} {e['answer']}") for e in examples) == selection.tokens
    with pytest.raises(PersistenceError, match="tokenizer"):
        sel.save(tmp_path / "x")  # a callable cannot be saved as JSON; a tokenizer name can

    auto = PromptKDExampleSelector.from_examples(EXAMPLES, k="auto", embedder=HashingEmbedder(dim=256), k_max=6)
    examples, selection = auto.select({"question": "How far away is the nearest galaxy?"})
    assert selection.budget is not None and len(examples) == selection.budget.k_star <= 6
    loaded = PromptKDExampleSelector.load(auto.save(tmp_path / "auto"))
    assert loaded.select_examples({"question": "How far away is the nearest galaxy?"}) == examples


def test_selector_configs_roundtrip_and_refuse_foreign_classes(hashing_pool):
    from promptkd.integrations.registry import (
        make_selector,
        selector_config,
        selector_from_config,
        selector_names,
    )

    for name in selector_names():
        original = make_selector(name, k=3)
        config = json.loads(json.dumps(selector_config(original)))  # through real JSON
        rebuilt = selector_from_config(config)
        assert type(rebuilt) is type(original) and config["name"] == name
        q = "the stock market and the bank"
        assert rebuilt.fit(hashing_pool).select(q).indices == original.fit(hashing_pool).select(q).indices
    with pytest.raises(PersistenceError, match="not part of promptkd"):
        selector_from_config({"name": "os:system", "params": {}})
    with pytest.raises(PersistenceError, match="cannot rebuild"):
        selector_from_config({"name": "promptkd", "params": {"no_such_setting": 1}})


def test_start_empty_then_add_examples():
    sel = PromptKDExampleSelector.from_pool(DemoPool([], embedder=HashingEmbedder()), k=1)
    assert bool(sel) and len(sel) == 0
    with pytest.raises(InvalidInputError, match="add_example"):
        sel.select_examples({"input": "hello"})
    sel.add_example({"input": "hello there", "output": "greet"})
    sel.add_example({"input": "bye now", "output": "farewell"})
    assert sel.select_examples({"input": "hello"}) == [{"input": "hello there", "output": "greet"}]
