"""Experiment grid: every (task, selector, k, seed, test item), resumable from a JSONL file.

One row is written per scored item and flushed immediately, so an interrupted run
continues where it stopped; rows already in the results file are never redone.
Every LM row also records the *vote* of its demonstrations (their majority label,
no LM), so "the LM learned from the demos" can be told apart from "retrieval found
same-label neighbours".
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promptkd._progress import default_show_progress_bar
from promptkd._validation import check_int
from promptkd.evaluation.results import (  # noqa: F401 - re-exported for callers of this module
    ZERO_SHOT,
    CellSummary,
    ExperimentResult,
    PairedComparison,
    _drop_partial_line,
    _row_key,
    majority_vote,
    read_rows,
)
from promptkd.evaluation.scoring import ICLClassifier
from promptkd.evaluation.selectors import SelectorSpec, standard_selectors
from promptkd.evaluation.tasks import Task, load_task
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.kernels.functions import median_bandwidth
from promptkd.kernels.mmd import mmd2 as mmd2_fn

__all__ = [
    "ExperimentResult",
    "SelectorSpec",
    "majority_vote",
    "read_rows",
    "run_experiment",
    "standard_selectors",
]

logger = logging.getLogger("promptkd")


# ---------------------------------------------------------------------- the runner
def _resolve_tasks(
    tasks: Sequence[Any], data_root: Any, max_chars: int | None, pool_size: int | None, pool_seed: int
) -> list[tuple[Task, Task]]:
    out = []
    if isinstance(tasks, (str, Task)):
        tasks = [tasks]
    for t in tasks:
        if isinstance(t, tuple) and len(t) == 2 and all(isinstance(x, Task) for x in t):
            train, test = t
        elif isinstance(t, (str, os.PathLike)):
            train = load_task(t, "train", data_root=data_root, max_chars=max_chars)
            test = load_task(t, "test", data_root=data_root, max_chars=max_chars, label_words=train.label_words)
        else:
            raise InvalidTypeError(
                f"tasks must hold task names/folders or (train Task, test Task) pairs, got {type(t).__name__}."
            )
        if pool_size is not None and len(train) > pool_size:
            train = train.subset(train.sample_indices(pool_size, seed=pool_seed))
        out.append((train, test))
    return out


def _resolve_specs(selectors: Sequence[Any]) -> list[SelectorSpec]:
    if isinstance(selectors, (str, SelectorSpec)):
        selectors = [selectors]
    specs = []
    for s in selectors:
        if isinstance(s, SelectorSpec):
            specs.append(s)
        elif isinstance(s, str):
            specs.extend(standard_selectors([s]))
        else:
            raise InvalidTypeError(f"selectors must be names or SelectorSpec objects, got {type(s).__name__}.")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"selector names must be unique, got {names}.")
    return specs


def _default_embedder() -> Any:
    from promptkd.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


def run_experiment(
    selectors: Sequence[Any],
    tasks: Sequence[Any],
    k_values: Sequence[int] = (4, 8),
    seeds: Sequence[int] = (0, 1, 2),
    n_test: int | None = 300,
    lm: Any = None,
    results_path: str | os.PathLike[str] | None = None,
    *,
    lm_name: str | None = None,
    data_root: str | os.PathLike[str] | None = None,
    embedder: Any = None,
    embedders: Mapping[str, Any] | None = None,
    calibrate: bool = False,
    length_normalize: bool = False,
    batch_size: int = 8,
    chunk: int = 32,
    sample_seed: int = 0,
    pool_size: int | None = None,
    pool_seed: int | None = None,
    max_chars: int | None = None,
    show_progress_bar: bool | None = None,
) -> ExperimentResult:
    """Run every (task, selector, k, seed) on a seeded sample of test items.

    Parameters
    ----------
    selectors
        Selector names (see :func:`standard_selectors`) or :class:`SelectorSpec` objects.
    tasks
        Task names under ``data_root``, task folders, or ``(train, test)`` :class:`Task` pairs.
    k_values, seeds
        Demo counts and seeds (seeds apply to seeded selectors only).
    n_test
        Test items per task (a fixed sample drawn with ``sample_seed``), None for all.
    lm
        A :class:`~promptkd.probes.LoadedLM`, a ``(model, tokenizer)`` pair, or
        None for the default model.
    results_path
        JSONL results file; rows already present are skipped (resume), new rows
        are appended and flushed as they are scored.
    lm_name
        Name stored in rows (default: the LM's name; ``+cc`` is appended when calibrating).
    embedder, embedders
        Embedder of the default pool (default: the sentence-transformers
        MiniLM), and extra named embedders for specs with ``embedder=<name>``.
    calibrate, length_normalize, batch_size
        Passed to :class:`~promptkd.evaluation.ICLClassifier`.
    chunk
        Items selected, then scored, per step (also the flush granularity).
    pool_size
        Subsample the train split to this many demos, None for all.
    pool_seed
        Seed of that subsample (one "pool draw"; default ``sample_seed``). Rows
        record it, so several draws share one results file.
    max_chars
        Truncate task texts to this many characters.

    Returns
    -------
    ExperimentResult
        Every row of the results file that matches this grid's LM, plus this run's.

    Examples
    --------
    >>> from promptkd.evaluation.scoring import _toy_lm
    >>> from promptkd.embeddings import HashingEmbedder
    >>> from promptkd.rendering import PromptTemplate
    >>> tr = Task("toy", "train", ("good", "bad", "great", "awful"), None, ("pos", "neg", "pos", "neg"),
    ...           ("neg", "pos"), PromptTemplate())
    >>> res = run_experiment(["zero-shot", "topk"], [(tr, tr)], k_values=[2], seeds=[0], n_test=None,
    ...                      lm=_toy_lm(), embedder=HashingEmbedder())
    >>> sorted({r["selector"] for r in res.rows}), len(res.rows)
    (['topk', 'zero-shot'], 8)
    """
    specs = _resolve_specs(selectors)
    k_values = [check_int(k, "k_values[]", minimum=1) for k in k_values]
    seeds = [check_int(s, "seeds[]", minimum=0) for s in seeds]
    if n_test is not None:
        check_int(n_test, "n_test", minimum=1)
    check_int(chunk, "chunk", minimum=1)
    pool_seed = sample_seed if pool_seed is None else check_int(pool_seed, "pool_seed", minimum=0)
    pairs = _resolve_tasks(tasks, data_root, max_chars, pool_size, pool_seed)
    emb_map: dict[str, Any] = dict(embedders or {})
    emb_map.setdefault("default", embedder if embedder is not None else None)
    for s in specs:
        if s.factory is not None and s.embedder not in emb_map:
            raise InvalidInputError(f"selector {s.name!r} needs embedder {s.embedder!r}; pass embedders={{...}}.")

    if lm is None:
        from promptkd.probes import load_lm

        lm = load_lm()
    path = Path(results_path) if results_path is not None else None
    existing = read_rows(path) if path is not None else []
    done = {_row_key(r) for r in existing}
    new_rows: list[dict[str, Any]] = []
    fh = None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _drop_partial_line(path)
        fh = path.open("a", encoding="utf-8")

    # work plan: count items to do for the progress bar
    plan: list[tuple[tuple[Task, Task], list[int], SelectorSpec, Any, int]] = []
    lm_key = None
    for train, test in pairs:
        items = test.sample_indices(n_test, seed=sample_seed)
        for spec in specs:
            ks: list[Any] = [0] if spec.factory is None else ([spec.fixed_k] if spec.fixed_k is not None else k_values)
            for k in ks:
                for seed in seeds if spec.seeded else [0]:
                    plan.append(((train, test), items, spec, k, seed))

    bar = None
    try:
        classifier_cache: dict[str, ICLClassifier] = {}
        task_state: dict[str, dict[str, Any]] = {}
        for (train, test), items, spec, k, seed in plan:
            clf = classifier_cache.get(train.name)
            if clf is None:
                clf = ICLClassifier(
                    lm,
                    template=train.template,
                    labels=train.label_words,
                    calibrate=calibrate,
                    length_normalize=length_normalize,
                    batch_size=batch_size,
                    show_progress_bar=False,
                )
                classifier_cache.clear()  # one task at a time keeps memory flat
                classifier_cache[train.name] = clf
            if lm_key is None:
                lm_key = (lm_name or clf.lm_name) + ("+cc" if calibrate else "")
                total = sum(
                    1
                    for (tr, _te), its, sp, kk, sd in plan
                    for i in its
                    if (lm_key, tr.name, sp.name, str(kk), sd, pool_seed, i) not in done
                )
                if default_show_progress_bar(show_progress_bar) and total:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=total, desc="ICL grid", unit="item")
            todo = [i for i in items if (lm_key, train.name, spec.name, str(k), seed, pool_seed, i) not in done]
            if not todo:
                continue
            state = task_state.setdefault(train.name, {})
            if spec.factory is None:
                selector = None
                pool = None
            else:
                pool = _pool_for(state, train, spec.embedder, emb_map)
                t0 = time.perf_counter()
                selector = spec.factory(k, seed).fit(pool)
                logger.info(
                    "fitted %s (k=%s, seed=%s) on %s in %.2fs", spec.name, k, seed, train.name, time.perf_counter() - t0
                )
            for start in range(0, len(todo), chunk):
                part = todo[start : start + chunk]
                rows = _run_chunk(clf, selector, spec, k, seed, state, train, test, items, part, pool, lm_key)
                for r in rows:
                    r["pool_seed"] = pool_seed
                for r in rows:
                    done.add(_row_key(r))
                    if fh is not None:
                        fh.write(json.dumps(r) + "\n")
                new_rows.extend(rows)
                if fh is not None:
                    fh.flush()
                if bar is not None:
                    bar.update(len(part))
    finally:
        if fh is not None:
            fh.close()
        if bar is not None:
            bar.close()
    keep = {(lm_key, tr.name) for tr, _ in pairs}
    rows = [r for r in existing if (r["lm"], r["task"]) in keep] + new_rows
    return ExperimentResult(rows, path)


def _pool_for(state: dict[str, Any], train: Task, key: str, emb_map: Mapping[str, Any]) -> Any:
    pools = state.setdefault("pools", {})
    if key not in pools:
        emb = emb_map.get(key)
        if emb is None:
            emb = _default_embedder()
        pool = train.pool(emb)
        t0 = time.perf_counter()
        pool.embed(show_progress_bar=False)
        logger.info("embedded %d %s demos with %s in %.1fs", len(pool), train.name, key, time.perf_counter() - t0)
        pools[key] = pool
        X = np.asarray(pool.embeddings, dtype=np.float32)
        state.setdefault("bandwidth", {})[key] = median_bandwidth(X, seed=0)
    return pools[key]


def _test_embeddings(state: dict[str, Any], key: str, pool: Any, test: Task, items: list[int]) -> np.ndarray:
    cache = state.setdefault("test_emb", {})
    if key not in cache:
        inputs = test.inputs
        cache[key] = np.asarray(pool.encode_texts([inputs[i] for i in items]), dtype=np.float32)
    return cache[key]


def _neighbours(state: dict[str, Any], key: str, E: np.ndarray, n: int) -> np.ndarray:
    cache = state.setdefault("nbrs", {})
    if (key, n) not in cache:
        U = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
        S = U @ U.T
        np.fill_diagonal(S, -np.inf)
        n_eff = min(n, max(len(E) - 1, 0))
        cache[(key, n)] = np.argsort(-S, axis=1, kind="stable")[:, :n_eff] if n_eff else np.zeros((len(E), 0), int)
    return cache[(key, n)]


def _run_chunk(
    clf: ICLClassifier,
    selector: Any,
    spec: SelectorSpec,
    k: Any,
    seed: int,
    state: dict[str, Any],
    train: Task,
    test: Task,
    items: list[int],
    part: list[int],
    pool: Any,
    lm_key: str,
) -> list[dict[str, Any]]:
    inputs = test.inputs
    position = {item: j for j, item in enumerate(items)}
    selections: list[Any] = []
    times: list[float] = []
    E = None
    if selector is not None:
        E = _test_embeddings(state, spec.embedder, pool, test, items)
        nbrs = _neighbours(state, spec.embedder, E, spec.neighbours) if spec.neighbours else None
        for item in part:
            t0 = time.perf_counter()
            if nbrs is not None:
                ctx = E[nbrs[position[item]]]
                sel = selector.select(inputs[item], context=ctx, query_weight=spec.query_weight)
            else:
                sel = selector.select(inputs[item])
            times.append(time.perf_counter() - t0)
            selections.append(sel)
    else:
        selections = [None] * len(part)
        times = [0.0] * len(part)
    demo_lists = [list(s.demos) if s is not None else [] for s in selections]
    prompts = [clf.template.render(d, inputs[i]) for d, i in zip(demo_lists, part, strict=True)]
    scores = clf.scores_batch([(d, inputs[i]) for d, i in zip(demo_lists, part, strict=True)])
    rows = []
    bw = state.get("bandwidth", {}).get(spec.embedder)
    for j, item in enumerate(part):
        sel = selections[j]
        pred = clf.labels[int(np.argmax(scores[j]))]
        label = test.labels[item]
        vote = majority_vote([d.output for d in demo_lists[j]], list(sel.scores) if sel is not None else None)
        mmd = None
        if sel is not None and E is not None and len(sel.indices):
            X = np.asarray(pool.embeddings[list(sel.indices)], dtype=np.float32)
            mmd = float(mmd2_fn(X, E[position[item]][None, :], kernel="rbf", bandwidth=bw))
        rows.append(
            {
                "lm": lm_key,
                "task": train.name,
                "selector": spec.name,
                "k": k,
                "seed": seed,
                "item": int(item),
                "label": label,
                "pred": pred,
                "correct": bool(pred == label),
                "vote": vote,
                "vote_correct": None if vote is None else bool(vote == label),
                "n_demos": len(demo_lists[j]),
                "tokens": clf.count_tokens(prompts[j]),
                "mmd2": mmd,
                "select_s": round(times[j], 6),
                "demo_rows": [int(d.metadata.get("row", -1)) for d in demo_lists[j]],  # prompt order
                "demo_labels": [d.output for d in demo_lists[j]],
                "scores": [round(float(x), 4) for x in scores[j]],
            }
        )
    return rows
