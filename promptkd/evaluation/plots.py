"""Plots of an experiment grid (matplotlib, imported lazily, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promptkd._optional import require

__all__ = ["plot_accuracy_by_selector", "plot_accuracy_vs_mmd"]


def _plt() -> Any:
    mpl = require("matplotlib", "plot")
    mpl.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_by_selector(cells: Sequence[Any], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Grouped bars: accuracy per selector (with 95% item-bootstrap CI) for every task and k.

    ``cells`` are :class:`~promptkd.evaluation.experiment.CellSummary` objects.

    Examples
    --------
    >>> import tempfile
    >>> from promptkd.evaluation.experiment import ExperimentResult
    >>> rows = [{"lm": "m", "task": "t", "selector": "s", "k": 4, "seed": 0, "item": 0, "correct": True,
    ...          "vote_correct": None, "tokens": 5, "n_demos": 4, "select_s": 0.0, "mmd2": 0.2}]
    >>> plot_accuracy_by_selector(ExperimentResult(rows).summary(), tempfile.mkdtemp() + "/a.png").suffix
    '.png'
    """
    plt = _plt()
    groups = sorted({(c.task, c.k) for c in cells if c.k != "0"} or {(c.task, c.k) for c in cells})
    selectors = sorted({c.selector for c in cells})
    index = {(c.task, c.k, c.selector): c for c in cells}
    zero = {c.task: c for c in cells if c.k == "0"}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) * max(1, len(selectors)) / 3), 4.2))
    width = 0.8 / max(1, len(selectors))
    cmap = plt.get_cmap("tab20")
    for s_i, sel in enumerate(selectors):
        xs, ys, lo, hi = [], [], [], []
        for g_i, (task, k) in enumerate(groups):
            c = index.get((task, k, sel)) or (zero.get(task) if sel == "zero-shot" else None)
            if c is None:
                continue
            xs.append(g_i + (s_i - (len(selectors) - 1) / 2) * width)
            ys.append(100 * c.accuracy)
            lo.append(100 * (c.accuracy - c.ci_low))
            hi.append(100 * (c.ci_high - c.accuracy))
        if xs:
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=1.5, label=sel, color=cmap(s_i % 20), linewidth=0)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{t}\nk={k}" for t, k in groups], fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title or "accuracy by selector (95% CI over items)")
    ax.legend(fontsize=7, ncol=min(6, len(selectors)), loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def plot_accuracy_vs_mmd(cells: Sequence[Any], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Scatter of cell accuracy against the mean MMD2 of the chosen demos to the query, one colour per task.

    Examples
    --------
    >>> import tempfile
    >>> from promptkd.evaluation.experiment import ExperimentResult
    >>> rows = [{"lm": "m", "task": "t", "selector": s, "k": 4, "seed": 0, "item": 0, "correct": s == "a",
    ...          "vote_correct": None, "tokens": 5, "n_demos": 4, "select_s": 0.0, "mmd2": m}
    ...         for s, m in [("a", 0.1), ("b", 0.5)]]
    >>> plot_accuracy_vs_mmd(ExperimentResult(rows).summary(), tempfile.mkdtemp() + "/m.png").suffix
    '.png'
    """
    plt = _plt()
    pts = [c for c in cells if c.mmd2 is not None]
    tasks = sorted({c.task for c in pts})
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    cmap = plt.get_cmap("tab10")
    for t_i, task in enumerate(tasks):
        sub = [c for c in pts if c.task == task]
        x = np.array([c.mmd2 for c in sub])
        y = np.array([100 * c.accuracy for c in sub])
        ax.scatter(x, y, s=18, color=cmap(t_i % 10), label=task)
        for c in sub:
            ax.annotate(f"{c.selector}@{c.k}", (c.mmd2, 100 * c.accuracy), fontsize=5, alpha=0.7)
    ax.set_xlabel("mean MMD2(chosen demos, query)  [RBF, median bandwidth]")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "accuracy vs MMD of the chosen set")
    if tasks:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out
