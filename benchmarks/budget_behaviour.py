"""How the bound-derived budget behaves: k* against pool drift and token cost, and herding vs random MMD.

Part A uses synthetic Gaussian embeddings (no model); part B uses real ICL data
(``<data-dir>/<task>/{train,test}.jsonl``, e.g. ../shared/data/icl) embedded with
the default MiniLM model, and is skipped when the folder is missing.

Run::

    .venv/bin/python benchmarks/budget_behaviour.py [--data-dir ../shared/data/icl] [--out docs/budget_behaviour.md]

It prints markdown tables and writes them to ``--out``. Parts A and B use the theory's
constants (``constants="theory"``) and set the token price explicitly. Section C of the page,
the shipped constants and the default token price, is written by
``benchmarks/calibrate_constants.py`` between its markers and kept here when the page is rewritten.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from promptkd import DemoPool
from promptkd.bounds import BoundEstimator


def synthetic_tables(seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    d = 8
    T = rng.normal(size=(50, d))
    base = rng.normal(size=(400, d))
    demos = [{"input": f"item {i} " + " ".join(["w"] * int(rng.integers(2, 12))), "output": "x"} for i in range(400)]
    out = [
        "### A1. k* against pool drift (synthetic)",
        "",
        "Target: 50 points from N(0, I_8). Pool: 400 points from N(shift * e_1, I_8). rbf kernel, median bandwidth,",
        "k_max = 64, no token cost. 'theory' = A = 4.05, C = 1; 'calibrated-scale' = A = 0.5, C = 2.",
        "",
        "| shift | MMD_b at k=8 | k* (theory) | U(k*) (theory) | k* (calibrated-scale) | U(k*) (calibrated-scale) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for shift in (0.0, 1.0, 2.0, 3.0, 4.0):
        E = base.copy()
        E[:, 0] += shift
        pool = DemoPool(demos, embeddings=E.astype(np.float32))
        theory = BoundEstimator(constants="theory").fit(pool, T).budget(k_max=64, token_cost=0.0)
        cal = BoundEstimator(A=0.5, C=2.0).fit(pool, T).budget(k_max=64, token_cost=0.0)
        out.append(
            f"| {shift:g} | {theory.point(8).mmd:.3f} | {theory.k_star} | {theory.U_star:.3f} | {cal.k_star} | {cal.U_star:.3f} |"
        )
    pool = DemoPool(demos, embeddings=base.astype(np.float32))
    est = BoundEstimator(constants="theory").fit(pool, T)
    out += [
        "",
        "### A2. k* against the token price lambda (synthetic, shift 0, theory constants)",
        "",
        "| lambda per token | k* | tokens at k* | U(k*) |",
        "|---:|---:|---:|---:|",
    ]
    for lam in (0.0, 0.001, 0.003, 0.01, 0.03, 0.1):
        b = est.budget(k_max=64, token_cost=lam)
        out.append(f"| {lam:g} | {b.k_star} | {b.best.tokens} | {b.U_star:.3f} |")
    return out


def read_jsonl(path: Path, n: int, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(rows), size=min(n, len(rows)), replace=False))
    return [rows[i] for i in idx]


def real_tables(data_dir: Path, tasks: list[str], n_pool: int, n_queries: int, seed: int) -> list[str]:
    from promptkd.embeddings import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(device=None)
    out = [
        "### B. Real tasks (MiniLM embeddings, single-query targets)",
        "",
        f"Pool: {n_pool} random training items; {n_queries} random test queries, each its own target. rbf kernel,",
        "median bandwidth, candidates = 256, k_max = 16, tokens = whitespace words of 'Input: ...\\nOutput: ...'.",
        "MMD2 values are means over the queries; 'random' is the mean over 10 random subsets per query.",
        "",
        "| task | MMD2 herding k=1 / 4 / 16 | MMD2 random k=1 / 4 / 16 | k* theory, lambda=0 | k* lambda=0.002 "
        "| k* lambda=0.01 | bound total at k=8 (complexity / confidence / C*MMD) |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for task in tasks:
        train = data_dir / task / "train.jsonl"
        test = data_dir / task / "test.jsonl"
        if not train.exists() or not test.exists():
            out.append(f"| {task} | (missing data) | | | | | |")
            continue
        recs = read_jsonl(train, n_pool, seed)
        pool = DemoPool(
            [{"input": r["text"], "output": r["label"], "id": f"{task}-{i}"} for i, r in enumerate(recs)],
            embedder=embedder,
        )
        pool.embed()
        queries = [r["text"] for r in read_jsonl(test, n_queries, seed + 1)]
        est = BoundEstimator(seed=seed, constants="theory").fit(pool)
        herd_v, rand_v, ks = [], [], {0.0: [], 0.002: [], 0.01: []}
        terms = []
        Q = pool.encode_texts(queries)
        for q in Q:
            target = q[None, :]
            curves = est.mmd_curves(target, k_max=16, n_random=10)
            herd_v.append([curves.herding[k - 1] for k in (1, 4, 16)])
            rand_v.append([curves.random_mean[k - 1] for k in (1, 4, 16)])
            for lam in ks:
                ks[lam].append(est.budget(target, k_max=16, token_cost=lam).k_star)
            b = est.bound(est.budget(target, k_max=8).indices[:8], target=target)
            terms.append([b.total, b.complexity_term, b.confidence_term, b.mmd_term])
        h, r, t = np.mean(herd_v, 0), np.mean(rand_v, 0), np.mean(terms, 0)

        def ks_cell(values: list[int]) -> str:
            return f"{np.median(values):g} (range {min(values)}-{max(values)})"

        out.append(
            f"| {task} | {h[0]:.3f} / {h[1]:.3f} / {h[2]:.3f} | {r[0]:.3f} / {r[1]:.3f} / {r[2]:.3f} | "
            f"{ks_cell(ks[0.0])} | {ks_cell(ks[0.002])} | {ks_cell(ks[0.01])} | "
            f"{t[0]:.3f} ({t[1]:.3f} / {t[2]:.3f} / {t[3]:.3f}) |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/icl")
    parser.add_argument("--tasks", nargs="+", default=["sst2", "trec"])
    parser.add_argument("--n-pool", type=int, default=1000)
    parser.add_argument("--n-queries", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/budget_behaviour.md")
    args = parser.parse_args()
    lines = [
        "# Budget behaviour (measured)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}. "
        "Command: `.venv/bin/python benchmarks/budget_behaviour.py`.",
        "",
        *synthetic_tables(args.seed),
        "",
    ]
    if args.data_dir.exists():
        lines += real_tables(args.data_dir, args.tasks, args.n_pool, args.n_queries, args.seed)
    else:
        lines.append(f"(part B skipped: {args.data_dir} not found)")
    text = "\n".join(lines) + "\n"
    from calibrate_constants import END, MEND, START  # benchmarks/ is this script's sys.path[0]

    old = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
    end = MEND if MEND in old else END  # sections C and D belong to benchmarks/calibrate_constants.py
    if START in old and end in old:
        text += "\n" + old[old.index(START) : old.index(end) + len(end)] + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
