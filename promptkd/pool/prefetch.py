"""Ask the kernel to read parts of a saved pool's files before a memory map touches them.

A process that opens a saved pool whose files are not in the operating
system's page cache (after a reboot, after the kernel reclaimed them, on a
node that has not read them yet) pays a synchronous disk read for every page
it first touches through a memory map, one after the other. Three places
touch many pages at random on a fresh start:

* faiss maps a saved index with ``MADV_RANDOM`` (no read-ahead) and, on load,
  walks the whole HNSW graph: at 1M demos and ``M = 32`` a quarter of a GB
  in about 65,000 single-page reads (4 to 5 s on the disk the scale
  benchmark ran on);
* the median-heuristic bandwidth reads 1,000 rows of the embeddings at random
  positions, and a query's index hits are a few hundred more; with the
  kernel's default read-around each such fault reads the device's whole
  read-ahead window (8 MB on that disk) to use 1.5 KB of it (0.9 s for 256
  rows).

:func:`warm_range` and :func:`warm_rows` announce those bytes first
(``posix_fadvise(POSIX_FADV_WILLNEED)``, in pieces the kernel does not cut
short), so the reads are in flight together and the memory map then finds the
pages cached: 0.26 s for the graph, 20 ms for 256 rows. Where ``posix_fadvise``
is missing they read the bytes with ``os.pread`` instead (from several threads
for a range). Warming only reads, so it never changes a result; on a warm page
cache it costs a page-cache lookup per piece. It is best effort: a failure is
ignored and the memory map reads the pages itself.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["mapped_source", "warm_range", "warm_rows"]

_PIECE = 1 << 21  # bytes per announcement: the kernel reads at most its read-ahead window per call
_PAGE = 4096
_ADVISE = getattr(os, "posix_fadvise", None)
_WILLNEED = getattr(os, "POSIX_FADV_WILLNEED", None)


def _announce(fd: int, spans: list[tuple[int, int]]) -> int:
    """WILLNEED for each (offset, length) span, or a plain read of it; the bytes asked for."""
    done = 0
    for offset, length in spans:
        if _ADVISE is not None and _WILLNEED is not None:
            _ADVISE(fd, offset, length, _WILLNEED)
            done += length
        else:
            done += len(os.pread(fd, length, offset))
    return done


def _split(spans: list[tuple[int, int]], parts: int) -> list[list[tuple[int, int]]]:
    """``spans`` dealt into ``parts`` lists (threads for plain reads; one list when the kernel reads)."""
    if _ADVISE is not None and _WILLNEED is not None:
        return [spans]
    return [spans[i::parts] for i in range(max(1, min(parts, len(spans))))]


def _warm(path: str | os.PathLike[str], spans: list[tuple[int, int]], threads: int) -> int:
    if not spans or (_ADVISE is None and not hasattr(os, "pread")):
        return 0
    groups = _split(spans, threads)
    done = [0] * len(groups)

    def job(i: int) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            done[i] = _announce(fd, groups[i])
        except OSError:
            pass
        finally:
            os.close(fd)

    workers = [threading.Thread(target=job, args=(i,), daemon=True) for i in range(1, len(groups))]
    for w in workers:
        w.start()
    job(0)
    for w in workers:
        w.join()
    return sum(done)


def warm_range(path: str | os.PathLike[str], start: int = 0, stop: int | None = None, *, threads: int = 4) -> int:
    """Have the kernel read bytes ``[start, stop)`` of a file into its page cache; return the bytes asked for.

    Parameters
    ----------
    path
        The file.
    start, stop
        The byte range (``stop=None``: to the end of the file; clipped to the file's size).
    threads
        Concurrent readers where the bytes must be read with ``os.pread``
        (no ``posix_fadvise``); the kernel reads announced bytes on its own.

    Returns
    -------
    int
        Bytes announced or read (0 when neither is possible here, or the file cannot be opened).

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "x.bin"
    >>> _ = f.write_bytes(bytes(10_000))
    >>> warm_range(f, 100), warm_range(f, 0, 50, threads=2), warm_range(f, 20_000)
    (9900, 50, 0)
    """
    try:
        size = os.stat(path).st_size
    except OSError:
        return 0
    stop = size if stop is None else min(int(stop), size)
    start = max(0, int(start))
    spans = [(lo, min(_PIECE, stop - lo)) for lo in range(start, stop, _PIECE)]
    return _warm(path, spans, threads)


def mapped_source(array: np.ndarray) -> tuple[Path, int] | None:
    """(file, byte offset of the first element) when ``array`` is a C-contiguous view of a file memory map.

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "e.npy"
    >>> np.save(f, np.zeros((4, 3), dtype=np.float32))
    >>> E = np.load(f, mmap_mode="r")
    >>> mapped_source(E)[1], mapped_source(E[2:])[1] - mapped_source(E)[1], mapped_source(np.zeros(3))
    (128, 24, None)
    """
    if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
        return None
    start = array.__array_interface__["data"][0]
    arr: Any = array
    while arr is not None:
        if isinstance(arr, np.memmap) and getattr(arr, "filename", None):
            base = arr
            while isinstance(base.base, np.memmap):  # the memmap that owns the mapping knows its file offset
                base = base.base
            delta = start - base.__array_interface__["data"][0]
            return Path(arr.filename), int(base.offset) + int(delta)
        arr = getattr(arr, "base", None)
    return None


def warm_rows(array: np.ndarray, rows: np.ndarray, *, threads: int = 4) -> int:
    """Have the kernel read the file pages that hold ``array[rows]`` when ``array`` is memory-mapped.

    Does nothing (returns 0) for an array in memory. Returns the bytes
    announced or read (whole pages).

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "e.npy"
    >>> np.save(f, np.ones((1000, 384), dtype=np.float32))
    >>> E = np.load(f, mmap_mode="r")
    >>> warm_rows(E, np.array([3, 500])) > 0, warm_rows(np.ones((4, 2)), np.array([1]))
    (True, 0)
    """
    source = mapped_source(array)
    rows = np.unique(np.asarray(rows, dtype=np.int64).ravel())
    if source is None or not len(rows) or array.ndim < 1:
        return 0
    path, offset = source
    row_bytes = int(array.strides[0]) if array.ndim > 1 else int(array.itemsize)
    first = (offset + rows * row_bytes) // _PAGE  # the pages of each row (rows are sorted, so both ascend)
    last = (offset + (rows + 1) * row_bytes - 1) // _PAGE
    starts = np.flatnonzero(np.r_[True, first[1:] > last[:-1] + 1])  # a span starts where the pages do not touch
    lo, hi = first[starts], last[np.r_[starts[1:], len(rows)] - 1]
    return _warm(path, list(zip((lo * _PAGE).tolist(), ((hi - lo + 1) * _PAGE).tolist(), strict=True)), threads)
