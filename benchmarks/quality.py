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

from promptkd.evaluation import ExperimentResult, read_rows, run_experiment, standard_selectors  # noqa: E402
from promptkd.evaluation.experiment import ZERO_SHOT  # noqa: E402

ALL_TASKS = ["sst2", "mr", "subj", "trec", "agnews", "dbpedia", "rte", "cb"]
ALL_SELECTORS = [
    "zero-shot",
    "random",
    "topk",
    "mmr",
    "dpp",
    "votek",
    "bm25",
    "promptkd",
    "promptkd-nbhd",
    "promptkd-lm",
    "promptkd-auto",
]
LMS = {"gemma": "gemma-3-270m", "smollm2": "SmolLM2-135M-Instruct"}
PROMPTKD = "promptkd"
AUTO = "promptkd-auto"


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
    p.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "quality.jsonl"))
    p.add_argument("--doc", default=str(REPO / "docs" / "benchmarks" / "quality.md"))
    p.add_argument("--report-only", action="store_true", help="only rebuild the report from the results file")
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


def run(args: argparse.Namespace) -> None:
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
        write_manifest(args, lm_name, dtype)
        names, est = list(args.selectors), None
        if AUTO in names and key != "gemma":
            print(f"skipping {AUTO} for {lm.name}: its bound is calibrated on Gemma-3-270m dev runs only")
            names.remove(AUTO)
        elif AUTO in names:
            est = auto_calibration(args, lm.name)
        embedders = {"default": embedder}
        if "promptkd-lm" in names:
            from promptkd.embeddings import LMEmbedder

            embedders["lm"] = CachedEmbedder(LMEmbedder(lm), cache)
        print(f"[{time.strftime('%H:%M:%S')}] {lm.name} loaded in {time.time() - t0:.1f}s", flush=True)
        for pool_seed in args.pool_seeds:  # draw by draw, task by task: a partial run has complete cells
            for task in args.tasks:
                t1 = time.time()
                specs = standard_selectors(names)
                if AUTO in names:
                    specs = [auto_spec(args, lm, task, est) if sp.name == AUTO else sp for sp in specs]
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


def write_manifest(args: argparse.Namespace, lm_name: str, dtype: str) -> None:
    """Record how the rows in ``args.results`` were produced, one entry per (LM, invocation), beside them."""
    import json
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "promptkd", "benchmarks"],
                           capture_output=True, text=True, check=True).stdout.strip()
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    path = Path(args.results).with_name("manifest.json")
    runs = json.loads(path.read_text(encoding="utf-8"))["runs"] if path.is_file() else []
    runs.append(
        {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "git_commit": commit + ("+local-changes" if dirty else ""),
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"runs": runs}, indent=1) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------- report
def _cell(cells: list, task: str, selector: str, k: str) -> object | None:
    """The summary cell of (task, selector) at grid k (zero-shot is stored at k=0, promptkd-auto at 'auto')."""
    kk = "0" if selector == ZERO_SHOT else ("auto" if selector == AUTO else str(k))
    return next((c for c in cells if c.task == task and c.selector == selector and c.k == kk), None)


def _auto_section(cells: list, tasks: list[str]) -> list[str]:
    """k='auto' against promptkd at each fixed k: accuracy and prompt tokens, per task and on average."""
    fixed = sorted({c.k for c in cells if c.selector == PROMPTKD and c.k.isdigit()}, key=int)
    rows = [(t, [_cell(cells, t, PROMPTKD, k) for k in fixed], _cell(cells, t, AUTO, "auto")) for t in tasks]
    rows = [r for r in rows if r[2] is not None and all(c is not None for c in r[1])]
    if not rows or not fixed:
        return []
    head = " | ".join(f"k={k} acc / tokens" for k in fixed)
    out = [
        "### promptkd with k='auto' against fixed k\n",
        f"| task | {head} | auto acc / tokens / demos |",
        "|---|" + "---|" * len(fixed) + "---|",
    ]
    for t, fx, auto in rows:
        cols = " | ".join(f"{100 * c.accuracy:.1f} / {c.tokens:.0f}" for c in fx)
        out.append(f"| {t} | {cols} | {100 * auto.accuracy:.1f} / {auto.tokens:.0f} / {auto.n_demos:.1f} |")
    n = len(rows)
    mean_fx = [
        (sum(100 * r[1][i].accuracy for r in rows) / n, sum(r[1][i].tokens for r in rows) / n)
        for i in range(len(fixed))
    ]
    mean_auto = (sum(100 * r[2].accuracy for r in rows) / n, sum(r[2].tokens for r in rows) / n)
    cols = " | ".join(f"{a:.1f} / {tk:.0f}" for a, tk in mean_fx)
    out.append(f"| **mean** | {cols} | {mean_auto[0]:.1f} / {mean_auto[1]:.0f} / |")
    best = max(range(len(fixed)), key=lambda i: mean_fx[i][0])
    out.append(
        f"\nBest fixed k on average: k={fixed[best]} ({mean_fx[best][0]:.1f}%, {mean_fx[best][1]:.0f} tokens). "
        f"k='auto': {mean_auto[0]:.1f}% ({mean_auto[0] - mean_fx[best][0]:+.1f} points) with "
        f"{mean_auto[1]:.0f} tokens ({100 * (mean_auto[1] / mean_fx[best][1] - 1):+.0f}%).\n"
    )
    return out


def _fmt_cmd(argv: list[str]) -> str:
    return ".venv/bin/python benchmarks/quality.py " + " ".join(shlex.quote(a) for a in argv)


def write_report(args: argparse.Namespace, argv: list[str]) -> None:
    rows = read_rows(args.results)
    doc = Path(args.doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        print("no rows in", args.results)
        return
    res = ExperimentResult(rows, Path(args.results))
    summary = res.summary(n_boot=1000)
    plots = res.plot(doc.parent, prefix="quality")
    lms = sorted({c.lm for c in summary})
    out: list[str] = []
    out.append("# Quality benchmark: MMD selection vs baselines on ICL classification tasks\n")
    out.append(f"Generated by `benchmarks/quality.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ")
    out.append(f"({platform.machine()}, {os.cpu_count()} CPU cores, CPU only).\n")
    out.append("Command that produced the numbers below (resumable; rerun it to extend the grid):\n")
    out.append(f"```\n{_fmt_cmd(argv)}\n```\n")
    if args.note:
        out.append(args.note.strip() + "\n")
    out.append("## Setup\n")
    out.append(
        "- Scoring: `promptkd.evaluation.ICLClassifier`, full label continuation log-probability (sum over tokens), "
        "uncalibrated, argmax over the task's label words; templates from the data MANIFEST (Zhao et al. 2021).\n"
        "- Embeddings for every embedding-based selector: all-MiniLM-L6-v2 (sentence-transformers); "
        "MMD column: biased MMD2 between the chosen demos and the query, RBF kernel, median bandwidth of the pool.\n"
        "- `vote` column: no LM; the majority label of the same chosen demos (ties to the more similar demos). "
        "Where vote >= LM accuracy, retrieval of same-label neighbours explains the result, not ICL.\n"
        "- Test items: a fixed seeded sample per task (same items for every selector); "
        "95% CIs are bootstrap over items (seeds averaged per item); paired differences are bootstrapped within "
        "each task and macro-averaged over tasks.\n"
        f"- Texts truncated to {args.max_chars} characters; pool = the whole train split"
        + (f" subsampled to {args.pool_size}" if args.pool_size else "")
        + ".\n"
    )
    for lm in lms:
        cells = [c for c in summary if c.lm == lm]
        tasks = sorted({c.task for c in cells})
        ks = sorted({c.k for c in cells if c.k not in ("0", "auto")}, key=int)
        out.append(f"## {lm}\n")
        out.append(f"Tasks run: {', '.join(tasks)}.\n")
        for k in ks:
            out.append(f"### Mean accuracy over tasks, k={k}\n")
            sels = sorted({c.selector for c in cells})
            complete = []
            for sel in sels:
                if sel == AUTO and k != ks[-1]:  # k='auto' (at most the largest k) is listed with the largest k
                    continue
                found = [_cell(cells, t, sel, k) for t in tasks]
                if all(c is not None for c in found):
                    votes = [100 * c.vote_accuracy for c in found if c.vote_accuracy is not None]
                    complete.append(
                        (
                            sel,
                            sum(100 * c.accuracy for c in found) / len(found),
                            sum(votes) / len(votes) if votes else None,
                            sum(c.tokens for c in found) / len(found),
                        )
                    )
            complete.sort(key=lambda x: -x[1])
            missing = sorted(set(sels) - {c[0] for c in complete} - ({AUTO} if k != ks[-1] else set()))
            out.append(
                "| selector | mean accuracy (%) | mean vote accuracy (%) | mean tokens/prompt |\n|---|---|---|---|"
            )
            for sel, acc, vote, toks in complete:
                v = "" if vote is None else f"{vote:.1f}"
                out.append(f"| {sel} | {acc:.1f} | {v} | {toks:.0f} |")
            out.append("")
            if missing:
                out.append(f"Not on every task (left out of the means): {', '.join(missing)}.\n")
            out.append(f"### Paired difference, {PROMPTKD} minus each baseline (points, k={k})\n")
            out.append("| baseline | diff | 95% CI | items | tasks | per task |\n|---|---|---|---|---|---|")
            for sel, *_ in complete:
                if sel == PROMPTKD:
                    continue
                try:
                    kb = "auto" if sel == AUTO else None
                    pc = res.paired(PROMPTKD, sel, k=k, lm=lm, k_b=kb)
                except Exception as err:
                    out.append(f"| {sel} | n/a ({err}) | | | | |")
                    continue
                per = ", ".join(f"{t} {d:+.1f}" for t, d in sorted(pc.per_task.items()))
                out.append(
                    f"| {sel} | {pc.diff:+.1f} | [{pc.ci_low:+.1f}, {pc.ci_high:+.1f}] | {pc.n_items} | "
                    f"{pc.n_tasks} | {per} |"
                )
            out.append("")
        out.extend(_auto_section(cells, tasks))
        out.append(f"### Every cell ({lm})\n")
        out.append(res.to_markdown(cells))
        out.append("")
    out.append("## Plots\n")
    for p in plots:
        out.append(f"![{p.stem}]({p.name})\n")
    recs = res.calibration_records()
    out.append(
        f"`ExperimentResult.calibration_records()` gives {len(recs)} (k, mmd, error) records from these rows for "
        "`BoundEstimator.calibrate`.\n"
    )
    doc.write_text("\n".join(out) + "\n", encoding="utf-8")
    print("wrote", doc)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.report_only:
        run(args)
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
