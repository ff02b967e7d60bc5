"""Shared pieces of the command line: the Typer apps, options, output helpers and errors in CLI terms."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import typer

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
