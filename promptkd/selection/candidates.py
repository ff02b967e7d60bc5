"""Candidate stage helpers: a candidate index's hits, and every mode of a multi-point target.

**Index hits.** Above the selector's ``ann_threshold`` a faiss index proposes
the ``m`` pool items nearest to each target direction, and each hit is then
scored exactly from the pool's embeddings. :func:`index_hits` does both and
keeps only the hits: :class:`HitRow` holds one target's hit ids and cosine
similarities, most similar first. It behaves as the (N,) similarity vector the
rest of the selector reads (``-inf`` at every item the index did not return):
``row[i]`` and ``row[ids]`` look hits up, ``numpy.asarray(row)`` builds the
dense vector. The candidate stage's own questions are answered from the hits
alone, in time that depends on ``m``, not on the pool size:
:meth:`HitRow.top` (the ``m`` most similar eligible items) and
:meth:`HitRow.label_vote` (the label distribution their nearest items vote,
as :func:`promptkd.selection.labels.neighbour_label_vote`). For a batch of
directions, :class:`IndexHits` holds one row per direction: it replaces the
dense ``(batch, N)`` block of similarities (1 GB for 256 queries over 1M
demos) with ``batch x m`` entries.

**Target modes.** The similarity stage ranks the pool by the cosine to the
target's weighted mean direction. For a one-point target that is exactly the
right ranking, but a target made of several points (a neighbourhood, a batch of
queries) can have modes far from its mean: a pool with items between two target
clusters then fills the candidate set with those in-between items, and herding
cannot reach the clusters themselves. :func:`per_row_candidates` adds, for
every target row, the pool items closest to that row, so each mode brings its
own candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError
from promptkd.pool.prefetch import warm_rows

__all__ = ["HitRow", "IndexHits", "hit_inv_norms", "index_hits", "per_row_candidates"]

_ROW_BLOCK = 64  # target rows scored per similarity pass: memory stays O(64 x pool size)
_WARM_MAX_HITS = 4096  # hits per call up to which their pool rows are announced to the kernel first


class HitRow:
    """One target's similarities where a candidate index returned items; ``-inf`` elsewhere.

    Parameters
    ----------
    ids
        Pool indices of the hits (distinct, non-negative).
    values
        Their cosine similarities to the target (same order as ``ids``).
    n
        Pool size: the length of the dense vector this row stands for.

    Attributes
    ----------
    ids, values
        The hits, most similar first (ties: lower pool index first).

    Examples
    --------
    >>> row = HitRow(np.array([4, 1, 7]), np.array([0.25, 0.5, 0.25], dtype=np.float32), n=8)
    >>> row.ids.tolist(), float(row[1]), float(row[0])
    ([1, 4, 7], 0.5, -inf)
    >>> row.top(2).tolist(), row.top(2, eligible=np.arange(8) != 1).tolist()
    ([1, 4], [4, 7])
    >>> np.asarray(row).shape, int(np.isfinite(np.asarray(row)).sum())
    ((8,), 3)
    """

    ndim = 1
    dtype = np.dtype(np.float32)

    def __init__(self, ids: np.ndarray, values: np.ndarray, n: int) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        order = np.lexsort((ids, -values))
        self.ids = ids[order]
        self.values = values[order]
        self.n = int(n)
        self._by_id: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def shape(self) -> tuple[int]:
        return (self.n,)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"HitRow({len(self.ids)} hits of {self.n})"

    def dense(self) -> np.ndarray:
        """The (N,) float32 similarity vector: the hits' values, ``-inf`` elsewhere."""
        out = np.full(self.n, -np.inf, dtype=np.float32)
        out[self.ids] = self.values
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.dense()
        return out if dtype is None else out.astype(dtype)

    def _lookup(self, idx: np.ndarray) -> np.ndarray:
        if self._by_id is None:
            order = np.argsort(self.ids, kind="stable")
            self._by_id = (self.ids[order], self.values[order])
        keys, vals = self._by_id
        pos = np.minimum(np.searchsorted(keys, idx), max(len(keys) - 1, 0))
        found = keys[pos] == idx if len(keys) else np.zeros(idx.shape, dtype=bool)
        return np.where(found, vals[pos] if len(keys) else np.float32(0), np.float32(-np.inf)).astype(np.float32)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -self.n <= i < self.n:
                raise InvalidInputError(f"index {i} is out of range for a pool of {self.n} demos.")
            return self._lookup(np.array([i % self.n]))[0]
        idx = np.asarray(key) if isinstance(key, (list, np.ndarray)) else None
        if idx is not None and idx.dtype.kind in "iu" and idx.ndim >= 1:
            return self._lookup(np.where(idx < 0, idx + self.n, idx).astype(np.int64))
        return self.dense()[key]  # slices, masks, new axes: the dense vector's answer

    def __setitem__(self, key: Any, value: Any) -> None:
        """Set the similarity of pool items (hits or not); a finite value makes the item a hit."""
        idx = np.atleast_1d(np.asarray(key, dtype=np.int64))
        idx = np.where(idx < 0, idx + self.n, idx)
        vals = np.broadcast_to(np.asarray(value, dtype=np.float32), idx.shape)
        keep = ~np.isin(self.ids, idx)
        new_ids = np.concatenate([self.ids[keep], idx])
        new_vals = np.concatenate([self.values[keep], vals])
        finite = np.isfinite(new_vals)
        self.__init__(new_ids[finite], new_vals[finite], self.n)  # type: ignore[misc]

    def top(self, m: int, eligible: np.ndarray | None = None) -> np.ndarray:
        """Pool indices of the ``m`` most similar eligible hits, most similar first (ties: lower index).

        Equals ranking the dense vector, masked by ``eligible`` (an (N,) bool
        mask), and keeping its first ``m`` finite entries.
        """
        ids = self.ids if eligible is None else self.ids[np.asarray(eligible, dtype=bool)[self.ids]]
        return ids[: max(int(m), 0)]

    def label_vote(self, codes: np.ndarray, n_labels: int, neighbours: int) -> np.ndarray:
        """Label distribution (n_labels,) voted by the ``neighbours`` most similar hits.

        The rule of :func:`promptkd.selection.labels.neighbour_label_vote` on the
        dense vector: each voter weighs its similarity (at least 1e-6), only hits
        vote, all zeros when there is none. Ties at the ``neighbours``-th place
        go to the lower pool index.

        Examples
        --------
        >>> row = HitRow(np.array([0, 1, 3]), np.array([0.9, 0.8, 0.7]), n=4)
        >>> np.round(row.label_vote(np.array([0, 1, 1, 0]), 2, 3), 3).tolist()
        [0.667, 0.333]
        """
        out = np.zeros(int(n_labels), dtype=np.float64)
        m = min(int(neighbours), len(self.ids))
        if m <= 0:
            return out
        s = self.values[:m]
        np.add.at(out, np.asarray(codes)[self.ids[:m]], np.maximum(s, 0.0) + 1e-6)
        return out / out.sum()


class IndexHits:
    """The hits of a batch of directions: one :class:`HitRow` each (see :func:`index_hits`).

    Indexing with an integer gives that direction's row; ``numpy.asarray``
    builds the dense (batch, N) block (only for code that needs it).

    Examples
    --------
    >>> hits = IndexHits([HitRow(np.array([2]), np.array([0.5]), n=3)])
    >>> len(hits), hits.shape, hits[0].ids.tolist()
    (1, (1, 3), [2])
    """

    def __init__(self, rows: list[HitRow]) -> None:
        self.rows = list(rows)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), self.rows[0].n if self.rows else 0)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[HitRow]:
        return iter(self.rows)

    def __getitem__(self, i: int) -> HitRow:
        return self.rows[i]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.stack([r.dense() for r in self.rows]) if self.rows else np.zeros((0, 0), dtype=np.float32)
        return out if dtype is None else out.astype(dtype)


def index_hits(
    index: Any,
    embeddings: np.ndarray,
    inv_norms: np.ndarray | None,
    directions: np.ndarray,
    m: int,
) -> IndexHits:
    """Ask ``index`` for each direction's ``m`` nearest pool items and score them exactly.

    Only the hits' embedding rows are read (``m`` rows per direction, from a
    memory map if the pool is one), so time and memory grow with ``m``, not
    with the pool.

    Parameters
    ----------
    index
        An object with ``search(directions, m) -> (b, m)`` pool ids, ``-1``
        where it found fewer (a :class:`~promptkd.pool.ann.CandidateIndex`).
    embeddings
        (N, d) pool embeddings (any float dtype; scored in float32).
    inv_norms
        (N,) inverse norms of the pool rows, or None to compute them for the
        hits only, from the rows read anyway (the same float32 values as
        ``1 / numpy.linalg.norm`` over the whole pool, so a fit need not read
        every embedding for them).
    directions
        (b, d) unit target directions.
    m
        Hits asked per direction.

    Returns
    -------
    IndexHits
        One :class:`HitRow` per direction with the exact cosine similarity of
        each hit (the same float32 products as a dense similarity row).

    Examples
    --------
    >>> class Exact:  # any object with search(D, m) -> ids
    ...     def __init__(self, E): self.E = E
    ...     def search(self, D, m): return np.argsort(-(D @ self.E.T), axis=1)[:, :m]
    >>> E = np.eye(3, dtype=np.float32)
    >>> hits = index_hits(Exact(E), E, np.ones(3, dtype=np.float32), E[:2], m=2)
    >>> hits[0].ids.tolist(), hits[1].top(1).tolist()
    ([0, 1], [1])
    """
    D = np.asarray(directions, dtype=np.float32)
    if D.ndim == 1:
        D = D[None, :]
    n = int(embeddings.shape[0])
    ids = index.search(D, m)
    if ids.size <= _WARM_MAX_HITS:
        # a few hits of a memory-mapped pool: announce their pages at once rather than fault them in one by one
        # (a large batch touches so much of the file that the kernel's read-ahead serves it well)
        warm_rows(embeddings, ids[ids >= 0])
    rows = []
    for i in range(D.shape[0]):
        row = ids[i][ids[i] >= 0]
        E = np.asarray(embeddings[row], dtype=np.float32)
        inv = inv_norms[row] if inv_norms is not None else hit_inv_norms(E)
        rows.append(HitRow(row, (E @ D[i]) * inv, n))
    return IndexHits(rows)


def hit_inv_norms(rows: np.ndarray) -> np.ndarray:
    """Inverse norms (float32) of some float32 pool rows, as a fit computes them for the whole pool.

    Examples
    --------
    >>> hit_inv_norms(np.array([[3.0, 4.0]], dtype=np.float32)).tolist()
    [0.20000000298023224]
    """
    return (1.0 / np.maximum(np.linalg.norm(rows, axis=1), 1e-12)).astype(np.float32)


def per_row_candidates(
    similarity_rows: Callable[[np.ndarray], Any],
    target_rows: np.ndarray,
    per_row: int,
    eligible: np.ndarray | None = None,
) -> np.ndarray:
    """Union over target rows of the ``per_row`` pool items most similar to each row.

    Parameters
    ----------
    similarity_rows
        ``similarity_rows(D)``: cosine similarities of the pool to each row of
        ``D``, as a dense (b, N) array (``-inf`` where an index did not return
        an item) or as :class:`IndexHits` (then only the hits are read).
    target_rows
        (n, d) target embeddings.
    per_row
        How many items each row contributes (at most).
    eligible
        Optional (N,) mask of the pool items that may be chosen.

    Returns
    -------
    numpy.ndarray
        Sorted unique pool indices.

    Examples
    --------
    >>> pool = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
    >>> per_row_candidates(lambda D: D @ pool.T, pool[:2], per_row=1).tolist()
    [0, 1]
    """
    rows = np.asarray(target_rows, dtype=np.float32)
    found: list[np.ndarray] = []
    for start in range(0, rows.shape[0], _ROW_BLOCK):
        S = similarity_rows(rows[start : start + _ROW_BLOCK])
        if isinstance(S, IndexHits):
            found.extend(r.top(per_row, eligible) for r in S)
            continue
        if eligible is not None:
            S = np.where(eligible[None, :], S, -np.inf)
        m = min(per_row, S.shape[1])
        top = (
            np.argpartition(-S, m - 1, axis=1)[:, :m] if m < S.shape[1] else np.tile(np.arange(S.shape[1]), (len(S), 1))
        )
        keep = np.isfinite(np.take_along_axis(S, top, axis=1))
        found.append(top[keep])
    return np.unique(np.concatenate(found)).astype(np.int64) if found else np.zeros(0, dtype=np.int64)
