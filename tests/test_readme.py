"""The README's Python snippet runs as written (with the real default embedder)."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_snippet_runs(monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no python snippet"
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md", "exec"), {})
    printed = out.getvalue()
    assert "MMD2 to target" in printed
    assert "Sentiment:" in printed and printed.rstrip().endswith("Sentiment:")
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
