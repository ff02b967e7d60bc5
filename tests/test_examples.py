"""Run every quick example script in its --smoke mode so the examples never rot.

``attention_probe.py`` loads the real SmolLM2, so it is the slowest of them (tens of seconds).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(cmd: list[str], out: Path, extra_env: dict[str, str] | None = None) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.update(extra_env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_quickstart(tmp_path):
    out = run_example([sys.executable, str(EXAMPLES / "quickstart.py"), "--smoke", "--out", str(tmp_path)], tmp_path)
    assert "MMD2 selected" in out and "rendered prompt:" in out
    line = next(line for line in out.splitlines() if line.startswith("MMD2 selected"))
    parts = line.split()
    selected, random_mean = float(parts[2]), float(parts[7])
    assert selected < random_mean


def test_langchain_fewshot(tmp_path):
    out = run_example(
        [sys.executable, str(EXAMPLES / "langchain_fewshot.py"), "--smoke", "--out", str(tmp_path)], tmp_path
    )
    assert "Question: Which river flows through Cairo?\nType:" in out
    assert "reloaded selector gives the same examples: True" in out
    assert (tmp_path / "langchain_selector" / "promptkd_selector.json").is_file()


def test_dspy_program(tmp_path):
    out = run_example([sys.executable, str(EXAMPLES / "dspy_program.py"), "--smoke", "--out", str(tmp_path)], tmp_path)
    assert "shared demos (matched to the valset)" in out
    assert out.count("per-call demos:") == 2


def test_bound_budget(tmp_path):
    out = run_example([sys.executable, str(EXAMPLES / "bound_budget.py"), "--smoke", "--out", str(tmp_path)], tmp_path)
    assert "Budget: k* =" in out and "Bound for m=" in out and "Selector(k='auto') picked" in out
    assert (tmp_path / "bound_budget.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(shutil.which("bash") is None, reason="batch_cli.sh needs bash")
@pytest.mark.slow  # runs the example shell script: several CLI processes (about 3 s)
def test_batch_cli(tmp_path):
    env = {
        "PROMPTKD": f"{sys.executable} -m promptkd",
        "OUT": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    out = run_example(["bash", str(EXAMPLES / "batch_cli.sh"), "--smoke"], tmp_path, env)
    check_batch_cli_output(tmp_path, out)


@pytest.mark.skipif(shutil.which("bash") is None, reason="batch_cli.sh needs bash")
@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="runs as the README says, after make")
@pytest.mark.slow  # the README's shell script end to end, several CLI processes (about 3 s)
def test_batch_cli_as_the_readme_runs_it(tmp_path):
    """`bash examples/batch_cli.sh` with a PATH whose python lacks promptkd still finds the repository's .venv."""
    env = {"OUT": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = run_example(["bash", str(EXAMPLES / "batch_cli.sh"), "--smoke"], tmp_path, env)
    check_batch_cli_output(tmp_path, out)


def check_batch_cli_output(tmp_path: Path, out: str) -> None:
    rows = [json.loads(line) for line in (tmp_path / "selections.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(d["metadata"]["task"] == "question_type" for r in rows for d in r["demos"])
    assert "MMD2 promptkd" in out


@pytest.mark.slow
def test_attention_probe(tmp_path):
    out = run_example(
        [sys.executable, str(EXAMPLES / "attention_probe.py"), "--smoke", "--out", str(tmp_path)], tmp_path
    )
    assert "rank correlation of mass and influence" in out
    assert (tmp_path / "attention_probe.png").is_file()
