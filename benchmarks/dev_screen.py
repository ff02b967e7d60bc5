"""Screen selection and label-vote settings on a dev split without an LM.

With the ``label_prior`` order a small LM mostly answers with the label of the
last demonstration (about nine times in ten in the quality benchmark), and the
last demonstration carries the label the query's nearest pool demos vote for.
So two things a selector controls decide most answers, and neither needs the LM:

* **vote accuracy**: how often the neighbourhood vote names the gold label;
* **last = gold**: how often the last demo of the ordered selection carries
  the gold label (the vote, and whether the selection holds a demo of the voted
  label).

This script measures both on a dev split carved from train (the test split is
never read), for every combination of a selection method and a vote method,
with the same budget of settings for promptkd and for the baselines. It ranks
candidates cheaply; the LM then scores only the few that lead (tune_dev.py).

    .venv/bin/python benchmarks/dev_screen.py                 # score and write the page
    .venv/bin/python benchmarks/dev_screen.py --report-only   # rebuild the page from the rows
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks._rows import git_commit, load_manifest, pack, packed, rows_source, save_manifest  # noqa: E402
from benchmarks.tune_dev import dev_split  # noqa: E402

TASKS = ["sst2", "mr", "subj", "trec", "agnews", "dbpedia", "rte", "cb"]


# ---------------------------------------------------------------------------- selection methods
def _read(path: Path) -> list[dict[str, Any]]:
    """Rows of the working file, else of the committed compressed copy (none when neither exists)."""
    src = rows_source(path)
    if not src.is_file():
        return []
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def selection_methods() -> dict[str, tuple[str, Callable[[int], Any]]]:
    """Name -> (what it is, factory(k) of an unfitted selector). Orders are applied afterwards."""
    from promptkd.kernels import RBF, LexicalKernel
    from promptkd.selection import Selector
    from promptkd.selection.baselines import BM25Selector, DPPSelector, TopKSelector

    return {
        "promptkd": (
            "RBF kernel, bandwidth 2 x median (the Selector's defaults before 'rbf+lexical')",
            lambda k: Selector(k=k, seed=0, kernel="rbf"),
        ),
        "promptkd-x1": (
            "RBF kernel, bandwidth 1 x median",
            lambda k: Selector(k=k, seed=0, kernel="rbf", median_scale=1.0),
        ),
        "hybrid": ("RBF() + LexicalKernel()", lambda k: Selector(k=k, seed=0, kernel=RBF() + LexicalKernel())),
        "hybrid-w0.5": (
            "RBF() + 0.5 * LexicalKernel()",
            lambda k: Selector(k=k, seed=0, kernel=RBF() + 0.5 * LexicalKernel()),
        ),
        "hybrid-w2": (
            "RBF() + 2 * LexicalKernel()",
            lambda k: Selector(k=k, seed=0, kernel=RBF() + 2.0 * LexicalKernel()),
        ),
        "topk": ("the k most similar demos (MiniLM cosine)", lambda k: TopKSelector(k=k, seed=0)),
        "dpp": ("DPP MAP, library defaults", lambda k: DPPSelector(k=k, seed=0)),
        "bm25": ("BM25 (k1=1.5, b=0.75)", lambda k: BM25Selector(k=k, seed=0)),
        "bm25-k1.2-b0.5": ("BM25 (k1=1.2, b=0.5)", lambda k: BM25Selector(k=k, seed=0, k1=1.2, b=0.5)),
        "bm25-k0.9-b0.4": ("BM25 (k1=0.9, b=0.4)", lambda k: BM25Selector(k=k, seed=0, k1=0.9, b=0.4)),
    }


# ---------------------------------------------------------------------------- vote methods
def _top_vote(sims: np.ndarray, codes: np.ndarray, n_labels: int, m: int) -> np.ndarray:
    from promptkd.selection.labels import neighbour_label_vote

    return neighbour_label_vote(sims, codes, n_labels, m)


def _rank_scores(sims: np.ndarray) -> np.ndarray:
    """Reciprocal-rank scores 1 / (60 + rank) of every item (rank 0 = most similar)."""
    order = np.argsort(-sims, kind="stable")
    out = np.empty_like(sims, dtype=np.float64)
    out[order] = 1.0 / (60.0 + np.arange(len(sims)))
    return out


VOTES = {
    "dense": "MiniLM cosine (the default)",
    "bm25": "BM25 score",
    "tfidf": "TF-IDF cosine",
    "dense+tfidf": "MiniLM cosine + TF-IDF cosine",
    "rrf": "reciprocal-rank fusion of MiniLM and BM25",
    "rbf": "RBF kernel value (2 x median bandwidth): the default kernel's own vote",
    "rbf+tfidf": "RBF + TF-IDF cosine: the hybrid kernel's own vote",
}


def vote_similarities(
    dense: np.ndarray, bm25: np.ndarray, tfidf: np.ndarray, bandwidth: float
) -> dict[str, np.ndarray]:
    """(n_dev, N) similarity rows each vote method ranks the pool by (``dense`` is cosine of unit vectors)."""
    rbf = np.exp(-np.maximum(2.0 - 2.0 * dense, 0.0) / (2.0 * bandwidth**2))
    return {
        "rbf": rbf,
        "rbf+tfidf": rbf + tfidf,
        "dense": dense,
        "bm25": bm25,
        "tfidf": tfidf,
        "dense+tfidf": dense + tfidf,
        "rrf": np.stack([_rank_scores(d) + _rank_scores(b) for d, b in zip(dense, bm25, strict=True)]),
    }


def label_prior_order(labels: list[str], sims: list[float], prior: dict[str, float]) -> list[int]:
    """The permutation LabelPriorOrder applies (imported, so the screen orders exactly like the library)."""
    from promptkd.pool import Demo
    from promptkd.selection.ordering import LabelPriorOrder, OrderContext

    demos = tuple(Demo(input=str(i), output=y) for i, y in enumerate(labels))
    return LabelPriorOrder()(OrderContext(demos, tuple(sims), None, label_prior=prior))


# ---------------------------------------------------------------------------- scoring
def screen_task(
    name: str, args: argparse.Namespace, embedder: Any, methods: list[str], done: set[tuple[str, str, str, int]]
) -> list[dict[str, Any]]:
    from promptkd.selection.baselines import BM25Selector
    from promptkd.selection.labels import label_codes
    from promptkd.selection.lexical import LexicalIndex

    pool_task, dev = dev_split(name, args.n_dev, args.pool_size, args.max_chars)
    pool = pool_task.pool(embedder)
    pool.embed(show_progress_bar=False)
    queries = dev.inputs
    gold = dev.labels
    names, codes = label_codes([d.output for d in pool.demos])
    E = np.asarray(pool.embeddings, dtype=np.float32)
    E /= np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    Q = np.asarray(pool.encode_texts(queries), dtype=np.float32)
    Q /= np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-12)
    dense = Q @ E.T
    bm = BM25Selector(k=1).fit(pool)
    bm25 = np.stack([bm.bm25_scores(bm.make_target(q)) for q in queries])
    # the library's TF-IDF (scikit-learn's sublinear weighting; its cosines agree with scikit-learn's to 1e-16)
    tfidf = LexicalIndex([d.text for d in pool.demos]).cosine(queries)
    from promptkd.kernels import median_bandwidth

    sims_by_vote = vote_similarities(dense, bm25, tfidf, 2.0 * median_bandwidth(E, seed=0))

    rows: list[dict[str, Any]] = []
    for m in args.neighbours:
        priors = {v: [_top_vote(s, codes, len(names), m) for s in sims_by_vote[v]] for v in VOTES if v in args.votes}
        for v in priors:
            for method in methods:
                if (name, method, v, m) in done:
                    continue
                rows.append({"task": name, "selection": method, "vote": v, "neighbours": m, "items": []})
        if not rows or all(r["neighbours"] != m for r in rows):
            continue
        wanted = {r["selection"] for r in rows if r["neighbours"] == m}
        for method in wanted:
            t0 = time.perf_counter()
            selector = selection_methods()[method][1](args.k).fit(pool)
            sels = [selector.select(q) for q in queries]
            sel_s = (time.perf_counter() - t0) / len(queries)
            for r in rows:
                if r["selection"] != method or r["neighbours"] != m:
                    continue
                ps = priors[r["vote"]]
                for i, (sel, p) in enumerate(zip(sels, ps, strict=True)):
                    labels = [d.output for d in sel.demos]
                    prior = {names[j]: float(p[j]) for j in range(len(names)) if p[j] > 0}
                    perm = label_prior_order(labels, list(sel.scores), prior)
                    voted = names[int(np.argmax(p))]
                    r["items"].append(
                        {
                            "item": i,
                            "gold": gold[i],
                            "voted": voted,
                            "last": labels[perm[-1]] if labels else None,
                            "gold_prec": sum(y == gold[i] for y in labels) / max(len(labels), 1),
                        }
                    )
                r["select_s"] = sel_s
    return [r for r in rows if r["items"]]


def summarise(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, dict[str, float]]]:
    """(selection, vote, neighbours) -> task -> {vote_acc, last_gold, gold_prec} in percent."""
    out: dict[tuple[str, str, int], dict[str, dict[str, float]]] = {}
    for r in rows:
        items = r["items"]
        n = len(items)
        out.setdefault((r["selection"], r["vote"], r["neighbours"]), {})[r["task"]] = {
            "vote_acc": 100.0 * sum(it["voted"] == it["gold"] for it in items) / n,
            "last_gold": 100.0 * sum(it["last"] == it["gold"] for it in items) / n,
            "gold_prec": 100.0 * sum(it["gold_prec"] for it in items) / n,
            "n": n,
        }
    return out


def write_report(path: Path, doc: Path) -> str:
    rows = _read(path)
    manifest = load_manifest(path)
    summary = summarise(rows)
    tasks = [t for t in TASKS if any(t in per for per in summary.values())]
    methods = selection_methods()
    n_items = {t: next(per[t]["n"] for per in summary.values() if t in per) for t in tasks}
    votes = [v for v in VOTES if any(key[1] == v for key in summary)]
    m0 = min(key[2] for key in summary)
    vote_mean = {
        v: np.mean([per[t]["vote_acc"] for t in tasks])
        for (_s, v, m), per in summary.items()
        if m == m0 and all(t in per for t in tasks)
    }
    best = max(vote_mean, key=vote_mean.get) if vote_mean else "dense"
    lines = [
        "# Screening selection and label-vote settings without an LM",
        "",
        "Generated by `benchmarks/dev_screen.py` from the committed rows "
        "(`benchmarks/results/dev_screen/rows.jsonl.gz`); `.venv/bin/python benchmarks/dev_screen.py --report-only` "
        "rebuilds this page. Commands that scored them:",
        "",
        "```",
        *dict.fromkeys(run["command"] for run in manifest.get("runs", [])),
        "```",
        "",
        "With the `label_prior` order, a small LM answers with the label of the last demonstration about nine times "
        "in ten, and that demonstration carries the label the query's nearest pool demos vote for. Two numbers a "
        "selector controls therefore decide most answers, and neither needs the LM: **vote accuracy** (the "
        "neighbourhood vote names the gold label) and **last = gold** (the last demo of the ordered selection "
        "carries the gold label). This page measures both on a dev split carved from train "
        f"({', '.join(f'{t} {n_items[t]}' for t in tasks)} items; the pool is the rest of train subsampled to "
        "2,000; k=8; MiniLM embeddings). The test split is not read. It ranks settings cheaply; only the leaders "
        "are then scored with the LM on the [tuning page](tuning.md), because the LM's answers when the last "
        "label is wrong also depend on the demos. Every selector in the library votes with the embedding "
        'cosine unless its order says otherwise (`LabelPriorOrder(vote="embedding+lexical")` is the '
        "`dense+tfidf` vote here); the `bm25` vote column ranks the voters by BM25 score instead.",
        "",
        "## Vote accuracy of each vote method (%, macro over tasks)",
        "",
        "| vote | what ranks the voters | neighbours | " + " | ".join(tasks) + " | mean |",
        "|---|---|---|" + "---|" * (len(tasks) + 1),
    ]
    seen: set[tuple[str, int]] = set()
    for (_sel, vote, m), per in sorted(summary.items(), key=lambda kv: (kv[0][2], kv[0][1])):
        if (vote, m) in seen or any(t not in per for t in tasks):
            continue
        seen.add((vote, m))
        vals = [per[t]["vote_acc"] for t in tasks]
        lines.append(
            f"| {vote} | {VOTES[vote]} | {m} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {np.mean(vals):.1f} |"
        )
    lines += [
        "",
        "## Last demo = gold label (%, macro over tasks), by selection method and vote",
        "",
        "Each column orders the same selections with the `label_prior` order under one vote method. Gold precision "
        "is the share of a selection's demos that carry the item's gold label (it does not depend on the vote).",
        "",
        "| selection | what it is | " + " | ".join(f"vote: {v}" for v in votes) + " | gold prec. |",
        "|---|---|" + "---|" * (len(votes) + 1),
    ]
    for sel in [s for s in methods if any(key[0] == s for key in summary)]:
        cells = []
        gp = None
        for v in votes:
            per = summary.get((sel, v, m0))
            if per is None or any(t not in per for t in tasks):
                cells.append("")
                continue
            cells.append(f"{np.mean([per[t]['last_gold'] for t in tasks]):.1f}")
            gp = np.mean([per[t]["gold_prec"] for t in tasks])
        lines.append(
            f"| {sel} | {methods[sel][0]} | " + " | ".join(cells) + f" | {'' if gp is None else f'{gp:.1f}'} |"
        )
    lines += [
        "",
        f"## Last demo = gold label per task (%), under the {best} vote",
        "",
        "| selection | " + " | ".join(tasks) + " | mean |",
        "|---|" + "---|" * (len(tasks) + 1),
    ]
    for sel in [s for s in methods if (s, best, m0) in summary]:
        per = summary[(sel, best, m0)]
        if any(t not in per for t in tasks):
            continue
        vals = [per[t]["last_gold"] for t in tasks]
        lines.append(f"| {sel} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {np.mean(vals):.1f} |")
    lines.append("")
    text = "\n".join(lines)
    doc.write_text(text)
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    p.add_argument("--selections", nargs="+", default=None, help="subset of the selection methods")
    p.add_argument("--votes", nargs="+", default=list(VOTES), choices=list(VOTES))
    p.add_argument("--neighbours", nargs="+", type=int, default=[16])
    p.add_argument("--n-dev", type=int, default=200)
    p.add_argument("--pool-size", type=int, default=2000)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--max-chars", type=int, default=600)
    p.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "dev_screen" / "rows.jsonl"))
    p.add_argument("--doc", default=str(REPO / "docs" / "benchmarks" / "dev_screen.md"))
    p.add_argument("--report-only", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    path = Path(args.results)
    if not args.report_only:
        from promptkd.embeddings import CachedEmbedder, SentenceTransformerEmbedder

        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() and packed(path).is_file():
            path.write_bytes(gzip.decompress(packed(path).read_bytes()))  # resume from the committed rows
        done = {(r["task"], r["selection"], r["vote"], r["neighbours"]) for r in _read(path)}
        embedder = CachedEmbedder(SentenceTransformerEmbedder(device=None), path.parent / "embeddings.sqlite")
        methods = args.selections or list(selection_methods())
        manifest = load_manifest(path)
        command = ".venv/bin/python benchmarks/dev_screen.py " + " ".join(shlex.quote(a) for a in argv)
        manifest["runs"].append({"command": command.strip(), "git_commit": git_commit(), "n_dev": args.n_dev})
        save_manifest(path, manifest)
        for name in args.tasks:
            t0 = time.perf_counter()
            rows = screen_task(name, args, embedder, methods, done)
            with path.open("a") as fh:
                for r in rows:
                    fh.write(json.dumps(r) + "\n")
            print(f"{name}: {len(rows)} rows in {time.perf_counter() - t0:.0f}s", flush=True)
        pack(path)
    print(write_report(path, Path(args.doc)))


if __name__ == "__main__":
    main()
