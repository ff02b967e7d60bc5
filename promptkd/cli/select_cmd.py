"""``promptkd select``: demonstrations for one query, several, or a file of them."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from promptkd.cli._core import (
    DEFAULT_TEMPLATE,
    InputKeyOption,
    OutputKeyOption,
    PairKeyOption,
    _json_default,
    app,
    fail,
)
from promptkd.cli.readers import (
    _chunks,
    load_pool_arg,
    parse_bandwidth,
    parse_k,
    parse_where,
    read_constants,
    read_queries,
)


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
        float | None,
        typer.Option(
            help="With --k auto: price of one prompt token in U(k) (lambda), in error per token: 0.0001 is one "
            "accuracy point per 100 tokens; 0 makes tokens free [default: promptkd's stated default price]."
        ),
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
        str | None,
        typer.Option(help="Ordering policy, e.g. label_prior, similarity, herding, interleave [default: label_prior]."),
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
