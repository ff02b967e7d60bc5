"""Shared helpers for the example scripts (not part of the promptkd API)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
DEMOS = HERE / "data" / "demos.jsonl"


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every example shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--smoke",
        action="store_true",
        help="Quick run for CI: the hashing embedder instead of MiniLM and the smallest settings.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "promptkd-examples",
        help="Folder for files the example writes (plots, saved pools).",
    )
    return p


def embedder(smoke: bool):
    """The default sentence-transformers model (offline MiniLM), or the hashing embedder in --smoke mode."""
    from promptkd.embeddings import HashingEmbedder, SentenceTransformerEmbedder

    return HashingEmbedder(dim=256) if smoke else SentenceTransformerEmbedder()
