"""The label side of a target: what the query's nearest pool demos say its label is.

A query comes without a label, but its nearest pool demonstrations carry theirs.
Their similarity-weighted vote estimates the target's label distribution, which
the joint input-label kernel matches (``RBF() * LabelKernel(...)``) and the
``"label_prior"`` ordering reads.
"""

from __future__ import annotations

import numpy as np

__all__ = ["label_codes", "neighbour_label_vote"]


def label_codes(outputs: list[str] | tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """Sorted label names and the code of every output.

    Examples
    --------
    >>> names, codes = label_codes(["pos", "neg", "pos"])
    >>> names, codes.tolist()
    (('neg', 'pos'), [1, 0, 1])
    """
    names, codes = np.unique(np.array(outputs, dtype=object).astype(str), return_inverse=True)
    return tuple(str(x) for x in names), codes.astype(np.int64)


def neighbour_label_vote(similarities: np.ndarray, codes: np.ndarray, n_labels: int, neighbours: int) -> np.ndarray:
    """Label distribution (n_labels,) voted by the ``neighbours`` most similar pool items.

    Each neighbour votes with its similarity (a negative similarity counts as a
    tiny positive weight, so every neighbour still votes). Items at ``-inf``
    (not eligible, or not returned by an index) never vote. All zeros when no
    item can vote.

    Parameters
    ----------
    similarities
        (N,) similarity of every pool item to the target.
    codes
        (N,) label code of every pool item.
    n_labels
        Number of labels.
    neighbours
        How many nearest items vote.

    Examples
    --------
    >>> sims = np.array([0.9, 0.8, 0.1, 0.7])
    >>> np.round(neighbour_label_vote(sims, np.array([0, 1, 1, 0]), 2, 3), 3).tolist()
    [0.667, 0.333]
    """
    finite = np.isfinite(similarities)
    n_ok = int(np.count_nonzero(finite))
    out = np.zeros(n_labels, dtype=np.float64)
    if n_ok == 0:
        return out
    m = min(int(neighbours), n_ok)
    s = np.where(finite, similarities, -np.inf)
    top = np.argpartition(-s, m - 1)[:m]
    np.add.at(out, codes[top], np.maximum(s[top], 0.0) + 1e-6)
    return out / out.sum()
