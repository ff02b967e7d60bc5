"""``promptkd pool build`` and ``promptkd pool info``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from promptkd.cli._core import (
    _echo_json,
    fail,
    pool_app,
)
from promptkd.cli.readers import (
    load_pool_arg,
    make_embedder,
    read_records_located,
    resolve_keys,
)


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
    from promptkd.pool.records import count_repeats

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
