"""Every bundled ICL dataset becomes a pool from the command line as it is, pairs included.

The datasets live outside the repository (``../shared/data/icl``); the test is skipped where they are absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promptkd.cli import app

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "icl"
TASKS = sorted(p.name for p in DATA.iterdir() if (p / "train.jsonl").is_file()) if DATA.is_dir() else []

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not TASKS, reason=f"no datasets under {DATA}")]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("task", TASKS)
def test_every_dataset_builds_a_pool_and_pair_text_reaches_the_prompt(task: str, tmp_path: Path) -> None:
    runner = CliRunner()
    train = DATA / task / "train.jsonl"
    rows = _lines(train)
    built = runner.invoke(
        app, ["pool", "build", str(train), str(tmp_path / "pool"), "--embedder", "hashing", "--no-cache",
              "--no-progress", "--json"],
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    assert "reading input from 'text', output from 'label'" in built.output  # the detected keys are said
    info = runner.invoke(app, ["pool", "info", str(tmp_path / "pool"), "--json"])
    assert info.exit_code == 0, info.output
    summary = json.loads(info.output.strip().splitlines()[-1])
    assert summary["n_demos"] == len(rows)
    test_rows = _lines(DATA / task / "test.jsonl")[:2]
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps(r) + "\n" for r in test_rows), encoding="utf-8")
    out = tmp_path / "selections.jsonl"
    sel = runner.invoke(
        app, ["select", "--pool", str(tmp_path / "pool"), "--queries-file", str(queries), "--out", str(out),
              "--k", "2", "--embedder", "hashing"],
    )  # fmt: skip
    assert sel.exit_code == 0, sel.output
    selections = _lines(out)
    assert len(selections) == 2
    if "text_pair" in rows[0]:
        by_text = {r["text"]: r["text_pair"] for r in rows}
        for s in selections:
            for d in s["demos"]:
                assert d["input_pair"] == by_text[d["input"]]
                assert d["input_pair"] in s["prompt"]  # the second text is rendered, not only stored
        assert all(r["text_pair"] in s["prompt"] for r, s in zip(test_rows, selections, strict=True))
