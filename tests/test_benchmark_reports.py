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
        "demo_rows": [], "demo_labels": (["b"] + ["a"] * (n_demos - 1)) if n_demos else [], "scores": [0.0, -1.0],
    }  # fmt: skip


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_quality_report_tables_paired_differences_and_targets(tmp_path):
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
    (tmp_path / "manifest.json").write_text(json.dumps({"label_words": {"t1": ["a", "b"], "t2": ["a", "b"]}}))
    quality.main(["--report-only", "--results", str(results), "--doc", str(doc), "--note", "NOTE TEXT"])
    text = doc.read_text(encoding="utf-8")
    scored_by = text.split("Commands that scored the rows")[1].split("```")[1]
    assert "NOTE TEXT" in text and "--note" not in scored_by and "--report-only" not in scored_by
    # every item's gold label is "a": the majority-class row is 100%; promptkd 70%, topk 60% at k=8
    assert "| majority class | 100.0 [100.0, 100.0] |" in text
    assert "| promptkd | 70.0 [" in text and "| topk | 60.0 [" in text
    # the label scores [0, -1] give p(a) = 0.731: Brier 2 * 0.269^2 = 0.145, log-loss 0.313; 7 of 8 demos
    # carry the gold label; the last one does, so 'copies last' is the accuracy
    assert "| promptkd | 70.0 [50.0, 90.0] | 0.145 | 0.313 | 100.0 | 87.5 | 70.0 | 400 | 1.0 |" in text
    assert "Not run on every task, so left out: mmr." in text
    assert "| topk | +10.0 [" in text  # paired promptkd - topk
    assert "The best of them here is topk; promptkd minus topk is +10.0 [" in text
    assert "**Target: on no task more than 3 points below TopK.** Tasks below that: none: **reached**." in text
    # both prompts end with an "a" demo (the gold label) on every item; the answers differ on item 6 of each task
    assert "| topk | 100.0 / 100.0 | 100.0 | 90.0 | 2 | 0 |" in text
    # k='auto' against fixed k: best fixed k is 8 (70%, 400 tokens); auto 70% with 300 tokens (-25%)
    assert "| k='auto' | 70.0 [50.0, 90.0] | 300 | 6.0 |" in text and "| k=4 | 50.0 [" in text
    assert "k='auto' minus the best fixed k (k=8): +0.0 [+0.0, +0.0] points on 20 paired items, with 25% fewer" in text
    # every query got k* = 6 < k_max = 8; the histogram counts them per task
    assert "Queries with k* < k_max: 20 of 20 (100%)" in text and "| t1 | 10 of 10 | 6 | 6: 10 |" in text
    # promptkd alone at k=4 gets no section of its own: it is a reference of the k='auto' section
    assert "## toy-lm, k=4" not in text and "## toy-lm, k=8" in text
    # the committed copy is read when the working file is gone
    quality.pack(results)
    results.unlink()
    doc.unlink()
    quality.main(["--report-only", "--results", str(results), "--doc", str(doc), "--note", "NOTE TEXT"])
    assert doc.read_text(encoding="utf-8") == text


def test_tuning_report_paired_against_the_default(tmp_path):
    tune = _load("tune_dev")
    rows = []
    for task in ("t1", "t2"):
        for i in range(10):
            rows.append(_row(task, "topk", 8, i, i < 5, 400, 8))
            rows.append(_row(task, "median-x2", 8, i, i < 7, 400, 8))
            rows.append(_row(task, "topk", 4, i, False, 200, 4))  # another k: left out of the k=8 table
    rows.append(_row("t1", "cover", 8, 0, True, 400, 8))  # on one task only
    results, doc = tmp_path / "t.jsonl", tmp_path / "tuning.md"
    _write(results, rows)
    tune.main(["--report-only", "--results", str(results), "--doc", str(doc), "--n-dev", "10"])
    text = doc.read_text(encoding="utf-8")
    assert "| topk | reference: the k nearest demos | 50.0 | 50.0 | 50.0 |  |" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("| median-x2 |"))
    assert "| 70.0 | 70.0 | 70.0 | +20.0 [" in line
    assert "| 100.0 |  | 100.0 (1 tasks) |" in text
    assert "one item moves a task's accuracy by 10.0 points" in text
    # no label words in a manifest: no proper-score section
    assert "proper scores on the same rows" not in text
    # each family's best variant among those scored on every task (cover ran on one)
    assert "| promptkd | 1 | median-x2 | 70.0 | 70.0 |" in text and "| TopK | 1 | topk | 50.0 | 50.0 |" in text


def test_tuning_report_ranks_variants_by_accuracy_and_by_the_proper_scores(tmp_path):
    tune = _load("tune_dev")
    rows = []
    for task in ("t1", "t2"):
        for sel, n_right in (("topk", 5), ("median-x2", 7), ("bm25", 6)):
            for i in range(10):
                row = _row(task, sel, 8, i, i < n_right, 400, 8)
                row["scores"] = [0.0, -1.0] if i < n_right else [-1.0, 0.0]  # the LM leans to its answer
                rows.append(row)
    results, doc = tmp_path / "t.jsonl", tmp_path / "tuning.md"
    _write(results, rows)
    (tmp_path / "manifest.json").write_text(
        json.dumps({"runs": [], "label_words": {"t1": ["a", "b"], "t2": ["a", "b"]}})
    )
    tune.main(["--report-only", "--results", str(results), "--doc", str(doc), "--n-dev", "10"])
    text = doc.read_text(encoding="utf-8")
    # a right answer has p(gold) = 0.731 (Brier 2 * 0.269^2 = 0.145), a wrong one 0.269 (Brier 1.069)
    assert "| median-x2 | 70.0 | 0.422 | 0.613 |" in text
    assert (
        "Spearman rank correlation of accuracy with the (negated) Brier score is 1.00, with the log-loss 1.00" in text
    )
    assert "The best by accuracy is median-x2; by Brier median-x2; by log-loss median-x2." in text
    assert "| BM25 | 1 | bm25 | 60.0 | 60.0 |" in text


@pytest.mark.parametrize(
    ("script", "results", "page"),
    [
        # the two large pages take 5-20 s to rebuild (bootstrap over every cell): in the full suite only
        pytest.param("quality", "quality", "quality.md", marks=pytest.mark.slow),
        pytest.param("tune_dev", "tune_dev", "tuning.md", marks=pytest.mark.slow),
        ("dev_screen", "dev_screen", "dev_screen.md"),
    ],
)
def test_every_benchmark_page_is_rebuilt_from_its_committed_rows(tmp_path, script, results, page):
    """Each page under docs/benchmarks/ that has raw rows is exactly what its script makes of the committed rows."""
    module = _load(script)
    committed = ROOT / "benchmarks" / "results" / results / "rows.jsonl.gz"
    assert committed.is_file(), f"the raw rows behind docs/benchmarks/{page} must be committed"
    # read the committed copy (never a local working file) and compare with the committed page
    (tmp_path / "rows.jsonl.gz").write_bytes(committed.read_bytes())
    (tmp_path / "manifest.json").write_bytes(committed.with_name("manifest.json").read_bytes())
    doc = tmp_path / page
    module.main(["--report-only", "--results", str(tmp_path / "rows.jsonl"), "--doc", str(doc)])
    assert doc.read_text(encoding="utf-8") == (ROOT / "docs" / "benchmarks" / page).read_text(encoding="utf-8")


def test_dev_screen_summary_counts_votes_and_last_labels():
    screen = _load("dev_screen")
    items = [
        {"item": 0, "gold": "a", "voted": "a", "last": "a", "gold_prec": 0.75},
        {"item": 1, "gold": "b", "voted": "a", "last": "b", "gold_prec": 0.25},
    ]
    summary = screen.summarise([{"task": "t", "selection": "topk", "vote": "dense", "neighbours": 16, "items": items}])
    cell = summary[("topk", "dense", 16)]["t"]
    assert cell == {"vote_acc": 50.0, "last_gold": 100.0, "gold_prec": 50.0, "n": 2}
