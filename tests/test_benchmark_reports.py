"""The report half of the quality and tuning benchmarks, on a synthetic results file (no LM)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _row(task: str, selector: str, k, item: int, correct: bool, tokens: int, n_demos: int) -> dict:
    return {
        "lm": "toy-lm", "task": task, "selector": selector, "k": k, "seed": 0, "item": item, "label": "a",
        "pred": "a" if correct else "b", "correct": correct, "vote": "a", "vote_correct": True,
        "n_demos": n_demos, "tokens": tokens, "mmd2": None if n_demos == 0 else 0.5, "select_s": 0.001,
        "demo_rows": [], "scores": [0.0, -1.0],
    }  # fmt: skip


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_quality_report_means_paired_and_auto_section(tmp_path):
    pytest.importorskip("matplotlib")
    quality = _load("quality")
    rows = []
    for task in ("t1", "t2"):
        for i in range(10):
            rows.append(_row(task, "zero-shot", 0, i, i < 3, 50, 0))
            rows.append(_row(task, "topk", 8, i, i < 6, 400, 8))
            rows.append(_row(task, "promptkd", 8, i, i < 7, 400, 8))
            rows.append(_row(task, "promptkd", 4, i, i < 5, 200, 4))
            rows.append(_row(task, "promptkd-auto", "auto", i, i < 7, 300, 6))
    rows.append(_row("t1", "mmr", 8, 0, True, 400, 8))  # on one task only
    results, doc = tmp_path / "r.jsonl", tmp_path / "docs" / "quality.md"
    _write(results, rows)
    quality.main(["--report-only", "--results", str(results), "--doc", str(doc), "--note", "NOTE TEXT"])
    text = doc.read_text(encoding="utf-8")
    assert "NOTE TEXT" in text and "--note" not in text and "--report-only" not in text
    assert "| promptkd | 70.0 | 100.0 | 400 |" in text  # k=8 mean over both tasks
    assert "| topk | 60.0 | 100.0 | 400 |" in text
    assert "Not on every task (left out of the means): mmr." in text
    assert "| topk | +10.0 |" in text  # paired promptkd - topk
    # k='auto' against fixed k: best fixed k is 8 (70%, 400 tokens); auto 70% with 300 tokens (-25%)
    assert "| **mean** | 50.0 / 200 | 70.0 / 400 | 70.0 / 300 / |" in text
    assert "k='auto': 70.0% (+0.0 points) with 300 tokens (-25%)" in text
    assert (doc.parent / "quality_toy-lm_accuracy.png").is_file()


def test_tuning_report_paired_against_the_default(tmp_path):
    tune = _load("tune_dev")
    rows = []
    for task in ("t1", "t2"):
        for i in range(10):
            rows.append(_row(task, "median-x1", 8, i, i < 5, 400, 8))
            rows.append(_row(task, "median-x2", 8, i, i < 7, 400, 8))
            rows.append(_row(task, "median-x1", 4, i, False, 200, 4))  # another k: left out of the k=8 table
    rows.append(_row("t1", "cover", 8, 0, True, 400, 8))  # on one task only
    results, doc = tmp_path / "t.jsonl", tmp_path / "tuning.md"
    _write(results, rows)
    tune.main(["--report-only", "--results", str(results), "--doc", str(doc), "--n-dev", "10"])
    text = doc.read_text(encoding="utf-8")
    assert (
        "| median-x1 | the defaults before tuning: median bandwidth, similarity order | 50.0 | 50.0 | 50.0 |  |" in text
    )
    line = next(ln for ln in text.splitlines() if ln.startswith("| median-x2 |"))
    assert "| 70.0 | 70.0 | 70.0 | +20.0 [" in line
    assert "| 100.0 |  | 100.0 (1 tasks) |" in text
    assert "one item moves a task's accuracy by 10.0 points" in text
