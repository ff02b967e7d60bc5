"""Run the reliability tests and write their counts into docs/reliability.md.

The tests append one JSON line per counted event (bad input tried, crash point tried,
fuzz example run, ...) to the file named by ``PROMPTKD_RELIABILITY_COUNTS``; this
script runs them, sums the events, prints a table and replaces the block between
``<!-- counts:start -->`` and ``<!-- counts:end -->`` in docs/reliability.md.

Usage::

    .venv/bin/python benchmarks/reliability_report.py            # run and update the doc
    .venv/bin/python benchmarks/reliability_report.py --no-write # run and print only
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
TEST_FILES = [
    "tests/test_bad_inputs.py",
    "tests/test_persistence.py",
    "tests/test_fuzz.py",
    "tests/test_reliability.py",
]
LABELS = {
    "bad_inputs": "bad inputs tried (all public entry points, incl. CLI)",
    "cli_subprocess_runs": "of these, `promptkd select` runs as a subprocess",
    "cli_in_process_runs": "of these, CLI runs in process (every command)",
    "crash_points": "crash points tried (SIGKILL during `save`)",
    "damaged_files": "truncated / bit-flipped files checked",
    "path_escapes": "manifest file names trying to leave the pool directory",
    "fuzz_examples": "fuzz examples run (hypothesis)",
    "concurrent_selections_checked": "selections checked while other threads `add`",
    "concurrent_saves": "concurrent saves into one directory",
    "determinism_runs": "processes compared for identical selections",
    "determinism_selectors": "selectors checked for select == select_batch",
    "source_files_scanned": "package source files scanned for unsafe loading",
}
START, END = "<!-- counts:start -->", "<!-- counts:end -->"


def run(extra: list[str]) -> tuple[dict[str, int], dict[str, int], float]:
    with tempfile.TemporaryDirectory() as tmp:
        counts_file = Path(tmp) / "counts.jsonl"
        junit = Path(tmp) / "junit.xml"
        env = dict(os.environ, PROMPTKD_RELIABILITY_COUNTS=str(counts_file), HF_HUB_OFFLINE="1")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *TEST_FILES]
        t0 = time.perf_counter()
        proc = subprocess.run([*cmd, *extra], cwd=ROOT, env=env)
        seconds = time.perf_counter() - t0
        counts: collections.Counter[str] = collections.Counter()
        if counts_file.exists():
            for line in counts_file.read_text(encoding="utf-8").splitlines():
                event = json.loads(line)
                counts[event["kind"]] += int(event["n"])
        suite = ET.parse(junit).getroot()
        suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
        assert suite is not None
        tests = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        summary = {"tests": tests, "failed": failed, "skipped or xfail": skipped, "exit code": proc.returncode}
    return dict(counts), summary, seconds


def render(counts: dict[str, int], summary: dict[str, int], seconds: float) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        f"Last run: {now}, `.venv/bin/python benchmarks/reliability_report.py` "
        f"({', '.join(TEST_FILES)}), {seconds:.0f} s wall on this machine.",
        "",
        "| what | count |",
        "|---|---:|",
    ]
    for key, label in LABELS.items():
        lines.append(f"| {label} | {counts.get(key, 0)} |")
    for key in sorted(set(counts) - set(LABELS)):
        lines.append(f"| {key} | {counts[key]} |")
    lines += [
        "",
        "pytest: " + ", ".join(f"{k} {v}" for k, v in summary.items()),
        END,
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print the counts without updating the doc")
    args, extra = parser.parse_known_args()
    counts, summary, seconds = run(extra)
    block = render(counts, summary, seconds)
    print(block)
    if not args.no_write:
        text = DOC.read_text(encoding="utf-8")
        pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), flags=re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"{DOC} has no {START} ... {END} block to update")
        DOC.write_text(pattern.sub(lambda _: block, text), encoding="utf-8")
        print(f"updated {DOC.relative_to(ROOT)}")
    return 0 if summary["failed"] == 0 and summary["exit code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
