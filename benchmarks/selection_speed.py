"""Selection speed: promptkd's Selector against every baseline, langchain-core and the GEMM roofline.

Run from the repository root::

    .venv/bin/python benchmarks/selection_speed.py            # full run (~10 min on 2 cores)
    .venv/bin/python benchmarks/selection_speed.py --quick    # smaller pools and batches
    .venv/bin/python benchmarks/selection_speed.py --only-compare --compare-ref f7214b6
        # only this tree's Selector against an earlier revision's, as ratios measured in one run

It prints a markdown report and writes it to ``docs/benchmarks/selection_speed.md``
(``--output``; ``--no-write`` to only print). Pools are random unit vectors
(d=384) of 1k, 10k and 100k items, plus a 10k text pool embedded with the real
default embedder (all-MiniLM-L6-v2), read from ``--data`` (``*/train.jsonl``
files with a ``text`` field; synthesised texts when the folder is missing).
Queries come in batches of 1,000, k=8.

Every vector method gets the same precomputed query vectors, so the numbers
time selection, not embedding (the embedder's own rate is reported apart).
Slow methods are timed on a time-boxed sample of the queries (column "timed").
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from promptkd import DemoPool, Selector  # noqa: E402
from promptkd.pool.demo import Demo  # noqa: E402
from promptkd.selection.baselines import (  # noqa: E402
    BM25Selector,
    DPPSelector,
    MMRSelector,
    RandomSelector,
    TopKSelector,
    VoteKSelector,
)

DIM = 384
#: the herding engine on embeddings: every row here times an RBF (the default "rbf+lexical" herds with its RBF
#: part when the queries are embeddings, and the timed pools have no real text)
ENGINE = {"kernel": "rbf", "order": "label_prior"}
NOTES_MARKER = "<!-- analysis: kept across reruns -->"


# ---------------------------------------------------------------------------- results
@dataclass
class Row:
    """One timed method on one pool."""

    method: str
    timed: int  # queries timed
    seconds: float
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def qps(self) -> float:
        return self.timed / self.seconds if self.seconds > 0 else float("nan")

    @property
    def ms_per_query(self) -> float:
        return 1000.0 * self.seconds / self.timed if self.timed else float("nan")


@dataclass
class PoolResult:
    name: str
    n: int
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)

    def get(self, method: str) -> Row | None:
        return next((r for r in self.rows if r.method == method), None)


# ---------------------------------------------------------------------------- machine
def machine_info() -> dict[str, str]:
    info = {
        "date (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "logical cores (os.cpu_count)": str(os.cpu_count()),
        "usable cores (sched_getaffinity)": str(len(os.sched_getaffinity(0)))
        if hasattr(os, "sched_getaffinity")
        else "n/a",
        "numpy": np.__version__,
    }
    try:
        from threadpoolctl import threadpool_info

        blas = [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, {p.get('num_threads')} threads)"
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ]
        info["numpy BLAS (threadpoolctl)"] = "; ".join(blas) or "none found"
    except ImportError:
        info["numpy BLAS (threadpoolctl)"] = "threadpoolctl not installed"
    try:
        import torch

        info["torch"] = f"{torch.__version__}, {torch.get_num_threads()} intra-op threads"
    except ImportError:
        info["torch"] = "not installed"
    try:
        import langchain_core

        info["langchain-core"] = langchain_core.__version__
    except ImportError:
        info["langchain-core"] = "not installed"
    try:
        load = os.getloadavg()
        info["load average at start (1/5/15 min)"] = " / ".join(f"{x:.2f}" for x in load)
    except OSError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gemm_roofline(n_pool: int, chunk: int, repeats: int) -> dict[str, float]:
    """Best measured fp32 numpy matmul rate (GFLOP/s): square 2048^3 and the similarity shape."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2048, 2048), dtype=np.float32)
    B = rng.standard_normal((2048, 2048), dtype=np.float32)
    A @ B  # warm-up
    best_sq = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        A @ B
        best_sq = max(best_sq, 2 * 2048**3 / (time.perf_counter() - t) / 1e9)
    E = rng.standard_normal((n_pool, DIM), dtype=np.float32)
    D = rng.standard_normal((chunk, DIM), dtype=np.float32)
    D @ E.T
    best_sim = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        D @ E.T
        best_sim = max(best_sim, 2 * chunk * DIM * n_pool / (time.perf_counter() - t) / 1e9)
    return {"square": best_sq, "similarity": best_sim, "roofline": max(best_sq, best_sim)}


# ---------------------------------------------------------------------------- data
def unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def random_pool(n: int, seed: int) -> DemoPool:
    X = unit(np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32))
    demos = [Demo(input=f"item {i}", output=f"label{i % 4}", id=f"d{i}") for i in range(n)]
    return DemoPool(demos, embeddings=X)


def load_texts(data: Path, need: int, seed: int) -> tuple[list[str], str]:
    texts: list[str] = []
    files = sorted(data.glob("*/train.jsonl")) if data.is_dir() else []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    text = json.loads(line).get("text")
                    if isinstance(text, str) and text.strip():
                        texts.append(text.strip())
    texts = list(dict.fromkeys(texts))  # unique, in file order
    source = f"{len(texts):,} unique texts from {len(files)} files under {data}"
    if len(texts) < need:
        missing = need - len(texts)
        texts += synth_texts(missing, seed)
        source += f" + {missing:,} synthesised"
    random.Random(seed).shuffle(texts)
    return texts[:need], source


def synth_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    subjects = ["the film", "the market", "the team", "the new phone", "the senator", "the recipe", "the study"]
    verbs = ["surprised", "disappointed", "delighted", "confused", "impressed", "worried", "bored"]
    objects = ["critics", "investors", "fans", "reviewers", "voters", "cooks", "scientists"]
    tails = ["this week", "again", "despite the hype", "in the final act", "after the report", "overnight"]
    return [
        f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} {rng.choice(tails)} (#{i})" for i in range(n)
    ]


class LookupEmbedder:
    """An :class:`~promptkd.embeddings.Embedder` answering known texts from a table (the real model otherwise).

    Text-query methods then time selection, not the embedding model, exactly as
    langchain-core gets precomputed vectors through its Embeddings class.
    """

    def __init__(self, inner: Any, table: dict[str, np.ndarray]) -> None:
        self.inner = inner
        self.table = table

    @property
    def id(self) -> str:
        return self.inner.id

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        missing = [t for t in texts if t not in self.table]
        if missing:
            new = self.inner.encode(missing, batch_size=batch_size, normalize=normalize)
            self.table.update(zip(missing, new, strict=True))
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


# ---------------------------------------------------------------------------- timing helpers
def time_batches(fn: Callable[[Any], Any], queries: Sequence[Any], group: int, budget: float) -> tuple[int, float]:
    """Call ``fn`` on consecutive slices of ``group`` queries until all are done or ``budget`` s passed."""
    done = 0
    t0 = time.perf_counter()
    while done < len(queries):
        fn(queries[done : done + group])
        done += len(queries[done : done + group])
        if time.perf_counter() - t0 > budget:
            break
    return done, time.perf_counter() - t0


def time_single(fn: Callable[[Any], Any], queries: Sequence[Any], budget: float, minimum: int = 3) -> tuple[int, float]:
    """Call ``fn`` per query until all are done or ``budget`` s passed (at least ``minimum`` calls)."""
    done = 0
    t0 = time.perf_counter()
    for q in queries:
        fn(q)
        done += 1
        if done >= minimum and time.perf_counter() - t0 > budget:
            break
    return done, time.perf_counter() - t0


def best_of(repeats: int, fn: Callable[[], tuple[int, float]]) -> tuple[int, float]:
    runs = [fn() for _ in range(repeats)]
    return min(runs, key=lambda r: r[1] / max(r[0], 1))


def peak_extra_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated during ``fn()`` above what was allocated before (tracemalloc traces numpy)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak - base


# ---------------------------------------------------------------------------- langchain
def make_langchain(demos: Sequence[Demo], vectors: np.ndarray, lookup: dict[str, np.ndarray], k: int) -> Any:
    """langchain-core's SemanticSimilarityExampleSelector over InMemoryVectorStore with precomputed vectors."""
    from langchain_core.embeddings import Embeddings
    from langchain_core.example_selectors import SemanticSimilarityExampleSelector
    from langchain_core.vectorstores import InMemoryVectorStore

    class PrecomputedEmbeddings(Embeddings):
        """Returns the benchmark's precomputed vectors instead of running a model."""

        def __init__(self, table: dict[str, np.ndarray]) -> None:
            self.table = table

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [self.table[t].tolist() for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return self.table[text].tolist()

    table = dict(lookup)
    for d, v in zip(demos, vectors, strict=True):
        table[d.input] = v
    examples = [{"input": d.input, "output": d.output} for d in demos]
    return SemanticSimilarityExampleSelector.from_examples(
        examples, PrecomputedEmbeddings(table), InMemoryVectorStore, k=k, input_keys=["input"]
    )


# ---------------------------------------------------------------------------- one pool
def bench_pool(
    name: str,
    pool: DemoPool,
    Q: np.ndarray,
    query_texts: list[str] | None,
    args: argparse.Namespace,
    embedder_rate: float | None = None,
) -> PoolResult:
    n = len(pool)
    res = PoolResult(name, n)
    k, chunk, budget = args.k, args.batch_chunk, args.budget
    nq = Q.shape[0]
    log = lambda msg: print(f"  [{name}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    if query_texts is not None:
        q_keys = query_texts
    else:
        q_keys = [f"query {i}" for i in range(nq)]
    lookup = dict(zip(q_keys, Q, strict=True))

    # promptkd Selector
    sel = Selector(k=k, batch_chunk=chunk, **ENGINE).fit(pool)
    sel.select_batch(Q[:2])  # warm-up
    log("Selector.select_batch")
    done, secs = best_of(args.repeats, lambda: time_batches(sel.select_batch, Q, nq, 1e9))
    res.rows.append(Row("promptkd Selector.select_batch", done, secs))
    log("Selector.select")
    done, secs = time_single(sel.select, Q, budget)
    res.rows.append(Row("promptkd Selector.select", done, secs))

    # the same single-query calls with numpy's BLAS limited to one thread (see the analysis in the doc)
    if args.single_thread_rows:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            done, secs = time_single(sel.select, Q, budget)
        res.rows.append(Row("promptkd Selector.select, BLAS 1 thread", done, secs))

    # TopK: end to end and the similarity stage alone
    top = TopKSelector(k=k, batch_chunk=chunk).fit(pool)
    top.select_batch(Q[:2])
    log("TopKSelector.select_batch")
    done, secs = best_of(args.repeats, lambda: time_batches(top.select_batch, Q, nq, 1e9))
    res.rows.append(Row("TopKSelector.select_batch (KATE)", done, secs))
    done, secs = time_single(top.select, Q, budget)
    res.rows.append(Row("TopKSelector.select", done, secs))

    def sim_stage() -> tuple[int, float]:
        t0 = time.perf_counter()
        for s in range(0, nq, chunk):
            top._candidate_similarities(Q[s : s + chunk])
        return nq, time.perf_counter() - t0

    done, secs = best_of(args.repeats, sim_stage)
    flops = 2.0 * nq * n * DIM
    res.rows.append(Row("TopK similarity stage only (chunked GEMM)", done, secs, extra={"gflops": flops / secs / 1e9}))
    top_row = res.get("TopKSelector.select_batch (KATE)")
    top_row.extra["gflops"] = flops / top_row.seconds / 1e9
    sel_row = res.get("promptkd Selector.select_batch")
    stage_ms = 1000 * secs / nq
    res.facts["where select_batch time goes (per query)"] = (
        f"similarity GEMM {stage_ms:.3f} ms (shared by both); after it, Selector "
        f"{sel_row.ms_per_query - stage_ms:.3f} ms (candidates + herding over {sel.candidates} + Selection), "
        f"TopK {top_row.ms_per_query - stage_ms:.3f} ms (O(n) top-k + Selection)"
    )

    # the other baselines, time-boxed
    for label, factory in [
        ("RandomSelector.select_batch", lambda: RandomSelector(k=k, batch_chunk=chunk)),
        ("MMRSelector.select_batch (diversity=0.5)", lambda: MMRSelector(k=k, batch_chunk=chunk)),
        ("DPPSelector.select_batch (TopK-DPP)", lambda: DPPSelector(k=k, batch_chunk=chunk)),
    ]:
        log(label)
        b = factory().fit(pool)
        done, secs = time_batches(b.select_batch, Q, chunk, budget)
        res.rows.append(Row(label, done, secs))

    if n <= args.votek_max:
        log("VoteKSelector fit")
        t0 = time.perf_counter()
        vk = VoteKSelector(k=k, batch_chunk=chunk).fit(pool)
        fit_s = time.perf_counter() - t0
        res.facts["VoteKSelector fit (kNN graph + greedy)"] = f"{fit_s:.2f} s"
        done, secs = time_batches(vk.select_batch, Q, chunk, budget)
        res.rows.append(Row("VoteKSelector.select_batch", done, secs, note=f"fit {fit_s:.1f} s, one set for all"))
    else:
        res.rows.append(
            Row("VoteKSelector.select_batch", 0, 0.0, note=f"skipped: O(n^2 d) graph above {args.votek_max}")
        )

    if query_texts is not None:
        log("BM25Selector")
        t0 = time.perf_counter()
        bm = BM25Selector(k=k, batch_chunk=chunk).fit(pool)
        fit_s = time.perf_counter() - t0
        done, secs = time_batches(bm.select_batch, query_texts, 8, budget)
        res.rows.append(Row("BM25Selector.select_batch (rank-bm25)", done, secs, note=f"fit {fit_s:.1f} s"))
        log("Selector.select (text query, embeds it)")
        raw = Selector(k=k, batch_chunk=chunk, **ENGINE).fit(args.raw_text_pool)
        raw.select(query_texts[0])
        done, secs = time_single(raw.select, query_texts, budget)
        res.rows.append(Row("promptkd Selector.select, text query (incl. MiniLM embedding)", done, secs))

    # langchain-core
    if not args.no_langchain:
        log("langchain build")
        t0 = time.perf_counter()
        lc = make_langchain(pool.demos, pool.embeddings, lookup, k)
        build_s = time.perf_counter() - t0
        res.facts["langchain InMemoryVectorStore build"] = f"{build_s:.1f} s"
        lc.select_examples({"input": q_keys[0]})
        log("langchain select_examples")
        done, secs = time_single(lambda key: lc.select_examples({"input": key}), q_keys, budget)
        res.rows.append(Row("langchain-core SemanticSimilarityExampleSelector", done, secs))
        if args.single_thread_rows:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"):
                done, secs = time_single(lambda key: lc.select_examples({"input": key}), q_keys, budget / 2)
            res.rows.append(Row("langchain-core SemanticSimilarityExampleSelector, BLAS 1 thread", done, secs))
        # sanity: same vectors, same cosine, so langchain's picks equal TopK's on the timed queries
        agree = 0
        for i in range(min(done, 20)):
            got = {ex["input"] for ex in lc.select_examples({"input": q_keys[i]})}
            want = {pool[j].input for j in top.select(Q[i]).indices}
            agree += got == want
        res.facts["langchain picks == TopK picks"] = f"{agree}/{min(done, 20)} queries"
        del lc
        gc.collect()

    if embedder_rate is not None:
        res.facts["MiniLM embedding rate (256 pool texts, batch 64, uncached)"] = f"{embedder_rate:.0f} texts/s"

    # memory of select_batch (one run of 2 chunks under tracemalloc)
    if n >= args.memory_min:
        sub = Q[: 2 * chunk]
        bound = chunk * n * 4
        for label, obj in [("Selector", sel), ("TopKSelector", top)]:
            extra = peak_extra_bytes(lambda obj=obj: obj.select_batch(sub))
            res.facts[f"{label}.select_batch peak extra memory"] = (
                f"{extra / 2**20:.1f} MiB = {extra / bound:.2f} x (batch_chunk x pool x 4 B = {bound / 2**20:.1f} MiB)"
            )
    return res


# ---------------------------------------------------------------------------- report
def fmt(x: float, digits: int = 2) -> str:
    if x != x:  # nan
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def render(
    args: argparse.Namespace, info: dict[str, str], roof: dict[str, float], results: list[PoolResult], wall: float
) -> str:
    out = ["# Selection speed", ""]
    out += [
        "Generated by `benchmarks/selection_speed.py`; every number below was measured in one run of:",
        "",
        "```",
        args.command,
        "```",
        "",
        f"Whole run: {wall / 60:.1f} min. k={args.k}, {args.queries} queries per batch, batch_chunk={args.batch_chunk},"
        f" d={DIM}. Throughput is best of {args.repeats} for the two `select_batch` rows that decide the targets;"
        f" other rows are one time-boxed pass of at most {args.budget:.0f} s (column *timed* = queries measured).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    out += [f"| {k} | {v} |" for k, v in info.items()]
    out += [
        "",
        "## GEMM roofline (fp32 numpy matmul, best of repeats)",
        "",
        "| shape | GFLOP/s |",
        "|---|---|",
        f"| 2048 x 2048 x 2048 | {roof['square']:.1f} |",
        f"| similarity shape: {args.batch_chunk} x {DIM} @ {DIM} x {args.roof_pool} | {roof['similarity']:.1f} |",
        f"| **roofline (max)** | **{roof['roofline']:.1f}** |",
        "",
    ]
    for res in results:
        out += [f"## {res.name}", "", "| method | queries/s | ms/query | timed | note |", "|---|---:|---:|---:|---|"]
        for r in res.rows:
            note = r.note
            if "gflops" in r.extra:
                g = r.extra["gflops"]
                note = (
                    note + "; " if note else ""
                ) + f"{g:.1f} GFLOP/s = {100 * g / roof['roofline']:.0f}% of roofline"
            if r.timed == 0:
                out.append(f"| {r.method} | – | – | 0 | {note} |")
            else:
                out.append(f"| {r.method} | {fmt(r.qps, 1)} | {fmt(r.ms_per_query, 3)} | {r.timed} | {note} |")
        if res.facts:
            out += [""] + [f"- {k}: {v}" for k, v in res.facts.items()]
        out.append("")
    out += targets_section(results, roof)
    return "\n".join(out) + "\n"


def targets_section(results: list[PoolResult], roof: dict[str, float]) -> list[str]:
    out = ["## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    vectors = [r for r in results if r.name.startswith("random")]
    if vectors:
        big = max(vectors, key=lambda r: r.n)
        sb = big.get("promptkd Selector.select_batch")
        tb = big.get("TopKSelector.select_batch (KATE)")
        stage = big.get("TopK similarity stage only (chunked GEMM)")
        ratio = sb.qps / tb.qps
        out.append(
            f"| Selector.select_batch >= 0.7x TopKSelector.select_batch at {big.n:,} | "
            f"{ratio:.2f}x ({sb.qps:.0f} vs {tb.qps:.0f} queries/s) | {'met' if ratio >= 0.7 else '**missed**'} |"
        )
        frac_stage = stage.extra["gflops"] / roof["roofline"]
        frac_e2e = tb.extra["gflops"] / roof["roofline"]
        out.append(
            f"| TopK >= 50% of the GEMM roofline at {big.n:,} | similarity stage {100 * frac_stage:.0f}%"
            f" ({stage.extra['gflops']:.1f} GFLOP/s); end to end {100 * frac_e2e:.0f}% | "
            f"{'met' if frac_stage >= 0.5 else '**missed**'} (stage)"
            f"{'' if frac_e2e >= 0.5 else ', end to end missed'} |"
        )
    for res in results:
        if res.n != 10_000:
            continue
        s = res.get("promptkd Selector.select")
        lc = res.get("langchain-core SemanticSimilarityExampleSelector")
        if s and lc and lc.timed:
            speed = lc.ms_per_query / s.ms_per_query
            out.append(
                f"| Selector.select >= 50x faster per query than langchain at 10k ({res.name}) | "
                f"{speed:.0f}x ({s.ms_per_query:.2f} vs {lc.ms_per_query:.1f} ms) | {'met' if speed >= 50 else '**missed**'} |"
            )
        s1 = res.get("promptkd Selector.select, BLAS 1 thread")
        lc1 = res.get("langchain-core SemanticSimilarityExampleSelector, BLAS 1 thread")
        if s1 and lc1 and lc1.timed:
            speed = lc1.ms_per_query / s1.ms_per_query
            out.append(
                f"| same, both with BLAS limited to 1 thread ({res.name}) | "
                f"{speed:.0f}x ({s1.ms_per_query:.2f} vs {lc1.ms_per_query:.1f} ms) | {'met' if speed >= 50 else '**missed**'} |"
            )
    mem = [
        (res.name, k, v)
        for res in results
        for k, v in res.facts.items()
        if k.endswith("select_batch peak extra memory")
    ]
    for name, key, value in mem:
        out.append(f"| memory O(batch_chunk x pool): {key.split('.')[0]} ({name}) | {value} | see note |")
    out.append("")
    return out


# ---------------------------------------------------------------------------- main
# ---------------------------------------------------------------------------- before/after in one run
_COMPARE_CHILD = r"""
import json, sys, time
import numpy as np
tree, data, repeats, n_single = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, tree)
import promptkd
from promptkd import DemoPool, Selector
assert promptkd.__file__.startswith(tree), promptkd.__file__
d = np.load(data)
E, Q = d["E"], d["Q"]
pool = DemoPool([{"input": f"demo {i}", "output": "abc"[i % 3]} for i in range(len(E))], embeddings=E)
t0 = time.perf_counter()
sel = Selector(k=8, kernel="rbf", order="similarity").fit(pool)
fit = time.perf_counter() - t0
sel.select_batch(Q[:64])
batch, single = [], []
for _ in range(repeats):
    t0 = time.perf_counter()
    out = sel.select_batch(Q)
    batch.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for q in Q[:n_single]:
        sel.select(q)
    single.append(time.perf_counter() - t0)
print(json.dumps({"fit": fit, "batch": min(batch), "single": min(single), "first": list(out[0].indices)}))
"""


def compare_ref(args: argparse.Namespace) -> list[str]:
    """Selector speed of the code at ``--compare-ref`` and of this tree, measured in this one run.

    The revision's ``promptkd/`` is exported with ``git archive``; both versions run the same
    script in alternating child processes on the same saved pool and queries (random unit vectors,
    k=8, ``order="similarity"``, a setting both versions share), and the best of the rounds is kept.
    """
    import subprocess
    import tempfile

    ref = args.compare_ref
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True)
    if rev.returncode != 0:
        return [f"## Before and after ({ref})", "", f"`git rev-parse {ref}` failed: {rev.stderr.strip()}", ""]
    lines = [
        f"## This tree against {ref} ({rev.stdout.strip()}), in one run",
        "",
        "The revision's `promptkd/` is exported with `git archive`; both versions run the same timing script in "
        "alternating child processes on the same pool and queries (random unit vectors, k=8, "
        f'`order="similarity"`, batch of {args.queries} queries, `select` timed on {args.compare_single} of them). '
        f"Best of {args.compare_rounds} rounds x {args.repeats} repeats; ratio = this tree / {ref} for throughput "
        "(above 1: faster now) and for fit time (below 1: faster now).",
        "",
        "| pool | select_batch q/s (before → now) | ratio | select q/s (before → now) | ratio | fit s (before → now) "
        "| same demos |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            f"git -C {ROOT} archive {ref} promptkd | tar -x -C {tmp}", shell=True, capture_output=True, text=True
        )
        if archive.returncode != 0:
            return [*lines[:2], f"export failed: {archive.stderr.strip()}", ""]
        rng = np.random.default_rng(args.seed + 7)
        for n in args.compare_sizes:
            data = Path(tmp) / f"pool_{n}.npz"
            E = unit(rng.standard_normal((n, DIM), dtype=np.float32))
            Q = unit(rng.standard_normal((args.queries, DIM), dtype=np.float32))
            np.savez(data, E=E, Q=Q)
            best: dict[str, dict[str, float]] = {}
            first: dict[str, list[int]] = {}
            for _ in range(args.compare_rounds):
                for name, tree in (("before", tmp), ("now", str(ROOT))):
                    print(f"compare {name} n={n:,}", file=sys.stderr, flush=True)
                    cmd = [sys.executable, "-c", _COMPARE_CHILD, tree, str(data), str(args.repeats)]
                    out = subprocess.run([*cmd, str(args.compare_single)], capture_output=True, text=True, check=True)
                    got = json.loads(out.stdout.strip().splitlines()[-1])
                    print(f"  {name}: {got}", file=sys.stderr, flush=True)  # kept if the run is cut short
                    first[name] = got.pop("first")
                    old = best.get(name)
                    best[name] = got if old is None else {k: min(v, old[k]) for k, v in got.items()}
            b, w = best["before"], best["now"]
            qb = (args.queries / b["batch"], args.queries / w["batch"])
            qs = (args.compare_single / b["single"], args.compare_single / w["single"])
            lines.append(
                f"| random unit vectors, n={n:,} | {qb[0]:,.0f} → {qb[1]:,.0f} | {qb[1] / qb[0]:.2f}x "
                f"| {qs[0]:,.0f} → {qs[1]:,.0f} | {qs[1] / qs[0]:.2f}x | {b['fit']:.2f} → {w['fit']:.2f} "
                f"| {'yes' if first['before'] == first['now'] else 'no'} |"
            )
    lines.append("")
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller run: pools 1k/10k, 200 queries, 2k text pool")
    p.add_argument(
        "--sizes", type=str, default=None, help="comma-separated random pool sizes (default 1000,10000,100000)"
    )
    p.add_argument("--queries", type=int, default=None, help="queries per batch (default 1000)")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--batch-chunk", type=int, default=256, help="queries per similarity GEMM")
    p.add_argument("--text-pool", type=int, default=None, help="text pool size (default 10000; 0 to skip)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "icl")
    p.add_argument("--budget", type=float, default=None, help="seconds per time-boxed method (default 12)")
    p.add_argument("--repeats", type=int, default=None, help="repeats of the target-deciding rows (default 2)")
    p.add_argument("--votek-max", type=int, default=20_000, help="largest pool for the O(n^2) vote-k graph")
    p.add_argument("--memory-min", type=int, default=10_000, help="measure select_batch memory from this pool size")
    p.add_argument("--no-langchain", action="store_true")
    p.add_argument(
        "--no-single-thread-rows",
        dest="single_thread_rows",
        action="store_false",
        help="skip the single-query rows timed with numpy's BLAS limited to one thread",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "embeddings.sqlite",
        help="embedding cache for the text pool (reruns skip the model)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks" / "selection_speed.md")
    p.add_argument("--no-write", action="store_true", help="print the report only")
    p.add_argument(
        "--compare-ref",
        default=None,
        help="also time the Selector of this git revision against this tree, in the same run (e.g. f7214b6)",
    )
    p.add_argument("--compare-sizes", default="10000,100000", help="pool sizes of the before/after comparison")
    p.add_argument("--compare-rounds", type=int, default=2, help="alternating rounds per version")
    p.add_argument("--compare-single", type=int, default=200, help="queries timed one by one with select")
    p.add_argument("--only-compare", action="store_true", help="run only the before/after comparison")
    args = p.parse_args(argv)
    args.compare_sizes = [int(x) for x in args.compare_sizes.split(",")]
    quick = args.quick
    args.sizes = [int(s) for s in (args.sizes or ("1000,10000" if quick else "1000,10000,100000")).split(",")]
    args.queries = args.queries or (200 if quick else 1000)
    args.text_pool = (2000 if quick else 10_000) if args.text_pool is None else args.text_pool
    args.budget = args.budget or (4.0 if quick else 12.0)
    args.repeats = args.repeats or (1 if quick else 2)
    args.roof_pool = max(args.sizes)
    args.command = " ".join(["python", "benchmarks/selection_speed.py", *(argv if argv is not None else sys.argv[1:])])
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only_compare:
        if not args.compare_ref:
            raise SystemExit("--only-compare needs --compare-ref REV")
        print("\n".join([f"`{args.command}`", "", *compare_ref(args)]))
        return 0
    t_start = time.perf_counter()
    info = machine_info()
    print("measuring the GEMM roofline...", file=sys.stderr, flush=True)
    roof = gemm_roofline(args.roof_pool, args.batch_chunk, repeats=5)
    results: list[PoolResult] = []
    rng = np.random.default_rng(args.seed + 1)
    for n in args.sizes:
        print(f"random pool n={n:,}", file=sys.stderr, flush=True)
        pool = random_pool(n, args.seed)
        Q = unit(rng.standard_normal((args.queries, DIM), dtype=np.float32))
        results.append(bench_pool(f"random unit vectors, n={n:,}", pool, Q, None, args))
        del pool
        gc.collect()
    if args.text_pool:
        from promptkd.embeddings import CachedEmbedder, SentenceTransformerEmbedder

        texts, source = load_texts(args.data, args.text_pool + args.queries, args.seed)
        pool_texts, query_texts = texts[: args.text_pool], texts[args.text_pool :]
        print(f"text pool n={len(pool_texts):,} from {source}; embedding with MiniLM...", file=sys.stderr, flush=True)
        model = SentenceTransformerEmbedder(device=None)
        model.encode(["warm up"])
        sample = pool_texts[:256]
        t0 = time.perf_counter()
        model.encode(sample, batch_size=64)
        rate = len(sample) / (time.perf_counter() - t0)
        cached = CachedEmbedder(model, args.cache)  # the pool and queries are embedded once across runs
        pool_X = cached.encode(pool_texts, batch_size=64)
        Q = cached.encode(query_texts, batch_size=64)
        table = dict(zip(pool_texts, pool_X, strict=True)) | dict(zip(query_texts, Q, strict=True))
        demos = [Demo(input=t, output="x", id=f"t{i}") for i, t in enumerate(pool_texts)]
        pool = DemoPool(demos, embedder=LookupEmbedder(model, table), embeddings=pool_X)
        raw_pool = DemoPool(demos, embedder=model, embeddings=pool_X)
        name = f"text pool (MiniLM embeddings), n={len(pool_texts):,}"
        args.raw_text_pool = raw_pool
        res = bench_pool(name, pool, Q, query_texts, args, embedder_rate=rate)
        res.facts["texts"] = source
        results.append(res)
    wall = time.perf_counter() - t_start
    report = render(args, info, roof, results, wall)
    if args.compare_ref:  # the before/after ratios, measured in this same run
        report = report.rstrip("\n") + "\n\n" + "\n".join(compare_ref(args))
    print(report)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        notes = ""
        if args.output.exists():  # keep the hand-written analysis below the marker across reruns
            old = args.output.read_text(encoding="utf-8")
            if NOTES_MARKER in old:
                notes = old[old.index(NOTES_MARKER) :]
        args.output.write_text(report + ("\n" + notes if notes else ""), encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
