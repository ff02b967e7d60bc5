"""Reading demo records from files, and repeated rows: JSONL and CSV readers whose errors name the line."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from promptkd.exceptions import InvalidInputError, InvalidTypeError, PersistenceError
from promptkd.pool.demo import Demo, content_id

__all__ = ["DEDUPE", "count_repeats", "read_csv_records", "read_jsonl", "read_jsonl_lines"]

logger = logging.getLogger("promptkd")

DEDUPE = ("none", "exact")


def _dedupe_records(demos: list[Demo], explicit: list[bool], dedupe: str, where: Callable[[int], str]) -> list[Demo]:
    """Handle repeated rows: 'none' keeps each copy under its own id, 'exact' keeps the first copy only.

    A content id (made from input and output) that repeats gets a suffix, ``<id>.2`` for the second
    copy and so on, so real datasets with repeated rows load as they are. Explicit ids must be unique;
    the error names both places.
    """
    out: list[Demo] = []
    first_at: dict[str, int] = {}
    content_seen: set[str] = set()
    copies: dict[str, int] = {}
    for i, d in enumerate(demos):
        content = content_id(d.input, d.output, d.input_pair)
        if dedupe == "exact" and content in content_seen:
            continue
        content_seen.add(content)
        demo = d
        if not explicit[i] and d.id in first_at:
            copies[d.id] = copies.get(d.id, 1) + 1
            demo = d.model_copy(update={"id": f"{d.id}.{copies[d.id]}"})
        if demo.id in first_at:
            raise InvalidInputError(
                f"duplicate demo id {demo.id!r} at {where(i)} (first at {where(first_at[demo.id])}); ids must be "
                "unique: fix the id column, or leave ids out so that repeated rows get ids of their own."
            )
        first_at[demo.id] = i
        out.append(demo)
    dropped = len(demos) - len(out)
    if dropped:
        logger.info("dedupe='exact': dropped %d repeated rows (same input and output)", dropped)
    return out


def count_repeats(demos: Iterable[Demo]) -> int:
    """How many demos repeat the input and output of an earlier one.

    Examples
    --------
    >>> count_repeats([Demo(input="a", output="x"), Demo(input="a", output="x", id="other")])
    1
    """
    seen: set[str] = set()
    n = 0
    for d in demos:
        c = content_id(d.input, d.output, d.input_pair)
        n += c in seen
        seen.add(c)
    return n


def read_csv_records(path: str | os.PathLike[str], delimiter: str = ",") -> list[dict[str, Any]]:
    """Rows of a CSV/TSV file with a header line, as dicts (blank rows skipped).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = p.write_text("text,label\\ngood,pos\\n\\nbad,neg\\n")
    >>> read_csv_records(p)
    [{'text': 'good', 'label': 'pos'}, {'text': 'bad', 'label': 'neg'}]
    """
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [dict(r) for r in csv.DictReader(fh, delimiter=delimiter)]
    except UnicodeDecodeError as err:
        raise InvalidInputError(f"{path} is not valid UTF-8 ({err.reason}); re-encode the file as UTF-8.") from err
    except csv.Error as err:
        raise InvalidInputError(f"{path}: malformed CSV ({err}); check quoting and the delimiter.") from err
    except OSError as err:
        raise InvalidInputError(f"{path} cannot be read ({err}); check the path and permissions.") from err
    rows = [{k: v for k, v in r.items() if k is not None} for r in rows if any((v or "").strip() for v in r.values())]
    if not rows:
        raise InvalidInputError(f"{path} holds no rows; a pool needs a header line and at least one demo.")
    return rows


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSON-lines file into a list of dicts, with errors naming file and line.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
    >>> _ = p.write_text('{"a": 1}\\n\\n{"a": 2}\\n')
    >>> read_jsonl(p)
    [{'a': 1}, {'a': 2}]
    """
    return read_jsonl_lines(path)[0]


def read_jsonl_lines(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], list[int]]:
    """Records of a JSON-lines file and the 1-based line number of each."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(f"path must be a file path, got {type(path).__name__}.")
    p = Path(path)
    try:
        is_file = p.is_file()
    except (OSError, ValueError) as err:
        raise InvalidInputError(f"{path!r} is not a usable file path ({err}); check the path.") from err
    if not is_file:
        raise InvalidInputError(f"{p} does not exist or is not a file; check the path.")
    try:
        return _read_jsonl_records(p)
    except OSError as err:
        raise PersistenceError(f"{p}: cannot be read ({err}); check the file's permissions.") from err


def _read_jsonl_records(p: Path) -> tuple[list[dict[str, Any]], list[int]]:
    records = []
    lines = []
    with open(p, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InvalidInputError(
                    f"{p}:{lineno}: not valid UTF-8 ({err.reason}); re-encode the file as UTF-8."
                ) from err
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except RecursionError as err:
                raise InvalidInputError(f"{p}:{lineno}: JSON nested too deeply; flatten the record.") from err
            except ValueError as err:  # JSONDecodeError, and over-long integer literals
                raise InvalidInputError(
                    f"{p}:{lineno}: invalid JSON ({getattr(err, 'msg', err)}); one JSON object per line is expected."
                ) from err
            if not isinstance(rec, dict):
                raise InvalidInputError(f"{p}:{lineno}: expected a JSON object, got {type(rec).__name__}.")
            records.append(rec)
            lines.append(lineno)
    if not records:
        raise InvalidInputError(f"{p} holds no records; a pool needs at least one demo.")
    return records, lines
