"""The :class:`Demo` record: one input/output demonstration."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from promptkd.exceptions import InvalidInputError, InvalidTypeError

__all__ = ["PAIR_SEPARATOR", "Demo", "content_id", "join_pair"]

PAIR_SEPARATOR = "\n"


def join_pair(text: str, text_pair: str | None) -> str:
    """One string for a text pair, as promptkd embeds and renders it: the two texts on two lines.

    Sentence embedders here are bi-encoders with no cross format, so a pair is encoded as
    this one text. Queries of a pair task should be joined the same way.

    Examples
    --------
    >>> join_pair("A man is sleeping.", "A person rests.")
    'A man is sleeping.\\nA person rests.'
    >>> join_pair("single", None)
    'single'
    """
    return text if text_pair is None else f"{text}{PAIR_SEPARATOR}{text_pair}"


def content_id(input: str, output: str, input_pair: str | None = None) -> str:
    """Deterministic 16-hex-digit id derived from a demo's input (and pair) and output.

    Examples
    --------
    >>> content_id("great film", "positive") == content_id("great film", "positive")
    True
    >>> content_id("p", "yes", "h") != content_id("p", "yes")
    True
    """
    parts = [input, output] if input_pair is None else [input, output, input_pair]
    payload = json.dumps(parts, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()[:16]


def _demo_error(err: ValidationError) -> InvalidInputError:
    """Turn pydantic's error into a promptkd error naming the field and the fix."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "demo"
    kind = str(first.get("type", ""))
    got = first.get("input")
    got_text = f"{type(got).__name__} {got!r:.60}"
    if kind == "extra_forbidden":
        return InvalidInputError(
            f"Demo got an unknown field {field!r}; use input, input_pair, output, id and metadata "
            "(put extra keys in metadata)."
        )
    if kind == "missing":
        return InvalidInputError(f"Demo needs the field {field!r}; pass {field}=... (a string).")
    if kind.endswith("_type"):
        want = "a dict" if field.startswith("metadata") else "a string"
        return InvalidTypeError(f"Demo field {field!r} must be {want}, got {got_text}.")
    return InvalidInputError(f"Demo field {field!r} is invalid: {first.get('msg')} (got {got_text}).")


class Demo(BaseModel):
    """One in-context demonstration: an ``input``, its ``output`` and metadata.

    ``id`` is derived from the content when not given, so the same demonstration
    always gets the same id. Instances are immutable. Sentence-pair tasks
    (entailment, paraphrase) put the second text in ``input_pair``; :attr:`text`
    is what is embedded, and templates render it as ``{input}`` unless they
    place ``{input_pair}`` themselves.

    Examples
    --------
    >>> d = Demo(input="a gripping thriller", output="positive", metadata={"task": "sentiment"})
    >>> d.id == Demo(input="a gripping thriller", output="positive").id
    True
    >>> d.metadata["task"]
    'sentiment'
    >>> Demo(input="It rains.", input_pair="The street is wet.", output="entailment").text
    'It rains.\\nThe street is wet.'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    input: str = Field(..., description="The demonstration's input text.")
    output: str = Field(..., description="The expected output (label or answer).")
    input_pair: str | None = Field(default=None, description="Second text of a sentence-pair input.")
    id: str = Field(default="", description="Stable identifier; derived from content when empty.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise _demo_error(err) from err

    @field_validator("input", "output", "input_pair", mode="before")
    @classmethod
    def _coerce_scalar(cls, value: Any) -> Any:
        # labels are often ints or bools in datasets: accept them as their string form
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, (int, float)):
            return str(value)
        return value

    @field_validator("id", mode="before")
    @classmethod
    def _coerce_id(cls, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @model_validator(mode="after")
    def _fill_id(self) -> Demo:
        if not self.id:
            object.__setattr__(self, "id", content_id(self.input, self.output, self.input_pair))
        return self

    @property
    def text(self) -> str:
        """The whole input as one string: ``input``, or ``input`` and ``input_pair`` on two lines."""
        return join_pair(self.input, self.input_pair)

    def to_record(self) -> dict[str, Any]:
        """Plain dict with ``id``, ``input``, ``output``, ``metadata`` (and ``input_pair`` when set).

        Examples
        --------
        >>> Demo(input="x", output="y", id="d1").to_record()
        {'id': 'd1', 'input': 'x', 'output': 'y', 'metadata': {}}
        """
        rec = {"id": self.id, "input": self.input, "output": self.output, "metadata": dict(self.metadata)}
        if self.input_pair is not None:
            rec["input_pair"] = self.input_pair
        return rec
