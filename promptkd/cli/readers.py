"""Readers of the command line's inputs: demo files, query files, keys, and option values."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import typer

from promptkd.cli._core import fail
from promptkd.exceptions import InvalidInputError


def read_records(path: Path, fmt: str = "auto") -> list[dict[str, Any]]:
    """Read demo records from a JSONL, CSV or TSV file."""
    return read_records_located(path, fmt)[0]


def read_records_located(path: Path, fmt: str = "auto") -> tuple[list[dict[str, Any]], list[str]]:
    """Demo records from a JSONL, CSV or TSV file, and where each came from (``file:line`` or ``file row N``)."""
    from promptkd.pool.records import read_jsonl_lines

    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist or is not a file; check the path.")
    if fmt == "auto":
        suffix = path.suffix.lower()
        fmt = {".csv": "csv", ".tsv": "tsv"}.get(suffix, "jsonl")
    if fmt == "jsonl":
        records, lines = read_jsonl_lines(path)
        return records, [f"{path}:{n}" for n in lines]
    if fmt in ("csv", "tsv"):
        from promptkd.pool.records import read_csv_records

        records = read_csv_records(path, "," if fmt == "csv" else "\t")
        return records, [f"{path} row {i + 1}" for i in range(len(records))]
    raise InvalidInputError(f"--format {fmt!r} is not known; use auto, jsonl, csv or tsv.")


def make_embedder(name: str | None, *, dim: int = 256, cache_dir: Path | None = None, device: str | None = None) -> Any:
    """Build the embedder named on the command line, optionally wrapped in the on-disk cache."""
    from promptkd.embeddings import CachedEmbedder, HashingEmbedder, SentenceTransformerEmbedder

    if name is None or name.lower() in ("minilm", "default", "all-minilm-l6-v2"):
        emb: Any = SentenceTransformerEmbedder(device=device)
    elif name.lower() == "hashing":
        emb = HashingEmbedder(dim=dim)
    else:
        emb = SentenceTransformerEmbedder(name, device=device)
    if cache_dir is not None:
        emb = CachedEmbedder(emb, Path(cache_dir) / "embeddings.sqlite")
    return emb


_KEY_CHOICES = {"input": ("input", "text"), "output": ("output", "label"), "pair": ("input_pair", "text_pair")}


def resolve_keys(
    records: Sequence[dict[str, Any]], input_key: str | None, output_key: str | None, pair_key: str | None
) -> tuple[str, str, str | None]:
    """The record keys to read, detecting the two common conventions when a flag is not given.

    Inputs come from ``input`` or else ``text``, outputs from ``output`` or else ``label``, and the
    second text of a pair from ``input_pair`` or ``text_pair`` when every record has it. Detected
    keys other than ``input``/``output`` are reported on stderr, so the choice is never silent.
    """

    def detect(flag: str, given: str | None, required: bool) -> str | None:
        if given is not None:
            return given
        for key in _KEY_CHOICES[flag]:
            if all(key in r for r in records):
                return key
        if required:
            fail(
                f"the records have neither {' nor '.join(repr(k) for k in _KEY_CHOICES[flag])} "
                f"(keys: {sorted(records[0])[:8]}); pass --{flag}-key with the field name."
            )
        return None

    keys = (detect("input", input_key, True), detect("output", output_key, True), detect("pair", pair_key, False))
    detected = [
        f"{name} from {key!r}"
        for name, flag, key in zip(("input", "output", "pair"), (input_key, output_key, pair_key), keys, strict=True)
        if flag is None and key not in (None, "input", "output")
    ]
    if detected:
        typer.echo("reading " + ", ".join(detected) + " (set --input-key/--output-key/--pair-key to change)", err=True)
    return keys[0] or "input", keys[1] or "output", keys[2]


def load_pool_arg(
    path: Path,
    input_key: str | None = None,
    output_key: str | None = None,
    embedder: str | None = None,
    pair_key: str | None = None,
) -> Any:
    """Load a pool from a saved directory or a JSONL/CSV file."""
    from promptkd.pool import DemoPool

    emb = None if embedder is None else make_embedder(embedder)
    if path.is_dir():
        return DemoPool.load(path, embedder=emb)
    if not path.exists():
        raise InvalidInputError(f"--pool {path} does not exist; pass a JSONL/CSV file or a saved pool directory.")
    records, where = read_records_located(path)
    id_key = "id" if all("id" in r for r in records) else None
    input_key, output_key, pair_key = resolve_keys(records, input_key, output_key, pair_key)
    return DemoPool.from_records(
        records,
        input_key=input_key,
        output_key=output_key,
        id_key=id_key,
        embedder=emb,
        locations=where,
        pair_key=pair_key,
    )


def read_queries(path: Path, key: str = "input", pair_key: str | None = None) -> list[str]:
    """Queries from a file: JSONL records (field ``key``, else ``query``/``input``/``text``) or one per line.

    A record with a second text (``pair_key``, else ``input_pair``/``text_pair``) becomes one query
    with both texts on two lines, as pair demos are embedded.
    """
    from promptkd.pool import join_pair

    if not path.is_file():
        raise InvalidInputError(f"--queries-file {path} does not exist; pass a text or JSONL file of queries.")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"--queries-file {path} is empty; put one query per line (or JSONL records).")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        from promptkd.pool.records import read_jsonl_lines

        out = []
        try:
            records, lines = read_jsonl_lines(path)
        except InvalidInputError as err:
            if "holds no records" in str(err):
                raise InvalidInputError(
                    f"--queries-file {path} holds no queries; put one JSON record per line."
                ) from None
            raise
        for rec, line in zip(records, lines, strict=True):
            field = next((k for k in (key, "query", "input", "text") if k in rec), None)
            if field is None or not isinstance(rec[field], str):
                raise InvalidInputError(
                    f"{path}:{line} has no text field {key!r}; pass --query-key with the field name."
                )
            pair = next((k for k in (pair_key, "input_pair", "text_pair") if k and k in rec), None)
            out.append(join_pair(rec[field], None if pair is None else str(rec[pair])))
    else:
        try:
            out = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as err:
            raise InvalidInputError(f"{path} is not valid UTF-8; re-encode it as UTF-8.") from err
    if not out:
        raise InvalidInputError(f"{path} holds no queries; put one query per line (or JSONL records).")
    return out


def parse_k(value: str) -> int | str:
    """``"auto"`` or a positive integer."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        k = int(value)
    except ValueError:
        raise InvalidInputError(f"--k must be a positive integer or 'auto', got {value!r}.") from None
    if k < 1:
        raise InvalidInputError(f"--k must be at least 1, got {k}.")
    return k


def parse_numbers(text: str, convert: Callable[[str], Any], error: str) -> Any:
    """One number, or a list for comma-separated numbers; ``error`` is the message when one does not parse.

    Examples
    --------
    >>> parse_numbers("1,2", int, "bad"), parse_numbers("0.5", float, "bad")
    ([1, 2], 0.5)
    """
    try:
        parts = [convert(v) for v in text.split(",")]
    except ValueError:
        raise InvalidInputError(error) from None
    return parts[0] if len(parts) == 1 else parts


def parse_bandwidth(value: str | None) -> Any:
    """``"median"``, a float, or a comma-separated list of floats."""
    if value is None or value == "median":
        return value
    return parse_numbers(
        value, float, f"--bandwidth must be 'median', a number or numbers joined by commas, got {value!r}."
    )


def parse_where(items: Sequence[str] | None) -> dict[str, Any] | None:
    """``key=value`` pairs (a value with ``|`` matches any of its parts)."""
    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--where expects key=value, got {item!r}.")
        out[key] = value.split("|") if "|" in value else value
    return out


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def read_constants(path: Path) -> dict[str, float]:
    """Budget constants ``{"A", "C", "intercept"}`` from a JSON file."""
    if not path.is_file():
        fail(f"--constants {path} does not exist; write one with `promptkd bound --calibrate ... --save-constants`.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        fail(f"--constants {path} is not valid JSON ({err}).")
    if not isinstance(data, dict) or not {"A", "C"} <= set(data):
        fail(f'--constants {path} must hold a JSON object with "A", "C" and optionally "intercept".')
    return {"A": data["A"], "C": data["C"], "intercept": data.get("intercept", 0.0)}
