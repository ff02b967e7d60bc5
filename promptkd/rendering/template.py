"""Prompt templates: turn demos and a query into text, tracking each demo's span."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.demo import Demo

__all__ = ["PromptTemplate", "RenderedPrompt", "as_template"]

_FIELD = re.compile(r"\{(\w+)\}")


def _fill(pattern: str, fields: Mapping[str, Any], where: str) -> str:
    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in fields:
            raise InvalidInputError(
                f"the {where} template uses {{{key}}} but only {sorted(fields)} are available; "
                "fix the template or add that metadata key."
            )
        return str(fields[key])

    return _FIELD.sub(sub, pattern)


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt with the character span of each demonstration and of the query.

    ``demo_spans[i] = (start, end)`` indexes ``text`` so that
    ``text[start:end]`` is exactly demo ``i`` as rendered.
    """

    text: str
    demo_spans: tuple[tuple[int, int], ...]
    query_span: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return {
            "text": self.text,
            "demo_spans": [list(s) for s in self.demo_spans],
            "query_span": list(self.query_span),
        }


@dataclass(frozen=True)
class PromptTemplate:
    """How a demo and the query are written into a prompt.

    Fields in braces are replaced: ``{input}``, ``{output}``, ``{id}``,
    ``{input_pair}`` (the second text of a pair demo) and any metadata key of
    the demo; other text is kept literally.

    Parameters
    ----------
    example
        Pattern for one demonstration.
    query
        Pattern for the final query (``{input}`` is the query text).
    prefix
        Text before the first demonstration (an instruction), may be empty.
    separator
        Text between consecutive blocks.

    Examples
    --------
    >>> t = PromptTemplate.from_string("Review: {input}\\nSentiment: {output}")
    >>> print(t.render([Demo(input="loved it", output="positive")], "boring"))
    Review: loved it
    Sentiment: positive
    <BLANKLINE>
    Review: boring
    Sentiment:
    """

    example: str = "Input: {input}\nOutput: {output}"
    query: str = "Input: {input}\nOutput:"
    prefix: str = ""
    separator: str = "\n\n"

    def __post_init__(self) -> None:
        for name in ("example", "query", "prefix", "separator"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise InvalidTypeError(f"PromptTemplate {name} must be a string, got {type(value).__name__}.")
        if "{input}" not in self.query:
            raise InvalidInputError(
                f"the query pattern {self.query!r} has no {{input}} field, so the query would be dropped; add {{input}}."
            )

    @classmethod
    def from_string(cls, example: str, *, prefix: str = "", separator: str = "\n\n") -> PromptTemplate:
        """Build a template from one example pattern; the query pattern is the part before ``{output}``."""
        if not isinstance(example, str):
            raise InvalidTypeError(f"a template must be a string pattern, got {type(example).__name__}.")
        if "{input}" not in example:
            raise InvalidInputError(f"a template string needs an {{input}} field, got {example!r}; add {{input}}.")
        if "{output}" in example:
            query = example.split("{output}", 1)[0].rstrip(" ")
        else:
            query = example
        return cls(example=example, query=query, prefix=prefix, separator=separator)

    def render_demo(self, demo: Demo) -> str:
        """Render one demonstration.

        A sentence-pair demo renders both texts: ``{input}`` is :attr:`Demo.text`
        (the two texts on two lines) unless the pattern places ``{input_pair}``
        itself, in which case ``{input}`` is the first text only.

        Examples
        --------
        >>> d = Demo(input="It rains.", input_pair="The street is wet.", output="yes")
        >>> PromptTemplate().render_demo(d)
        'Input: It rains.\\nThe street is wet.\\nOutput: yes'
        >>> PromptTemplate(example="{input} Question: {input_pair}? {output}").render_demo(d)
        'It rains. Question: The street is wet.? yes'
        """
        placed = "{input_pair}" in self.example
        fields = {
            **demo.metadata,
            "input": demo.input if placed else demo.text,
            "input_pair": demo.input_pair or "",
            "output": demo.output,
            "id": demo.id,
        }
        return _fill(self.example, fields, "example")

    def render_with_spans(self, demos: Sequence[Demo], query: str) -> RenderedPrompt:
        """Render and return the text with every block's character span.

        Examples
        --------
        >>> r = PromptTemplate().render_with_spans([Demo(input="a", output="b")], "c")
        >>> r.text[slice(*r.demo_spans[0])]
        'Input: a\\nOutput: b'
        """
        if not isinstance(query, str):
            raise InvalidTypeError(f"query must be a string, got {type(query).__name__}.")
        if demos is None or isinstance(demos, (str, bytes, Demo)) or not isinstance(demos, Iterable):
            raise InvalidTypeError(f"demos must be a list of Demo objects, got {type(demos).__name__}.")
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        pos = 0
        if self.prefix:
            parts.append(self.prefix + self.separator)
            pos += len(parts[-1])
        for demo in demos:
            if not isinstance(demo, Demo):
                raise InvalidTypeError(f"demos must be Demo objects, got {type(demo).__name__}.")
            block = self.render_demo(demo)
            spans.append((pos, pos + len(block)))
            parts.append(block + self.separator)
            pos += len(parts[-1])
        q = _fill(self.query, {"input": query}, "query")
        parts.append(q)
        text = "".join(parts)
        return RenderedPrompt(text=text, demo_spans=tuple(spans), query_span=(pos, pos + len(q)))

    def render(self, demos: Sequence[Demo], query: str) -> str:
        """Render the prompt text."""
        return self.render_with_spans(demos, query).text


def as_template(template: PromptTemplate | str | None) -> PromptTemplate:
    """Accept a :class:`PromptTemplate`, an example pattern string, or None (default).

    Examples
    --------
    >>> as_template(None).example
    'Input: {input}\\nOutput: {output}'
    """
    if template is None:
        return PromptTemplate()
    if isinstance(template, PromptTemplate):
        return template
    if isinstance(template, str):
        return PromptTemplate.from_string(template)
    raise InvalidTypeError(f"template must be a PromptTemplate or a string, got {type(template).__name__}.")
