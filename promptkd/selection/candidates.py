"""Candidate stage for multi-point targets: keep every mode of the target.

The similarity stage ranks the pool by the cosine to the target's weighted mean
direction. For a one-point target that is exactly the right ranking, but a
target made of several points (a neighbourhood, a batch of queries) can have
modes far from its mean: a pool with items between two target clusters then
fills the candidate set with those in-between items, and herding cannot reach
the clusters themselves. :func:`per_row_candidates` adds, for every target row,
the pool items closest to that row, so each mode brings its own candidates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["per_row_candidates"]

_ROW_BLOCK = 64  # target rows scored per similarity pass: memory stays O(64 x pool size)


def per_row_candidates(
    similarity_rows: Callable[[np.ndarray], np.ndarray],
    target_rows: np.ndarray,
    per_row: int,
    eligible: np.ndarray | None = None,
) -> np.ndarray:
    """Union over target rows of the ``per_row`` pool items most similar to each row.

    Parameters
    ----------
    similarity_rows
        ``similarity_rows(D) -> (b, N)`` cosine similarities of the pool to
        each row of ``D`` (``-inf`` where an index did not return an item).
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
        if eligible is not None:
            S = np.where(eligible[None, :], S, -np.inf)
        m = min(per_row, S.shape[1])
        top = (
            np.argpartition(-S, m - 1, axis=1)[:, :m] if m < S.shape[1] else np.tile(np.arange(S.shape[1]), (len(S), 1))
        )
        keep = np.isfinite(np.take_along_axis(S, top, axis=1))
        found.append(top[keep])
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
