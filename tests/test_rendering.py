"""PromptTemplate: rendering and exact per-demo character spans."""

from __future__ import annotations

import pytest

from promptkd import Demo, PromptTemplate
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.rendering import as_template

DEMOS = [
    Demo(input="loved it", output="positive", metadata={"src": "imdb"}),
    Demo(input="a {output} inside the text and } braces {", output="negative", metadata={"src": "sst"}),
    Demo(input="multi\nline\u2028input é", output="neutral", metadata={"src": "x"}),
]


@pytest.mark.parametrize(
    "template",
    [
        PromptTemplate(),
        PromptTemplate.from_string("Review: {input}\nSentiment: {output}", prefix="Classify the reviews."),
        PromptTemplate(example="[{src}] {input} => {output}", query="{input} =>", separator="\n---\n"),
    ],
)
def test_spans_cover_exactly_each_demo(template: PromptTemplate) -> None:
    r = template.render_with_spans(DEMOS, "the query {input}")
    assert len(r.demo_spans) == 3
    for demo, (start, end) in zip(DEMOS, r.demo_spans, strict=True):
        assert r.text[start:end] == template.render_demo(demo)
        assert demo.input in r.text[start:end] and demo.output in r.text[start:end]
    starts = [s for s, _ in r.demo_spans] + [r.query_span[0]]
    assert starts == sorted(starts)
    assert r.text[slice(*r.query_span)].count("the query {input}") == 1
    assert r.query_span[1] == len(r.text)
    assert r.text.startswith(template.prefix)
    assert template.render(DEMOS, "the query {input}") == r.text
    assert r.to_dict()["demo_spans"] == [list(s) for s in r.demo_spans]


def test_from_string_builds_the_query_pattern() -> None:
    t = PromptTemplate.from_string("Q: {input}\nA: {output}")
    assert t.query == "Q: {input}\nA:"
    text = t.render([Demo(input="2+2", output="4")], "3+3")
    assert text == "Q: 2+2\nA: 4\n\nQ: 3+3\nA:"


def test_no_demos_renders_only_the_query() -> None:
    r = PromptTemplate().render_with_spans([], "hello")
    assert r.text == "Input: hello\nOutput:" and r.demo_spans == ()


def test_as_template_accepts_three_forms() -> None:
    assert as_template(None) == PromptTemplate()
    t = PromptTemplate(prefix="p")
    assert as_template(t) is t
    assert as_template("In: {input} Out: {output}").query == "In: {input} Out:"


def test_template_errors_say_what_to_fix() -> None:
    with pytest.raises(InvalidInputError, match=r"\{missing\}"):
        PromptTemplate(example="{input} {missing}").render(DEMOS[:1], "q")
    with pytest.raises(InvalidInputError, match=r"\{input\}"):
        PromptTemplate.from_string("no fields here")
    with pytest.raises(InvalidTypeError):
        PromptTemplate.from_string(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="query"):
        PromptTemplate().render(DEMOS, None)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="demos"):
        PromptTemplate().render(None, "q")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="Demo"):
        PromptTemplate().render([{"input": "a", "output": "b"}], "q")  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError, match="separator"):
        PromptTemplate(separator=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="query pattern"):
        PromptTemplate(query="Answer:")
    with pytest.raises(InvalidTypeError):
        as_template(5)  # type: ignore[arg-type]
