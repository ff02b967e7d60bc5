"""``promptkd bound``: the bound and the bound-derived budget, with calibration from evaluation rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from promptkd.cli._core import DEFAULT_TEMPLATE, InputKeyOption, OutputKeyOption, PairKeyOption, _echo_json, app, fail
from promptkd.cli.readers import (
    load_pool_arg,
    parse_bandwidth,
    parse_where,
    read_constants,
    read_queries,
)

BOUND_LEGEND = """How to read this: U(k) scores each budget k along the herding path (lower is better) and k*
is its minimum; a larger k shrinks the A/sqrt(k) term and costs tokens (lambda, also stated in
accuracy points per 100 tokens). With shipped or calibrated constants U(k) reads as a predicted
error rate; the line 'constants:' says which were used. The bound is printed with the theory's
constants: an upper limit on the error rate on the target (a number in [0, 1]) whose total above
1 says nothing about the error (it is vacuous), so read its terms, not its total."""


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
    token_cost: Annotated[
        float | None,
        typer.Option(
            help="Price of one prompt token in U(k) (lambda), in error per token: 0.0001 is one accuracy point per "
            "100 tokens; 0 makes tokens free. [default: promptkd's default price, shown in the output]"
        ),
    ] = None,
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer name/path for token counts.")] = None,
    target_error: Annotated[
        float | None, typer.Option(help="Report the largest acceptable MMD for this target error.")
    ] = None,
    permutations: Annotated[int, typer.Option(help="Permutations for the MMD p-value (0: no test).")] = 200,
    kernel: Annotated[str, typer.Option(help="rbf, laplacian, imq, cosine or linear.")] = "rbf",
    bandwidth: Annotated[str, typer.Option(help="'median', a number, or numbers joined by commas.")] = "median",
    delta: Annotated[float, typer.Option(help="Failure probability of the bound.")] = 0.05,
    c: Annotated[float, typer.Option("--C", help="Coefficient of the MMD term.")] = 1.0,
    a: Annotated[
        float | None,
        typer.Option(
            "--A", help="Budget constant [default: the shipped constants for the embedder, else the theory's ~4.05]."
        ),
    ] = None,
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
