"""A faiss candidate index saved beside a pool, with its parameters and checksum.

:func:`build_pool_index` builds a :class:`~promptkd.selection.CandidateIndex`
over a saved pool's embeddings and writes it into the pool directory as
``index-<token>.faiss``; the manifest records its parameters (kind, graph
degree, lists, seed, dtype, rows, dimension), the embeddings file it was built
from, its size and SHA-256, and is replaced atomically like every save.

When a selector is fitted on a pool whose embeddings are memory-mapped from
that directory (:meth:`DemoPool.open <promptkd.pool.DemoPool.open>`, or
``DemoPool.load(path, mmap=True)``) and asks for an index with the same
parameters, :class:`~promptkd.selection.CandidateIndex` loads the saved file
instead of building one. Saving the pool again (new embeddings file) drops the
index entry, so a stale index is never used.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError, PoolFormatError
from promptkd.pool.persistence import (
    MANIFEST,
    commit_manifest,
    dir_lock,
    read_manifest,
    read_pool_embeddings,
    safe_member,
    sha256_file,
)

__all__ = ["build_pool_index", "find_saved_index", "save_pool_index"]


def build_pool_index(
    path: str | os.PathLike[str],
    kind: str = "auto",
    *,
    hnsw_m: int = 32,
    nlist: int | None = None,
    seed: int = 0,
    storage: str = "auto",
) -> Any:
    """Build a candidate index over a saved pool's embeddings and save it beside them.

    Parameters
    ----------
    path
        A saved, embedded pool directory.
    kind
        ``"auto"`` (HNSW), ``"hnsw"``, ``"ivf"`` or ``"exact"``, as the
        selector's ``index`` setting.
    hnsw_m, nlist, seed
        Build parameters (:class:`~promptkd.selection.CandidateIndex`); the
        selector's defaults are ``hnsw_m=32``, ``nlist=None`` and its ``seed``.
    storage
        How an HNSW graph keeps its vectors: ``"auto"`` or ``"fp16"`` (half
        precision, half the bytes of a float32 copy) or ``"flat"`` (float32).

    Returns
    -------
    CandidateIndex
        The built index (already saved).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from promptkd import DemoPool
    >>> E = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    >>> d = DemoPool([{"input": f"t{i}", "output": "x"} for i in range(50)], embeddings=E).save(tempfile.mkdtemp() + "/p")
    >>> build_pool_index(d, "exact").n
    50
    >>> find_saved_index(DemoPool.open(d).embeddings)[1]["params"]["kind"]
    'exact'
    """
    from promptkd.pool.ann import CandidateIndex

    root = Path(path)
    manifest = read_manifest(root)
    embeddings = read_pool_embeddings(root, manifest, mmap=True, verify=False, check_finite=False)
    if embeddings is None:
        raise InvalidInputError(f"{root}: the pool has no embeddings; embed it (pool.embed()) and save it first.")
    index = CandidateIndex(embeddings, kind, hnsw_m=hnsw_m, nlist=nlist, seed=seed, storage=storage, use_saved=False)
    save_pool_index(root, index, manifest["files"]["embeddings"]["name"])
    return index


def save_pool_index(path: str | os.PathLike[str], index: Any, embeddings_name: str) -> Path:
    """Write ``index`` into the pool directory and record it in the manifest (atomically).

    ``embeddings_name`` is the embeddings file the index was built from; if the
    pool was saved again meanwhile, nothing is written.
    """
    root = Path(path)
    with dir_lock(root):
        manifest = read_manifest(root)
        spec = manifest["files"].get("embeddings")
        if spec is None or spec.get("name") != embeddings_name:
            raise PoolFormatError(f"{root}: the pool was saved again while its index was built; build the index again.")
        name = f"index-{secrets.token_hex(6)}.faiss"
        index.save(root / name)
        manifest["files"]["index"] = {
            "name": name,
            "sha256": sha256_file(root / name),
            "size": (root / name).stat().st_size,
            "embeddings": embeddings_name,
            "params": index.params,
        }
        commit_manifest(root, manifest)
    return root / name


def _memmap_file(embeddings: np.ndarray) -> Path | None:
    """The file a whole-file memory map behind ``embeddings`` reads, if there is one."""
    arr: Any = embeddings
    while arr is not None:
        if isinstance(arr, np.memmap) and getattr(arr, "filename", None):
            same_start = arr.__array_interface__["data"][0] == embeddings.__array_interface__["data"][0]
            if same_start and arr.shape == embeddings.shape and arr.dtype == embeddings.dtype:
                return Path(arr.filename)
            return None
        arr = getattr(arr, "base", None)
    return None


def find_saved_index(
    embeddings: np.ndarray, *, verify: bool = False, strict: bool = False
) -> tuple[Path, dict[str, Any]] | None:
    """(index file, manifest entry) of an index saved for these memory-mapped pool embeddings, or None.

    The entry is returned only when the manifest beside the mapped file names
    that file as the pool's embeddings and the index as built from it, and the
    index file has the recorded size (and, with ``verify``, checksum). A
    damaged index is logged and skipped, or raised with ``strict``.
    """
    source = _memmap_file(embeddings)
    if source is None or not (source.parent / MANIFEST).is_file():
        return None
    root = source.parent
    try:
        manifest = read_manifest(root)
        entry = manifest["files"].get("index")
        emb = manifest["files"].get("embeddings") or {}
        if entry is None or emb.get("name") != source.name or entry.get("embeddings") != source.name:
            return None
        file = safe_member(root, entry.get("name"), "index")
        if file.stat().st_size != entry.get("size"):
            raise PoolFormatError(f"{file}: size differs from the manifest's; the index file is damaged.")
        if verify and sha256_file(file) != entry.get("sha256"):
            raise PoolFormatError(f"{file}: checksum mismatch; the index file was truncated or modified.")
    except (OSError, PoolFormatError) as err:
        if strict:
            raise
        import logging

        logging.getLogger("promptkd").warning("not using the saved index in %s: %s", root, err)
        return None
    if not isinstance(entry.get("params"), dict):
        return None
    return file, entry
