"""``promptkd probe`` and ``promptkd eval``: commands that run a real causal LM."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from promptkd.cli._core import DEFAULT_TEMPLATE, InputKeyOption, OutputKeyOption, PairKeyOption, _echo_json, app, fail
from promptkd.cli.readers import load_pool_arg, make_embedder, parse_numbers
from promptkd.exceptions import InvalidInputError


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
    error = f"--layers must be 'all', an int, a:b or ints joined by commas, got {value!r}."
    if ":" in text:
        start, _, stop = text.partition(":")
        try:
            return slice(int(start) if start else None, int(stop) if stop else None)
        except ValueError:
            raise InvalidInputError(error) from None
    return parse_numbers(text, int, error)


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
