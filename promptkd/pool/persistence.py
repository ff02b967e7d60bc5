"""Saving and loading pools as a directory, atomically and without pickle.

Layout of a saved pool directory::

    manifest.json            format, schema version, count, embedder id and dim, file checksums
    demos-<token>.jsonl      one demo record per line (schema 1), or
    demos-<token>.arrow      an Arrow IPC file, one column per demo field (schema 2, see
                             :mod:`promptkd.pool.columnar`)
    embeddings-<token>.npy   float32/float16 array (optional)
    index-<token>.faiss      a saved candidate index with its parameters (optional)

The manifest is the commit point: data files are written under fresh names and
flushed first, then ``manifest.json`` is replaced with one atomic ``os.replace``.
A crash at any moment leaves either the old manifest (pointing at the old, intact
files) or the new one; files no manifest refers to are removed on the next save.
Concurrent saves to one directory are serialised with an advisory lock file
(``.lock``, POSIX ``flock``), so one save's clean-up never removes another's files.
Readers never need the lock: a reader that races a save retries with the new
manifest.

Loading never unpickles anything: the manifest and demos are JSON, embeddings are
read with ``np.load(..., allow_pickle=False)`` after their ``.npy`` header has been
checked against the manifest and the file size, and every file name in the
manifest must be a plain name inside the pool directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from promptkd.exceptions import PoolFormatError

__all__ = ["FORMAT", "SCHEMA_VERSION", "read_manifest", "read_pool_dir", "write_pool_dir"]

FORMAT = "promptkd.pool"
SCHEMA_VERSION = 1  # the JSONL layout that DemoPool.save writes by default
ARROW_SCHEMA_VERSION = 2  # the columnar layout (DemoPool.save(..., layout="arrow"))
MAX_SCHEMA_VERSION = ARROW_SCHEMA_VERSION
MANIFEST = "manifest.json"
LOCK = ".lock"
_OWN_PREFIXES = ("demos-", "embeddings-", "norms-", "index-", ".manifest-")
NORMS_BLOCK = 65536  # embedding rows read at a time when computing row norms

T = TypeVar("T")


@contextlib.contextmanager
def dir_lock(root: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``root/.lock`` for the duration of a save."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: no cross-process lock
        yield
        return
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def sha256_file(path: Path) -> str:
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


def prepare_pool_dir(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` may receive a pool (new, empty, or a saved pool) and create it."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise PoolFormatError(f"cannot save a pool to {root}: it exists and is not a directory; choose another path.")
    if root.is_dir() and not (root / MANIFEST).exists():
        foreign = [e.name for e in root.iterdir() if e.name != LOCK and not e.name.startswith(_OWN_PREFIXES)]
        if foreign:
            raise PoolFormatError(
                f"cannot save a pool to {root}: the directory is not empty and holds no {MANIFEST} "
                f"(found {sorted(foreign)[:3]}); choose an empty or new directory."
            )
    root.mkdir(parents=True, exist_ok=True)
    return root


def write_embeddings_file(root: Path, name: str, embeddings: np.ndarray) -> dict[str, Any]:
    """Write ``embeddings`` as ``root/name`` (``.npy``, flushed) and return its manifest entry."""
    with open(root / name, "wb") as fh:
        np.save(fh, np.ascontiguousarray(embeddings), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return {
        "name": name,
        "sha256": sha256_file(root / name),
        "dtype": str(embeddings.dtype),
        "shape": list(embeddings.shape),
    }


def row_norms(embeddings: np.ndarray) -> np.ndarray:
    """(N,) float32 Euclidean norm of every row, read block by block (a memory map is not loaded at once).

    Each row's norm is computed in float32 exactly as a selector computes it at
    fit, so stored and recomputed norms are equal bit for bit.

    Examples
    --------
    >>> row_norms(np.array([[3.0, 4.0], [0.0, 1.0]], dtype=np.float16)).tolist()
    [5.0, 1.0]
    """
    n = int(embeddings.shape[0])
    parts = [
        np.linalg.norm(np.asarray(embeddings[s : s + NORMS_BLOCK]).astype(np.float32), axis=1)
        for s in range(0, n, NORMS_BLOCK)
    ]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)


def write_norms_file(root: Path, name: str, embeddings: np.ndarray, embeddings_name: str) -> dict[str, Any]:
    """Write the row norms of ``embeddings`` as ``root/name`` (``.npy``, flushed); return the manifest entry."""
    with open(root / name, "wb") as fh:
        np.save(fh, row_norms(embeddings), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return {"name": name, "sha256": sha256_file(root / name), "embeddings": embeddings_name}


def write_vector_files(
    root: Path, token: str, embeddings: np.ndarray | None
) -> tuple[dict[str, dict[str, Any]], int | None]:
    """Write the embeddings and their row norms (when there are embeddings) under ``token``.

    Returns their manifest entries (``{"embeddings": ..., "norms": ...}``, or
    ``{}``) and the embedding dimension (None without embeddings).
    """
    if embeddings is None:
        return {}, None
    emb = write_embeddings_file(root, f"embeddings-{token}.npy", embeddings)
    norms = write_norms_file(root, f"norms-{token}.npy", embeddings, emb["name"])
    return {"embeddings": emb, "norms": norms}, int(embeddings.shape[1])


def commit_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Replace ``root/manifest.json`` atomically, then remove data files no longer referenced.

    Call with the directory lock held and every data file already flushed.
    """
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=root)
    if hasattr(os, "fchmod"):  # mkstemp makes 0600 files; a saved pool follows the umask like its data files
        os.fchmod(fd, umask_file_mode())
    with os.fdopen(fd, "wb") as fh:
        fh.write(json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(root)  # the data files' directory entries are durable before the commit
    os.replace(tmp, root / MANIFEST)  # the commit point
    _fsync_dir(root)
    keep = {MANIFEST} | {f["name"] for f in manifest["files"].values() if isinstance(f, dict)}
    for entry in root.iterdir():
        if entry.name not in keep and entry.name.startswith(_OWN_PREFIXES):
            with contextlib.suppress(OSError):  # best-effort clean-up of stale files
                entry.unlink()


def write_pool_dir(
    path: str | os.PathLike[str],
    records: list[dict[str, Any]],
    embeddings: np.ndarray | None,
    embedder_id: str | None,
) -> Path:
    """Write a pool directory atomically; see the module docstring for the protocol."""
    root = prepare_pool_dir(path)
    lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    data = lines.encode("utf-8")
    with dir_lock(root):
        token = secrets.token_hex(6)
        demos_name = f"demos-{token}.jsonl"
        _write_file(root / demos_name, data)
        vectors, dim = write_vector_files(root, token, embeddings)
        files = {"demos": {"name": demos_name, "sha256": hashlib.sha256(data).hexdigest()}, **vectors}
        manifest = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "count": len(records),
            "embedder": {"id": embedder_id, "dim": dim},
            "files": files,
        }
        commit_manifest(root, manifest)
    return root


def umask_file_mode() -> int:
    """The mode a plain new file gets under the current umask (read without changing it for long)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def safe_member(root: Path, name: Any, what: str) -> Path:
    """Resolve a file name from the manifest; it must be a plain file directly inside ``root``."""
    if (
        not isinstance(name, str)
        or not name
        or "/" in name
        or "\\" in name
        or name in (".", "..")
        or "\x00" in name
        or os.path.isabs(name)
    ):
        raise PoolFormatError(
            f"{root / MANIFEST}: the {what} file name {name!r} is not a plain file name in the pool directory."
        )
    member = root / name
    try:
        inside = member.resolve().parent == root.resolve()
        exists = member.is_file()
    except (OSError, ValueError) as err:
        raise PoolFormatError(f"{root / MANIFEST}: the {what} file {name!r} cannot be opened ({err}).") from err
    if not inside:
        raise PoolFormatError(f"{root / MANIFEST}: the {what} file {name!r} points outside the pool directory.")
    if not exists:
        raise PoolFormatError(f"{member}: the {what} file named by the manifest is missing; the pool is damaged.")
    return member


def _parse_json(raw: str, where: str) -> Any:
    try:
        return json.loads(raw)
    except RecursionError as err:
        raise PoolFormatError(f"{where}: JSON nested too deeply; the file is damaged.") from err
    except ValueError as err:  # JSONDecodeError, and over-long integer literals
        raise PoolFormatError(f"{where}: invalid JSON ({err}); the file is damaged.") from err


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Read and check a ``.npy`` header without loading data: (shape, dtype, fortran_order, data offset)."""
    from numpy.lib import format as npy_format

    try:
        with open(path, "rb") as fh:
            version = npy_format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = npy_format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            offset = fh.tell()
    except Exception as err:  # numpy's header parser can raise many kinds on hostile bytes (even TokenError)
        raise PoolFormatError(f"{path}: not a readable .npy array ({type(err).__name__}: {err}).") from err
    return tuple(int(x) for x in shape), np.dtype(dtype), bool(fortran), offset


def read_embeddings(emb_path: Path, count: int, dim: Any, mmap: bool, check_finite: bool = True) -> np.ndarray:
    shape, dtype, _fortran, offset = _npy_header(emb_path)
    if dtype.hasobject or dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise PoolFormatError(f"{emb_path}: dtype {dtype} is not float32 or float16; re-save the pool.")
    if len(shape) != 2 or shape[0] != count:
        raise PoolFormatError(f"{emb_path}: shape {shape} does not match the manifest's count {count}.")
    if dim is not None and shape[1] != dim:
        raise PoolFormatError(f"{emb_path}: dimension {shape[1]} differs from the manifest's {dim}.")
    expected = offset + shape[0] * shape[1] * dtype.itemsize
    try:
        size = emb_path.stat().st_size
    except OSError as err:
        raise PoolFormatError(f"{emb_path}: cannot be read ({err}).") from err
    if size != expected:
        raise PoolFormatError(f"{emb_path}: file has {size} bytes but its header implies {expected}; it was truncated.")
    try:
        embeddings = np.load(emb_path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise PoolFormatError(f"{emb_path}: not a readable .npy array ({err}).") from err
    for start in range(0, embeddings.shape[0] if check_finite else 0, 65536):  # chunked: a map is not read at once
        if not np.all(np.isfinite(embeddings[start : start + 65536])):
            raise PoolFormatError(f"{emb_path}: contains NaN or infinite values; re-embed and re-save the pool.")
    return embeddings


def read_pool_dir(
    path: str | os.PathLike[str], *, mmap: bool = False, verify: bool = True, retries: int = 5
) -> tuple[list[dict[str, Any]], np.ndarray | None, str | None]:
    """Read and validate a pool directory; return (records, embeddings, embedder id).

    Every problem raises :class:`~promptkd.exceptions.PoolFormatError` naming the
    file. When a concurrent save replaces the manifest while it is being read,
    the read is retried (up to ``retries`` times) against the new manifest.
    """
    return with_retries(Path(path), lambda root: _read_pool_dir_once(root, mmap=mmap, verify=verify), retries)


def with_retries(root: Path, read: Callable[[Path], T], retries: int = 5) -> T:
    """Run ``read(root)``, retrying when a concurrent save replaced the manifest meanwhile."""
    for attempt in range(retries + 1):
        before = _manifest_stamp(root)
        try:
            return read(root)
        except PoolFormatError:
            if attempt == retries or before is None or _manifest_stamp(root) == before:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _manifest_stamp(root: Path) -> tuple[int, int, int] | None:
    try:
        st = (root / MANIFEST).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def read_manifest(root: Path) -> dict[str, Any]:
    """Read ``root/manifest.json`` and check the entries every layout shares."""
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise PoolFormatError(f"{root} is not a directory; DemoPool.load expects a directory written by DemoPool.save.")
    if not manifest_path.is_file():
        raise PoolFormatError(f"{manifest_path} is missing: {root} is not a saved promptkd pool.")
    try:
        text = manifest_path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise PoolFormatError(f"{manifest_path} is not valid UTF-8 ({err}); the pool is damaged.") from err
    except OSError as err:
        raise PoolFormatError(f"{manifest_path} cannot be read ({err}).") from err
    manifest = _parse_json(text, str(manifest_path))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PoolFormatError(f"{manifest_path} is not a promptkd pool manifest (format is not {FORMAT!r}).")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PoolFormatError(f"{manifest_path}: schema_version is missing or not a positive integer.")
    if version > MAX_SCHEMA_VERSION:
        raise PoolFormatError(
            f"{manifest_path}: schema version {version} is newer than this promptkd supports "
            f"({MAX_SCHEMA_VERSION}); upgrade promptkd to read it."
        )
    files = manifest.get("files")
    count = manifest.get("count")
    embedder = manifest.get("embedder") or {}
    if (
        not isinstance(files, dict)
        or not isinstance(files.get("demos"), dict)
        or not isinstance(count, int)
        or isinstance(count, bool)
        or count < 0
    ):
        raise PoolFormatError(f"{manifest_path}: the 'files' or 'count' entries are missing or malformed.")
    if not isinstance(embedder, dict):
        raise PoolFormatError(f"{manifest_path}: the 'embedder' entry is malformed.")
    dim = embedder.get("dim")
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < 1):
        raise PoolFormatError(f"{manifest_path}: the embedder dimension {dim!r} is not a positive integer.")
    for key in ("embeddings", "index"):
        if files.get(key) is not None and not isinstance(files[key], dict):
            raise PoolFormatError(f"{manifest_path}: the {key} entry is malformed.")
    manifest["embedder"] = embedder
    return manifest


def manifest_embedder_id(manifest: dict[str, Any]) -> str | None:
    """The embedder id a manifest records (None when absent or not a string)."""
    emb_id = manifest["embedder"].get("id")
    return emb_id if isinstance(emb_id, str) else None


def checked_member(root: Path, spec: dict[str, Any], what: str, *, verify: bool) -> Path:
    """The path of the file a manifest entry names, inside ``root``; its checksum is checked when ``verify``."""
    path = safe_member(root, spec.get("name"), what)
    if verify:
        try:
            digest = sha256_file(path)
        except OSError as err:
            raise PoolFormatError(f"{path}: cannot be read ({err}).") from err
        if digest != spec.get("sha256"):
            raise PoolFormatError(f"{path}: checksum mismatch; the file was truncated or modified.")
    return path


def read_pool_embeddings(
    root: Path, manifest: dict[str, Any], *, mmap: bool, verify: bool, check_finite: bool = True
) -> np.ndarray | None:
    """The embeddings a manifest names (checksum checked when ``verify``), or None."""
    spec = manifest["files"].get("embeddings")
    if spec is None:
        return None
    emb_path = checked_member(root, spec, "embeddings", verify=verify)
    return read_embeddings(emb_path, manifest["count"], manifest["embedder"].get("dim"), mmap, check_finite)


def read_jsonl_records(root: Path, manifest: dict[str, Any], *, verify: bool) -> list[dict[str, Any]]:
    """The demo records of a JSONL-layout (schema 1) pool."""
    files = manifest["files"]
    count = manifest["count"]
    demos_path = safe_member(root, files["demos"].get("name"), "demos")
    try:
        raw = demos_path.read_bytes()
    except OSError as err:
        raise PoolFormatError(f"{demos_path}: cannot be read ({err}).") from err
    if verify and hashlib.sha256(raw).hexdigest() != files["demos"].get("sha256"):
        raise PoolFormatError(f"{demos_path}: checksum mismatch; the file was truncated or modified.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PoolFormatError(f"{demos_path}: not valid UTF-8 ({err}).") from err
    records: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        rec = _parse_json(line, f"{demos_path}:{lineno}")
        if not isinstance(rec, dict):
            raise PoolFormatError(f"{demos_path}:{lineno}: expected a JSON object, got {type(rec).__name__}.")
        records.append(rec)
    if len(records) != count:
        raise PoolFormatError(f"{demos_path}: holds {len(records)} demos but the manifest says {count}.")
    return records


def _read_pool_dir_once(
    root: Path, *, mmap: bool, verify: bool
) -> tuple[list[dict[str, Any]], np.ndarray | None, str | None]:
    manifest = read_manifest(root)
    if manifest["schema_version"] >= ARROW_SCHEMA_VERSION:
        from promptkd.pool.columnar import read_arrow_records

        records = read_arrow_records(root, manifest, verify=verify)
    else:
        records = read_jsonl_records(root, manifest, verify=verify)
    embeddings = read_pool_embeddings(root, manifest, mmap=mmap, verify=verify)
    return records, embeddings, manifest_embedder_id(manifest)
