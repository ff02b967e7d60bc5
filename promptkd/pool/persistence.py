"""Saving and loading pools as a directory, atomically and without pickle.

Layout of a saved pool directory::

    manifest.json            format, schema version, count, embedder id and dim, file checksums
    demos-<token>.jsonl      one demo record per line
    embeddings-<token>.npy   float32/float16 array (optional)

The manifest is the commit point: data files are written under fresh names and
flushed first, then ``manifest.json`` is replaced with one atomic ``os.replace``.
A crash at any moment leaves either the old manifest (pointing at the old, intact
files) or the new one; files no manifest refers to are removed on the next save.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from promptkd.exceptions import PoolFormatError

__all__ = ["FORMAT", "SCHEMA_VERSION", "read_pool_dir", "write_pool_dir"]

FORMAT = "promptkd.pool"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_pool_dir(
    path: str | os.PathLike[str],
    records: list[dict[str, Any]],
    embeddings: np.ndarray | None,
    embedder_id: str | None,
) -> Path:
    """Write a pool directory atomically; see the module docstring for the protocol."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise PoolFormatError(f"cannot save a pool to {root}: it exists and is not a directory; choose another path.")
    if root.is_dir() and (root / MANIFEST).exists() is False and any(root.iterdir()):
        raise PoolFormatError(
            f"cannot save a pool to {root}: the directory is not empty and holds no {MANIFEST}; "
            "choose an empty or new directory."
        )
    root.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    demos_name = f"demos-{token}.jsonl"
    lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    _write_file(root / demos_name, lines.encode("utf-8"))
    files = {"demos": {"name": demos_name, "sha256": _sha256(root / demos_name)}}
    dim = None
    if embeddings is not None:
        emb_name = f"embeddings-{token}.npy"
        with open(root / emb_name, "wb") as fh:
            np.save(fh, np.ascontiguousarray(embeddings), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        files["embeddings"] = {
            "name": emb_name,
            "sha256": _sha256(root / emb_name),
            "dtype": str(embeddings.dtype),
            "shape": list(embeddings.shape),
        }
        dim = int(embeddings.shape[1])
    manifest = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "count": len(records),
        "embedder": {"id": embedder_id, "dim": dim},
        "files": files,
    }
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=root)
    with os.fdopen(fd, "wb") as fh:
        fh.write(json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / MANIFEST)  # the commit point
    _fsync_dir(root)
    keep = {MANIFEST} | {f["name"] for f in files.values()}
    for entry in root.iterdir():
        if entry.name not in keep and (
            entry.name.startswith(("demos-", "embeddings-")) or entry.name.startswith(".manifest-")
        ):
            with contextlib.suppress(OSError):  # best-effort clean-up of stale files
                entry.unlink()
    return root


def _safe_member(root: Path, name: Any, what: str) -> Path:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise PoolFormatError(
            f"{root / MANIFEST}: the {what} file name {name!r} is not a plain file name in the pool directory."
        )
    member = root / name
    if member.resolve().parent != root.resolve():
        raise PoolFormatError(f"{root / MANIFEST}: the {what} file {name!r} points outside the pool directory.")
    if not member.is_file():
        raise PoolFormatError(f"{member}: the {what} file named by the manifest is missing; the pool is damaged.")
    return member


def read_pool_dir(
    path: str | os.PathLike[str], *, mmap: bool = False, verify: bool = True
) -> tuple[list[dict[str, Any]], np.ndarray | None, str | None]:
    """Read and validate a pool directory; return (records, embeddings, embedder id)."""
    root = Path(path)
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise PoolFormatError(f"{root} is not a directory; DemoPool.load expects a directory written by DemoPool.save.")
    if not manifest_path.is_file():
        raise PoolFormatError(f"{manifest_path} is missing: {root} is not a saved promptkd pool.")
    try:
        manifest = json.loads(manifest_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PoolFormatError(f"{manifest_path} is not valid UTF-8 JSON ({err}); the pool is damaged.") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PoolFormatError(f"{manifest_path} is not a promptkd pool manifest (format is not {FORMAT!r}).")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PoolFormatError(f"{manifest_path}: schema_version is missing or not an integer.")
    if version > SCHEMA_VERSION:
        raise PoolFormatError(
            f"{manifest_path}: schema version {version} is newer than this promptkd supports "
            f"({SCHEMA_VERSION}); upgrade promptkd to read it."
        )
    files = manifest.get("files")
    count = manifest.get("count")
    embedder = manifest.get("embedder") or {}
    if not isinstance(files, dict) or not isinstance(files.get("demos"), dict) or not isinstance(count, int):
        raise PoolFormatError(f"{manifest_path}: the 'files' or 'count' entries are missing or malformed.")
    if not isinstance(embedder, dict):
        raise PoolFormatError(f"{manifest_path}: the 'embedder' entry is malformed.")

    demos_path = _safe_member(root, files["demos"].get("name"), "demos")
    raw = demos_path.read_bytes()
    if verify and hashlib.sha256(raw).hexdigest() != files["demos"].get("sha256"):
        raise PoolFormatError(f"{demos_path}: checksum mismatch; the file was truncated or modified.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PoolFormatError(f"{demos_path}: not valid UTF-8 ({err}).") from err
    records: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise PoolFormatError(f"{demos_path}:{lineno}: invalid JSON ({err}).") from err
        if not isinstance(rec, dict):
            raise PoolFormatError(f"{demos_path}:{lineno}: expected a JSON object, got {type(rec).__name__}.")
        records.append(rec)
    if len(records) != count:
        raise PoolFormatError(f"{demos_path}: holds {len(records)} demos but the manifest says {count}.")

    embeddings = None
    if files.get("embeddings") is not None:
        spec = files["embeddings"]
        if not isinstance(spec, dict):
            raise PoolFormatError(f"{manifest_path}: the embeddings entry is malformed.")
        emb_path = _safe_member(root, spec.get("name"), "embeddings")
        if verify and _sha256(emb_path) != spec.get("sha256"):
            raise PoolFormatError(f"{emb_path}: checksum mismatch; the file was truncated or modified.")
        try:
            embeddings = np.load(emb_path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise PoolFormatError(f"{emb_path}: not a readable .npy array ({err}).") from err
        if embeddings.ndim != 2 or embeddings.shape[0] != count:
            raise PoolFormatError(f"{emb_path}: shape {embeddings.shape} does not match the manifest's count {count}.")
        if embeddings.dtype not in (np.float32, np.float16):
            raise PoolFormatError(f"{emb_path}: dtype {embeddings.dtype} is not float32 or float16.")
        dim = embedder.get("dim")
        if dim is not None and embeddings.shape[1] != dim:
            raise PoolFormatError(f"{emb_path}: dimension {embeddings.shape[1]} differs from the manifest's {dim}.")
    emb_id = embedder.get("id")
    return records, embeddings, emb_id if isinstance(emb_id, str) else None
