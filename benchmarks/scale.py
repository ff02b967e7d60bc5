"""Scale benchmark: saved pools of 100k and 1M demos, opened lazily, selected for 10k queries.

Synthetic pools (d=384, clustered, short text rows) are written in the columnar
layout, then measured step by step: save, open, candidate index build and size,
open-and-select-one in a fresh process (as the page cache is, and again after
dropping the pool's files from it), ``select_batch`` throughput and peak
resident memory (fresh process), recall of the candidate index against exact
search, and ``select_dataset`` on a local Ray cluster with 1 and 2 workers.

Every step's result is stored in ``benchmarks/results/scale/n<N>.json`` as soon
as it is measured; a rerun skips the steps already there (``--force`` redoes
them), and ``--table`` rewrites ``docs/benchmarks/scale.md`` from the files.

Run (about 10 minutes for both sizes on 2 cores, plus the index build at 1M,
6 minutes; the pools and indexes are kept in ``--work``, ``/tmp/promptkd-scale``)::

    nice -n 10 .venv/bin/python benchmarks/scale.py --sizes 100000 1000000

The data: cluster centres in a 64-dimensional latent space (one per 1,000
demos), each demo its centre plus Gaussian spread, mapped into 384 dimensions
by a random orthonormal map, plus small isotropic noise, then unit-normalised;
queries are drawn the same way. The text rows are short ("topic 12 item 345:
...") and the label is the cluster modulo 10.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("PROMPTKD_SCALE_RESULTS", ROOT / "benchmarks" / "results" / "scale"))
# results kept elsewhere (PROMPTKD_SCALE_RESULTS, e.g. a trial run) get their page beside them, not in docs/
TABLE = (
    ROOT / "docs" / "benchmarks" / "scale.md" if "PROMPTKD_SCALE_RESULTS" not in os.environ else RESULTS / "scale.md"
)
COMMAND = "nice -n 10 .venv/bin/python benchmarks/scale.py --sizes 100000 1000000"
DIM = 384
LATENT = 64
K = 8
CANDIDATES = 256  # the Selector's default candidate count


# ---------------------------------------------------------------------------------------------- data
def _basis(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(DIM, LATENT)))
    return q.T.astype(np.float32)  # (LATENT, DIM), orthonormal rows


def _centres(n: int, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(max(10, n // 1000), LATENT)).astype(np.float32)


def sample(n: int, pool_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors from the clustered distribution of a pool of ``pool_size``, and their clusters."""
    rng = np.random.default_rng(seed)
    centres = _centres(pool_size)
    cluster = rng.integers(0, len(centres), size=n)
    latent = centres[cluster] + 0.6 * rng.normal(size=(n, LATENT)).astype(np.float32)
    X = latent @ _basis() + 0.05 * rng.normal(size=(n, DIM)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), cluster


def write_pool(n: int, path: Path, tmp: Path) -> float:
    """Generate the pool in chunks and write it in the columnar layout; return the write time (s)."""
    import pyarrow as pa

    from promptkd.pool.columnar import write_arrow_pool
    from promptkd.pool.lazy import arrow_schema

    words = ["match", "goal", "stock", "bank", "cell", "atom", "film", "plot", "rain", "river"]
    emb = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, DIM))
    cols: dict[str, list[Any]] = {"id": [], "input": [], "output": [], "input_pair": [], "metadata": []}
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        X, cluster = sample(m, n, seed=1000 + start // step)
        emb[start : start + m] = X
        for j in range(m):
            i, c = start + j, int(cluster[j])
            cols["id"].append(f"d{i}")
            cols["input"].append(f"topic {c} item {i}: the {words[c % 10]} and the {words[(c * 7 + i) % 10]}")
            cols["output"].append(str(c % 10))
            cols["input_pair"].append(None)
            cols["metadata"].append(f'{{"cluster": {c}}}')
    emb.flush()
    table = pa.Table.from_pydict(cols, schema=arrow_schema())
    del cols
    t0 = time.perf_counter()
    write_arrow_pool(path, table, emb, "precomputed")
    took = time.perf_counter() - t0
    del emb
    tmp.unlink()
    return took


# ---------------------------------------------------------------------------------------------- steps in a fresh process
CHILD = textwrap.dedent(
    """
    import json, resource, sys, threading, time
    import numpy as np
    import faiss, pyarrow, pyarrow.compute, torch  # imports are not timed
    from promptkd import DemoPool, Selector

    def status():
        out = {}
        for line in open("/proc/self/status"):
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) * 1024
        return out

    peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    running = True
    def sampler():
        while running:
            s = status()
            for key in peak:
                peak[key] = max(peak[key], s.get(key, 0))
            time.sleep(0.02)

    args = json.loads(sys.argv[1])
    Q = np.load(args["queries"])
    threading.Thread(target=sampler, daemon=True).start()
    out = {}
    t0 = time.perf_counter()
    pool = DemoPool.open(args["pool"])
    out["open_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    selector = Selector(k=args["k"], batch_chunk=args["batch_chunk"], kernel="rbf", order="label_prior").fit(pool)
    out["fit_s"] = time.perf_counter() - t1
    out["index"] = None if selector.index_ is None else selector.index_.kind
    t2 = time.perf_counter()
    first = selector.select(Q[0])
    out["select_one_s"] = time.perf_counter() - t2
    out["open_and_select_one_s"] = time.perf_counter() - t0
    out["demos_built_by_fit"] = pool.snapshot().demos.built
    out["estimator_built_by_fit"] = getattr(selector, "estimator_", None) is not None
    before = dict(peak)
    if args["n_queries"] > 1:
        for key in peak:
            peak[key] = 0
        t3 = time.perf_counter()
        sel = selector.select_batch(Q[: args["n_queries"]], show_progress_bar=False)
        took = time.perf_counter() - t3
        out["select_batch_s"] = took
        out["queries_per_s"] = len(sel) / took
        out["first_indices"] = [list(s.indices) for s in sel[:50]]
    else:  # the bound estimator (for k="auto") on its own: what a fit that builds it pays
        from promptkd.bounds import BoundEstimator

        t5 = time.perf_counter()
        BoundEstimator(bandwidth=selector.bandwidth_).fit(pool)
        out["estimator_fit_s"] = time.perf_counter() - t5
    running = False
    time.sleep(0.05)
    mapped = {}  # resident bytes per mapped pool file at the end (embeddings, index, demos)
    name = None
    for line in open("/proc/self/smaps"):
        head = line.split()
        if head and ":" not in head[0]:  # a mapping's first line: address range, permissions, ..., path
            name = head[-1].rsplit("/", 1)[-1].split("-")[0] if head[-1].startswith(args["pool"] + "/") else None
        elif name and head[0] == "Rss:":
            mapped[name] = mapped.get(name, 0) + int(head[1]) * 1024
    out["rss_by_file_bytes"] = mapped
    out["peak_rss_bytes"] = peak["VmRSS"]  # while selecting (the whole run for n_queries == 1)
    out["peak_rss_anon_bytes"] = peak["RssAnon"]
    out["peak_rss_file_bytes"] = peak["RssFile"]
    out["peak_rss_open_fit_bytes"] = before["VmRSS"]
    out["peak_rss_open_fit_anon_bytes"] = before["RssAnon"]
    out["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print("RESULT " + json.dumps(out))
    """
)


def child(pool: Path, queries: Path, n_queries: int, batch_chunk: int = 256) -> dict[str, Any]:
    args = {"pool": str(pool), "queries": str(queries), "n_queries": n_queries, "k": K, "batch_chunk": batch_chunk}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, check=False, cwd=ROOT
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


# ---------------------------------------------------------------------------------------------- measured steps
def step_save(n: int, work: Path) -> dict[str, Any]:
    from promptkd import DemoPool

    path = work / f"pool-{n}"
    write_s = write_pool(n, path, work / f"emb-{n}.npy")
    t0 = time.perf_counter()
    again = DemoPool.open(path).save(work / f"pool-{n}-resaved", layout="arrow")
    resave_s = time.perf_counter() - t0
    sizes = {p.name.split("-")[0]: p.stat().st_size for p in path.iterdir() if p.name != ".lock"}
    import shutil

    shutil.rmtree(again)
    return {"write_s": write_s, "resave_opened_s": resave_s, "bytes": sizes}


def step_open(n: int, work: Path) -> dict[str, Any]:
    from promptkd import DemoPool

    path = work / f"pool-{n}"
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        pool = DemoPool.open(path)
        times.append(time.perf_counter() - t0)
    built = pool.snapshot().demos.built
    t0 = time.perf_counter()
    DemoPool.open(path, verify=True)
    verify_s = time.perf_counter() - t0
    return {"open_s": min(times), "open_s_all": times, "demos_built": built, "open_verify_s": verify_s}


def step_index(n: int, work: Path, reuse: bool = False) -> dict[str, Any]:
    from promptkd.pool.ann import CandidateIndex
    from promptkd.pool.index_store import build_pool_index, find_saved_index
    from promptkd.pool.persistence import read_manifest, read_pool_embeddings

    path = work / f"pool-{n}"
    if reuse:  # an index already saved with the default parameters: its size is measured, its build time is not
        E = read_pool_embeddings(path, read_manifest(path), mmap=True, verify=False, check_finite=False)
        found = find_saved_index(E)  # type: ignore[arg-type]
        if found is not None:
            index = CandidateIndex(E, "auto")  # type: ignore[arg-type]
            wanted = {k: v for k, v in index.params.items() if k != "faiss"}
            if {k: v for k, v in found[1]["params"].items() if k != "faiss"} == wanted:
                return {"build_s": None, "bytes": found[1]["size"], "params": found[1]["params"], "reused": True}
    t0 = time.perf_counter()
    index = build_pool_index(path)
    took = time.perf_counter() - t0
    entry = read_manifest(path)["files"]["index"]
    return {"build_s": took, "bytes": entry["size"], "params": index.params}


def step_recall(n: int, work: Path, queries: np.ndarray, n_recall: int) -> dict[str, Any]:
    from promptkd import DemoPool
    from promptkd.pool.ann import CandidateIndex

    pool = DemoPool.open(work / f"pool-{n}")
    E = pool.embeddings
    Q = queries[:n_recall]
    index = CandidateIndex(E, "auto")  # loads the saved index (selector defaults: ef_search=128)
    t0 = time.perf_counter()
    approx = index.search(Q, CANDIDATES)
    search_s = time.perf_counter() - t0
    best = np.full((len(Q), CANDIDATES), -np.inf, dtype=np.float32)
    ids = np.zeros((len(Q), CANDIDATES), dtype=np.int64)
    t0 = time.perf_counter()
    for start in range(0, n, 131_072):  # exact top-m, block by block over the memory map
        S = Q @ np.asarray(E[start : start + 131_072]).T
        both = np.concatenate([best, S], axis=1)
        both_ids = np.concatenate([ids, np.arange(start, start + S.shape[1])[None, :].repeat(len(Q), 0)], axis=1)
        top = np.argpartition(-both, CANDIDATES - 1, axis=1)[:, :CANDIDATES]
        best = np.take_along_axis(both, top, axis=1)
        ids = np.take_along_axis(both_ids, top, axis=1)
    exact_s = time.perf_counter() - t0
    recall = float(
        np.mean([len(set(a.tolist()) & set(b.tolist())) / CANDIDATES for a, b in zip(approx, ids, strict=True)])
    )
    return {
        "recall_at_candidates": recall,
        "candidates": CANDIDATES,
        "queries": len(Q),
        "index_search_s": search_s,
        "exact_search_s": exact_s,
    }


def step_select(n: int, work: Path, qfile: Path, n_queries: int) -> dict[str, Any]:
    out = child(work / f"pool-{n}", qfile, n_queries)
    out.pop("first_indices", None)
    return out


def step_open_select_one(n: int, work: Path, qfile: Path) -> dict[str, Any]:
    return child(work / f"pool-{n}", qfile, 1)


def drop_cached(path: Path) -> bool:
    """Drop a saved pool's files from the page cache (pages no process maps); False where that is not possible."""
    if not hasattr(os, "posix_fadvise"):
        return False
    for f in path.iterdir():
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)  # dirty pages are not dropped
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return True


def step_open_select_one_cold(n: int, work: Path, qfile: Path) -> dict[str, Any]:
    """Open + fit + select one in a fresh process after the pool's files were dropped from the page cache."""
    dropped = drop_cached(work / f"pool-{n}")
    out = child(work / f"pool-{n}", qfile, 1)
    out["dropped_from_page_cache"] = dropped
    return out


PROFILE = textwrap.dedent(
    """
    import cProfile, json, pstats, sys
    import numpy as np
    import faiss, pyarrow, pyarrow.compute, torch
    from promptkd import DemoPool, Selector

    args = json.loads(sys.argv[1])
    pool = DemoPool.open(args["pool"])
    Q = np.load(args["queries"])[: args["n_queries"]]
    fit_profile = cProfile.Profile()
    fit_profile.enable()
    selector = Selector(k=args["k"], kernel="rbf", order="label_prior").fit(pool)
    fit_profile.disable()
    fit_stats = pstats.Stats(fit_profile).stats
    fit_total = max(v[3] for v in fit_stats.values())
    fit_parts = sorted(
        (
            (v[3], f"{k[0].split('promptkd/')[-1]}:{k[2]}")
            for k, v in fit_stats.items()
            if "promptkd/" in k[0] and not (k[2] == "fit" and k[0].endswith("selection/base.py")) and k[2] != "<module>"
        ),
        reverse=True,
    )[:8]
    profile = cProfile.Profile()
    profile.enable()
    selector.select_batch(Q, show_progress_bar=False)
    profile.disable()
    stats = pstats.Stats(profile).stats
    total = sum(v[2] for v in stats.values())  # tottime over every function
    def share(pred):
        return sum(v[2] for k, v in stats.items() if pred(k)) / total
    def where(k):
        return f"{k[0].split('promptkd/')[-1].split('site-packages/')[-1]}:{k[2]}" if k[0] != "~" else k[2]
    out = {
        "queries": len(Q),
        "total_s": total,
        "argpartition_share": share(lambda k: k[2] == "<method 'argpartition' of 'numpy.ndarray' objects>"),
        "index_search_share": sum(v[3] for k, v in stats.items() if k[2] == "search" and k[0].endswith("ann.py")) / total,
        "herding_share": sum(v[3] for k, v in stats.items() if k[2] == "herd") / total,
        "top_own_time": [[where(k), round(v[2] / total, 3)] for k, v in sorted(stats.items(), key=lambda kv: -kv[1][2])[:8]],
        "fit_total_s": fit_total,
        "fit_parts": [[name, round(t, 3)] for t, name in fit_parts],
    }
    print("RESULT " + json.dumps(out))
    """
)


def step_profile(n: int, work: Path, qfile: Path) -> dict[str, Any]:
    """Where select_batch spends its time (cProfile over 512 queries)."""
    args = {"pool": str(work / f"pool-{n}"), "queries": str(qfile), "n_queries": 512, "k": K}
    proc = subprocess.run(
        [sys.executable, "-c", PROFILE, json.dumps(args)], capture_output=True, text=True, check=False, cwd=ROOT
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"profile failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def step_ray(n: int, work: Path, queries: np.ndarray, n_queries: int, batch: int) -> dict[str, Any]:
    import ray

    from promptkd.distributed import select_dataset

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False
        out: dict[str, Any] = {"queries": n_queries, "batch_size": batch}
        for workers in (1, 2):
            for label, count in (("startup", workers), ("run", n_queries), ("run", n_queries)):  # runs: best of 2
                # a run of one query per worker measures start-up (actors start, open the pool, fit)
                ds = ray.data.from_numpy(queries[:count]).repartition(max(1, min(count, 8 * workers))).materialize()
                t0 = time.perf_counter()
                rows = select_dataset(
                    ds,
                    "promptkd",
                    pool=str(work / f"pool-{n}"),
                    k=K,
                    query_column="data",
                    batch_size=batch,
                    concurrency=workers,
                ).materialize()
                assert rows.count() == count
                took = time.perf_counter() - t0
                key = f"workers_{workers}_{label}_s"
                out[key] = min(took, out.get(key, took))
            took = out[f"workers_{workers}_run_s"]
            steady = max(took - out[f"workers_{workers}_startup_s"], 1e-9)
            out[f"workers_{workers}_queries_per_s"] = n_queries / took
            out[f"workers_{workers}_steady_queries_per_s"] = n_queries / steady
        out["steady_speedup_2_vs_1"] = out["workers_2_steady_queries_per_s"] / out["workers_1_steady_queries_per_s"]
        out["speedup_2_vs_1"] = out["workers_2_queries_per_s"] / out["workers_1_queries_per_s"]
        return out
    finally:
        ray.shutdown()


# ---------------------------------------------------------------------------------------------- driver
def load(n: int) -> dict[str, Any]:
    f = RESULTS / f"n{n}.json"
    return json.loads(f.read_text()) if f.exists() else {}


def store(n: int, data: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS / f".n{n}.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, RESULTS / f"n{n}.json")


def _code_version() -> dict[str, Any]:
    """The commit measured, and whether promptkd/ or this script differed from it."""

    def git(*cmd: str) -> str:
        proc = subprocess.run(["git", *cmd], capture_output=True, text=True, cwd=ROOT, check=False)
        return proc.stdout.strip()

    import hashlib

    return {
        "commit": git("rev-parse", "HEAD"),
        "modified": git("status", "--porcelain", "promptkd", __file__).splitlines(),
        # the uncommitted changes measured, if any: a later commit of the same tree has the same diff from HEAD
        "diff_sha256": hashlib.sha256(git("diff", "HEAD", "--", "promptkd").encode()).hexdigest(),
    }


def run(n: int, args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = load(n)
    data["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    data["code"] = _code_version()
    queries, _ = sample(args.queries, n, seed=99)
    qfile = work / f"queries-{n}.npy"
    np.save(qfile, queries)
    if not (work / f"pool-{n}" / "manifest.json").exists():
        data.pop("save", None)  # the pool must be written again; later steps read it
    steps = [
        ("save", lambda: step_save(n, work)),
        ("open", lambda: step_open(n, work)),
        ("index", lambda: step_index(n, work, reuse=args.reuse_index)),
        ("recall", lambda: step_recall(n, work, queries, args.recall_queries)),
        ("open_select_one", lambda: step_open_select_one(n, work, qfile)),
        ("open_select_one_cold", lambda: step_open_select_one_cold(n, work, qfile)),
        ("select", lambda: step_select(n, work, qfile, args.queries)),
        ("profile", lambda: step_profile(n, work, qfile)),
    ]
    if n <= args.ray_max:
        steps.append(("ray", lambda: step_ray(n, work, queries, args.ray_queries, args.ray_batch)))
    for name, fn in steps:
        if args.steps and name not in args.steps:
            continue
        if name in data and not args.force:
            print(f"n={n}: {name} already measured, skipped")
            continue
        print(f"n={n}: {name} ...", flush=True)
        t0 = time.perf_counter()
        data[name] = fn()
        data[name]["code"] = data["code"]  # which code measured this step (a rerun may keep older steps)
        data[name]["argv"] = sys.argv[1:]
        data[name]["step_wall_s"] = time.perf_counter() - t0
        data[name]["load_average_1min"] = os.getloadavg()[0]  # other work on the machine during the step
        store(n, data)
        print(f"n={n}: {name} {json.dumps(data[name])[:300]}", flush=True)


def _gb(x: float) -> str:
    return f"{x / 1e9:.2f}"


def table() -> str:
    rows = []
    for f in sorted(RESULTS.glob("n*.json"), key=lambda p: int(p.stem[1:])):
        n = int(f.stem[1:])
        d = json.loads(f.read_text())
        if not {"save", "open", "index", "recall", "select", "open_select_one"} <= set(d):
            continue
        sel, one, idx = d["select"], d["open_select_one"], d["index"]
        build = "-" if idx["build_s"] is None else f"{idx['build_s']:.0f}"  # None: a saved index reused
        vectors = "fp16" if idx["params"].get("storage") == "fp16" else "float32"  # unrecorded: float32
        cold = f" ({d['open_select_one_cold']['open_and_select_one_s']:.2f})" if "open_select_one_cold" in d else ""
        ray_cols = ("-", "-", "-")
        if "ray" in d:
            r = d["ray"]
            ray_cols = (
                f"{r['workers_1_queries_per_s']:.0f} ({r['workers_1_steady_queries_per_s']:.0f})",
                f"{r['workers_2_queries_per_s']:.0f} ({r['workers_2_steady_queries_per_s']:.0f})",
                f"{r['speedup_2_vs_1']:.2f}x ({r['steady_speedup_2_vs_1']:.2f}x)",
            )
        rows.append(
            f"| {n:,} | {d['save']['write_s']:.1f} | {d['save']['resave_opened_s']:.1f} | {d['open']['open_s'] * 1000:.0f} ms "
            f"| {d['open']['open_verify_s']:.1f} | {build} | {_gb(idx['bytes'])} ({vectors}) "
            f"| {d['recall']['recall_at_candidates']:.3f} | {sel['index'] or 'exact (numpy)'} | {sel['fit_s']:.1f} "
            f"| {sel['queries_per_s']:.0f} | {_gb(sel['peak_rss_bytes'])} ({_gb(sel['peak_rss_anon_bytes'])} + "
            f"{_gb(sel['peak_rss_file_bytes'])}) | {one['open_and_select_one_s']:.2f}{cold} | {ray_cols[0]} | {ray_cols[1]} "
            f"| {ray_cols[2]} |"
        )
    head = (
        "| demos | write (s) | re-save opened (s) | open | open, verify=True (s) | index build (s) | index (GB) "
        "| recall@256 | candidate stage | fit (s) | queries/s | peak RSS GB (anon + file) "
        "| open + fit + select one, s (files not cached) "
        "| Ray 1 worker, q/s (after start-up) | Ray 2 workers, q/s (after start-up) | Ray 2 vs 1 |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    return head + "\n" + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--recall-queries", type=int, default=1_000)
    parser.add_argument("--ray-queries", type=int, default=10_000)
    parser.add_argument("--ray-batch", type=int, default=256)
    parser.add_argument("--ray-max", type=int, default=100_000, help="largest pool measured on Ray")
    parser.add_argument("--work", default=os.environ.get("PROMPTKD_SCALE_DIR", "/tmp/promptkd-scale"))
    parser.add_argument("--force", action="store_true", help="measure again steps already stored")
    parser.add_argument("--steps", nargs="*", default=None, help="only these steps (save, open, index, ...)")
    parser.add_argument(
        "--reuse-index",
        action="store_true",
        help="keep an index already saved with the default parameters (its size is recorded, not its build time)",
    )
    parser.add_argument("--table", action="store_true", help="only write docs/benchmarks/scale.md from stored results")
    args = parser.parse_args()
    if not args.table:
        for n in args.sizes:
            run(n, args)
    print(table())
    write_page()


def _targets() -> list[str]:
    """One line per target, met or not, with the measured number."""
    lines = []
    for f in sorted(RESULTS.glob("n*.json"), key=lambda p: int(p.stem[1:])):
        n = int(f.stem[1:])
        d = json.loads(f.read_text())
        if "select" not in d:
            continue

        def mark(ok: bool) -> str:
            return "met" if ok else "**not met**"

        sel = d["select"]
        if n >= 1_000_000:
            o, one = d["open"]["open_s"], d["open_select_one"]["open_and_select_one_s"]
            lines.append(f"- {n:,} demos open in under 1 s: {mark(o < 1)} ({o * 1000:.1f} ms).")
            lines.append(
                f"- open + select for one query under 2 s (imports excluded): {mark(one < 2)} ({one:.2f} s, of which "
                f"fit {d['open_select_one']['fit_s']:.2f} s; 1-minute load average "
                f"{d['open_select_one'].get('load_average_1min', float('nan')):.1f} on 2 cores during the step)."
            )
            if "open_select_one_cold" in d:
                cold = d["open_select_one_cold"]
                c = cold["open_and_select_one_s"]
                lines.append(
                    f"- the same with the pool's files first dropped from the page cache: {mark(c < 2)} ({c:.2f} s, "
                    f"of which fit {cold['fit_s']:.2f} s and select {cold['select_one_s']:.2f} s; 1-minute load "
                    f"average {cold.get('load_average_1min', float('nan')):.1f})."
                )
        rss = sel["peak_rss_bytes"]
        lines.append(
            f"- {n:,} demos, peak RSS while selecting under 4 GB: {mark(rss < 4e9)} ({_gb(rss)} GB, of which "
            f"{_gb(sel['peak_rss_file_bytes'])} GB file-backed pages of the memory-mapped pool and index; "
            f"open + fit peaked at {_gb(sel['peak_rss_open_fit_bytes'])} GB)."
        )
        rec = d["recall"]["recall_at_candidates"]
        lines.append(
            f"- {n:,} demos, candidate recall at least 0.95 (default HNSW settings): {mark(rec >= 0.95)} ({rec:.4f})."
        )
        qps = sel["queries_per_s"]
        lines.append(f"- {n:,} demos, at least 200 queries/s on 2 cores: {mark(qps >= 200)} ({qps:.0f} queries/s).")
        if "ray" in d:
            r = d["ray"]
            lines.append(
                f"- {n:,} demos, Ray 2 workers at least 1.5x 1 worker: {mark(r['speedup_2_vs_1'] >= 1.5)} counting "
                f"worker start-up ({r['speedup_2_vs_1']:.2f}x over {r['queries']:,} queries), "
                f"{mark(r['steady_speedup_2_vs_1'] >= 1.5)} after start-up ({r['steady_speedup_2_vs_1']:.2f}x)."
            )
    return lines


PAGE = """# Scale: pools of 100k and 1M demos

Written by `benchmarks/scale.py` from `benchmarks/results/scale/n*.json`; do not edit by hand. Produced with

```
{command}
```

on {machine}, shared with other jobs running at normal priority while this ran under `nice` (1-minute load
average during the selection steps: {load}), so every time here is an upper bound and the Ray speed-up is noisy. Pools are synthetic, d = 384, float32, clustered
(one cluster per 1,000 demos in a 64-dimensional latent space, mapped into 384 dimensions, plus noise),
with short text rows; 10,000 queries from the same distribution, k = 8, `Selector` defaults
(candidates = 256, faiss HNSW above `ann_threshold` = 500,000, so the 100k pool uses exact numpy search).
How the pieces work: [Scaling](../scale.md).

<!-- scale-table:start -->
<!-- scale-table:end -->

{vintage}

Columns: *write*: columns to a saved pool (Arrow demos, `.npy` embeddings, fsync and SHA-256 of each);
*re-save opened*: `DemoPool.open(p).save(q, layout="arrow")`; *open*: `DemoPool.open` (best of 3, warm page
cache); *open, verify=True*: with every checksum and record checked; *index build* and *index*: `build_pool_index`
(HNSW, M = 32) and its file size with the precision of its vectors; *recall@256*: share of the exact top-256 candidates (inner product over the
whole pool) that the saved index returns at the selector's default `ef_search` ({recall_queries} queries); *fit*:
`Selector(k=8).fit` on the opened pool, which loads the saved index; *queries/s*: `select_batch` over 10,000
query embeddings in one process (2 cores); *peak RSS*: largest resident set sampled every 20 ms during
`select_batch` in a fresh process, split into anonymous memory and file-backed pages (the memory-mapped
embeddings and index, shared with other processes and reclaimable by the kernel); *open + fit + select one*:
a fresh process (imports excluded), with the page cache as the steps before left it, and in brackets after
the pool's files were dropped from the page cache (`POSIX_FADV_DONTNEED`), as on a node that has not read
them yet; *Ray*: `select_dataset` on a local `ray.init(num_cpus=2)` cluster, pool
from its path, 1 CPU per worker, batches of 256: queries/s over the whole run including worker start-up (each
worker opens the pool and fits once), and in brackets after subtracting the time of a one-query-per-worker run.

## Targets

{targets}

## Where the time and memory go at 1M

The latest run measured at commit {commit}; steps kept from earlier runs are listed under the table.

- *Open* reads the manifest, the Arrow footer and the `.npy` header and maps both files: milliseconds at any size.
- *Fit* reads the labels as dictionary codes of one Arrow column (no `Demo` is built at fit: {built} in
  the open-and-select-one run, the chosen demos of that one query), maps the stored row norms (no pass over
  the embeddings), reads 1,000 sampled rows for the median bandwidth and loads the saved index (its vectors
  and neighbour lists stay memory-mapped; faiss walks the graph once on load). The sampled rows and the
  part of the index file faiss reads are announced to the kernel first (`promptkd.pool.prefetch`), so with
  the files not cached this costs a few large reads, not one disk read per page. {estimator} {fit_profile}
- *Selecting* with the index: the index returns 256 candidates per query in {search_ms}; only those hits are
  scored exactly from the pool's embeddings (`batch_chunk` x 256 entries per chunk of queries), and the
  candidate ranking and the `label_prior` order's vote read the hits, not all n entries. {profile}
- *Memory*: {memory}
- Without the index (exact search, 100k) the similarity stage is one GEMM per chunk of `batch_chunk` queries.
"""


STEPS = ("save", "open", "index", "recall", "open_select_one", "open_select_one_cold", "select", "profile", "ray")


def _vintage() -> str:
    """Which stored steps an earlier run measured (with older code) than the file's latest run."""
    older = []
    for f in sorted(RESULTS.glob("n*.json"), key=lambda p: int(p.stem[1:])):
        d = json.loads(f.read_text())
        latest = d.get("code")
        for name in STEPS:
            if name in d and (latest is None or d[name].get("code") != latest):
                commit = (d[name].get("code") or {}).get("commit")
                older.append(f"{int(f.stem[1:]):,}: {name}" + (f" (`{commit[:10]}`)" if commit else ""))
            elif name == "index" and d[name].get("reused"):
                older.append(f"{int(f.stem[1:]):,}: index build time (the saved index was reused; its size is current)")
    if not older:
        return "Every number comes from one run of the command above on one version of the code."
    return (
        "Kept from an earlier run, on an older commit: "
        + "; ".join(older)
        + ". Everything else was measured in the latest run."
    )


def write_page() -> None:
    """Write docs/benchmarks/scale.md from the stored results."""
    machine = "a machine"
    for f in RESULTS.glob("n*.json"):
        m = json.loads(f.read_text()).get("machine")
        if m:
            machine = f"{m['cpus']} CPUs, Python {m['python']}, {m['platform']}"
    loads = [
        step["load_average_1min"]
        for f in RESULTS.glob("n*.json")
        for name, step in json.loads(f.read_text()).items()
        if name in ("open_select_one", "open_select_one_cold", "select", "ray")
        and isinstance(step, dict)
        and "load_average_1min" in step
    ]
    load = f"{min(loads):.1f} to {max(loads):.1f} on 2 cores" if loads else "not recorded"
    built = estimator = profile = fit_profile = ""
    memory = "not measured per file in the runs stored here."
    search_ms = "(not measured)"
    commit = "(not recorded)"
    big = RESULTS / "n1000000.json"
    if big.exists():
        data = json.loads(big.read_text())
        code = data.get("code", {})
        if code:
            commit = f"`{code['commit'][:10]}`" + (" with local changes" if code.get("modified") else "")
        one = data.get("open_select_one", {})
        built = f"{one.get('demos_built_by_fit', '?')} demos built"
        if "estimator_fit_s" in one:
            made = one.get("estimator_built_by_fit")
            estimator = (
                f'The bound estimator for `k="auto"` takes {one["estimator_fit_s"]:.1f} s on its own; '
                + ("`Selector.fit` built it although k = 8." if made else "`Selector.fit` does not build it for k = 8.")
                if made is not None
                else f'The bound estimator for `k="auto"` takes {one["estimator_fit_s"]:.1f} s on its own.'
            )
        rec = data.get("recall")
        if rec:
            search_ms = f"{rec['index_search_s'] / rec['queries'] * 1000:.1f} ms"
        prof = data.get("profile")
        older = "From an earlier run, on older code: " if prof and prof.get("code") != data.get("code") else ""
        if prof and "fit_parts" in prof:
            parts = ", ".join(f"`{name}` {t:.1f} s" for name, t in prof["fit_parts"][:6])
            fit_profile = (
                f"{older}Profiled once ({prof['fit_total_s']:.1f} s under the profiler), the functions inside fit with the "
                f"largest cumulative time (nested calls overlap): {parts}."
            )
        if prof and "top_own_time" in prof:
            parts = ", ".join(f"`{name}` {share:.0%}" for name, share in prof["top_own_time"][:6])
            profile = (
                f"{older}Profiled over {prof['queries']} queries ({prof['total_s'] / prof['queries'] * 1000:.1f} ms each under "
                f"the profiler): the index search {prof['index_search_share']:.0%} of the time, herding "
                f"{prof['herding_share']:.0%}; the largest own times: {parts}."
            )
        sel = data.get("select", {})
        if "rss_by_file_bytes" in sel:
            files = ", ".join(f"{name} {_gb(b)} GB" for name, b in sorted(sel["rss_by_file_bytes"].items()))
            memory = (
                f"at the end of `select_batch` the mapped pool files were resident as: {files} (file-backed, shared "
                f"between processes and reclaimable); anonymous memory peaked at {_gb(sel['peak_rss_anon_bytes'])} GB "
                f"(the interpreter, numpy, faiss and torch, the HNSW levels and offsets, and the per-chunk hits)."
            )
    counts = {
        f"{json.loads(f.read_text())['recall']['queries']:,}"
        for f in RESULTS.glob("n*.json")
        if "recall" in json.loads(f.read_text())
    }
    text = PAGE.format(
        recall_queries=" or ".join(sorted(counts)) or "1,000",
        vintage=_vintage(),
        command=COMMAND,
        machine=machine,
        targets="\n".join(_targets()) or "(no results yet)",
        built=built,
        estimator=estimator,
        profile=profile,
        search_ms=search_ms,
        load=load,
        fit_profile=fit_profile,
        memory=memory,
        commit=commit,
    )
    head, rest = text.split("<!-- scale-table:start -->", 1)
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    tail = rest.split("<!-- scale-table:end -->", 1)[1].lstrip("\n")
    TABLE.write_text(head + table() + "\n" + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
