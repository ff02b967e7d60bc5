"""Score dev rows at more demo counts, for fitting the budget's constants (A, C, intercept).

The dev protocol is the one of ``benchmarks/tune_dev.py`` (the same seeded dev items carved
from each task's train split, the same pool of 2000 other train items, the same template,
Gemma-3-270m in float32, MiniLM embeddings). ``tune_dev.py`` scored k=8; this script adds
other k (and a random selector, whose MMD is far from herding's) so that the ``A / sqrt(k)``
and ``C * MMD`` terms can be told apart. Rows are written as they are scored (resumable) to
``benchmarks/results/calibration_dev/rows.jsonl``; the committed copy is ``rows.jsonl.gz``
with ``manifest.json`` beside it. ``benchmarks/calibrate_constants.py`` fits the constants.

Phases run in order, each over all eight tasks (task by task), so an interrupted run leaves whole cells::

    nice -n 10 .venv/bin/python benchmarks/calibrate_score.py                 # all phases
    nice -n 10 .venv/bin/python benchmarks/calibrate_score.py --phases k4-prior   # one phase
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._rows import git_commit, load_manifest, pack, save_manifest  # noqa: E402

TASKS = ["sst2", "mr", "subj", "trec", "agnews", "dbpedia", "rte", "cb"]
RESULTS = REPO / "benchmarks" / "results" / "calibration_dev" / "rows.jsonl"

#: phase name -> (k, selector names); the names are tune_dev.py's variants plus ``random``
PHASES: dict[str, tuple[int, list[str]]] = {
    "k4-prior": (4, ["prior"]),
    "k4-random": (4, ["random"]),
    "k2-prior": (2, ["prior"]),
    "k4-topk": (4, ["topk"]),
    "k2-random": (2, ["random"]),
    "k4-bm25": (4, ["bm25"]),
    "k8-random": (8, ["random"]),
    "k2-topk": (2, ["topk"]),
    "k16": (16, ["prior", "random"]),
    "k16-prior": (16, ["prior"]),
    "k16-random": (16, ["random"]),
    "k8-prior": (8, ["prior"]),
}
#: the name of k='auto' scored at a token price P with the ``prior`` variant's settings: AUTO_PREFIX + f"{P:g}"
#: (calibrate_constants.py reads it back); other variants are named by ``auto_name``
AUTO_PREFIX = "auto16-p"
#: tune_dev.py variants that k='auto' can be scored with -> (kernel, order) of the Selector
AUTO_VARIANTS = {
    "prior": ("rbf", "label_prior"),  # the defaults when the price was first chosen
    "hybrid-lexvote": ("rbf+lexical", "label_prior_lexical"),  # the defaults since
}


def auto_name(points: float, variant: str = "prior") -> str:
    """The selector name of k='auto' at ``points`` per 100 tokens with ``variant``'s kernel and order."""
    return f"{AUTO_PREFIX}{points:g}" if variant == "prior" else f"auto16-{variant}-p{points:g}"


def parse_auto_name(name: str) -> tuple[str, float] | None:
    """``(variant, points)`` of a name made by ``auto_name``; None for any other selector."""
    if not name.startswith("auto16-"):
        return None
    head, _, points = name.rpartition("-p")
    return head.removeprefix("auto16").lstrip("-") or "prior", float(points)


def auto_spec(points: float, variant: str = "prior") -> Any:
    """``k="auto"`` at most 16 demos, the shipped constants and a token price of ``points`` per 100 tokens.

    The herding kernel and order are ``variant``'s (``AUTO_VARIANTS``); the budget's k* does not depend on
    them (it is read on an RBF), so only the demonstrations and their order change with the variant.
    """
    from promptkd.evaluation import SelectorSpec
    from promptkd.selection import Selector

    kernel, order = AUTO_VARIANTS[variant]

    def make(k: Any, seed: int) -> Any:
        return Selector(k="auto", seed=seed, k_max=16, token_cost=points / 1e4, kernel=kernel, order=order)

    return SelectorSpec(auto_name(points, variant), make, fixed_k="auto")


def specs(names: list[str]) -> list[Any]:
    """SelectorSpecs by name: tune_dev.py's variants, and ``random`` from the evaluation harness."""
    from benchmarks.tune_dev import variants
    from promptkd.evaluation import standard_selectors

    table = variants()
    return [standard_selectors([n])[0] if n == "random" else table[n][1] for n in names]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phases", nargs="*", default=list(PHASES), choices=list(PHASES), help="none: only --auto-prices")
    p.add_argument(
        "--auto-prices",
        nargs="+",
        type=float,
        default=[],
        help="also score k='auto' (k_max 16, the shipped constants) at these token prices, in accuracy points per "
        "100 tokens (selector names auto16-pP), after the phases",
    )
    p.add_argument(
        "--auto-variant",
        default="prior",
        choices=list(AUTO_VARIANTS),
        help="the kernel and order k='auto' herds with (a tune_dev.py variant); the variant at k=16 is scored in "
        "the same pass, so prompts the two share are scored once",
    )
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--n-dev", type=int, default=30)
    p.add_argument("--pool-size", type=int, default=2000)
    p.add_argument("--max-chars", type=int, default=600)
    p.add_argument("--threads", type=int, default=1, help="torch threads (other LM runs share the cores)")
    p.add_argument("--lm", default="gemma-3-270m", help="the scoring LM (a name load_lm knows)")
    p.add_argument("--results", default=str(RESULTS))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    import torch

    from benchmarks.tune_dev import dev_split
    from promptkd.embeddings import CachedEmbedder, SentenceTransformerEmbedder
    from promptkd.evaluation import run_experiment
    from promptkd.probes import load_lm

    torch.set_num_threads(args.threads)
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    embedder = CachedEmbedder(SentenceTransformerEmbedder(device=None), results.parent / "embeddings.sqlite")
    lm = load_lm(args.lm, dtype="float32", attn_implementation="sdpa")
    manifest = load_manifest(results)
    manifest["runs"].append(
        {
            "command": ".venv/bin/python benchmarks/calibrate_score.py " + " ".join(shlex.quote(a) for a in argv),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "git_commit": git_commit(),
            "lm": lm.name,
            "dtype": str(lm.model.dtype).removeprefix("torch."),
            "protocol": "benchmarks/tune_dev.py dev_split (seeded dev items from train, pool = rest of train)",
            "n_dev": args.n_dev,
            "pool_size": args.pool_size,
            "max_chars": args.max_chars,
            "phases": {p: {"k": PHASES[p][0], "selectors": PHASES[p][1]} for p in args.phases},
            "auto_prices_points_per_100_tokens": args.auto_prices,
            "auto_variant": args.auto_variant,
            "tasks": args.tasks,
        }
    )
    save_manifest(results, manifest)
    pairs = {}
    work = [(phase, PHASES[phase][0], specs(PHASES[phase][1])) for phase in args.phases]
    if args.auto_prices:  # one pass per task: the LM's score cache holds within a run_experiment call
        autos = [auto_spec(p, args.auto_variant) for p in args.auto_prices]  # each spec fixes k="auto"
        work.append((f"auto-{args.auto_variant}", 16, specs([args.auto_variant]) + autos))
    for phase, k, phase_specs in work:
        for name in args.tasks:
            if name not in pairs:
                pairs[name] = dev_split(name, args.n_dev, args.pool_size, args.max_chars)
            t0 = time.time()
            run_experiment(
                phase_specs, [pairs[name]], k_values=[k], seeds=[0], n_test=None, lm=lm,
                results_path=results, embedder=embedder, show_progress_bar=False,
            )  # fmt: skip
            pack(results)
            print(f"[{time.strftime('%H:%M:%S')}] {phase} {name} done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
