"""The ``promptkd`` command line.

Commands: ``pool build``, ``pool info``, ``select``, ``bound``, and (when their
modules are installed) ``probe`` and ``eval``. Every command prints
human-readable output by default and JSON with ``--json``. Errors are one line
on stderr that says how to fix the input, with exit code 2 for bad input and 1
for other failures.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import typer

from promptkd.exceptions import InvalidInputError, PromptKDError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Choose and order in-context-learning demonstrations by kernel MMD.",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
pool_app = typer.Typer(
    no_args_is_help=True,
    help="Build a saved demonstration pool from JSONL/CSV, or describe one.",
    rich_markup_mode=None,
)
app.add_typer(pool_app, name="pool")

logger = logging.getLogger("promptkd")

DEFAULT_TEMPLATE = "Input: {input}\nOutput: {output}"


def _version(value: bool) -> None:
    if value:
        from promptkd import __version__

        typer.echo(f"promptkd {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress and every selection/bound (INFO) to stderr.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Show or hide every progress bar (sets PROMPTKD_PROGRESS) [default: the command's own choice].",
        ),
    ] = None,
) -> None:
    """Choose and order in-context-learning demonstrations by kernel MMD."""
    if progress is not None:
        os.environ["PROMPTKD_PROGRESS"] = "1" if progress else "0"
    if verbose:
        from promptkd.integrations.hooks import LoggingHook, register_hook

        logging.getLogger("promptkd").setLevel(logging.INFO)
        register_hook(LoggingHook())


# ---------------------------------------------------------------------- shared options
InputKeyOption = Annotated[
    str | None, typer.Option(help="Record key of the demo input in a JSONL/CSV pool [default: input, else text].")
]
OutputKeyOption = Annotated[
    str | None, typer.Option(help="Record key of the demo output in a JSONL/CSV pool [default: output, else label].")
]
PairKeyOption = Annotated[
    str | None,
    typer.Option(help="Record key of the second text of pair demos/queries [default: input_pair or text_pair]."),
]


# ---------------------------------------------------------------------- shared helpers
def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def read_records(path: Path, fmt: str = "auto") -> list[dict[str, Any]]:
    """Read demo records from a JSONL, CSV or TSV file."""
    return read_records_located(path, fmt)[0]


def read_records_located(path: Path, fmt: str = "auto") -> tuple[list[dict[str, Any]], list[str]]:
    """Demo records from a JSONL, CSV or TSV file, and where each came from (``file:line`` or ``file row N``)."""
    from promptkd.pool.pool import _read_jsonl_lines

    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist or is not a file; check the path.")
    if fmt == "auto":
        suffix = path.suffix.lower()
        fmt = {".csv": "csv", ".tsv": "tsv"}.get(suffix, "jsonl")
    if fmt == "jsonl":
        records, lines = _read_jsonl_lines(path)
        return records, [f"{path}:{n}" for n in lines]
    if fmt in ("csv", "tsv"):
        from promptkd.pool.pool import read_csv_records

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
        from promptkd.pool.pool import _read_jsonl_lines

        out = []
        try:
            records, lines = _read_jsonl_lines(path)
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


def parse_bandwidth(value: str | None) -> Any:
    """``"median"``, a float, or a comma-separated list of floats."""
    if value is None or value == "median":
        return value
    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError:
        raise InvalidInputError(
            f"--bandwidth must be 'median', a number or numbers joined by commas, got {value!r}."
        ) from None
    return parts[0] if len(parts) == 1 else parts


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


def random_mmd2(selector: Any, target: Any, k: int, trials: int, seed: int) -> tuple[float, float]:
    """Mean and standard deviation of MMD2 over random k-subsets of the pool."""
    rng = np.random.default_rng(seed)
    eligible = getattr(selector, "eligible_idx_", None)  # demos a metadata filter leaves (promptkd Selector)
    population: Any = selector.n_demos_
    if eligible is not None and len(eligible) < selector.n_demos_:
        population = np.asarray(eligible)
    values = [
        selector.target_mmd2(rng.choice(population, size=k, replace=False).tolist(), target) for _ in range(trials)
    ]
    return float(np.mean(values)), float(np.std(values))


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, default=_json_default))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------------- pool
@pool_app.command("build")
def pool_build(
    source: Annotated[Path, typer.Argument(help="JSONL, CSV or TSV file of demonstrations.")],
    out: Annotated[Path, typer.Argument(help="Directory to save the embedded pool to.")],
    input_key: Annotated[
        str | None, typer.Option(help="Field holding the demo input [default: input, else text].")
    ] = None,
    output_key: Annotated[
        str | None, typer.Option(help="Field holding the demo output (label or answer) [default: output, else label].")
    ] = None,
    pair_key: Annotated[
        str | None,
        typer.Option(help="Field holding the second text of sentence-pair demos [default: input_pair or text_pair]."),
    ] = None,
    id_key: Annotated[
        str | None, typer.Option(help="Field holding a unique id (default: 'id' if every row has one).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto (by extension), jsonl, csv or tsv.")] = "auto",
    dedupe: Annotated[
        str,
        typer.Option(help="Repeated rows: 'none' keeps every copy (each gets its own id), 'exact' keeps the first."),
    ] = "none",
    embedder: Annotated[
        str, typer.Option(help="'minilm' (offline all-MiniLM-L6-v2), 'hashing', or a sentence-transformers path.")
    ] = "minilm",
    dim: Annotated[int, typer.Option(help="Dimension of the hashing embedder.")] = 256,
    batch_size: Annotated[int, typer.Option(help="Texts per model call.")] = 32,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Embedding cache folder [default: the user cache dir for promptkd].")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the embedding cache.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar while embedding.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Embed a JSONL/CSV file of demonstrations and save it as a pool directory.

    Embeddings are cached on disk (keyed by model and text), so rebuilding after
    editing a few rows only embeds the changed ones.
    """
    import platformdirs

    from promptkd.pool import DemoPool

    records, where = read_records_located(source, fmt)
    if id_key is None and all("id" in r for r in records):
        id_key = "id"
    if dedupe not in ("none", "exact"):
        fail(f"--dedupe {dedupe!r} is not known; use none or exact.")
    input_key, output_key, pair_key = resolve_keys(records, input_key, output_key, pair_key)
    cache = None if no_cache else (cache_dir or Path(platformdirs.user_cache_dir("promptkd")))
    emb = make_embedder(embedder, dim=dim, cache_dir=cache, device=device)
    pool = DemoPool.from_records(
        records,
        input_key=input_key,
        output_key=output_key,
        id_key=id_key,
        embedder=emb,
        dedupe=dedupe,
        locations=where,
        pair_key=pair_key,
        cache=not no_cache,
    )
    X = pool.embed(show_progress_bar=progress, batch_size=batch_size)
    path = pool.save(out)
    summary = {
        "path": str(path),
        "n_demos": len(pool),
        "dim": int(X.shape[1]),
        "embedder": pool.embedder_id,
        "labels": len(pool.labels),
        "cache": None if cache is None else str(Path(cache) / "embeddings.sqlite"),
        "cache_hits": getattr(emb, "hits", None),
        "cache_misses": getattr(emb, "misses", None),
    }
    if as_json:
        _echo_json(summary)
    else:
        hits = "" if cache is None else f" (cache: {summary['cache_hits']} hits, {summary['cache_misses']} embedded)"
        typer.echo(f"saved {len(pool)} demos ({X.shape[1]}-d, {pool.embedder_id}) to {path}{hits}")


@pool_app.command("info")
def pool_info(
    path: Annotated[Path, typer.Argument(help="A saved pool directory (or a JSONL/CSV file).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Describe a pool: size, labels, embedder, embedding shape, metadata fields, repeated rows."""
    from promptkd.pool.pool import count_repeats

    pool = load_pool_arg(path)
    counts: dict[str, int] = {}
    for out in pool.outputs:
        counts[out] = counts.get(out, 0) + 1
    meta_keys = sorted({k for d in pool.demos for k in d.metadata})
    lengths = [len(t) for t in pool.inputs]
    snap = pool.snapshot()
    repeats = count_repeats(pool.demos)
    info = {
        "path": str(path),
        "n_demos": len(pool),
        "labels": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "embedder": pool.embedder_id,
        "embedded": pool.has_embeddings,
        "embedding_shape": None if snap.embeddings is None else list(snap.embeddings.shape),
        "embedding_dtype": None if snap.embeddings is None else str(snap.embeddings.dtype),
        "metadata_keys": meta_keys,
        "repeated_rows": repeats,
        "input_chars": {"min": min(lengths), "mean": float(np.mean(lengths)), "max": max(lengths)},
    }
    if as_json:
        _echo_json(info)
        return
    typer.echo(f"pool: {path}")
    typer.echo(f"demos: {info['n_demos']}")
    shape = (
        "not embedded"
        if snap.embeddings is None
        else f"{snap.embeddings.shape[0]} x {snap.embeddings.shape[1]} {snap.embeddings.dtype}"
    )
    typer.echo(f"embedder: {info['embedder']}  ({shape})")
    typer.echo(f"labels ({len(counts)}): " + ", ".join(f"{k}={v}" for k, v in info["labels"].items()))
    typer.echo("metadata keys: " + (", ".join(meta_keys) if meta_keys else "(none)"))
    typer.echo(f"repeated rows (same input and output as an earlier demo): {repeats}")
    c = info["input_chars"]
    typer.echo(f"input length (chars): min {c['min']}, mean {c['mean']:.1f}, max {c['max']}")


# ---------------------------------------------------------------------- select
def _selector_options(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


def _accepted_options(name: str) -> list[str]:
    import inspect

    from promptkd.integrations.registry import selector_class

    return list(inspect.signature(selector_class(name).__init__).parameters)


class _RemappedSelector:
    """A selector fitted on a filtered pool whose Selections report indices in the full pool."""

    def __init__(self, selector: Any, index_map: np.ndarray) -> None:
        self.selector = selector
        self.index_map = index_map

    def _fix(self, selection: Any) -> Any:
        import dataclasses

        return dataclasses.replace(selection, indices=tuple(int(self.index_map[i]) for i in selection.indices))

    def select(self, *args: Any, **kwargs: Any) -> Any:
        return self._fix(self.selector.select(*args, **kwargs))

    def select_batch(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [self._fix(s) for s in self.selector.select_batch(*args, **kwargs)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.selector, name)


@app.command("select")
def select_cmd(
    pool: Annotated[Path, typer.Option("--pool", help="JSONL/CSV file of demos or a saved pool directory.")],
    query: Annotated[
        list[str] | None, typer.Option("--query", "-q", metavar="TEXT", help="Query text; repeat for several queries.")
    ] = None,
    queries_file: Annotated[
        Path | None, typer.Option(help="File of queries (one per line, or JSONL): writes JSONL selections.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write JSONL here instead of stdout.")] = None,
    selector: Annotated[
        str, typer.Option(help="promptkd (MMD herding), random, topk, mmr, dpp, votek or bm25.")
    ] = "promptkd",
    k: Annotated[str, typer.Option(help="Number of demonstrations, or 'auto' (bound-derived budget).")] = "4",
    k_max: Annotated[
        int | None, typer.Option(help="With --k auto: the largest number of demonstrations considered [default: 32].")
    ] = None,
    token_cost: Annotated[
        float | None, typer.Option(help="With --k auto: price of one prompt token in U(k) (lambda) [default: 0].")
    ] = None,
    constants: Annotated[
        Path | None,
        typer.Option(help="With --k auto: JSON file of budget constants (from `promptkd bound --save-constants`)."),
    ] = None,
    kernel: Annotated[str | None, typer.Option(help="rbf, laplacian, imq, cosine or linear [default: rbf].")] = None,
    bandwidth: Annotated[
        str | None, typer.Option(help="'median', a number, or numbers joined by commas [default: median].")
    ] = None,
    candidates: Annotated[int | None, typer.Option(help="Candidate set size for the greedy [default: 256].")] = None,
    order: Annotated[
        str | None, typer.Option(help="Ordering policy, e.g. similarity, herding, interleave [default: similarity].")
    ] = None,
    swaps: Annotated[int | None, typer.Option(help="Swap-refinement exchanges after the greedy.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Token budget for the rendered demonstrations.")] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="Tokenizer for --max-tokens: whitespace, smollm2, gemma-3-270m, minilm or chars/4 (all offline), a folder, or a hub name [default: whitespace]."
        ),
    ] = None,
    label_balance: Annotated[str | None, typer.Option(help="cover or stratified.")] = None,
    dedup_threshold: Annotated[
        float | None, typer.Option(help="No two demos with cosine similarity at or above this.")
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUE", help="Metadata filter key=value (a|b for any of); repeatable."),
    ] = None,
    context: Annotated[
        list[str] | None, typer.Option(metavar="TEXT", help="Expected-query text that joins every target; repeatable.")
    ] = None,
    template: Annotated[str, typer.Option(help="Example pattern with {input} and {output}.")] = DEFAULT_TEMPLATE,
    joint: Annotated[bool, typer.Option("--joint", help="Treat all queries as one target distribution.")] = False,
    random_trials: Annotated[
        int | None, typer.Option(help="Random subsets to compare MMD against [default: 200; 0 with --queries-file].")
    ] = None,
    input_key: InputKeyOption = None,
    output_key: OutputKeyOption = None,
    pair_key: PairKeyOption = None,
    query_key: Annotated[str, typer.Option(help="Field of the query in a JSONL --queries-file.")] = "input",
    embedder: Annotated[
        str | None, typer.Option(help="Embedder for a JSONL pool / queries: minilm, hashing or a path.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of text.")] = False,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bar while writing --out [default: on].")
    ] = None,
) -> None:
    """Select demonstrations for one or more queries and show the rendered prompt.

    With --queries-file every query gets its own selection, written as one JSON
    line each (to --out or stdout).
    """
    from promptkd.integrations.hooks import emit
    from promptkd.integrations.registry import make_selector

    if not query and queries_file is None:
        fail("pass --query TEXT (repeatable) or --queries-file FILE.")
    if query and queries_file is not None:
        fail("pass either --query or --queries-file, not both.")
    k_value = parse_k(k)
    if (k_max is not None or token_cost is not None or constants is not None) and k_value != "auto":
        fail("--k-max, --token-cost and --constants set the budget of --k auto; pass --k auto with them, or drop them.")
    estimator = None
    if constants is not None:
        from promptkd.bounds import BoundEstimator

        estimator = BoundEstimator().set_constants(**read_constants(constants))
    options = _selector_options(
        k_max=k_max,
        token_cost=token_cost,
        bound_estimator=estimator,
        kernel=kernel,
        bandwidth=parse_bandwidth(bandwidth),
        candidates=candidates,
        order=order,
        swaps=swaps,
        max_tokens=max_tokens,
        tokenizer=tokenizer,
        label_balance=label_balance,
        dedup_threshold=dedup_threshold,
        where=parse_where(where),
    )
    if max_tokens is not None:
        options["template"] = template
        if tokenizer is None or tokenizer == "whitespace":
            from promptkd.bounds.tokens import whitespace_tokens

            options["tokenizer"] = whitespace_tokens
    demo_pool = load_pool_arg(pool, input_key, output_key, embedder, pair_key)
    index_map = None
    if "where" in options and "where" not in _accepted_options(selector):
        # selectors without a metadata filter run on the filtered pool; indices are mapped back below
        index_map = np.flatnonzero(demo_pool.mask(where=options["where"]))
        if index_map.size == 0:
            fail(f"--where {where} matches no demo in the pool; check the metadata key and value.")
        demo_pool = demo_pool.subset(index_map.tolist())
        del options["where"]
    sel = make_selector(selector, k=k_value, seed=seed, **options).fit(demo_pool)
    if index_map is not None:
        sel = _RemappedSelector(sel, index_map)
    ctx = list(context) if context else None

    if queries_file is not None:
        queries = read_queries(queries_file, query_key, pair_key)
        trials = 0 if random_trials is None else random_trials
        _select_file(sel, queries, out, template, ctx, trials, seed, joint, progress)
        return

    trials = 200 if random_trials is None else random_trials
    assert query is not None
    targets = [list(query)] if joint else [[q] for q in query]
    sink = open(out, "w", encoding="utf-8") if out is not None else None  # noqa: SIM115
    if sink is None and not as_json:
        typer.echo(SELECT_LEGEND)
    try:
        for group in targets:
            q: Any = group if len(group) > 1 else group[0]
            selection = sel.select(q, context=ctx)
            emit("on_select", selection, source="cli")
            target = sel.make_target(q, context=ctx)
            rand_mean, rand_std = random_mmd2(sel, target, selection.k, trials, seed) if trials else (float("nan"),) * 2
            prompt = selection.render(template, group[-1])
            if as_json or sink is not None:
                row = selection.to_dict()
                if trials:
                    row.update({"random_mmd2_mean": rand_mean, "random_mmd2_std": rand_std})
                row["prompt"] = prompt
                line = json.dumps(row, ensure_ascii=False, default=_json_default)
                if sink is not None:
                    sink.write(line + "\n")
                else:
                    typer.echo(line)
                continue
            typer.echo("=" * 78)
            typer.echo("target: " + " | ".join(group))
            typer.echo(selection.explain())
            if trials:
                ratio = selection.mmd2 / rand_mean if rand_mean > 0 else float("nan")
                typer.echo(
                    f"MMD2 of the selection: {selection.mmd2:.5f}   random {selection.k}-subsets: "
                    f"{rand_mean:.5f} +/- {rand_std:.5f} (n={trials}); ratio {ratio:.2f}"
                )
            typer.echo("-" * 78 + "\nrendered prompt:\n" + prompt)
    finally:
        if sink is not None:
            sink.close()
    if sink is not None:
        typer.echo(f"wrote {len(targets)} selection(s) to {out}", err=True)


SELECT_LEGEND = """How to read the tables below:
  MMD2      squared kernel distance between the chosen demos and the target query (0 = same
            distribution in embedding space); promptkd picks demos to make it small.
  sim       cosine similarity of the demo to the target.
  step      when herding picked the demo (1 = first); pos is its place in the prompt, where
            the most similar demo comes last, next to the query.
  gain      how much that pick lowered MMD2; run MMD2 is the MMD2 of the first `step` picks.
  ratio     MMD2 of the selection / mean MMD2 of random subsets of the same size: below 1
            means closer to the target than chance."""

BOUND_LEGEND = """How to read this: U(k) scores each budget k along the herding path (lower is better) and k*
is its minimum; a larger k shrinks the A/sqrt(k) term and costs tokens. The bound is an upper
limit on the error rate on the target (a number in [0, 1]); with the unit theory constants a
total above 1 says nothing about the error (it is vacuous), so read k* and the terms, not the
total. Calibrated constants (BoundEstimator.calibrate) make both numbers interpretable."""


def _select_file(
    sel: Any,
    queries: list[str],
    out: Path | None,
    template: str,
    context: list[str] | None,
    trials: int,
    seed: int,
    joint: bool,
    progress: bool | None = None,
) -> None:
    from tqdm.auto import tqdm

    from promptkd._progress import default_show_progress_bar
    from promptkd.integrations.hooks import emit

    sink = open(out, "w", encoding="utf-8") if out is not None else sys.stdout  # noqa: SIM115
    n = 0
    try:
        groups: list[Sequence[str]] = [queries] if joint else list(_chunks(queries, 256))
        bar = tqdm(
            total=1 if joint else len(queries),
            desc="selecting",
            unit="query",
            # a bar only when the rows go to a file; on by default there, off with --no-progress
            disable=out is None
            or not default_show_progress_bar(
                progress if progress is not None or os.environ.get("PROMPTKD_PROGRESS") else True
            ),
            file=sys.stderr,
        )
        for chunk in groups:
            selections = (
                [sel.select(list(chunk), context=context)] if joint else sel.select_batch(list(chunk), context=context)
            )
            for i, selection in enumerate(selections):
                emit("on_select", selection, source="cli")
                query = chunk[-1] if joint else chunk[i]
                row = {"query": query if not joint else list(chunk), **selection.to_dict()}
                if trials:
                    target = sel.make_target(list(chunk) if joint else query, context=context)
                    row["random_mmd2_mean"], row["random_mmd2_std"] = random_mmd2(
                        sel, target, selection.k, trials, seed
                    )
                row["prompt"] = selection.render(template, query)
                sink.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
                n += 1
            bar.update(1 if joint else len(chunk))
        bar.close()
    finally:
        if out is not None:
            sink.close()
        else:
            sink.flush()
    if out is not None:
        typer.echo(f"wrote {n} selection(s) to {out}", err=True)


# ---------------------------------------------------------------------- bound
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


def calibrate_from_results(estimator: Any, path: Path, *, as_json: bool) -> Any:
    """Fit the estimator's budget constants on evaluation rows and print the fit quality per task."""
    from promptkd.evaluation import ExperimentResult, read_rows

    rows = read_rows(path)
    if not rows:
        fail(f"--calibrate {path} holds no evaluation rows; run `promptkd eval ... --results {path}` first.")
    records = ExperimentResult(rows).calibration_records()
    if len(records) < 3:
        fail(f"--calibrate {path} gives {len(records)} (k, MMD, error) cells; at least 3 are needed (vary k).")
    fit = estimator.calibrate(records)
    per_task: dict[str, list[float]] = {}
    for rec, res in zip(records, fit.residuals, strict=True):
        per_task.setdefault(str(rec["task"]), []).append(res)
    if not as_json:
        typer.echo(
            f"calibrated on {fit.n} cells of {path}: A = {fit.A:.4f}, C = {fit.C:.4f}, intercept = "
            f"{fit.intercept:.4f}, R^2 = {fit.r2:.3f}, RMSE = {fit.rmse:.4f}"
        )
        for task, res in sorted(per_task.items()):
            typer.echo(f"  {task:<12} cells {len(res):3d}  mean residual {np.mean(res):+.4f}  max |residual| "
                       f"{np.max(np.abs(res)):.4f}")  # fmt: skip
    return fit


@app.command("bound")
def bound_cmd(
    pool: Annotated[Path, typer.Option("--pool", help="JSONL/CSV file of demos or a saved pool directory.")],
    query: Annotated[
        list[str] | None,
        typer.Option("--query", "-q", metavar="TEXT", help="Target query; repeat: all queries form one target."),
    ] = None,
    queries_file: Annotated[Path | None, typer.Option(help="File of target queries (one per line, or JSONL).")] = None,
    k_max: Annotated[int, typer.Option(help="Largest number of demonstrations considered.")] = 16,
    png: Annotated[Path | None, typer.Option(help="Write the budget / MMD / bound figure to this PNG.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Token budget for the demonstrations.")] = None,
    token_cost: Annotated[float, typer.Option(help="Price of one token in U(k) (lambda).")] = 0.0,
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer name/path for token counts.")] = None,
    target_error: Annotated[
        float | None, typer.Option(help="Report the largest acceptable MMD for this target error.")
    ] = None,
    permutations: Annotated[int, typer.Option(help="Permutations for the MMD p-value (0: no test).")] = 200,
    kernel: Annotated[str, typer.Option(help="rbf, laplacian, imq, cosine or linear.")] = "rbf",
    bandwidth: Annotated[str, typer.Option(help="'median', a number, or numbers joined by commas.")] = "median",
    delta: Annotated[float, typer.Option(help="Failure probability of the bound.")] = 0.05,
    c: Annotated[float, typer.Option("--C", help="Coefficient of the MMD term.")] = 1.0,
    a: Annotated[float | None, typer.Option("--A", help="Budget constant [default: from the theory, ~4.05].")] = None,
    constants: Annotated[
        Path | None,
        typer.Option(
            help="JSON file of budget constants {A, C, intercept} (as --save-constants writes).", dir_okay=False
        ),
    ] = None,
    calibrate: Annotated[
        Path | None,
        typer.Option(
            help="Fit A, C and an intercept on evaluation rows (JSONL from `promptkd eval` or run_experiment).",
            dir_okay=False,
        ),
    ] = None,
    save_constants: Annotated[
        Path | None, typer.Option(help="With --calibrate: write the fitted constants to this JSON file.")
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUE", help="Use only demos whose metadata matches (a|b for any of); repeatable."),
    ] = None,
    template: Annotated[str, typer.Option(help="Example pattern for token counts.")] = DEFAULT_TEMPLATE,
    input_key: InputKeyOption = None,
    output_key: OutputKeyOption = None,
    pair_key: PairKeyOption = None,
    query_key: Annotated[str, typer.Option(help="Field of the query in a JSONL --queries-file.")] = "input",
    embedder: Annotated[str | None, typer.Option(help="Embedder for a JSONL pool / queries.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Report the KD bound and the bound-derived budget k* for a target, with an optional PNG.

    The budget U(k) = A/sqrt(k) + C*MMD(S_k, T) + lambda*tokens is evaluated
    along the herding path; the bound is reported term by term at k*.
    """
    from promptkd.bounds import report
    from promptkd.integrations.hooks import emit

    if not query and queries_file is None:
        fail("pass --query TEXT (repeatable) or --queries-file FILE.")
    queries = list(query or []) + (read_queries(queries_file, query_key, pair_key) if queries_file is not None else [])
    if png is not None and png.suffix.lower() not in (".png", ".svg", ".pdf"):
        fail(f"--png {png} must end in .png (or .svg/.pdf).")
    if constants is not None and calibrate is not None:
        fail("pass --constants or --calibrate, not both.")
    if save_constants is not None and calibrate is None:
        fail("--save-constants writes what --calibrate fits; pass --calibrate RESULTS too.")
    estimator = None
    if constants is not None or calibrate is not None:
        from promptkd.bounds import BoundEstimator

        estimator = BoundEstimator(
            kernel=kernel, bandwidth=parse_bandwidth(bandwidth), delta=delta, C=c, A=a, seed=seed
        )
        if constants is not None:
            estimator.set_constants(**read_constants(constants))
        else:
            assert calibrate is not None
            fit = calibrate_from_results(estimator, calibrate, as_json=as_json)
            if save_constants is not None:
                save_constants.write_text(
                    json.dumps({"A": fit.A, "C": fit.C, "intercept": fit.intercept, "r2": fit.r2, "n": fit.n}, indent=1)
                    + "\n",
                    encoding="utf-8",
                )
                typer.echo(f"wrote {save_constants}", err=True)
    demo_pool = load_pool_arg(pool, input_key, output_key, embedder, pair_key)
    if where:
        demo_pool = demo_pool.filter(where=parse_where(where))
        if len(demo_pool) == 0:
            fail(f"--where {where} matches no demo in the pool; check the metadata key and value.")
    if png is not None:
        from promptkd._optional import require

        require("matplotlib", "plot", purpose="--png")
    budget, bound = report(
        demo_pool,
        queries if len(queries) > 1 else queries[0],
        k_max=min(k_max, len(demo_pool)),
        out_png=png,
        max_tokens=max_tokens,
        token_cost=token_cost,
        tokenizer=tokenizer,
        template=template,
        target_error=target_error,
        permutation_test=permutations > 0,
        n_permutations=max(permutations, 1),
        **(
            {"estimator": estimator}
            if estimator is not None
            else {
                "kernel": kernel,
                "bandwidth": parse_bandwidth(bandwidth),
                "delta": delta,
                "C": c,
                "A": a,
                "seed": seed,
            }
        ),
    )
    emit("on_budget", budget, source="cli")
    emit("on_bound", bound, source="cli")
    if as_json:
        _echo_json({"budget": budget.to_dict(), "bound": bound.to_dict(), "png": None if png is None else str(png)})
        return
    typer.echo(str(budget))
    typer.echo(str(bound))
    ids = [demo_pool[i].id for i in budget.selected]
    typer.echo(f"demos at k*={budget.k_star}: " + ", ".join(ids))
    typer.echo(BOUND_LEGEND)
    if png is not None:
        typer.echo(f"wrote {png}")


# ---------------------------------------------------------------------- probe
def resolve_model(name: str | None) -> str | None:
    """Map the CLI's model names to :func:`promptkd.probes.load_lm` arguments."""
    if name is None or name.lower() in ("smollm2", "smollm2-135m", "default"):
        return None
    if name.lower() in ("gemma", "gemma3", "gemma-3-270m"):
        from promptkd.probes import GEMMA3_270M

        return GEMMA3_270M
    return name


def parse_layers(value: str) -> Any:
    """``all``, an int, ``a:b`` (a slice) or comma-separated ints."""
    text = value.strip().lower()
    if text == "all":
        return "all"
    try:
        if ":" in text:
            start, _, stop = text.partition(":")
            return slice(int(start) if start else None, int(stop) if stop else None)
        parts = [int(v) for v in text.split(",")]
    except ValueError:
        raise InvalidInputError(
            f"--layers must be 'all', an int, a:b or ints joined by commas, got {value!r}."
        ) from None
    return parts[0] if len(parts) == 1 else parts


@app.command("probe")
def probe_cmd(
    pool: Annotated[Path, typer.Option("--pool", help="JSONL/CSV file of demos or a saved pool directory.")],
    query: Annotated[str, typer.Option("--query", "-q", help="The query the prompt ends with.")],
    k: Annotated[int, typer.Option(help="Number of demonstrations to select and probe.")] = 4,
    selector: Annotated[str, typer.Option(help="Selector name (promptkd, topk, mmr, ...).")] = "promptkd",
    model: Annotated[
        str, typer.Option(help="smollm2 (offline SmolLM2-135M), gemma (Gemma-3-270m), or a model path.")
    ] = "smollm2",
    layers: Annotated[str, typer.Option(help="Layers to probe: all, an int, a:b, or ints joined by commas.")] = "all",
    influence: Annotated[
        bool, typer.Option("--influence", help="Also compute leave-one-out influence on the answer.")
    ] = False,
    answer: Annotated[
        str | None, typer.Option(help="Answer text scored by --influence (mind the leading space).")
    ] = None,
    template: Annotated[str, typer.Option(help="Example pattern with {input} and {output}.")] = DEFAULT_TEMPLATE,
    png: Annotated[Path | None, typer.Option(help="Write a heatmap (layers x demos) to this PNG.")] = None,
    metric: Annotated[str, typer.Option(help="Heatmap metric, e.g. demo_mass or contribution_norm.")] = "demo_mass",
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = None,
    input_key: InputKeyOption = None,
    output_key: OutputKeyOption = None,
    pair_key: PairKeyOption = None,
    embedder: Annotated[str | None, typer.Option(help="Embedder for a JSONL pool / the query.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
) -> None:
    """Select demonstrations, run the prompt through a real LM, and report per-demo attention.

    For each demonstration: the attention mass the readout token puts on its
    tokens (mean over probed layers and heads), its share of the demo mass, the
    norm of what it writes through the output projection and, with --influence,
    the change in the answer's log-probability when it is left out.
    """
    from promptkd.integrations.hooks import emit
    from promptkd.integrations.registry import make_selector
    from promptkd.probes import AttentionProbe, load_lm

    layer_spec = parse_layers(layers)
    if png is not None and png.suffix.lower() not in (".png", ".svg", ".pdf"):
        fail(f"--png {png} must end in .png (or .svg/.pdf).")
    demo_pool = load_pool_arg(pool, input_key, output_key, embedder, pair_key)
    selection = make_selector(selector, k=k).fit(demo_pool).select(query)
    emit("on_select", selection, source="cli")
    lm = load_lm(resolve_model(model), device=device)
    report_ = AttentionProbe(lm, layers=layer_spec).probe(
        selection, query, template, influence=influence, answer=answer
    )
    emit("on_probe", report_, source="cli")
    if png is not None:
        from promptkd._optional import require

        plt = require("matplotlib.pyplot", "plot", purpose="--png")
        ax = report_.plot(metric)
        png.parent.mkdir(parents=True, exist_ok=True)
        ax.figure.tight_layout()
        ax.figure.savefig(png, dpi=120)
        plt.close(ax.figure)
    if as_json:
        data = report_.to_dict()
        data["selection"] = selection.to_dict()
        data["png"] = None if png is None else str(png)
        _echo_json(data)
        return
    agg = report_.per_demo()
    strength = float(np.mean(report_.layer_distillation_strength))
    typer.echo(f"model: {report_.model}   tokens: {report_.n_tokens}   layers probed: {len(report_.layers)}")
    typer.echo(
        f"readout token {report_.readout}: demo mass {float(report_.demo_mass.sum(-1).mean()):.3f}, "
        f"rest of prompt {float(report_.query_mass.mean()):.3f}, "
        f"layer distillation strength {strength:.3f} (mean over layers)"
    )
    typer.echo(f"{'pos':>3}  {'id':<18} {'label':<12} {'mass':>7} {'share':>6} {'contrib':>8} {'influence':>9}  input")
    for i, d in enumerate(report_.demos):
        infl = "" if report_.influence is None else f"{float(report_.influence[i]):+.4f}"
        text = d.input.replace("\n", " ")
        text = text if len(text) <= 40 else text[:37] + "..."
        typer.echo(
            f"{i:>3}  {d.id[:18]:<18} {d.output[:12]:<12} {float(agg['demo_mass'][i]):7.4f} "
            f"{float(agg['mass_share'][i]):6.3f} {float(agg['contribution_norm'][i]):8.4f} {infl:>9}  {text}"
        )
    if report_.answer is not None:
        typer.echo(f"answer {report_.answer!r}: log p = {report_.answer_logprob:.4f}")
    if png is not None:
        typer.echo(f"wrote {png}")


# ---------------------------------------------------------------------- eval
@app.command("eval")
def eval_cmd(
    task: Annotated[
        list[str],
        typer.Option(
            "--task", "-t", metavar="NAME_OR_DIR", help="Task name or folder with train/test.jsonl; repeatable."
        ),
    ],
    selectors: Annotated[
        str,
        typer.Option(
            help="Comma-separated: zero-shot, random, topk, mmr, dpp, votek, bm25, promptkd, promptkd-nbhd, promptkd-auto."
        ),
    ] = "zero-shot,random,topk,promptkd",
    k: Annotated[
        list[int] | None, typer.Option("--k", help="Demonstrations per prompt; repeatable [default: 4].")
    ] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds for seeded selectors.")] = "0",
    n_test: Annotated[int | None, typer.Option(help="Test items per task (seeded sample); omit for all.")] = 100,
    model: Annotated[str, typer.Option(help="smollm2, gemma, or a model path.")] = "smollm2",
    data_root: Annotated[Path | None, typer.Option(help="Folder that holds the task folders.")] = None,
    results: Annotated[
        Path | None, typer.Option(help="JSONL results file (resumes: rows already there are skipped).")
    ] = None,
    embedder: Annotated[str | None, typer.Option(help="Pool embedder: minilm (default), hashing or a path.")] = None,
    pool_size: Annotated[int | None, typer.Option(help="Subsample the train split to this many demos.")] = None,
    max_chars: Annotated[int | None, typer.Option(help="Truncate texts to this many characters.")] = None,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="Contextual calibration of label scores.")] = False,
    batch_size: Annotated[int, typer.Option(help="Prompts per LM forward pass.")] = 8,
    plots: Annotated[Path | None, typer.Option(help="Write accuracy plots (PNG) into this folder.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the per-cell summary as JSON.")] = False,
) -> None:
    """Score ICL accuracy of selectors on classification tasks with a real LM (the evaluation harness).

    Every (task, selector, k, seed) cell is run on the same seeded sample of
    test items; the table reports accuracy, its spread over seeds, a bootstrap
    interval over items, the label vote of the demos (no LM), prompt tokens and
    the MMD2 of the selections.
    """
    from promptkd.evaluation import run_experiment, standard_selectors
    from promptkd.integrations.hooks import emit
    from promptkd.probes import load_lm

    names = [s.strip() for s in selectors.split(",") if s.strip()]
    if not names:
        fail("--selectors is empty; pass e.g. zero-shot,topk,promptkd.")
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        fail(f"--seeds must be integers joined by commas, got {seeds!r}.")
    k_values = list(k) if k else [4]
    for value in k_values:
        if value < 1:
            fail(f"--k must be >= 1, got {value}; pass the number of demonstrations per prompt.")
    specs = standard_selectors(names)
    emb = None if embedder is None else make_embedder(embedder)
    from promptkd.evaluation import load_task

    for name in task:  # fail on a bad task before spending ~30 s loading the LM
        load_task(name, "test", data_root=data_root)
    lm = load_lm(resolve_model(model), device=device)
    result = run_experiment(
        specs,
        list(task),
        k_values=k_values,
        seeds=seed_list or [0],
        n_test=n_test,
        lm=lm,
        results_path=results,
        data_root=data_root,
        embedder=emb,
        calibrate=calibrate,
        batch_size=batch_size,
        pool_size=pool_size,
        max_chars=max_chars,
        show_progress_bar=progress,
    )
    summary = result.summary()
    emit("on_eval", result, source="cli")
    written = result.plot(plots) if plots is not None else []
    if as_json:
        _echo_json(
            {
                "cells": [c.to_dict() for c in summary],
                "results": None if results is None else str(results),
                "plots": [str(p) for p in written],
            }
        )
        return
    typer.echo(result.to_markdown(summary))
    if results is not None:
        typer.echo(f"rows in {results}: {len(result.rows)}")
    for p in written:
        typer.echo(f"wrote {p}")


# ---------------------------------------------------------------------- entry point
_PY_NAMES = re.compile(
    r"\b(input_key|output_key|pair_key|id_key|label_balance|max_tokens|dedup_threshold|k_max|token_cost|"
    r"candidates|swaps|kernel|bandwidth|tokenizer|order|seed|embedder|query_weight|n_neighbors)\b(=?)"
)


def cli_words(message: str) -> str:
    """A library message in the command line's terms: Python argument names become the flags that set them.

    Examples
    --------
    >>> cli_words("pass input_key=/output_key= to match your data")
    'pass --input-key/--output-key to match your data'
    >>> cli_words("label_balance must be None, 'cover' or 'stratified'")
    "--label-balance must be unset, 'cover' or 'stratified'"
    """
    out = _PY_NAMES.sub(lambda m: "--" + m.group(1).replace("_", "-"), message)
    out = out.replace("must be None, ", "must be unset, ")
    return out.replace("re-embed with pool.embed(force=True)", "rebuild the pool with `promptkd pool build`")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning library errors into one line."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except PromptKDError as err:
        code = 2 if isinstance(err, (ValueError, TypeError)) else 1
        typer.echo(f"error: {cli_words(str(err))}", err=True)
        sys.exit(code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except OSError as err:
        typer.echo(f"error: {err}; check the path and permissions.", err=True)
        sys.exit(1)
    except Exception as err:
        # usage errors from typer's bundled click: report them in one line too
        if type(err).__name__ == "NoArgsIsHelpError":
            typer.echo(err.format_message(), err=True)  # type: ignore[attr-defined]
            sys.exit(2)
        if hasattr(err, "format_message") and hasattr(err, "exit_code"):
            typer.echo(f"error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        raise
    # with standalone_mode=False click returns the code of a typer.Exit instead of raising it
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
