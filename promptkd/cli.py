"""The ``promptkd`` command line.

Every command prints human-readable output by default and JSON with ``--json``.
Errors are one line on stderr with the fix, and a non-zero exit code:
2 for bad input, 1 for other failures.
"""

from __future__ import annotations

import json
import logging
import sys
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
)


@app.callback()
def _root() -> None:
    """Choose and order in-context-learning demonstrations by kernel MMD."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_pool_arg(path: Path, input_key: str = "input", output_key: str = "output") -> Any:
    """Load a pool from a saved directory or a JSONL file."""
    from promptkd.pool import DemoPool, read_jsonl

    if path.is_dir():
        return DemoPool.load(path)
    if not path.exists():
        raise InvalidInputError(f"--pool {path} does not exist; pass a JSONL file or a saved pool directory.")
    records = read_jsonl(path)
    id_key = "id" if all("id" in r for r in records) else None
    return DemoPool.from_records(records, input_key=input_key, output_key=output_key, id_key=id_key)


def random_mmd2(selector: Any, target: Any, k: int, trials: int, seed: int) -> tuple[float, float]:
    """Mean and standard deviation of MMD2 over random k-subsets of the pool."""
    rng = np.random.default_rng(seed)
    values = [
        selector.target_mmd2(rng.choice(selector.n_demos_, size=k, replace=False).tolist(), target)
        for _ in range(trials)
    ]
    return float(np.mean(values)), float(np.std(values))


@app.command("select")
def select_cmd(
    pool: Annotated[Path, typer.Option("--pool", help="JSONL file of demos or a saved pool directory.")],
    query: Annotated[list[str], typer.Option("--query", "-q", help="Query text; repeat for several queries.")],
    k: Annotated[int, typer.Option(help="Number of demonstrations.")] = 4,
    kernel: Annotated[str, typer.Option(help="rbf, laplacian, imq, cosine or linear.")] = "rbf",
    candidates: Annotated[int, typer.Option(help="Candidate set size for the greedy.")] = 256,
    order: Annotated[str, typer.Option(help="Ordering policy.")] = "similarity",
    template: Annotated[
        str, typer.Option(help="Example pattern with {input} and {output}.")
    ] = "Input: {input}\nOutput: {output}",
    joint: Annotated[bool, typer.Option("--joint", help="Treat all queries as one target distribution.")] = False,
    random_trials: Annotated[int, typer.Option(help="Random subsets to compare MMD against.")] = 200,
    input_key: Annotated[str, typer.Option(help="Record key of the demo input in a JSONL pool.")] = "input",
    output_key: Annotated[str, typer.Option(help="Record key of the demo output in a JSONL pool.")] = "output",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of text.")] = False,
) -> None:
    """Select demonstrations for one or more queries and show the rendered prompt."""
    from promptkd.selection import Selector

    demo_pool = load_pool_arg(pool, input_key, output_key)
    selector = Selector(k=k, kernel=kernel, candidates=candidates, order=order, seed=seed).fit(demo_pool)
    targets = [list(query)] if joint else [[q] for q in query]
    for group in targets:
        target = selector._target(group if len(group) > 1 else group[0])
        selection = selector._build(target, selector._resolve_k(None))
        rand_mean, rand_std = random_mmd2(selector, target, selection.k, random_trials, seed)
        prompt = selection.render(template, group[-1])
        if as_json:
            row = selection.to_dict()
            row.update({"random_mmd2_mean": rand_mean, "random_mmd2_std": rand_std, "prompt": prompt})
            typer.echo(json.dumps(row, ensure_ascii=False))
            continue
        typer.echo("=" * 78)
        typer.echo("target: " + " | ".join(group))
        typer.echo(selection.explain())
        ratio = selection.mmd2 / rand_mean if rand_mean > 0 else float("nan")
        typer.echo(
            f"MMD2 of the selection: {selection.mmd2:.5f}   random {selection.k}-subsets: "
            f"{rand_mean:.5f} +/- {rand_std:.5f} (n={random_trials}); ratio {ratio:.2f}"
        )
        typer.echo("-" * 78 + "\nrendered prompt:\n" + prompt)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning library errors into one line."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except PromptKDError as err:
        code = 2 if isinstance(err, (ValueError, TypeError)) else 1
        typer.echo(f"error: {err}", err=True)
        sys.exit(code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as err:
        # usage errors from typer's bundled click: report them in one line too
        if hasattr(err, "format_message") and hasattr(err, "exit_code"):
            typer.echo(f"error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
