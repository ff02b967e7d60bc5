"""The code blocks of the documentation site run as written.

Every ```python block of a hand-written page under docs/ runs, the page's blocks in order and in one
namespace, in a temporary working folder that sees the repository's ``examples/`` and, at ``../shared``,
the datasets folder beside the repository. A ```bash block whose every command starts with ``promptkd``
runs too, through the CLI app, in the same folder. A block can opt out only with a reason, written as
``<!-- not-run: REASON -->`` on the line before it. Pages whose blocks load a real model say so in their
first lines with ``<!-- docs-test: slow (REASON) -->`` and are marked ``slow``.

Generated pages (benchmark reports) and the API reference are not run here: their generators and the
docstring tests cover them.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SHARED = ROOT.parent / "shared"

# pages written by scripts under benchmarks/ or examples/ (rebuilt by those, never edited by hand):
# every page under docs/benchmarks/ except its index, and these
GENERATED = {"budget_behaviour.md", "reliability.md", "theory_check.md"}


def is_generated(rel: str) -> bool:
    return rel in GENERATED or (rel.startswith("benchmarks/") and rel != "benchmarks/index.md")


FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", flags=re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not-run:(.*?)-->\s*$")
SLOW = re.compile(r"<!--\s*docs-test:\s*slow\b")


def guide_pages() -> list[str]:
    pages = []
    for path in sorted(DOCS.rglob("*.md")):
        rel = path.relative_to(DOCS).as_posix()
        if is_generated(rel) or rel.startswith("api/"):
            continue
        pages.append(rel)
    return pages


def blocks(text: str) -> list[tuple[str, str, str | None, int]]:
    """(language, code, not-run reason or None, line) for every fenced block of a page."""
    out = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.search(before)
        line = text.count("\n", 0, match.start()) + 1
        out.append((match.group(1), match.group(2), None if marker is None else marker.group(1).strip(), line))
    return out


def cli_commands(code: str) -> list[list[str]] | None:
    """The ``promptkd ...`` commands of a shell block, or None when it holds anything else."""
    joined = re.sub(r"\\\n\s*", " ", code)
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not lines or not all(ln.startswith("promptkd ") for ln in lines):
        return None
    return [shlex.split(ln, comments=True)[1:] for ln in lines]


def _params():
    params = []
    for rel in guide_pages():
        text = (DOCS / rel).read_text(encoding="utf-8")
        marks = [pytest.mark.slow] if SLOW.search(text) else []
        params.append(pytest.param(rel, marks=marks, id=rel))
    return params


def test_every_page_is_classified_and_every_opt_out_has_a_reason():
    pages = guide_pages()
    assert "index.md" in pages and "getting-started.md" in pages
    for rel in GENERATED:
        assert (DOCS / rel).is_file(), f"{rel} is listed as generated but does not exist"
    for rel in pages:
        for lang, _code, reason, line in blocks((DOCS / rel).read_text(encoding="utf-8")):
            if reason is not None:
                assert len(reason) >= 10, f"{rel}:{line}: a not-run block needs a reason, got {reason!r}"
            assert lang, f"{rel}:{line}: a fenced block needs a language (python, bash, text, ...)"


@pytest.fixture
def docs_cwd(tmp_path, monkeypatch):
    """A working folder laid out like the repository: ``examples/`` here, the datasets at ``../shared``."""
    work = tmp_path / "repo"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("PROMPTKD_PROGRESS", "0")
    return work


@pytest.mark.parametrize("page", _params())
def test_page_code_blocks_run(page: str, docs_cwd: Path) -> None:
    from typer.testing import CliRunner

    from promptkd.cli import app
    from promptkd.integrations import hooks

    text = (DOCS / page).read_text(encoding="utf-8")
    runnable = [
        b for b in blocks(text) if b[2] is None and (b[0] == "python" or (b[0] == "bash" and cli_commands(b[1])))
    ]
    if not runnable:
        return  # prose, tables and opted-out blocks only
    if "../shared/" in text and not (SHARED / "data" / "icl").is_dir():
        pytest.skip(f"{page} reads the datasets under {SHARED}, which are absent here")
    namespace: dict = {"__name__": "__docs__"}
    before = hooks.get_hooks()
    out = io.StringIO()
    try:
        for lang, code, _reason, line in runnable:
            where = f"docs/{page}:{line}"
            if lang == "python":
                with contextlib.redirect_stdout(out):
                    exec(compile(code, where, "exec"), namespace)
                continue
            for args in cli_commands(code):
                result = CliRunner().invoke(app, args, catch_exceptions=False)
                assert result.exit_code == 0, f"{where}: promptkd {shlex.join(args)}\n{result.output}"
                out.write(result.output)
    finally:
        hooks.clear_hooks()
        for hook in before:
            hooks.register_hook(hook)
        with contextlib.suppress(Exception):
            import matplotlib.pyplot as plt

            plt.close("all")
    assert os.getcwd() == str(docs_cwd)
