"""The :class:`Demo` record: one input/output demonstration."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from promptkd.exceptions import InvalidInputError, InvalidTypeError

__all__ = ["Demo", "content_id"]


def content_id(input: str, output: str) -> str:
    """Deterministic 16-hex-digit id derived from a demo's input and output.

    Examples
    --------
    >>> content_id("great film", "positive") == content_id("great film", "positive")
    True
    """
    payload = json.dumps([input, output], ensure_ascii=False).encode("utf-8")
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
            f"Demo got an unknown field {field!r}; use input, output, id and metadata (put extra keys in metadata)."
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
    always gets the same id. Instances are immutable.

    Examples
    --------
    >>> d = Demo(input="a gripping thriller", output="positive", metadata={"task": "sentiment"})
    >>> d.id == Demo(input="a gripping thriller", output="positive").id
    True
    >>> d.metadata["task"]
    'sentiment'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    input: str = Field(..., description="The demonstration's input text.")
    output: str = Field(..., description="The expected output (label or answer).")
    id: str = Field(default="", description="Stable identifier; derived from content when empty.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise _demo_error(err) from err

    @field_validator("input", "output", mode="before")
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
            object.__setattr__(self, "id", content_id(self.input, self.output))
        return self

    def to_record(self) -> dict[str, Any]:
        """Plain dict with ``id``, ``input``, ``output`` and ``metadata``.

        Examples
        --------
        >>> Demo(input="x", output="y", id="d1").to_record()
        {'id': 'd1', 'input': 'x', 'output': 'y', 'metadata': {}}
        """
        return {"id": self.id, "input": self.input, "output": self.output, "metadata": dict(self.metadata)}
