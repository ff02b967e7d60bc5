"""MMD2 to neighbourhood targets: promptkd Selector variants against TopK and random demonstrations.

Run from the repository root::

    .venv/bin/python benchmarks/selection_mmd.py --data ../shared/data/icl/trec

The pool is the task's train split (deduplicated, first ``--pool`` rows), embedded with the default
sentence-transformers model (all-MiniLM-L6-v2, offline); every test query (first ``--queries``) gets a
target made of the query (weight 0.5) and its 8 nearest other test inputs. The table reports the mean
biased MMD2 between the chosen demos and that target (lower is closer) and the mean number of distinct
labels among the demos.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data/icl/trec"), help="folder with train/test.jsonl"
    )
    parser.add_argument("--pool", type=int, default=1500)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--random-queries", type=int, default=50)
    args = parser.parse_args()

    from promptkd import DemoPool, Selector
    from promptkd.embeddings import SentenceTransformerEmbedder
    from promptkd.kernels import median_bandwidth, mmd2
    from promptkd.selection.baselines import TopKSelector

    def read(name: str) -> list[dict]:
        with open(args.data / name, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    rows = list({r["text"] + "\x00" + str(r["label"]): r for r in read("train.jsonl")}.values())[: args.pool]
    queries = [r["text"] for r in read("test.jsonl")][: args.queries]
    pool = DemoPool.from_records(rows, input_key="text", output_key="label", embedder=SentenceTransformerEmbedder())
    pool.embed()
    Q = pool.encode_texts(queries)
    target = {"target_pool": Q, "n_neighbors": 8, "query_weight": 0.5}
    # one explicit bandwidth (the pool's median heuristic) for every selector, so that each minimises
    # and is measured by the same MMD
    bw = median_bandwidth(np.asarray(pool.embeddings, dtype=np.float32), seed=0)
    selectors = {
        "TopKSelector (KATE)": TopKSelector(k=args.k, bandwidth=bw),
        "Selector": Selector(k=args.k, bandwidth=bw, kernel="rbf"),
        "Selector, swaps=10": Selector(k=args.k, bandwidth=bw, kernel="rbf", swaps=10),
        'Selector, label_balance="cover"': Selector(k=args.k, bandwidth=bw, kernel="rbf", label_balance="cover"),
        "Selector, dedup_threshold=0.9": Selector(k=args.k, bandwidth=bw, kernel="rbf", dedup_threshold=0.9),
    }
    table = []
    for name, sel in selectors.items():
        out = sel.fit(pool).select_batch(Q, **target)
        table.append((name, np.mean([s.mmd2 for s in out]), np.mean([len(set(s.labels)) for s in out])))
    ref = selectors["Selector"]
    rng = np.random.default_rng(0)
    E = pool.embeddings
    rand, labels = [], []
    for q in Q[: args.random_queries]:
        t = ref.make_target(q, **target)
        for _ in range(20):
            idx = rng.choice(len(E), size=args.k, replace=False)
            rand.append(mmd2(E[idx], t.embeddings, bandwidth=ref.bandwidth_, weights_y=t.weights))
            labels.append(len({pool[int(i)].output for i in idx}))
    table.insert(0, (f"random ({args.random_queries} queries x 20 draws)", np.mean(rand), np.mean(labels)))
    print(f"{args.data.name}: pool {len(pool)}, {len(Q)} queries, k={args.k}, rbf bandwidth {ref.bandwidth_:.3f}\n")
    print("| selector | mean MMD2 to target | mean distinct labels |\n|---|---:|---:|")
    for name, m, lab in table:
        print(f"| {name} | {m:.4f} | {lab:.2f} |")


if __name__ == "__main__":
    main()
