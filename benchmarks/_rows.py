"""Raw benchmark rows as committed files: the compressed copy of a results file and the manifest beside it."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def packed(results: Path) -> Path:
    """The committed, compressed copy of a results file (``rows.jsonl`` -> ``rows.jsonl.gz``)."""
    return results.with_name(results.name + ".gz")


def pack(results: Path) -> Path:
    """Write ``rows.jsonl.gz`` from the working ``rows.jsonl`` (byte-stable: no timestamp in the header)."""
    out = packed(results)
    out.write_bytes(gzip.compress(results.read_bytes(), compresslevel=9, mtime=0))
    return out


def rows_source(results: Path) -> Path:
    """The working file when there is one, else the committed compressed copy."""
    return results if results.is_file() else packed(results)


def git_commit() -> str:
    """``HEAD``'s commit, with ``+local-changes`` when promptkd/ or benchmarks/ differ from it."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(REPO), "status", "--porcelain", "promptkd", "benchmarks"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+local-changes" if dirty else "")


def load_manifest(results: Path) -> dict[str, Any]:
    """The ``manifest.json`` beside a results file (``{"runs": []}`` when there is none)."""
    path = results.with_name("manifest.json")
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"runs": []}


def save_manifest(results: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest beside a results file."""
    path = results.with_name("manifest.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
