"""Prompt rendering and exact character-to-token span mapping for probes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.demo import Demo
from promptkd.rendering.template import PromptTemplate, RenderedPrompt, as_template

logger = logging.getLogger(__name__)

__all__ = ["EncodedPrompt", "as_demos", "encode_prompt", "token_spans"]


def as_demos(selection_or_demos: Any, query: str | None) -> tuple[tuple[Demo, ...], str]:
    """Accept a Selection (anything with ``.demos``) or a sequence of Demo; return demos and the query."""
    demos_attr = getattr(selection_or_demos, "demos", None)
    if demos_attr is not None and not isinstance(selection_or_demos, (list, tuple)):
        demos = tuple(demos_attr)
        if query is None:
            query = getattr(selection_or_demos, "query", None)
    elif isinstance(selection_or_demos, Sequence) and not isinstance(selection_or_demos, str):
        demos = tuple(selection_or_demos)
    else:
        raise InvalidTypeError(
            f"selection_or_demos must be a Selection or a list of Demo, got {type(selection_or_demos).__name__}."
        )
    for i, d in enumerate(demos):
        if not isinstance(d, Demo):
            raise InvalidTypeError(f"demos[{i}] must be a promptkd Demo, got {type(d).__name__}.")
    if query is None:
        raise InvalidInputError("query is required: pass the query text (the Selection carries none).")
    if not isinstance(query, str):
        raise InvalidTypeError(f"query must be a string, got {type(query).__name__}.")
    return demos, query


def token_spans(
    offsets: Sequence[tuple[int, int]], char_spans: Sequence[tuple[int, int]]
) -> tuple[list[tuple[int, int]], bool]:
    """Map character spans to half-open token index spans using a tokenizer's offset mapping.

    Each token belongs to at most one span, the one its characters overlap most, so
    masses over spans never double count. ``exact`` is False when a token straddles a
    span boundary. Zero-length tokens (special tokens) belong to no span.

    Examples
    --------
    >>> token_spans([(0, 5), (5, 6), (6, 9)], [(0, 6)])
    ([(0, 2)], True)
    """
    owned: list[list[int]] = [[] for _ in char_spans]
    exact = True
    for i, (a, b) in enumerate(offsets):
        if b <= a:
            continue
        best, best_overlap = -1, 0
        for j, (s, e) in enumerate(char_spans):
            overlap = min(b, e) - max(a, s)
            if overlap > best_overlap:
                best, best_overlap = j, overlap
        if best >= 0:
            owned[best].append(i)
            if best_overlap < b - a:
                exact = False
    out = []
    for idx in owned:
        if not idx:
            out.append((0, 0))
            continue
        out.append((idx[0], idx[-1] + 1))
    return out, exact


@dataclass(frozen=True)
class EncodedPrompt:
    """A rendered prompt, its token ids and the token span of each demo and of the query."""

    rendered: RenderedPrompt
    input_ids: list[int]
    offsets: list[tuple[int, int]]
    demo_token_spans: tuple[tuple[int, int], ...]
    query_token_span: tuple[int, int]
    exact: bool


def encode_prompt(
    tokenizer: Any, demos: Sequence[Demo], query: str, template: PromptTemplate | str | None
) -> EncodedPrompt:
    """Render with the same template code as ``Selection.render`` and tokenise with offsets."""
    rendered = as_template(template).render_with_spans(demos, query)
    enc = tokenizer(rendered.text, return_offsets_mapping=True, add_special_tokens=True)
    ids = list(enc["input_ids"])
    offsets = [tuple(map(int, o)) for o in enc["offset_mapping"]]
    if not ids:
        raise InvalidInputError("the rendered prompt is empty; pass demos or a non-empty query.")
    spans, exact = token_spans(offsets, [*rendered.demo_spans, rendered.query_span])
    if not exact:
        logger.warning(
            "a token straddles a demo boundary in the rendered prompt; its attention is counted in the demo it "
            "overlaps. Use a template whose separator ends with whitespace/newline for exact spans."
        )
    return EncodedPrompt(
        rendered=rendered,
        input_ids=ids,
        offsets=offsets,
        demo_token_spans=tuple(spans[:-1]),
        query_token_span=spans[-1],
        exact=exact,
    )
