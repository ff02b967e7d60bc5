"""Fit the budget constants promptkd ships (A, C, intercept) and choose the default token price.

Reads the committed dev rows (no LM runs here):

* ``benchmarks/results/tune_dev/rows.jsonl.gz``: k=8, written by ``benchmarks/tune_dev.py``;
* ``benchmarks/results/calibration_dev/rows.jsonl.gz``: other k and a random selector, written by
  ``benchmarks/calibrate_score.py`` on the same dev protocol.

For each row it recomputes ``MMD_b`` between the row's demonstrations and its dev query
under the kernel the budget uses (an RBF on MiniLM embeddings at ``s`` times the pool's
median-heuristic bandwidth; ``s = 1`` is ``BoundEstimator``'s default, ``s = 2`` the
``Selector``'s), averages per (task, selector, k) cell, and fits

    error ~ intercept_task + A / sqrt(k) + C * MMD_b

by least squares with one intercept per task (task difficulty is not what the budget is
about); the shipped intercept is the mean of the task intercepts. The fit is repeated on
bootstrap resamples of the dev items for intervals. It also measures what a prompt token
buys on dev (accuracy gained per 100 prompt tokens when k doubles) and, with no LM, counts
the queries for which ``Selector(k="auto", k_max=16)`` picks ``k* < 16``.

    .venv/bin/python benchmarks/calibrate_constants.py            # fit, write the data file and the page
    .venv/bin/python benchmarks/calibrate_constants.py --check    # fit and compare with the shipped file
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks.calibrate_score import PHASES, parse_auto_name  # noqa: E402

TUNE_ROWS = REPO / "benchmarks" / "results" / "tune_dev" / "rows.jsonl.gz"
CAL_ROWS = REPO / "benchmarks" / "results" / "calibration_dev" / "rows.jsonl.gz"
DATA_FILE = REPO / "promptkd" / "bounds" / "data" / "constants.json"
DOC = REPO / "docs" / "calibration.md"
EMBEDDER_ID = "sentence-transformers:all-MiniLM-L6-v2"
SCALES = (1.0, 2.0)  # BoundEstimator's default bandwidth (1 x median) and the Selector's (2 x median)
VERSION = "2"
#: tune_dev.py's variants whose k=8 rows the fit reads (the file may grow with later tuning runs)
K8_SELECTORS = ("topk", "topk-prior", "median-x2", "prior", "bm25", "bm25-prior", "joint-prior", "hybrid-prior")
#: calibrate_score.py's fixed-k selectors that the fit reads (k='auto' rows and their k_max partners are not fitted)
FIT_SELECTORS = frozenset(name for _, names in PHASES.values() for name in names)
#: the variant whose k='auto' rows choose the default price: the Selector's defaults (tune_dev.py's name)
DEFAULT_VARIANT = "hybrid-lexvote"
COMMAND = ".venv/bin/python benchmarks/calibrate_constants.py"
#: the price table needs no LM, so it covers every task's dev queries, including those without k=4 rows
BUDGET_TASKS = ("sst2", "mr", "subj", "trec", "agnews", "dbpedia", "rte", "cb")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a committed ``rows.jsonl.gz`` (never the working file beside it, which a run may be extending)."""
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# ---------------------------------------------------------------------- MMD under the budget's kernel
def embeddings(tasks: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per task: the pool's and the dev items' MiniLM embeddings and the pool's median bandwidth."""
    from benchmarks.tune_dev import dev_split
    from promptkd.embeddings import CachedEmbedder, SentenceTransformerEmbedder
    from promptkd.kernels.functions import median_bandwidth

    emb = CachedEmbedder(SentenceTransformerEmbedder(device=None), CAL_ROWS.parent / "embeddings.sqlite")
    out = {}
    for name in tasks:
        pool, dev = dev_split(name, 30, 2000, 600)
        P = np.asarray(emb.encode(pool.inputs, show_progress_bar=False), dtype=np.float32)
        D = np.asarray(emb.encode(dev.inputs, show_progress_bar=False), dtype=np.float32)
        out[name] = {"pool": P, "dev": D, "median": median_bandwidth(P, seed=0), "pool_task": pool, "dev_task": dev,
                     "embedder": emb}  # fmt: skip
    return out


def add_mmd(rows: list[dict[str, Any]], emb: dict[str, dict[str, Any]]) -> None:
    """Add ``mmd_s<scale>`` (``MMD_b``, not squared) to every row, for each bandwidth scale."""
    from promptkd.kernels.mmd import mmd2

    for r in rows:
        e = emb[r["task"]]
        X = e["pool"][r["demo_rows"]]
        y = e["dev"][int(r["item"])][None, :]
        for s in SCALES:
            v = float(mmd2(X, y, kernel="rbf", bandwidth=s * e["median"]))
            r[f"mmd_s{s:g}"] = float(np.sqrt(max(v, 0.0)))


# ---------------------------------------------------------------------- the fit
def cells(rows: list[dict[str, Any]], scale: float, items: dict[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """One record per (task, selector, k): mean k, mean MMD_b, error = 1 - accuracy, mean prompt tokens.

    ``items`` (task -> dev item ids, with repeats) resamples the items of every cell alike.
    """
    by: dict[tuple[str, str, int], dict[int, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["task"], r["selector"], int(r["k"])), {})[int(r["item"])] = r
    out = []
    for (task, sel, _k), per_item in sorted(by.items()):
        ids = list(per_item) if items is None else [i for i in items[task] if i in per_item]
        if not ids:
            continue
        rs = [per_item[i] for i in ids]
        out.append(
            {
                "task": task,
                "selector": sel,
                "k": float(np.mean([r["n_demos"] for r in rs])),
                "mmd": float(np.mean([r[f"mmd_s{scale:g}"] for r in rs])),
                "error": 1.0 - float(np.mean([float(r["correct"]) for r in rs])),
                "tokens": float(np.mean([r["tokens"] for r in rs])),
                "n_items": len(rs),
            }
        )
    return out


def fit_within(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Least squares of ``error ~ intercept_task + A/sqrt(k) + C*MMD``; R^2 within tasks and overall."""
    tasks = sorted({r["task"] for r in records})
    k = np.array([r["k"] for r in records])
    mmd = np.array([r["mmd"] for r in records])
    err = np.array([r["error"] for r in records])
    onehot = np.array([[1.0 if r["task"] == t else 0.0 for t in tasks] for r in records])
    X = np.column_stack([1.0 / np.sqrt(k), mmd, onehot])
    coef, *_ = np.linalg.lstsq(X, err, rcond=None)
    resid = err - X @ coef
    task_idx = np.array([tasks.index(r["task"]) for r in records])
    task_mean = np.array([err[task_idx == i].mean() for i in range(len(tasks))])[task_idx]
    ss_within = float(((err - task_mean) ** 2).sum())
    ss_total = float(((err - err.mean()) ** 2).sum())
    ss_res = float(resid @ resid)
    return {
        "A": float(coef[0]),
        "C": float(coef[1]),
        "intercept": float(np.mean(coef[2:])),
        "task_intercepts": {t: float(c) for t, c in zip(tasks, coef[2:], strict=True)},
        "r2_within": 1.0 - ss_res / ss_within if ss_within > 0 else float("nan"),
        "r2": 1.0 - ss_res / ss_total if ss_total > 0 else float("nan"),
        "rmse": float(np.sqrt(ss_res / len(err))),
        "rmse_by_task": {t: float(np.sqrt(np.mean(resid[task_idx == i] ** 2))) for i, t in enumerate(tasks)},
        "n_records": len(records),
    }


def bootstrap(rows: list[dict[str, Any]], scale: float, n_boot: int, seed: int = 0) -> dict[str, list[float]]:
    """95% intervals of A and C over resamples of the dev items (within each task)."""
    rng = np.random.default_rng(seed)
    ids = {
        t: np.array(sorted({int(r["item"]) for r in rows if r["task"] == t})) for t in sorted({r["task"] for r in rows})
    }
    A, C = [], []
    for _ in range(n_boot):
        items = {t: rng.choice(v, size=len(v), replace=True) for t, v in ids.items()}
        f = fit_within(cells(rows, scale, items))
        A.append(f["A"])
        C.append(f["C"])
    q = [2.5, 97.5]
    return {"A": [float(x) for x in np.percentile(A, q)], "C": [float(x) for x in np.percentile(C, q)]}


# ---------------------------------------------------------------------- what a token buys
def token_returns(records: list[dict[str, Any]], selector: str) -> list[dict[str, Any]]:
    """Per task and pair of consecutive k: accuracy points gained per 100 extra prompt tokens (one selector)."""
    out = []
    for task in sorted({r["task"] for r in records}):
        rs = sorted((r for r in records if r["task"] == task and r["selector"] == selector), key=lambda r: r["k"])
        for a, b in itertools.pairwise(rs):
            dt = b["tokens"] - a["tokens"]
            gain = 100.0 * (a["error"] - b["error"])
            out.append({"task": task, "k_from": a["k"], "k_to": b["k"], "points": gain, "tokens": dt,
                        "points_per_100": 100.0 * gain / dt if dt > 0 else float("nan")})  # fmt: skip
    return out


# ---------------------------------------------------------------------- k* without an LM
def budget_curves(emb: dict[str, dict[str, Any]], k_max: int, tokenizer: str | None = None) -> dict[str, list[Any]]:
    """Per task, the free-token budget curve of ``Selector(k="auto", k_max)`` for every dev query.

    ``tokenizer=None`` counts tokens as the Selector does by default (whitespace words of the
    rendered demonstrations); ``"gemma-3-270m"`` counts the scoring LM's tokens. The curve's
    MMD and tokens do not depend on the constants, so any (A, C) can be applied to it.
    """
    from promptkd import DemoPool
    from promptkd.selection import Selector

    out: dict[str, list[Any]] = {}
    for name, e in emb.items():
        pool_task, dev = e["pool_task"], e["dev_task"]
        pool = DemoPool(pool_task.demos(), embedder=e["embedder"])
        kw: dict[str, Any] = {"tokenizer": tokenizer} if tokenizer is not None else {}
        # the budget reads MMD on an RBF whatever the herding kernel: the plain RBF keeps the fit light
        kw.update(kernel="rbf", order="label_prior")
        sel = Selector(k="auto", k_max=k_max, token_cost=0.0, template=pool_task.template, **kw).fit(pool)
        out[name] = [sel.select(dev.inputs[i]).budget for i in range(len(dev))]
    return out


def kstar(budget: Any, A: float, C: float, token_cost: float) -> int:
    """The budget's argmin of ``A/sqrt(k) + C*MMD_b(k) + token_cost*tokens(k)`` on a curve (ties: smaller k)."""
    return min(budget.curve, key=lambda p: (A / np.sqrt(p.k) + C * p.mmd + token_cost * p.tokens, p.k)).k


def price_table(curves: dict[str, list[Any]], A: float, C: float, prices: list[float]) -> list[dict[str, Any]]:
    """For each price (points per 100 tokens): share of queries with k* < k_max, tokens saved, predicted loss.

    The predicted accuracy loss is the fitted model's error at k* minus its error at k_max
    (``A/sqrt(k) + C*MMD_b``, the token term left out), in points; tokens saved are those of
    the demonstrations. Both are macro-averaged over tasks.
    """
    out = []
    for points in prices:
        lam = points / 1e4
        below, n, saved, loss, per_task = 0, 0, [], [], {}
        for task, budgets in curves.items():
            t_saved, t_loss, ks = [], [], []
            for b in budgets:
                k = kstar(b, A, C, lam)
                top, p = b.curve[-1], b.point(k)
                ks.append(k)
                below += int(k < top.k)
                n += 1
                t_saved.append(1.0 - p.tokens / top.tokens if top.tokens else 0.0)
                pred = (A / np.sqrt(p.k) + C * p.mmd) - (A / np.sqrt(top.k) + C * top.mmd)
                t_loss.append(100.0 * pred)
            saved.append(float(np.mean(t_saved)))
            loss.append(float(np.mean(t_loss)))
            per_task[task] = ks
        out.append({"points_per_100": points, "share_below_kmax": below / n, "tokens_saved": float(np.mean(saved)),
                    "predicted_loss_points": float(np.mean(loss)), "n_queries": n, "kstar": per_task})  # fmt: skip
    return out


# ---------------------------------------------------------------------- outputs
def write_data_file(families: list[dict[str, Any]], token_cost: dict[str, Any], command: str) -> None:
    data = {
        "format": 1,
        "version": VERSION,
        "generated_by": command,
        "what": "Budget constants of U(k) = intercept + A/sqrt(k) + C*MMD_b(S_k, T) + lambda*tokens(S_k), fitted on "
        "dev splits (see docs/budget_behaviour.md, section C); and the default token price lambda.",
        "default_token_cost": token_cost,
        "families": families,
    }
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    DATA_FILE.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print("wrote", DATA_FILE)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-boot", type=int, default=200)
    p.add_argument("--k-max", type=int, default=16)
    p.add_argument("--check", action="store_true", help="fit and print; write nothing")
    p.add_argument("--tasks", nargs="+", default=None, help="fit on these tasks only (default: every task in the rows)")
    p.add_argument(
        "--budget-tasks",
        nargs="+",
        default=list(BUDGET_TASKS),
        help="tasks whose dev queries the price table and the k* counts use (no LM; default: all eight)",
    )
    args = p.parse_args(argv)
    shown = list(sys.argv[1:] if argv is None else argv)
    command = " ".join([COMMAND, *(a for a in shown if a != "--check")])

    cal_rows = read_jsonl(CAL_ROWS)
    # the first dev draw only: the calibration rows share its dev items and pool (a later draw has its own)
    rows = [r for r in read_jsonl(TUNE_ROWS) if r["lm"] == LM and r["selector"] in K8_SELECTORS]
    rows = [r for r in rows if int(r.get("pool_seed", 0)) == 0]
    rows += [r for r in cal_rows if r["lm"] == LM and r["selector"] in FIT_SELECTORS]
    if args.tasks:
        rows = [r for r in rows if r["task"] in args.tasks]
    tasks = sorted({r["task"] for r in rows})
    emb = embeddings(tasks)
    add_mmd(rows, emb)
    check = max(abs(r["mmd_s1"] ** 2 - float(r["mmd2"])) for r in rows if r.get("mmd2") is not None)
    print(f"rows: {len(rows)}; max |MMD2 recomputed at 1 x median - MMD2 in the rows| = {check:.2e}")
    families, recs_by_scale = [], {}
    for s in SCALES:
        recs = cells(rows, s)
        recs_by_scale[s] = recs
        f = fit_within(recs)
        f["bootstrap_95"] = bootstrap(rows, s, args.n_boot)
        print(f"scale {s:g}: A={f['A']:.4f} C={f['C']:.4f} intercept={f['intercept']:.4f} "
              f"R2_within={f['r2_within']:.3f} R2={f['r2']:.3f} boot={f['bootstrap_95']}")  # fmt: skip
        families.append((s, f))
    returns = token_returns(recs_by_scale[2.0], "prior")
    A2, C2 = families[-1][1]["A"], families[-1][1]["C"]
    missing = [t for t in args.budget_tasks if t not in emb]
    emb_budget = {**emb, **(embeddings(missing) if missing else {})}
    curves = budget_curves({t: emb_budget[t] for t in args.budget_tasks}, args.k_max, None)
    # the rule reads the fit tasks only: elsewhere the predicted loss extrapolates the constants to tasks
    # they were not fitted on; the share of k* < k_max over every budget task is reported beside it
    measured = measured_prices(cal_rows, args.k_max)
    for m in measured:
        print("measured on dev with the LM:", m)
    grid = sorted({*PRICES, *(m["points_per_100"] for m in measured)})  # every scored price gets a predicted row
    prices = price_table({t: curves[t] for t in tasks if t in curves}, A2, C2, grid)
    prices_all = price_table(curves, A2, C2, grid)
    for r in prices:
        print({k: v for k, v in r.items() if k != "kstar"})
    chosen = choose_price(prices, measured)
    print(f"default token price: {chosen['points_per_100']:g} points per 100 tokens")
    transfer = transfer_fit(cal_rows, emb)
    if transfer is not None:
        print(f"{TRANSFER_LM}: A={transfer['A']:.4f} C={transfer['C']:.4f} R2_within={transfer['r2_within']:.3f}")
    if args.check:
        shipped = {f["median_scale"]: f for f in json.loads(DATA_FILE.read_text(encoding="utf-8"))["families"]}
        for s_, _fit in families:
            old = shipped.get(s_, {})
            print(f"shipped {s_:g} x median: A={old.get('A')} C={old.get('C')} intercept={old.get('intercept')}")
        return
    if any(f["A"] < 0 or f["C"] < 0 for _, f in families):
        raise SystemExit("a fitted constant is negative: the dev rows do not follow the bound's shape; not shipping it")
    entries = [family_entry(s_, f, recs_by_scale[s_]) for s_, f in families]
    write_data_file(entries, {
        "points_per_100_tokens": chosen["points_per_100"],
        "rule": RULE if not measured else MEASURED_RULE,
        "tokens": "whitespace words of the rendered demonstrations (the Selector's default counter)",
    }, command)  # fmt: skip
    write_section(rows, families, recs_by_scale, returns, prices, prices_all, chosen, args, command)
    write_measured(measured, chosen, transfer)


PRICES = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0]
MAX_LOSS = 0.5  # accuracy points: how much k='auto' may lose against k_max on dev
RULE = (
    f"the largest price on the grid {PRICES} (points per 100 tokens) at which the fitted constants predict a "
    f"macro-average accuracy loss of at most {MAX_LOSS} points against k_max = 16 on the dev queries"
)


MEASURED_RULE = (
    f"the largest price scored on dev with the LM (k='auto', k_max = 16, the shipped constants, the default "
    f"selector's kernel and order) whose macro-average accuracy is at most {MAX_LOSS} points below the same selector "
    "at k = 16 on the same dev items; prices were screened with the fitted constants' predicted loss first"
)


def price_variant(measured: list[dict[str, Any]]) -> str:
    """The variant whose LM-scored dev rows choose the price: the default selector's, else the earlier ``prior``."""
    return DEFAULT_VARIANT if any(m["variant"] == DEFAULT_VARIANT for m in measured) else "prior"


def choose_price(prices: list[dict[str, Any]], measured: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The default price: by the LM-scored dev rows when there are any, else by the fitted constants' prediction.

    Measured: the largest price scored with the default selector's settings (``DEFAULT_VARIANT``, else the
    earlier ``prior`` rows) whose dev loss against k_max is at most ``MAX_LOSS`` points.
    Predicted: the largest price on the grid whose predicted loss is at most ``MAX_LOSS`` points.
    """
    if measured:
        scored = [m for m in measured if m["variant"] == price_variant(measured)]
        ok = [m["points_per_100"] for m in scored if m["loss_points"] <= MAX_LOSS]
        best = max(ok) if ok else min(m["points_per_100"] for m in scored)
        return next(p for p in prices if p["points_per_100"] == best)  # the grid holds every measured price
    ok = [p for p in prices if p["predicted_loss_points"] <= MAX_LOSS]
    return max(ok, key=lambda p: p["points_per_100"]) if ok else prices[0]


# ---------------------------------------------------------------------- k='auto' scored with the LM on dev
LM = "gemma-3-270m"
TRANSFER_LM = "SmolLM2-135M-Instruct"


def is_auto(row: dict[str, Any]) -> bool:
    """Rows of ``calibrate_score.py --auto-prices`` (k='auto' at a stated token price)."""
    return parse_auto_name(str(row["selector"])) is not None


def _macro(values: np.ndarray, task_of: np.ndarray) -> float:
    """Mean within each task, then over tasks."""
    return float(np.mean([values[task_of == t].mean() for t in sorted(set(task_of))]))


def measured_prices(cal_rows: list[dict[str, Any]], k_max: int) -> list[dict[str, Any]]:
    """Per (variant, price) scored on dev: macro accuracy of k='auto' against the same variant at k = k_max, paired.

    Pairs are the dev items both were scored on; accuracy is averaged within each task, then over tasks.
    The 95% interval of the difference resamples items within each task (``tune_dev._paired``).
    """
    from benchmarks.tune_dev import _paired

    fixed = {(r["selector"], r["task"], int(r["item"])): r for r in cal_rows
             if r["lm"] == LM and r["k"] == k_max and not is_auto(r)}  # fmt: skip
    by_price: dict[tuple[str, float], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for r in cal_rows:
        parsed = parse_auto_name(str(r["selector"])) if r["lm"] == LM else None
        if parsed is not None and (parsed[0], r["task"], int(r["item"])) in fixed:
            by_price.setdefault(parsed, []).append((r, fixed[(parsed[0], r["task"], int(r["item"]))]))
    out = []
    for (variant, points), pairs in sorted(by_price.items()):
        task_of = np.array([a["task"] for a, _ in pairs])
        auto = np.array([float(a["correct"]) for a, _ in pairs])
        top = np.array([float(b["correct"]) for _, b in pairs])
        tasks = sorted(set(task_of))
        diff, lo, hi = _paired(auto, top, task_of)
        below = np.array([a["n_demos"] < k_max for a, _ in pairs], dtype=float)
        out.append({
            "variant": variant,
            "points_per_100": points,
            "tasks": tasks,
            "n_items": len(pairs),
            "auto_accuracy": 100 * _macro(auto, task_of),
            "kmax_accuracy": 100 * _macro(top, task_of),
            "loss_points": -diff,
            "loss_ci": [-hi, -lo],
            "share_below_kmax": float(below.mean()),
            "share_below_kmax_by_task": _macro(below, task_of),
            "tokens_saved": 1.0 - sum(a["tokens"] for a, _ in pairs) / sum(b["tokens"] for _, b in pairs),
            "kstar": {t: [int(a["n_demos"]) for a, _ in pairs if a["task"] == t] for t in tasks},
        })  # fmt: skip
    return out


def transfer_fit(cal_rows: list[dict[str, Any]], emb: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The same fit on the second LM's dev rows (the default selector at several k), as a check; None without rows."""
    rows = [r for r in cal_rows if r["lm"] == TRANSFER_LM and r["selector"] in FIT_SELECTORS and r["task"] in emb]
    if len({r["k"] for r in rows}) < 2:
        return None
    add_mmd(rows, emb)
    f = fit_within(cells(rows, 2.0))
    f["tasks"] = sorted({r["task"] for r in rows})
    f["k"] = sorted({int(r["k"]) for r in rows})
    return f


def write_measured(measured: list[dict[str, Any]], chosen: dict[str, Any], transfer: dict[str, Any] | None) -> None:
    """Section D of docs/budget_behaviour.md: the prices scored with the LM on dev, and the second LM's fit."""
    out = [MSTART, "### D. The token price scored with the LM on dev, and the constants on a second LM", ""]
    if measured:
        chooser = price_variant(measured)
        out += [
            '`benchmarks/calibrate_score.py --auto-prices P ... --auto-variant V` scores `Selector(k="auto", k_max=16, '
            "token_cost=P / 1e4)` (the shipped constants) with the kernel and order of the tune_dev variant V, on "
            "the same dev items as the fixed-k rows above. Each row pairs it with the same variant at k = 16 on the "
            "same items (accuracy averaged within each task, then over tasks; 95% interval from resampling items "
            "within tasks). Tokens are the LM's, whole prompt. `prior` is an RBF kernel with the `label_prior` "
            "order (the defaults when the price was first chosen); `hybrid-lexvote` is `rbf+lexical` with "
            "`label_prior_lexical` (today's defaults). The budget's k* reads MMD on the RBF part only, so both "
            "variants stop at the same k* for a query; only the demonstrations and their order differ.",
            "",
            "| variant | price (points per 100 tokens) | items | k='auto' accuracy | k=16 accuracy | loss (95% CI) "
            "| k* < 16: items / tasks averaged | tokens saved |",
            "|---|---:|---:|---:|---:|---|---:|---:|",
        ]
        for m in measured:
            chosen_here = m["variant"] == chooser and m["points_per_100"] == chosen["points_per_100"]
            mark = " **(default)**" if chosen_here else ""
            lo, hi = m["loss_ci"]
            out.append(
                f"| {m['variant']} | {m['points_per_100']:g}{mark} | {m['n_items']} | {m['auto_accuracy']:.1f} | "
                f"{m['kmax_accuracy']:.1f} | {m['loss_points']:+.1f} ({lo:+.1f}, {hi:+.1f}) | "
                f"{100 * m['share_below_kmax']:.0f}% / {100 * m['share_below_kmax_by_task']:.0f}% | "
                f"{100 * m['tokens_saved']:.0f}% |"
            )
        out += ["", f"The default price is {MEASURED_RULE}. The rule reads the `{chooser}` rows.", ""]
    if transfer is not None:
        out += [
            f"**A second LM.** The same model fitted on {TRANSFER_LM}'s dev rows (the selector 'prior' at "
            f"k = {', '.join(map(str, transfer['k']))}; tasks {', '.join(transfer['tasks'])}; 2 x median bandwidth): "
            f"A = {transfer['A']:.3f}, C = {transfer['C']:.3f}, R^2 within tasks {transfer['r2_within']:.3f} "
            f"({transfer['n_records']} cells). With one selector per k, k and MMD_b move together, so A and C are "
            "less well separated than in the Gemma fit; the shipped constants are Gemma's.",
            "",
        ]
    out.append(MEND)
    text = PAGE.read_text(encoding="utf-8")
    block = "\n".join(out)
    if MSTART in text and MEND in text:
        text = text[: text.index(MSTART)] + block + text[text.index(MEND) + len(MEND) :]
    else:
        text = text.replace(END, END + "\n\n" + block, 1)
    PAGE.write_text(text, encoding="utf-8")
    print(block)


def family_entry(scale: float, f: dict[str, Any], recs: list[dict[str, Any]]) -> dict[str, Any]:
    """One family of the data file."""
    return {
        "name": f"minilm-rbf-{scale:g}x",
        "embedder": EMBEDDER_ID,
        "kernel": "rbf",
        "median_scale": scale,
        "lm": "gemma-3-270m",
        "A": round(f["A"], 6),
        "C": round(f["C"], 6),
        "intercept": round(f["intercept"], 6),
        "fit": {
            "model": "error ~ intercept_task + A/sqrt(k) + C*MMD_b over (task, selector, k) cells; "
            "intercept = mean of the task intercepts",
            "r2_within": round(f["r2_within"], 4),
            "r2": round(f["r2"], 4),
            "rmse": round(f["rmse"], 4),
            "bootstrap_95": {k: [round(x, 4) for x in v] for k, v in f["bootstrap_95"].items()},
            "n_records": f["n_records"],
            "tasks": sorted({r["task"] for r in recs}),
            "k": sorted({round(r["k"]) for r in recs}),
            "selectors": sorted({r["selector"] for r in recs}),
        },
    }


START, END = "<!-- calibrate_constants:start -->", "<!-- calibrate_constants:end -->"
MSTART, MEND = "<!-- calibrate_constants:measured:start -->", "<!-- calibrate_constants:measured:end -->"
PAGE = REPO / "docs" / "budget_behaviour.md"


def write_section(
    rows: list[dict[str, Any]],
    families: list[tuple[float, dict[str, Any]]],
    recs_by_scale: dict[float, list[dict[str, Any]]],
    returns: list[dict[str, Any]],
    prices: list[dict[str, Any]],
    prices_all: list[dict[str, Any]],
    chosen: dict[str, Any],
    args: argparse.Namespace,
    command: str,
) -> None:
    """Write section C of docs/budget_behaviour.md between its markers (budget_behaviour.py keeps it)."""
    from promptkd.bounds import calibrate

    recs2 = recs_by_scale[2.0]
    ks = sorted({int(r["k"]) for r in rows})
    by_k = {k: sorted({r["selector"] for r in rows if int(r["k"]) == k}) for k in ks}
    out = [
        START,
        "### C. The shipped constants and the default token price (dev splits, Gemma-3-270m)",
        "",
        f"Generated by `{command}` from committed rows: `benchmarks/results/tune_dev/rows.jsonl.gz` (k=8, "
        "`benchmarks/tune_dev.py`) and `benchmarks/results/calibration_dev/rows.jsonl.gz` (`benchmarks/calibrate_score.py`, "
        "same protocol). Dev items: 30 per task carved (seeded) from train; pool: the rest of train subsampled to 2000; "
        "Gemma-3-270m in float32 scores the prompts. The test split is not read. "
        f"Tasks: {', '.join(sorted({r['task'] for r in rows}))}. "
        f"{len(rows)} rows; selectors per k: " + "; ".join(f"k={k}: {', '.join(v)}" for k, v in by_k.items()) + ".",
        "",
        "Each row's `MMD_b` (between its demonstrations and its query) is recomputed under the budget's kernel: an RBF "
        "on MiniLM embeddings at 1 x (BoundEstimator's default) or 2 x (the Selector's default) the pool's median "
        "bandwidth. Per (task, selector, k) cell, `error ~ intercept_task + A/sqrt(k) + C*MMD_b` is fitted by least "
        "squares with one intercept per task; the shipped intercept is their mean. Intervals: 95% bootstrap over the "
        f"dev items ({args.n_boot} resamples). 'pooled' is the same model with one intercept for all tasks "
        "(`promptkd.bounds.calibrate`).",
        "",
        "| family | A (95% CI) | C (95% CI) | intercept | R^2 within tasks | R^2 (all cells) | RMSE | pooled fit: A / C / R^2 |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for s, f in families:
        pooled = calibrate([(r["k"], r["mmd"], r["error"]) for r in recs_by_scale[s]])
        bA, bC = f["bootstrap_95"]["A"], f["bootstrap_95"]["C"]
        out.append(
            f"| minilm-rbf-{s:g}x | {f['A']:.3f} ({bA[0]:.3f}, {bA[1]:.3f}) | {f['C']:.3f} ({bC[0]:.3f}, {bC[1]:.3f}) | "
            f"{f['intercept']:.3f} | {f['r2_within']:.3f} | {f['r2']:.3f} | {f['rmse']:.3f} | "
            f"{pooled.A:.3f} / {pooled.C:.3f} / {pooled.r2:.3f} |"
        )
    f2 = families[-1][1]
    tasks = sorted(f2["task_intercepts"])
    out += [
        "",
        "Per task (2 x median family): the task's intercept, the fit's RMSE, and the accuracy and mean prompt "
        "tokens (Gemma tokens, whole prompt) at each k of the selector 'prior' (an RBF with the label_prior "
        "order, the Selector's defaults when these rows were scored).",
        "",
        "| task | intercept | RMSE | " + " | ".join(f"k={k}: acc / tokens" for k in ks) + " |",
        "|---|---:|---:|" + "---|" * len(ks),
    ]
    for t in tasks:
        cells_t = {int(r["k"]): r for r in recs2 if r["task"] == t and r["selector"] == "prior"}
        vals = " | ".join(
            f"{100 * (1 - cells_t[k]['error']):.1f} / {cells_t[k]['tokens']:.0f}" if k in cells_t else "" for k in ks
        )
        out.append(f"| {t} | {f2['task_intercepts'][t]:.3f} | {f2['rmse_by_task'][t]:.3f} | {vals} |")
    pairs = sorted({(r["k_from"], r["k_to"]) for r in returns})
    for a, b in pairs:
        sub = [r for r in returns if (r["k_from"], r["k_to"]) == (a, b)]
        med = float(np.median([r["points_per_100"] for r in sub]))
        mean_pts = float(np.mean([r["points"] for r in sub]))
        mean_tok = float(np.mean([r["tokens"] for r in sub]))
        out.append("")
        out.append(
            f"Measured on dev, k={a:g} -> {b:g} with the selector 'prior': {mean_pts:+.1f} accuracy points for "
            f"{mean_tok:.0f} more prompt tokens (mean over tasks); median over tasks {med:+.2f} points per 100 tokens."
        )
    out += [
        "",
        "**The default token price.** For each price, the table applies the shipped 2 x median constants to the "
        f'free-token budget curve of `Selector(k="auto", k_max={args.k_max})` for every dev query (no LM: tokens are '
        "whitespace words of the rendered demonstrations, as the Selector counts them by default) and reports the "
        "share of queries with k* < k_max, the demonstration tokens saved against k_max, and the accuracy loss "
        "against k_max that the fitted constants predict (macro over tasks), first on the dev queries of the tasks "
        "the constants were fitted on, which the rule reads, then on the dev queries of all "
        f"{len(args.budget_tasks)} tasks (no LM is needed to count k*; the predicted loss there extrapolates the "
        "constants to tasks without rows at several k). These predictions screen the prices; the default itself is "
        "chosen from prices scored with the LM on dev (section D), and only without such rows by this rule: "
        + RULE
        + ".",
        "",
        "| price (points per 100 tokens) | fit tasks: k* < k_max | tokens saved | predicted loss (points) "
        f"| all {len(args.budget_tasks)} tasks: k* < k_max | tokens saved | predicted loss (points) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p, q in zip(prices, prices_all, strict=True):
        mark = " **(default)**" if p["points_per_100"] == chosen["points_per_100"] else ""
        out.append(
            f"| {p['points_per_100']:g}{mark} | {100 * p['share_below_kmax']:.0f}% of {p['n_queries']} | "
            f"{100 * p['tokens_saved']:.0f}% | {p['predicted_loss_points']:.2f} | "
            f"{100 * q['share_below_kmax']:.0f}% of {q['n_queries']} | {100 * q['tokens_saved']:.0f}% | "
            f"{q['predicted_loss_points']:.2f} |"
        )
    at_default = next(q for q in prices_all if q["points_per_100"] == chosen["points_per_100"])
    out += [
        "",
        f"k* per task at the default price (k_max = {args.k_max}; counts of each k*, whitespace tokens):",
        "",
        "| task | k* < k_max | median k* | k*: count |",
        "|---|---:|---:|---|",
    ]
    for t, kk in at_default["kstar"].items():
        hist = ", ".join(f"{k}: {c}" for k, c in sorted(Counter(kk).items()))
        out.append(f"| {t} | {sum(k < args.k_max for k in kk)} of {len(kk)} | {np.median(kk):g} | {hist} |")
    out += [
        "",
        "Tokens here are whitespace words, as `Selector` counts them without a `tokenizer`; a subword tokenizer "
        "counts more tokens for the same demonstrations, so at the same price it stops earlier.",
        END,
    ]
    text = PAGE.read_text(encoding="utf-8") if PAGE.is_file() else "# Budget behaviour (measured)\n"
    block = "\n".join(out)
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    PAGE.write_text(text, encoding="utf-8")
    print(block)
    print("wrote", PAGE)


if __name__ == "__main__":
    main()
