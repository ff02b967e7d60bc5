"""Candidate search over large pools with a faiss index (the ``ann`` extra).

The candidate stage of a selector needs, per target, the ``M`` pool items with
the largest cosine similarity to the target direction. Below the selector's
``ann_threshold`` this is one exact GEMM/GEMV in numpy; above it a faiss index
over the unit-normalised pool embeddings answers it:

* ``"exact"``: brute-force inner product (``IndexFlatIP``), same results as numpy;
* ``"ivf"``: inverted lists (``IndexIVFFlat``), ``nlist ~ 4 sqrt(N)``, ``nprobe`` lists searched;
* ``"hnsw"``: a graph index, ``ef_search`` controls recall.

The index only proposes candidates: the selector scores every hit exactly from
the pool's own embeddings. So the HNSW graph keeps its vectors in half precision
(faiss' fp16 scalar quantiser, ``storage="auto"``) whatever the pool's dtype: the
index then holds half the bytes of a float32 copy (0.77 GB instead of 1.54 GB for
1M x 384), with the same recall at the default settings (0.9993 against 0.9995 on
the 100k scale benchmark pool). ``storage="flat"`` keeps float32 vectors
(``IndexHNSWFlat``). float16 pools are indexed with the fp16 quantiser by every
kind. Search is read-only after building and may run from several threads at once.

An index can be saved (:meth:`CandidateIndex.save`) and loaded
(:meth:`CandidateIndex.load`); one saved beside a pool
(:func:`promptkd.pool.index_store.build_pool_index`) is loaded, not rebuilt,
whenever an index with the same parameters is asked for over that pool's
memory-mapped embeddings. Loading maps the file: the stored vectors and the
HNSW neighbour lists stay on disk until searched (processes on one node share
the pages), and the part of the file faiss reads on load is announced to the
kernel first (:mod:`promptkd.pool.prefetch`), so a cold page cache costs a few
large reads instead of one disk read per page of the graph.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from promptkd._optional import require
from promptkd.exceptions import InvalidInputError

__all__ = ["INDEX_KINDS", "CandidateIndex"]

logger = logging.getLogger("promptkd")

INDEX_KINDS = ("auto", "exact", "ivf", "hnsw")
STORAGES = ("auto", "flat", "fp16")


class CandidateIndex:
    """A faiss inner-product index over unit-normalised pool embeddings.

    Parameters
    ----------
    embeddings
        (N, d) pool embeddings (float32 or float16).
    kind
        ``"exact"``, ``"ivf"`` or ``"hnsw"`` (``"auto"`` means ``"hnsw"``).
    nlist, nprobe
        IVF settings (``nlist=None``: about ``4 * sqrt(N)`` lists).
    hnsw_m, ef_search
        HNSW graph degree and search breadth.
    seed
        Seed for IVF training.
    storage
        How an HNSW graph keeps its vectors: ``"auto"`` (half precision;
        a saved index of either storage is loaded), ``"fp16"`` or ``"flat"``
        (float32 for a float32 pool). Other kinds ignore it.
    use_saved
        Load an index saved beside the pool (same parameters) instead of
        building one, when ``embeddings`` are memory-mapped from a saved pool.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 8)).astype(np.float32)
    >>> idx = CandidateIndex(X, "exact")
    >>> ids = idx.search(X[:2], 3)
    >>> ids.shape, int(ids[0, 0]), int(ids[1, 0])
    ((2, 3), 0, 1)
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        kind: str = "hnsw",
        *,
        nlist: int | None = None,
        nprobe: int = 16,
        hnsw_m: int = 32,
        ef_search: int = 128,
        seed: int = 0,
        storage: str = "auto",
        use_saved: bool = True,
    ) -> None:
        faiss = require("faiss", "ann", purpose="the approximate candidate index (index='ivf'/'hnsw'/'exact')")
        if kind == "auto":
            kind = "hnsw"
        if kind not in ("exact", "ivf", "hnsw"):
            raise InvalidInputError(f"index={kind!r} is not known; use one of {INDEX_KINDS}.")
        if storage not in STORAGES:
            raise InvalidInputError(f"storage={storage!r} is not known; use one of {STORAGES}.")
        E = np.asarray(embeddings)
        n, d = E.shape
        half = E.dtype == np.float16
        metric = faiss.METRIC_INNER_PRODUCT
        self.kind = kind
        self.n = int(n)
        self.dim = int(d)
        self.ef_search = ef_search
        self.storage = storage
        fp16 = half or (kind == "hnsw" and storage != "flat")
        nl = nlist if nlist is not None else max(1, min(n // 39, int(4 * math.sqrt(n))))
        self.params: dict[str, Any] = {
            "kind": kind,
            "n": self.n,
            "dim": self.dim,
            "dtype": str(E.dtype),
            "hnsw_m": int(hnsw_m) if kind == "hnsw" else None,
            "nlist": int(nl) if kind == "ivf" else None,
            "seed": int(seed) if kind == "ivf" else None,
            "storage": "fp16" if fp16 else "flat",
            "faiss": faiss.__version__,
        }
        if use_saved and self._load_saved(E, nprobe):
            return
        if kind == "exact":
            index: Any = (
                faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_fp16, metric) if half else faiss.IndexFlatIP(d)
            )
        elif kind == "hnsw":
            if fp16:
                index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_fp16, hnsw_m, metric)
            else:
                index = faiss.IndexHNSWFlat(d, hnsw_m, metric)
            index.hnsw.efConstruction = max(40, 2 * hnsw_m)
            index.hnsw.efSearch = ef_search
        else:
            quantizer = faiss.IndexFlatIP(d)
            if half:
                index = faiss.IndexIVFScalarQuantizer(quantizer, d, nl, faiss.ScalarQuantizer.QT_fp16, metric)
            else:
                index = faiss.IndexIVFFlat(quantizer, d, nl, metric)
            index.cp.seed = seed
            index.nprobe = min(nprobe, nl)
            self._quantizer = quantizer  # keep a reference: faiss does not own it
            self.nlist = nl
        for start, block in _unit_blocks(E):
            if kind == "ivf" and start == 0:
                index.train(_unit(E[: min(n, max(256 * index.nlist, 10_000))]))
            index.add(block)
        self.index = index
        logger.info("built a faiss %s index over %d x %d embeddings", kind, n, d)

    def _load_saved(self, E: np.ndarray, nprobe: int) -> bool:
        from promptkd.pool.index_store import find_saved_index

        found = find_saved_index(E)
        if found is None:
            return False
        file, entry = found
        # "auto" storage takes the saved index whichever way it keeps its vectors (indexes saved before
        # the storage was recorded keep float32 vectors: "flat")
        ignored = {"faiss", "storage"} if self.storage == "auto" else {"faiss"}
        stored = {"storage": "fp16" if entry["params"].get("dtype") == "float16" else "flat", **entry["params"]}
        saved = {k: v for k, v in stored.items() if k not in ignored}
        wanted = {k: v for k, v in self.params.items() if k not in ignored}
        if saved != wanted:
            logger.info("the index saved beside the pool was built with %s, not %s; building a new one", saved, wanted)
            return False
        self._attach(self._read(file), nprobe)
        self.params["storage"] = stored["storage"]
        logger.info("loaded the saved faiss %s index %s", self.kind, file)
        return True

    @staticmethod
    def _read(file: str | os.PathLike[str]) -> Any:
        import faiss

        from promptkd.pool.prefetch import warm_range

        # faiss maps the file with MADV_RANDOM (no read-ahead) and walks the whole HNSW graph on load: read
        # that part first in large parallel requests, or a cold page cache costs one disk read per page
        warm_range(file, 0, _graph_bytes(file))
        try:
            # the vectors and the HNSW neighbour lists stay memory-mapped from the file (processes on one node
            # share the pages); levels and offsets are copied. Returns the concrete class, owning the index.
            return faiss.read_index(str(file), getattr(faiss, "IO_FLAG_MMAP_IFC", 0))
        except RuntimeError as err:  # faiss reports unreadable files as RuntimeError
            from promptkd.exceptions import PoolFormatError

            raise PoolFormatError(f"{file}: not a readable faiss index ({err}).") from err

    def _attach(self, index: Any, nprobe: int) -> None:
        if self.kind == "hnsw":
            index.hnsw.efSearch = self.ef_search
        elif self.kind == "ivf":
            self.nlist = int(index.nlist)
            index.nprobe = min(nprobe, self.nlist)
        self.index = index

    def save(self, file: str | os.PathLike[str]) -> Path:
        """Write the index to ``file`` (faiss' own format), flushed to disk.

        Examples
        --------
        >>> import tempfile
        >>> X = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
        >>> f = CandidateIndex(X, "exact").save(tempfile.mkdtemp() + "/i.faiss")
        >>> CandidateIndex.load(f, X).search(X[:1], 1).tolist()
        [[0]]
        """
        import faiss

        path = Path(file)
        faiss.write_index(self.index, str(path))
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    @classmethod
    def load(
        cls,
        file: str | os.PathLike[str],
        embeddings: np.ndarray,
        kind: str = "auto",
        *,
        nprobe: int = 16,
        ef_search: int = 128,
    ) -> CandidateIndex:
        """Load an index written by :meth:`save`; ``embeddings`` are the pool's (checked: rows and dimension)."""
        require("faiss", "ann", purpose="loading a candidate index")
        index = cls._read(file)
        E = np.asarray(embeddings)
        if index.ntotal != E.shape[0] or index.d != E.shape[1]:
            raise InvalidInputError(
                f"the index in {file} holds {index.ntotal} x {index.d} vectors but the embeddings are "
                f"{E.shape[0]} x {E.shape[1]}; build the index for these embeddings."
            )
        inner = index
        found = "hnsw" if hasattr(inner, "hnsw") else "ivf" if hasattr(inner, "nlist") else "exact"
        if kind not in ("auto", found):
            raise InvalidInputError(f"the index in {file} is a {found} index, not {kind!r}.")
        out = cls.__new__(cls)
        out.kind, out.n, out.dim, out.ef_search = found, int(E.shape[0]), int(E.shape[1]), ef_search
        out.params = {"kind": found, "n": out.n, "dim": out.dim, "dtype": str(E.dtype)}
        out._attach(inner, nprobe)
        return out

    def search(self, directions: np.ndarray, m: int) -> np.ndarray:
        """Ids (n_queries, m) of the ``m`` items with the largest inner product; -1 pads missing hits."""
        Q = np.ascontiguousarray(np.asarray(directions, dtype=np.float32))
        if Q.ndim == 1:
            Q = Q[None, :]
        m = min(int(m), self.n)
        if self.kind == "hnsw":  # search breadth at least twice the hits wanted, per call (thread-safe)
            import faiss

            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, 2 * m))
            _, ids = self.index.search(Q, m, params=params)
        else:
            _, ids = self.index.search(Q, m)
        return ids


_HNSW_FOURCCS = (b"IHNf", b"IHNp", b"IHNs", b"IHN2")


def _graph_bytes(file: str | os.PathLike[str]) -> int:
    """Bytes at the start of a saved HNSW index that faiss reads on load; 0 for other indexes.

    faiss' format for these indexes: the class code, the index header, then
    the graph (``assign_probas``, ``cum_nneighbor_per_level``, ``levels``,
    ``offsets``, ``neighbors``, each an 8-byte length and its items), then the
    stored vectors. The result ends after the neighbour lists; a file that
    does not parse gives 0 (nothing is warmed; faiss reports a damaged file).
    """
    try:
        with open(file, "rb") as fh:
            if fh.read(4) not in _HNSW_FOURCCS:
                return 0
            # d (int32), ntotal (int64), two unused int64, is_trained (bool), metric_type (int32)
            header = fh.read(33)
            if len(header) != 33:
                return 0
            if int.from_bytes(header[29:33], "little", signed=True) > 1:
                fh.seek(4, os.SEEK_CUR)  # metric_arg (float32)
            for itemsize in (8, 4, 4, 8, 4):  # float64, int32, int32, size_t, int32 items
                raw = fh.read(8)
                if len(raw) != 8:
                    return 0
                fh.seek(int.from_bytes(raw, "little") * itemsize, os.SEEK_CUR)
            return fh.tell()
    except (OSError, ValueError, OverflowError):
        return 0


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return np.ascontiguousarray(X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12))


def _unit_blocks(E: np.ndarray, block: int = 65536):
    for start in range(0, E.shape[0], block):
        yield start, _unit(E[start : start + block])
