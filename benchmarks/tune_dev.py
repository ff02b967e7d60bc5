"""Choose promptkd's Selector defaults on a dev split carved from train (the test split is never read).

For each task, a seeded sample of the train split becomes the dev set; the demo pool is the
rest of train (subsampled like the quality benchmark). Every variant of the promptkd
Selector, and TopK as the reference, picks k demos for each dev item and Gemma-3-270m
classifies it. The table (accuracy per task, mean, paired difference against the current
default with a bootstrap CI) is written to docs/benchmarks/tuning.md.

    .venv/bin/python benchmarks/tune_dev.py                # default tasks and variants
    .venv/bin/python benchmarks/tune_dev.py --report-only  # rebuild the table from the results file
"""

from __future__ import annotations

import argparse
import gzip
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks._rows import git_commit, load_manifest, pack, packed, rows_source, save_manifest  # noqa: E402
from promptkd.evaluation import ExperimentResult, SelectorSpec, load_task, read_rows, run_experiment  # noqa: E402
from promptkd.evaluation.tasks import Task  # noqa: E402

REFERENCE = "topk"  # every variant is compared with TopK on the same dev items


def variants() -> dict[str, tuple[str, SelectorSpec]]:
    """Name -> (what it changes, spec). ``median-xS``: RBF bandwidth = S times the pool's median heuristic."""
    from promptkd.kernels import RBF, LabelKernel, LexicalKernel
    from promptkd.selection import Selector
    from promptkd.selection.baselines import BM25Selector, DPPSelector, MMRSelector, TopKSelector
    from promptkd.selection.ordering import LabelPriorOrder

    lexvote = LabelPriorOrder(vote="embedding+lexical")  # the label vote that also counts shared words

    def pk(**kw: Any) -> Any:
        # every variant names its kernel and order: the rows stay what they were when the defaults move
        kw = {"kernel": "rbf", "order": "similarity", **kw}
        return lambda k, seed: Selector(k=k, seed=seed, **kw)

    def spec(name: str, what: str, factory: Any) -> tuple[str, tuple[str, SelectorSpec]]:
        return name, (what, SelectorSpec(name, factory))

    return dict(
        [
            spec("topk", "reference: the k nearest demos", lambda k, seed: TopKSelector(k=k, seed=seed)),
            spec("bm25", "reference: lexical BM25 retrieval", lambda k, seed: BM25Selector(k=k, seed=seed)),
            spec("median-x1", "the defaults before tuning: median bandwidth, similarity order", pk(median_scale=1.0)),
            spec("median-x0.5", "bandwidth = 0.5 x median", pk(median_scale=0.5)),
            spec(
                "median-x2",
                "bandwidth = 2 x median, most similar last (the defaults before the label_prior tuning)",
                pk(median_scale=2.0),
            ),
            spec(
                "cover",
                "median-x1 + label_balance='cover' (every label once)",
                pk(median_scale=1.0, label_balance="cover"),
            ),
            spec(
                "order-herding",
                "median-x1 + herding order, not most-similar-last",
                pk(median_scale=1.0, order="herding"),
            ),
            spec(
                "topk-prior",
                "TopK, demos of the neighbourhood's likely label last",
                lambda k, seed: TopKSelector(k=k, seed=seed, order="label_prior"),
            ),
            spec(
                "bm25-prior",
                "BM25, demos of the neighbourhood's likely label last",
                lambda k, seed: BM25Selector(k=k, seed=seed, order="label_prior"),
            ),
            spec(
                "prior",
                "median-x2 + demos of the neighbourhood's likely label last (the defaults from then until rbf+lexical)",
                pk(order="label_prior"),
            ),
            spec(
                "hybrid-prior",
                "prior + hybrid kernel RBF + LexicalKernel (TF-IDF cosine on the inputs), equal weights",
                pk(kernel=RBF() + LexicalKernel(), order="label_prior"),
            ),
            spec(
                "prior-lexvote",
                "prior, with the label vote also counting shared words (embedding + TF-IDF cosine)",
                pk(order=lexvote),
            ),
            spec(
                "hybrid-lexvote",
                "hybrid-prior, with the label vote also counting shared words (embedding + TF-IDF cosine); "
                "the defaults since",
                pk(kernel=RBF() + LexicalKernel(), order=lexvote),
            ),
            spec(
                "topk-lexvote",
                "topk-prior, with the label vote also counting shared words",
                lambda k, seed: TopKSelector(k=k, seed=seed, order=lexvote),
            ),
            spec(
                "bm25-lexvote",
                "bm25-prior, with the label vote also counting shared words",
                lambda k, seed: BM25Selector(k=k, seed=seed, order=lexvote),
            ),
            # the baselines' own knobs, each around its library default, with the order and vote the others got
            *[
                spec(
                    f"mmr-lexvote-d{d}" if d != 0.5 else "mmr-lexvote",
                    f"MMR, diversity {d}{' (the default)' if d == 0.5 else ''}, with bm25-lexvote's order and vote",
                    lambda k, seed, d=d: MMRSelector(k=k, seed=seed, diversity=d, order=lexvote),
                )
                for d in (0.25, 0.5, 0.75)
            ],
            *[
                spec(
                    f"dpp-lexvote-d{d}" if d != 0.1 else "dpp-lexvote",
                    f"DPP, diversity {d}{' (the default)' if d == 0.1 else ''}, with bm25-lexvote's order and vote",
                    lambda k, seed, d=d: DPPSelector(k=k, seed=seed, diversity=d, order=lexvote),
                )
                for d in (0.03, 0.1, 0.3)
            ],
            *[
                spec(
                    f"bm25-lexvote-k{k1}-b{b}",
                    f"bm25-lexvote with k1={k1}, b={b} (the default is k1=1.5, b=0.75)",
                    lambda k, seed, k1=k1, b=b: BM25Selector(k=k, seed=seed, k1=k1, b=b, order=lexvote),
                )
                for k1, b in ((0.9, 0.4), (2.0, 1.0))
            ],
            spec(
                "joint-prior",
                "prior + joint input-label kernel RBF x LabelKernel(beta=0.25), labels voted by 16 neighbours",
                pk(kernel=RBF() * LabelKernel(beta=0.25), order="label_prior"),
            ),
        ]
    )


#: the dev budget each selector family got: every variant of its own, all scored on dev draw 0 (a family's
#: untuned library default included); the best dev mean is the setting the family is held to on test
FAMILIES = {
    "promptkd": (
        "median-x1", "median-x0.5", "median-x2", "cover", "order-herding", "prior", "hybrid-prior", "prior-lexvote",
        "hybrid-lexvote", "joint-prior",
    ),
    "TopK": ("topk", "topk-prior", "topk-lexvote"),
    "BM25": ("bm25", "bm25-prior", "bm25-lexvote", "bm25-lexvote-k0.9-b0.4", "bm25-lexvote-k2.0-b1.0"),
    "MMR": ("mmr-lexvote-d0.25", "mmr-lexvote", "mmr-lexvote-d0.75"),
    "DPP": ("dpp-lexvote-d0.03", "dpp-lexvote", "dpp-lexvote-d0.3"),
}  # fmt: skip


def dev_split(name: str, n_dev: int, pool_size: int, max_chars: int, seed: int = 0) -> tuple[Task, Task]:
    """(pool, dev): a seeded dev sample of train and the rest of train, subsampled to pool_size."""
    train = load_task(name, "train", max_chars=max_chars)
    dev_idx = set(train.sample_indices(n_dev, seed=seed + 1000))
    rest = train.subset([i for i in range(len(train)) if i not in dev_idx])
    pool = rest.subset(rest.sample_indices(pool_size, seed=seed))
    dev = replace(train.subset(sorted(dev_idx)), split="dev")
    return pool, dev


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["sst2", "mr", "subj", "trec", "agnews", "dbpedia", "rte", "cb"])
    p.add_argument("--variants", nargs="+", default=None, help="subset of the variant names")
    p.add_argument("--n-dev", type=int, default=30)
    p.add_argument(
        "--dev-seeds",
        nargs="+",
        type=int,
        default=[0],
        help="dev draws: each seed carves its own dev items and pool from train (rows carry it as pool_seed)",
    )
    p.add_argument("--pool-size", type=int, default=2000)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--max-chars", type=int, default=600)
    p.add_argument(
        "--results",
        default=str(REPO / "benchmarks" / "results" / "tune_dev" / "rows.jsonl"),
        help="working results file (resumable); a run also writes the committed copy <results>.gz and a manifest",
    )
    p.add_argument("--doc", default=str(REPO / "docs" / "benchmarks" / "tuning.md"))
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--note", default="", help="free text added to the report (how the rows were produced)")
    return p.parse_args(argv)


def run(args: argparse.Namespace, command: str) -> None:
    from promptkd.embeddings import CachedEmbedder, SentenceTransformerEmbedder
    from promptkd.probes import load_lm

    table = variants()
    specs = [table[n][1] for n in (args.variants or list(table))]
    embedder = CachedEmbedder(SentenceTransformerEmbedder(device=None), Path(args.results).parent / "embeddings.sqlite")
    lm = load_lm("gemma-3-270m", attn_implementation="sdpa")
    manifest = load_manifest(Path(args.results))
    manifest["runs"].append(
        {
            "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "git_commit": git_commit(),
            "lm": lm.name,
            "dtype": str(lm.model.dtype).removeprefix("torch."),
            "n_dev": args.n_dev,
            "pool_size": args.pool_size,
            "k": args.k,
            "max_chars": args.max_chars,
            "variants": args.variants or list(table),
            "tasks": args.tasks,
            "dev_seeds": args.dev_seeds,
        }
    )
    save_manifest(Path(args.results), manifest)
    words = manifest.setdefault("label_words", {})  # the label order of each row's scores (proper scores)
    for seed in args.dev_seeds:
        for name in args.tasks:
            t0 = time.time()
            pair = dev_split(name, args.n_dev, args.pool_size, args.max_chars, seed=seed)
            if name not in words:
                words[name] = list(pair[0].label_words)
                save_manifest(Path(args.results), manifest)
            run_experiment(
                specs, [pair], k_values=[args.k], seeds=[0], n_test=None, lm=lm, pool_seed=seed,
                results_path=args.results, embedder=embedder, show_progress_bar=True,
            )  # fmt: skip
            print(f"[{time.strftime('%H:%M:%S')}] {name} draw {seed} done in {time.time() - t0:.0f}s", flush=True)


def _fmt_cmd(argv: list[str]) -> str:
    return ".venv/bin/python benchmarks/tune_dev.py " + " ".join(shlex.quote(a) for a in argv)


def _paired(a: np.ndarray, b: np.ndarray, task_of: np.ndarray, n_boot: int = 2000) -> tuple[float, float, float]:
    """Macro-averaged (over tasks) paired difference a - b in points, with a bootstrap CI within tasks."""
    rng = np.random.default_rng(0)
    tasks = sorted(set(task_of))
    idx = {t: np.flatnonzero(task_of == t) for t in tasks}
    diff = float(np.mean([100 * (a[idx[t]].mean() - b[idx[t]].mean()) for t in tasks]))
    boots = []
    for _ in range(n_boot):
        per = []
        for t in tasks:
            s = rng.choice(idx[t], size=len(idx[t]), replace=True)
            per.append(100 * (a[s].mean() - b[s].mean()))
        boots.append(np.mean(per))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return diff, float(lo), float(hi)


def _draw(row: dict[str, Any]) -> int:
    """The dev draw a row belongs to (``--dev-seeds``; rows written before draws existed are draw 0)."""
    return int(row.get("pool_seed", 0))


def _variant_table(
    rows: list[dict[str, Any]], tasks: list[str], table: dict[str, Any], reference: str = REFERENCE
) -> list[str]:
    """Accuracy per task and variant, and each variant against ``reference`` paired on the same items."""
    sels = [n for n in table if any(r["selector"] == n for r in rows)]
    correct: dict[tuple[str, str], dict[tuple[int, int], bool]] = {}
    for r in rows:
        key = (_draw(r), int(r["item"]))
        correct.setdefault((r["selector"], r["task"]), {})[key] = bool(r["correct"])
    out = [
        "| variant | what it changes | " + " | ".join(tasks) + f" | mean | vs {reference} (95% CI) |",
        "|---|---|" + "---|" * len(tasks) + "---|---|",
    ]
    base_items = {t: sorted(correct.get((reference, t), {})) for t in tasks}
    for sel in sels:
        accs = []
        for t in tasks:
            c = correct.get((sel, t), {})
            accs.append(100 * np.mean(list(c.values())) if c else float("nan"))
        vs = ""
        if sel != reference and all(correct.get((sel, t)) and correct.get((reference, t)) for t in tasks):
            a, b, task_of = [], [], []
            for t in tasks:
                for i in base_items[t]:
                    if i in correct[(sel, t)]:
                        a.append(correct[(sel, t)][i])
                        b.append(correct[(reference, t)][i])
                        task_of.append(t)
            d, lo, hi = _paired(np.array(a, float), np.array(b, float), np.array(task_of))
            vs = f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]"
        cells = " | ".join("" if np.isnan(x) else f"{x:.1f}" for x in accs)
        done = int(np.sum(~np.isnan(accs)))
        mean = f"{np.nanmean(accs):.1f}" + ("" if done == len(tasks) else f" ({done} tasks)")
        out.append(f"| {sel} | {table[sel][0]} | {cells} | {mean} | {vs} |")
    return out


def _macro_means(rows: list[dict[str, Any]], tasks: list[str], fields: tuple[str, ...]) -> dict[str, list[float]]:
    """Variant -> the mean over tasks of each field's per-task mean, for variants scored on every task."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["selector"], r["task"]), []).append(r)
    out = {}
    for sel in sorted({s for s, _t in cells}):
        if all((sel, t) in cells for t in tasks):
            out[sel] = [
                float(np.mean([np.mean([float(r[f]) for r in cells[(sel, t)]]) for t in tasks])) for f in fields
            ]
    return out


def _family_table(rows: list[dict[str, Any]], tasks: list[str]) -> list[str]:
    """Per selector family: how many of its variants dev draw 0 scored, and the best of them by the mean."""
    mean = {sel: 100 * m[0] for sel, m in _macro_means(rows, tasks, ("correct",)).items()}
    out = [
        "",
        "### The dev budget of each selector family\n",
        "Every family's variants on this draw, its library default included, and the best of them by the mean "
        "over tasks (the first listed wins a tie):\n",
        "| family | variants scored | best on dev | its mean | the family's worst |",
        "|---|---:|---|---:|---:|",
    ]
    for family, names in FAMILIES.items():
        scored = [n for n in names if n in mean]
        if not scored:
            continue
        best = max(scored, key=lambda n: (mean[n], -scored.index(n)))
        worst = min(mean[n] for n in scored)
        out.append(f"| {family} | {len(scored)} | {best} | {mean[best]:.1f} | {worst:.1f} |")
    return out


def _proper_scores(rows: list[dict[str, Any]], tasks: list[str], label_words: dict[str, list[str]]) -> list[str]:
    """Do the proper scores (Brier, log-loss) rank the variants as accuracy does? Macro means on one draw."""
    from scipy.stats import spearmanr

    from promptkd.evaluation.metrics import with_item_metrics

    scored = with_item_metrics([r for r in rows if r.get("scores") is not None], label_words)
    means = _macro_means(scored, tasks, ("correct", "brier", "logloss"))
    if len(means) < 3:
        return []
    names = sorted(means, key=lambda n: -means[n][0])
    acc, brier, logloss = (np.array([means[n][i] for n in names]) for i in range(3))
    rho_b, rho_l = spearmanr(acc, -brier).statistic, spearmanr(acc, -logloss).statistic
    best = {m: names[int(np.argmin(v))] for m, v in (("Brier", brier), ("log-loss", logloss))}
    out = [
        "",
        "### Accuracy and the proper scores on the same rows\n",
        "The LM's label distribution, renormalised over the label set: Brier (0 best, 2 worst) and log-loss (nats), "
        "macro over tasks, for every variant scored on every task of this draw. Across the "
        f"{len(names)} variants the Spearman rank correlation of accuracy with the (negated) Brier score is "
        f"{rho_b:.2f}, with the log-loss {rho_l:.2f}. The best by accuracy is {names[0]}; by Brier "
        f"{best['Brier']}; by log-loss {best['log-loss']}. Settings on this page are chosen by accuracy; the "
        "proper scores are reported beside it.\n",
        "| variant | accuracy % | Brier | log-loss |",
        "|---|---:|---:|---:|",
    ]
    out += [f"| {n} | {100 * means[n][0]:.1f} | {means[n][1]:.3f} | {means[n][2]:.3f} |" for n in names]
    return out


def write_report(args: argparse.Namespace, argv: list[str]) -> None:
    source = rows_source(Path(args.results))
    rows = [r for r in read_rows(source) if str(r["k"]) == str(args.k)]
    if not rows:
        print("no rows in", source)
        return
    res = ExperimentResult(rows, source)
    manifest = load_manifest(Path(args.results))
    commands = list(dict.fromkeys(r["command"] for r in manifest["runs"] if "command" in r)) or [_fmt_cmd(argv)]
    note = args.note or manifest.get("note", "")  # a note kept in the manifest travels with the rows
    table = variants()
    tasks = sorted({r["task"] for r in rows})
    draws = sorted({_draw(r) for r in rows})
    first = [r for r in rows if _draw(r) == draws[0]]
    out = [
        "# Choosing promptkd's defaults on a dev split\n",
        "Generated by `benchmarks/tune_dev.py` from the committed rows (`benchmarks/results/tune_dev/rows.jsonl.gz`; "
        "`.venv/bin/python benchmarks/tune_dev.py --report-only` rebuilds this page). Commands that scored them:\n",
        "```\n" + "\n".join(commands) + "\n```\n",
        f"Dev split: {args.n_dev} items sampled (seeded) from each task's **train** split; the pool is the rest of "
        f"train subsampled to {args.pool_size}; k={args.k}; Gemma-3-270m scores the prompts. The test split is not "
        f"read. With this few items one item moves a task's accuracy by {100 / args.n_dev:.1f} points, so only large, "
        "consistent differences are worth acting on.\n",
        *([note.strip() + "\n"] if note else []),
        *_variant_table(first, tasks, table),
    ]
    out += _family_table(first, tasks)
    if manifest.get("label_words"):
        out += _proper_scores(first, tasks, manifest["label_words"])
    if len(draws) > 1:
        scored = {(r["selector"], _draw(r)) for r in rows}
        sels = [n for n in table if all((n, d) in scored for d in draws)]
        both = [r for r in rows if r["selector"] in sels]
        out += [
            "",
            f"### Every dev draw ({', '.join(map(str, draws))})\n",
            f"Each draw carves its own {args.n_dev} dev items per task and its own pool from train "
            "(`--dev-seeds`). The variants scored on every draw, with the items of all draws pooled "
            f"({len(draws) * args.n_dev} per task), against promptkd's defaults (`prior`) where it was scored:\n",
            *_variant_table(both, tasks, table, reference="prior" if "prior" in sels else REFERENCE),
        ]
    out.append("")
    out.append(f"Rows: {len(res.rows)}.\n")
    Path(args.doc).write_text("\n".join(out) + "\n", encoding="utf-8")
    print("\n".join(out))
    print("wrote", args.doc)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    shown, skip = [], False
    for a in argv:  # the command shown is the one that scores: without --report-only and --note
        if skip or a == "--note":
            skip = a == "--note"
            continue
        if a != "--report-only":
            shown.append(a)
    if not args.report_only:
        results = Path(args.results)
        if not results.is_file() and packed(results).is_file():  # resume from the committed rows, never drop them
            results.write_bytes(gzip.decompress(packed(results).read_bytes()))
        run(args, _fmt_cmd(shown))
        pack(Path(args.results))
    write_report(args, shown)


if __name__ == "__main__":
    main()
