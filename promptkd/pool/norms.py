"""Row norms stored beside a saved pool's embeddings: read them back, or add them to an older pool.

A selector needs every embedding's norm at fit; a pool saved with its norms
(``norms-<token>.npy``, written by :func:`~promptkd.pool.persistence.write_pool_dir`)
spares that pass over the embeddings. The norms are computed by
:func:`~promptkd.pool.persistence.row_norms`, exactly as a selector would.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from promptkd.exceptions import PoolFormatError
from promptkd.pool.persistence import (
    _npy_header,
    checked_member,
    commit_manifest,
    dir_lock,
    read_manifest,
    read_pool_embeddings,
    row_norms,
    write_norms_file,
)

__all__ = ["read_pool_norms", "write_pool_norms"]


def write_pool_norms(path: str | os.PathLike[str]) -> Path:
    """Store the row norms of a saved pool's embeddings, for pools saved before norms were stored.

    Writes ``norms-<token>.npy`` beside the embeddings and records it in the
    manifest (atomically); the other files, a saved index included, are kept.
    Returns the norms file.

    Examples
    --------
    >>> import tempfile
    >>> from promptkd import DemoPool
    >>> d = DemoPool([{"input": "a", "output": "x"}], embeddings=np.ones((1, 4))).save(tempfile.mkdtemp() + "/p")
    >>> write_pool_norms(d).name.startswith("norms-")
    True
    """
    root = Path(path)
    with dir_lock(root):
        manifest = read_manifest(root)
        emb = manifest["files"].get("embeddings")
        if emb is None:
            raise PoolFormatError(f"{root}: the pool has no embeddings, so no row norms to store.")
        embeddings = read_pool_embeddings(root, manifest, mmap=True, verify=False, check_finite=False)
        name = f"norms-{secrets.token_hex(6)}.npy"
        manifest["files"]["norms"] = write_norms_file(root, name, embeddings, emb["name"])  # type: ignore[arg-type]
        commit_manifest(root, manifest)
    return root / name


def read_pool_norms(
    root: Path, manifest: dict[str, Any], embeddings: np.ndarray | None, *, verify: bool
) -> np.ndarray | None:
    """The stored row norms of a pool's embeddings (memory-mapped), or None when the pool has none.

    The structure is always checked (the file belongs to the manifest's
    embeddings file, float32, one norm per demo); ``verify`` also checks the
    checksum and that every stored norm equals the one recomputed from the
    embeddings.
    """
    spec = manifest["files"].get("norms")
    emb = manifest["files"].get("embeddings")
    if spec is None or embeddings is None or emb is None:
        return None
    if spec.get("embeddings") != emb.get("name"):
        return None  # written for other embeddings: not these pool's norms
    path = checked_member(root, spec, "norms", verify=verify)
    shape, dtype, _fortran, offset = _npy_header(path)
    if dtype != np.dtype(np.float32) or shape != (manifest["count"],) or path.stat().st_size != offset + 4 * shape[0]:
        raise PoolFormatError(f"{path}: not {manifest['count']} float32 row norms; the pool is damaged.")
    try:
        norms = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise PoolFormatError(f"{path}: not a readable .npy array ({err}).") from err
    if verify and not np.array_equal(norms, row_norms(embeddings)):
        raise PoolFormatError(f"{path}: the stored row norms differ from the embeddings'; the pool is damaged.")
    return norms
