"""The budget on the command line: calibrate on evaluation rows, save the constants, select with them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from promptkd.cli import app

ROOT = Path(__file__).resolve().parents[1]
DEMOS = ROOT / "examples" / "data" / "demos.jsonl"


def _rows(path: Path) -> None:
    """Evaluation rows whose error falls with k and rises with MMD: error = 0.1 + 0.6/sqrt(k) + 0.5*mmd."""
    rng = np.random.default_rng(0)
    rows = []
    for task in ("t1", "t2"):
        for k in (1, 2, 4, 8):
            for sel, mmd in (("a", 0.2), ("b", 0.5)):
                p_err = 0.1 + 0.6 / np.sqrt(k) + 0.5 * mmd
                for item in range(400):
                    wrong = bool(rng.random() < p_err)
                    rows.append({"lm": "toy", "task": task, "selector": sel, "k": k, "seed": 0, "item": item,
                                 "correct": not wrong, "n_demos": k, "mmd2": mmd**2, "tokens": 10 * k,
                                 "select_s": 0.0})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_calibrate_save_constants_and_select_with_them(tmp_path: Path) -> None:
    runner = CliRunner()
    results, constants = tmp_path / "rows.jsonl", tmp_path / "constants.json"
    _rows(results)
    query = ["-q", "Which river flows through Cairo?", "--embedder", "hashing", "--pool", str(DEMOS)]
    out = runner.invoke(
        app, ["bound", *query, "--calibrate", str(results), "--save-constants", str(constants), "--k-max", "8",
              "--permutations", "0"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "calibrated on 16 cells" in out.output and "t1" in out.output and "R^2" in out.output
    fitted = json.loads(constants.read_text())
    assert abs(fitted["A"] - 0.6) < 0.15 and abs(fitted["C"] - 0.5) < 0.5
    assert "(calibrated constants)" in out.output  # the budget below used the fitted constants
    sel = runner.invoke(
        app, ["select", *query, "--where", "task=question_type", "--k", "auto", "--k-max", "6", "--token-cost",
              "0.002", "--constants", str(constants), "--json"],
    )  # fmt: skip
    assert sel.exit_code == 0, sel.output
    row = json.loads(sel.output.strip().splitlines()[-1])
    assert 1 <= len(row["indices"]) <= 6 and row["budget"]["constants"] == "calibrated"
    bad = runner.invoke(app, ["select", *query, "--k", "4", "--constants", str(constants)])
    assert bad.exit_code != 0 and "--k auto" in bad.output
