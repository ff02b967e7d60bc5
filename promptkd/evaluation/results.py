"""Results of an experiment grid: reading rows, per-cell summaries, paired comparisons and plots."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError, PersistenceError

__all__ = ["CellSummary", "ExperimentResult", "PairedComparison", "majority_vote", "read_rows"]

logger = logging.getLogger("promptkd")

ZERO_SHOT = "zero-shot"


def majority_vote(labels: Sequence[str], weights: Sequence[float] | None = None) -> str | None:
    """Most common label; ties go to the label with the larger summed weight (similarity).

    Examples
    --------
    >>> majority_vote(["a", "b", "b"])
    'b'
    >>> majority_vote(["a", "b"], [0.9, 0.1])
    'a'
    >>> majority_vote([]) is None
    True
    """
    if not labels:
        return None
    counts = Counter(labels)
    w: dict[str, float] = {}
    for i, lab in enumerate(labels):
        w[lab] = w.get(lab, 0.0) + (float(weights[i]) if weights is not None else 0.0)
    return max(counts, key=lambda lab: (counts[lab], w[lab]))


def _row_key(row: Mapping[str, Any]) -> tuple[str, str, str, str, int, int, int]:
    return (
        str(row["lm"]),
        str(row["task"]),
        str(row["selector"]),
        str(row["k"]),
        int(row["seed"]),
        int(row.get("pool_seed", 0)),
        int(row["item"]),
    )


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a results file (JSONL, or gzip-compressed JSONL ending in ``.gz``).

    A truncated last line (an interrupted write) is ignored.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.jsonl"
    >>> _ = p.write_text('{"a": 1}\\n{"a": ')
    >>> read_rows(p)
    [{'a': 1}]
    """
    p = Path(path)
    if not p.exists():
        return []
    rows = []
    if p.suffix == ".gz":
        import gzip

        lines = gzip.decompress(p.read_bytes()).decode("utf-8").splitlines()
    else:
        with p.open(encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            if n == len(lines) - 1:
                logger.warning("ignoring a truncated last line in %s", p)
                continue
            raise PersistenceError(f"{p}:{n + 1} is not valid JSON ({err.msg}); remove that line to resume.") from err
    return rows


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class CellSummary:
    """Accuracy of one (lm, task, selector, k) cell.

    ``accuracy`` is the mean over seeds; ``seed_std``/``seed_min``/``seed_max``
    its spread over seeds; ``ci_low``/``ci_high`` a 95% bootstrap interval over
    test items (items resampled, seeds averaged per item).
    """

    lm: str
    task: str
    selector: str
    k: str
    n_items: int
    n_seeds: int
    accuracy: float
    seed_std: float
    seed_min: float
    seed_max: float
    ci_low: float
    ci_high: float
    vote_accuracy: float | None
    tokens: float
    n_demos: float
    select_ms: float
    mmd2: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class PairedComparison:
    """Paired bootstrap of ``a`` minus ``b`` accuracy, macro-averaged over tasks (points = percent)."""

    a: str
    b: str
    k: str
    lm: str
    diff: float
    ci_low: float
    ci_high: float
    n_items: int
    n_tasks: int
    per_task: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return dict(self.__dict__)


def _bootstrap_ci(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[float, float]:
    if values.size == 0:
        return float("nan"), float("nan")
    idx = rng.integers(0, values.size, size=(n_boot, values.size))
    means = values[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _per_item(rows: Iterable[Mapping[str, Any]], field_name: str = "correct") -> dict[int, float]:
    acc: dict[int, list[float]] = {}
    for r in rows:
        v = r.get(field_name)
        if v is None:
            continue
        acc.setdefault(int(r["item"]), []).append(float(v))
    return {i: float(np.mean(v)) for i, v in acc.items()}


@dataclass
class ExperimentResult:
    """All rows of a run plus summaries, comparisons and plots.

    Examples
    --------
    >>> rows = [{"lm": "m", "task": "t", "selector": "s", "k": 4, "seed": 0, "item": i, "correct": i % 2 == 0,
    ...          "vote_correct": True, "tokens": 10, "n_demos": 4, "select_s": 0.001, "mmd2": 0.1} for i in range(4)]
    >>> ExperimentResult(rows).summary()[0].accuracy
    0.5
    """

    rows: list[dict[str, Any]]
    results_path: Path | None = None

    def cells(self) -> dict[tuple[str, str, str, str], list[dict[str, Any]]]:
        """Rows grouped by (lm, task, selector, k)."""
        out: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
        for r in self.rows:
            out.setdefault((str(r["lm"]), str(r["task"]), str(r["selector"]), str(r["k"])), []).append(r)
        return out

    def summary(self, *, n_boot: int = 1000, seed: int = 0) -> list[CellSummary]:
        """One :class:`CellSummary` per (lm, task, selector, k), sorted."""
        rng = np.random.default_rng(seed)
        out = []
        for (lm, task, sel, k), rows in sorted(self.cells().items()):
            by_seed: dict[int, list[float]] = {}
            for r in rows:
                by_seed.setdefault(int(r["seed"]), []).append(float(r["correct"]))
            seed_acc = np.array([np.mean(v) for v in by_seed.values()])
            items = np.array(list(_per_item(rows).values()))
            lo, hi = _bootstrap_ci(items, n_boot, rng)
            votes = _per_item(rows, "vote_correct")
            mmds = [float(r["mmd2"]) for r in rows if r.get("mmd2") is not None]
            out.append(
                CellSummary(
                    lm=lm,
                    task=task,
                    selector=sel,
                    k=k,
                    n_items=len(items),
                    n_seeds=len(by_seed),
                    accuracy=float(seed_acc.mean()),
                    seed_std=float(seed_acc.std(ddof=1)) if len(seed_acc) > 1 else 0.0,
                    seed_min=float(seed_acc.min()),
                    seed_max=float(seed_acc.max()),
                    ci_low=lo,
                    ci_high=hi,
                    vote_accuracy=float(np.mean(list(votes.values()))) if votes else None,
                    tokens=float(np.mean([r["tokens"] for r in rows])),
                    n_demos=float(np.mean([r["n_demos"] for r in rows])),
                    select_ms=1000.0 * float(np.mean([r["select_s"] for r in rows])),
                    mmd2=float(np.mean(mmds)) if mmds else None,
                )
            )
        return out

    def paired(
        self,
        a: str,
        b: str,
        *,
        k: Any,
        lm: str | None = None,
        k_b: Any = None,
        tasks: Sequence[str] | None = None,
        n_boot: int = 2000,
        seed: int = 0,
        metric: str = "correct",
        scale: float = 100.0,
    ) -> PairedComparison:
        """Paired bootstrap of metric(``a``) - metric(``b``), macro-averaged over tasks.

        Items are resampled within each task (stratified); per item the metric
        is first averaged over seeds and pool draws. ``k_b`` defaults to ``k``
        (``0`` for zero-shot). ``metric`` names a per-row field (default
        ``"correct"``: accuracy; e.g. ``"brier"`` after
        :func:`~promptkd.evaluation.metrics.with_item_metrics`); differences are
        multiplied by ``scale`` (100: points).
        """
        lm = lm if lm is not None else self._only_lm()
        k_b = (0 if b == ZERO_SHOT else k) if k_b is None else k_b
        k_a = 0 if a == ZERO_SHOT else k
        cells = self.cells()
        diffs: dict[str, np.ndarray] = {}
        all_tasks = sorted({t for (m, t, _, _) in cells if m == lm})
        for task in tasks or all_tasks:
            ra = _per_item(cells.get((lm, task, a, str(k_a)), []), metric)
            rb = _per_item(cells.get((lm, task, b, str(k_b)), []), metric)
            common = sorted(set(ra) & set(rb))
            if common:
                diffs[task] = np.array([ra[i] - rb[i] for i in common])
        if not diffs:
            raise InvalidInputError(f"no common items for {a!r} and {b!r} at k={k} with lm={lm!r}.")
        rng = np.random.default_rng(seed)
        boots = np.zeros(n_boot)
        for d in diffs.values():
            idx = rng.integers(0, d.size, size=(n_boot, d.size))
            boots += d[idx].mean(axis=1)
        boots /= len(diffs)
        point = float(np.mean([d.mean() for d in diffs.values()]))
        return PairedComparison(
            a=a,
            b=b,
            k=str(k),
            lm=lm,
            diff=scale * point,
            ci_low=scale * float(np.percentile(boots, 2.5)),
            ci_high=scale * float(np.percentile(boots, 97.5)),
            n_items=int(sum(d.size for d in diffs.values())),
            n_tasks=len(diffs),
            per_task={t: scale * float(d.mean()) for t, d in diffs.items()},
        )

    def _only_lm(self) -> str:
        lms = sorted({str(r["lm"]) for r in self.rows})
        if len(lms) != 1:
            raise InvalidInputError(f"the results hold several LMs {lms}; pass lm=.")
        return lms[0]

    def calibration_records(self, *, lm: str | None = None) -> list[dict[str, Any]]:
        """``{"k", "mmd", "error", ...}`` per (task, selector, k, seed) cell, for ``BoundEstimator.calibrate``.

        ``k`` is the mean number of demos, ``mmd`` the mean over items of
        ``sqrt(MMD2)`` between the chosen demos and the query, ``error`` is
        1 - accuracy. Zero-shot rows are left out.
        """
        groups: dict[tuple[str, str, str, str, int], list[dict[str, Any]]] = {}
        for r in self.rows:
            if r["selector"] == ZERO_SHOT or r.get("mmd2") is None or (lm is not None and r["lm"] != lm):
                continue
            groups.setdefault((r["lm"], r["task"], r["selector"], str(r["k"]), int(r["seed"])), []).append(r)
        out = []
        for (m, task, sel, _k, s), rows in sorted(groups.items()):
            out.append(
                {
                    "k": float(np.mean([r["n_demos"] for r in rows])),
                    "mmd": float(np.mean([np.sqrt(max(float(r["mmd2"]), 0.0)) for r in rows])),
                    "error": 1.0 - float(np.mean([float(r["correct"]) for r in rows])),
                    "lm": m,
                    "task": task,
                    "selector": sel,
                    "seed": s,
                    "n_items": len(rows),
                }
            )
        return out

    def mean_over_tasks(self, summary: Sequence[CellSummary] | None = None) -> dict[tuple[str, str, str], float]:
        """Mean accuracy over tasks per (lm, selector, k), only over tasks every such selector has."""
        summary = list(summary) if summary is not None else self.summary(n_boot=10)
        acc: dict[tuple[str, str, str], list[float]] = {}
        for c in summary:
            acc.setdefault((c.lm, c.selector, c.k), []).append(c.accuracy)
        return {key: float(np.mean(v)) for key, v in acc.items()}

    def to_markdown(self, summary: Sequence[CellSummary] | None = None) -> str:
        """The summary as a Markdown table (accuracy in %)."""
        summary = list(summary) if summary is not None else self.summary()
        head = (
            "| LM | task | selector | k | items | seeds | accuracy | seed range | 95% CI (items) | vote | "
            "tokens/prompt | demos | select ms | MMD2 |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        )
        lines = [head]
        for c in summary:
            vote = "" if c.vote_accuracy is None else f"{100 * c.vote_accuracy:.1f}"
            rng = f"{100 * c.seed_min:.1f}-{100 * c.seed_max:.1f}" if c.n_seeds > 1 else ""
            mmd = "" if c.mmd2 is None else f"{c.mmd2:.3f}"
            lines.append(
                f"| {c.lm} | {c.task} | {c.selector} | {c.k} | {c.n_items} | {c.n_seeds} | {100 * c.accuracy:.1f} | "
                f"{rng} | {100 * c.ci_low:.1f}-{100 * c.ci_high:.1f} | {vote} | {c.tokens:.0f} | {c.n_demos:.1f} | "
                f"{c.select_ms:.1f} | {mmd} |"
            )
        return "\n".join(lines)

    def plot(self, out_dir: str | os.PathLike[str], *, prefix: str = "quality") -> list[Path]:
        """Write the accuracy-by-selector and accuracy-vs-MMD plots; returns their paths."""
        from promptkd.evaluation.plots import plot_accuracy_by_selector, plot_accuracy_vs_mmd

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        summary = self.summary()
        paths = []
        for lm in sorted({c.lm for c in summary}):
            tag = lm.lower().replace("/", "-").replace(" ", "-")
            cells = [c for c in summary if c.lm == lm]
            paths.append(plot_accuracy_by_selector(cells, out / f"{prefix}_{tag}_accuracy.png", title=lm))
            paths.append(plot_accuracy_vs_mmd(cells, out / f"{prefix}_{tag}_mmd.png", title=lm))
        return paths


def _drop_partial_line(path: Path) -> None:
    """Remove an unterminated last line (an interrupted write) so appended rows start on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        fh.seek(cut)
        fh.truncate()
    logger.warning("dropped an unterminated last line of %s before resuming", path)
