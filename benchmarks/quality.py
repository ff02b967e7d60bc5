"""Quality benchmark: does MMD selection beat the baselines on real ICL classification tasks?

Runs the full quality grid (8 tasks, 2 LMs, k in {4, 8}, 3 seeds, every selector) with
promptkd.evaluation.run_experiment (resumable JSONL under
benchmarks/results/, identical prompts scored once), then writes docs/benchmarks/quality.md
with the exact command, per-task tables, means over tasks, paired bootstrap CIs of promptkd
minus every baseline pooled over tasks, and plots.

Full grid (days on 2 CPU cores: about 1.5 s per Gemma prompt at k=8, 0.5 s per SmolLM2 prompt):
    .venv/bin/python benchmarks/quality.py
Quick mode (Gemma, k=8, 10 items per task, pools of 1,000; estimated from the measured per-prompt and
pool-embedding times at about 30-40 minutes on 2 CPU cores, plus about 8 minutes for the dev calibration
of promptkd-auto when benchmarks/results/tune_dev.jsonl lacks it):
    .venv/bin/python benchmarks/quality.py --quick
Rebuild the report from the results file without scoring anything:
    .venv/bin/python benchmarks/quality.py --report-only
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
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

import numpy as np  # noqa: E402

from benchmarks._rows import git_commit, load_manifest, pack, rows_source, save_manifest  # noqa: E402
from promptkd.evaluation import ExperimentResult, read_rows, run_experiment, standard_selectors  # noqa: E402

ALL_TASKS = ["sst2", "mr", "subj", "trec", "agnews", "dbpedia", "rte", "cb"]
ALL_SELECTORS = [
    "zero-shot",
    "random",
    "topk",
    "mmr",
    "dpp",
    "votek",
    "bm25",
    "topk-prior",
    "bm25-prior",
    "topk-lexvote",
    "bm25-lexvote",
    "mmr-lexvote",
    "mmr-lexvote-d0.25",
    "dpp-lexvote-d0.3",
    "promptkd",
    "promptkd-rbf",
    "promptkd-lexvote",
    "promptkd-sim",
    "promptkd-hybrid",
    "promptkd-nbhd",
    "promptkd-lm",
    "promptkd-auto",
    "promptkd-auto16",
    "promptkd-rbf-auto16",
    "promptkd-auto16-p1",
    "promptkd-rbf-auto16-p1",
    "promptkd-cone",
]
LMS = {"gemma": "gemma-3-270m", "smollm2": "SmolLM2-135M-Instruct"}
PROMPTKD = "promptkd"
AUTO = "promptkd-auto"
CONE = "promptkd-cone"  # the LM-aware mode: herd 30 candidates, keep the k the scoring LM reranks first


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="k=8 only, --n-test 10, --pool-size 1000, 1 seed, Gemma only")
    p.add_argument("--tasks", nargs="+", default=None, help=f"subset of {ALL_TASKS}")
    p.add_argument("--lms", nargs="+", default=None, choices=sorted(LMS), help="LMs (default: gemma smollm2)")
    p.add_argument("--k", nargs="+", type=int, default=None, help="k values (default 4 8; quick: 8)")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds of seeded selectors (default 0 1 2)")
    p.add_argument("--n-test", type=int, default=None, help="test items per task (default 300; quick: 10)")
    p.add_argument("--selectors", nargs="+", default=None, help=f"subset of {ALL_SELECTORS}")
    p.add_argument("--pool-size", type=int, default=None, help="subsample each train pool to this many demos")
    p.add_argument("--max-chars", type=int, default=600, help="truncate texts to this many characters")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="LM weights; auto: bfloat16 where the device computes it natively, else float32",
    )
    p.add_argument(
        "--pool-seeds",
        nargs="+",
        type=int,
        default=None,
        help="seeds of the train subsample (pool draws; default 0 1 2, quick: 0)",
    )
    p.add_argument("--data-root", default=None, help="folder of task folders (default ../shared/data/icl)")
    p.add_argument(
        "--results",
        default=str(REPO / "benchmarks" / "results" / "quality" / "rows.jsonl"),
        help="working results file (resumable); the run also writes the committed copy <results>.gz",
    )
    p.add_argument("--doc", default=str(REPO / "docs" / "benchmarks" / "quality.md"))
    p.add_argument("--report-only", action="store_true", help="only rebuild the report from the results file")
    p.add_argument("--plots", action="store_true", help="also write the accuracy plots beside the report")
    p.add_argument("--note", default="", help="free text added to the report (what part of the grid ran)")
    p.add_argument(
        "--auto-calibration",
        default=str(REPO / "benchmarks" / "results" / "tune_dev.jsonl"),
        help="dev-split results (benchmarks/tune_dev.py) that calibrate the bound behind promptkd-auto",
    )
    p.add_argument(
        "--auto-calibration-variant",
        default="median-x2",
        help="the tune_dev.py variant whose dev rows calibrate the bound (the one equal to Selector's defaults)",
    )
    p.add_argument(
        "--token-cost",
        type=float,
        default=1e-4,
        help="promptkd-auto's price of one prompt token, in units of error (1e-4: 100 tokens = 1 accuracy point)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.k = args.k or [8]
        args.n_test = args.n_test or 10
        args.pool_size = args.pool_size or 1000
        args.seeds = args.seeds or [0]
        args.pool_seeds = args.pool_seeds or [0]
        args.lms = args.lms or ["gemma"]
    args.k = args.k or [4, 8]
    args.n_test = args.n_test or 300
    args.seeds = args.seeds or [0, 1, 2]
    args.pool_seeds = args.pool_seeds or [0, 1, 2]
    args.lms = args.lms or ["gemma", "smollm2"]
    args.tasks = args.tasks or ALL_TASKS
    args.selectors = args.selectors or ALL_SELECTORS
    return args


def auto_calibration(args: argparse.Namespace, lm_name: str) -> Any:
    """A BoundEstimator with ``A`` and ``C`` fitted on dev-split runs of promptkd's defaults (k=4 and k=8).

    One least-squares fit over dev items of ``error ~ A / sqrt(k) + C * MMD`` with a free intercept per
    task (every column centred within its task), so that differences in difficulty between tasks are not
    read as an effect of MMD. MMD is the evaluation's (RBF, plain median bandwidth), as BoundEstimator uses.
    """
    from promptkd.bounds import BoundEstimator

    path, variant = Path(args.auto_calibration), args.auto_calibration_variant

    def dev_rows() -> list[dict]:
        rows = read_rows(path) if path.is_file() else []
        return [r for r in rows if r["selector"] == variant and r.get("mmd2") is not None and r["lm"] == lm_name]

    rows = dev_rows()
    if len({int(r["n_demos"]) for r in rows}) < 2:
        import tune_dev  # benchmarks/tune_dev.py, next to this script

        print(f"promptkd-auto: no dev calibration in {path}; running {variant} on the dev splits at k=8 and k=4 first")
        for k in (8, 4):
            tune_dev.run(
                tune_dev.parse_args(
                    ["--k", str(k), "--variants", variant, "--results", str(path), "--tasks", *args.tasks]
                )
            )
        rows = dev_rows()
    task = np.array([r["task"] for r in rows])
    X = np.array([[1.0 / np.sqrt(r["n_demos"]), np.sqrt(max(float(r["mmd2"]), 0.0))] for r in rows])
    y = np.array([0.0 if r["correct"] else 1.0 for r in rows])
    for t in set(task):
        m = task == t
        X[m] -= X[m].mean(0)
        y[m] -= y[m].mean()
    (A, C), *_ = np.linalg.lstsq(X, y, rcond=None)
    print(
        f"promptkd-auto: A={A:.3f} C={C:.3f} fitted within tasks on {len(rows)} dev items "
        f"({len(set(task))} tasks); token cost {args.token_cost:g} per token",
        flush=True,
    )
    if A <= 0 or C < 0:
        print("promptkd-auto: a fitted constant is not positive; it is clipped to 0 (no evidence for that term)")
    return BoundEstimator(A=max(float(A), 0.0), C=max(float(C), 0.0))


def auto_spec(args: argparse.Namespace, lm: Any, task: str, est: Any) -> Any:
    """promptkd with k='auto' (at most 8 demos): the calibrated bound ``est`` plus a price per prompt token."""
    from promptkd.evaluation import SelectorSpec, load_task
    from promptkd.selection import Selector

    template = load_task(task, "train", data_root=args.data_root).template

    def make(k: Any, seed: int) -> Any:
        return Selector(
            k="auto", k_max=8, token_cost=args.token_cost, tokenizer=lm.tokenizer, template=template,
            bound_estimator=est, seed=seed,
        )  # fmt: skip

    return SelectorSpec(AUTO, make, fixed_k="auto")


def cone_spec(lm: Any, task: str, data_root: Any) -> Any:
    """The LM-aware mode (:class:`promptkd.rerank.LMReranker`) with the scoring LM and the task's template."""
    from promptkd.evaluation import SelectorSpec, load_task
    from promptkd.rerank import LMReranker

    template = load_task(task, "train", data_root=data_root).template

    def make(k: Any, seed: int) -> Any:
        return LMReranker(lm, k=k, n_candidates=30, template=template)

    return SelectorSpec(CONE, make)


def run(args: argparse.Namespace, argv: list[str]) -> None:
    from promptkd.embeddings import CachedEmbedder, SentenceTransformerEmbedder
    from promptkd.probes import load_lm

    cache = Path(args.results).parent / "embeddings.sqlite"
    embedder = CachedEmbedder(SentenceTransformerEmbedder(device=None), cache)
    for key in args.lms:
        t0 = time.time()
        # scoring and embedding only: no attention weights needed, so fused (sdpa) attention
        lm = load_lm(LMS[key], dtype=args.dtype, attn_implementation="sdpa")
        dtype = str(lm.model.dtype).removeprefix("torch.")
        lm_name = lm.name if dtype == "float32" else f"{lm.name}@{dtype}"  # rows of two dtypes never mix
        write_manifest(args, lm_name, dtype, _fmt_cmd(argv))
        names, est = list(args.selectors), None
        if AUTO in names and key != "gemma":
            print(f"skipping {AUTO} for {lm.name}: its bound is calibrated on Gemma-3-270m dev runs only")
            names.remove(AUTO)
        elif AUTO in names:
            est = auto_calibration(args, lm.name)
        embedders = {"default": embedder}
        if "promptkd-lm" in names:
            from promptkd.probes import LMEmbedder

            embedders["lm"] = CachedEmbedder(LMEmbedder(lm), cache)
        print(f"[{time.strftime('%H:%M:%S')}] {lm.name} loaded in {time.time() - t0:.1f}s", flush=True)
        for pool_seed in args.pool_seeds:  # draw by draw, task by task: a partial run has complete cells
            for task in args.tasks:
                t1 = time.time()
                specs = standard_selectors([n for n in names if n != CONE])
                if AUTO in names:
                    specs = [auto_spec(args, lm, task, est) if sp.name == AUTO else sp for sp in specs]
                if CONE in names:
                    specs.append(cone_spec(lm, task, args.data_root))
                run_experiment(
                    specs,
                    [task],
                    k_values=args.k,
                    seeds=args.seeds,
                    n_test=args.n_test,
                    lm=lm,
                    lm_name=lm_name,
                    results_path=args.results,
                    data_root=args.data_root,
                    embedder=embedder,
                    embedders=embedders,
                    batch_size=args.batch_size,
                    pool_size=args.pool_size,
                    pool_seed=pool_seed,
                    max_chars=args.max_chars,
                    show_progress_bar=True,
                )
                print(
                    f"[{time.strftime('%H:%M:%S')}] {lm_name} {task} pool draw {pool_seed} done in "
                    f"{time.time() - t1:.0f}s",
                    flush=True,
                )


def write_manifest(args: argparse.Namespace, lm_name: str, dtype: str, command: str) -> None:
    """Record how the rows in ``args.results`` were produced, one entry per (LM, invocation), beside them."""
    results = Path(args.results)
    manifest = load_manifest(results)
    from promptkd.evaluation import load_task

    words = manifest.setdefault("label_words", {})
    for task in args.tasks:  # the order of the scores in every row
        words[task] = list(load_task(task, "train", data_root=args.data_root).label_words)
    manifest["runs"].append(
        {
            "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "git_commit": git_commit(),
            "lm": lm_name,
            "dtype": dtype,
            "attention": "sdpa",
            "pool_size": args.pool_size,
            "pool_seeds": args.pool_seeds,
            "n_test": args.n_test,
            "max_chars": args.max_chars,
            "k": args.k,
            "seeds": args.seeds,
            "selectors": args.selectors,
            "tasks": args.tasks,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        }
    )
    save_manifest(results, manifest)


# ---------------------------------------------------------------------- report
def _fmt_cmd(argv: list[str]) -> str:
    return ".venv/bin/python benchmarks/quality.py " + " ".join(shlex.quote(a) for a in argv)


def write_report(args: argparse.Namespace, argv: list[str]) -> None:
    """Rebuild the page from the rows (the working file if present, else the committed .gz) and the manifest."""
    from benchmarks import quality_report

    results = Path(args.results)
    source = rows_source(results)
    rows = read_rows(source)
    if not rows:
        print("no rows in", source)
        return
    manifest = load_manifest(results)
    runs = manifest.get("runs", [])
    # every distinct invocation that scored rows, in order (a grid is often extended in several runs)
    commands = list(dict.fromkeys(r["command"] for r in runs if "command" in r)) or [_fmt_cmd(argv)]
    command = "\n".join(commands)
    doc = Path(args.doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    note = args.note or manifest.get("note", "")  # a note kept in the manifest travels with the rows
    doc.write_text(quality_report.build_report(rows, manifest, command, note), encoding="utf-8")
    if args.plots:
        ExperimentResult(rows).plot(doc.parent, prefix="quality")
    print("wrote", doc)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.report_only:
        run(args, argv)
        pack(Path(args.results))
    shown, skip = [], False
    for a in argv:  # the command shown in the report is the one that scores, without report-only flags
        if skip:
            skip = False
            continue
        if a == "--note":
            skip = True
            continue
        if a != "--report-only" and not a.startswith("--note="):
            shown.append(a)
    write_report(args, shown)


if __name__ == "__main__":
    main()
