"""The candidate stage keeps every mode of a multi-point target; index hits answer as the dense block."""

from __future__ import annotations

import numpy as np
import pytest

from promptkd import DemoPool, Selector
from promptkd.exceptions import InvalidInputError
from promptkd.selection.candidates import HitRow, IndexHits, index_hits, per_row_candidates
from promptkd.selection.labels import neighbour_label_vote


def two_modes_and_a_bridge(seed: int = 0) -> tuple[DemoPool, np.ndarray]:
    """Pool: 100 items near A, 100 near B, 600 between them; target: 10 points near A and 10 near B."""
    rng = np.random.default_rng(seed)
    d = 16
    a = np.zeros(d)
    a[0] = 1.0
    b = np.zeros(d)
    b[1] = 1.0
    middle = (a + b) / np.sqrt(2.0)

    def around(centre: np.ndarray, n: int, spread: float = 0.15) -> np.ndarray:
        X = centre + spread * rng.normal(size=(n, d)) / np.sqrt(d)
        return X / np.linalg.norm(X, axis=1, keepdims=True)

    X = np.vstack([around(a, 100), around(b, 100), around(middle, 600)]).astype(np.float32)
    labels = ["A"] * 100 + ["B"] * 100 + ["M"] * 600
    pool = DemoPool([{"input": f"d{i}", "output": lab} for i, lab in enumerate(labels)], embeddings=X)
    return pool, np.vstack([around(a, 10), around(b, 10)]).astype(np.float32)


def test_a_two_cluster_target_gets_candidates_from_both_clusters() -> None:
    pool, target = two_modes_and_a_bridge()
    default = Selector(k=8).fit(pool).select(target)  # 256 candidates out of 800
    everything = Selector(k=8, candidates=len(pool)).fit(pool).select(target)
    picked = [pool[i].output for i in default.indices]
    assert picked.count("A") >= 3 and picked.count("B") >= 3, picked
    # as good as herding over the whole pool, within rounding
    assert default.mmd2 <= everything.mmd2 + 1e-6


def test_one_point_targets_keep_the_plain_candidate_stage() -> None:
    pool, target = two_modes_and_a_bridge()
    sel = Selector(k=4, candidates=16).fit(pool)
    assert sel.select(target[:1]).indices == sel.select(target[0]).indices


def test_per_row_candidates_respects_eligibility_and_index_gaps() -> None:
    pool = np.eye(4, dtype=np.float32)

    def sims(D: np.ndarray) -> np.ndarray:
        S = D @ pool.T
        S[:, 3] = -np.inf  # as if an index had not returned item 3
        return S

    eligible = np.array([True, False, True, True])
    got = per_row_candidates(sims, pool, per_row=1, eligible=eligible)
    assert got.tolist() == [0, 2]


# ---------------------------------------------------------------------------------------------- index hits


class ExactSearch:
    """A stand-in index: the exact top m by inner product, -1 padded past the pool."""

    def __init__(self, E: np.ndarray) -> None:
        self.E = E

    def search(self, D: np.ndarray, m: int) -> np.ndarray:
        S = D @ self.E.T
        ids = np.argsort(-S, axis=1, kind="stable")[:, : min(m, len(self.E))]
        return np.pad(ids, ((0, 0), (0, max(0, m - ids.shape[1]))), constant_values=-1)


def dense_hits(E: np.ndarray, inv_norms: np.ndarray, D: np.ndarray, m: int) -> np.ndarray:
    """The dense (b, N) block the candidate stage used to build from the same hits."""
    ids = ExactSearch(E).search(D, m)
    S = np.full((len(D), len(E)), -np.inf, dtype=np.float32)
    for i in range(len(D)):
        row = ids[i][ids[i] >= 0]
        S[i, row] = (np.asarray(E[row], dtype=np.float32) @ D[i]) * inv_norms[row]
    return S


def test_index_hits_answer_as_the_dense_block_does() -> None:
    rng = np.random.default_rng(5)
    E = rng.normal(size=(500, 12)).astype(np.float32)
    inv = (1.0 / np.linalg.norm(E, axis=1)).astype(np.float32)
    D = rng.normal(size=(7, 12)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = rng.integers(0, 4, size=500)
    eligible = rng.random(500) < 0.6
    hits = index_hits(ExactSearch(E), E, inv, D, m=40)
    dense = dense_hits(E, inv, D, 40)
    assert isinstance(hits, IndexHits) and hits.shape == (7, 500)
    np.testing.assert_array_equal(np.asarray(hits), dense)
    # inverse norms of the hits only, computed as a fit computes them for the whole pool: the same values
    fit_inv = (1.0 / np.maximum(np.linalg.norm(E.astype(np.float32), axis=1), 1e-12)).astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(index_hits(ExactSearch(E), E, None, D, m=40)), dense_hits(E, fit_inv, D, 40)
    )
    for i, row in enumerate(hits):
        s = dense[i]
        assert len(row) == 500 and row.shape == (500,) and float(row[3]) == s[3]
        picks = rng.integers(0, 500, size=30)
        np.testing.assert_array_equal(row[picks], s[picks])
        np.testing.assert_array_equal(row[list(picks)], s[picks])
        np.testing.assert_array_equal(row[None, :], s[None, :])
        assert row[-1] == s[-1]
        for mask in (None, eligible):
            masked = s if mask is None else np.where(mask, s, -np.inf)
            finite = np.flatnonzero(np.isfinite(masked))
            ranked = finite[np.lexsort((finite, -masked[finite]))]
            for m in (1, 8, 40, 100):
                assert row.top(m, mask).tolist() == ranked[:m].tolist()
        for neighbours in (1, 5, 40, 60):
            np.testing.assert_allclose(
                row.label_vote(codes, 4, neighbours), neighbour_label_vote(s, codes, 4, neighbours)
            )


def test_hit_rows_take_new_values_and_edge_cases() -> None:
    row = HitRow(np.array([5, 2]), np.array([0.5, 0.75]), n=6)
    row[np.array([0, 5])] = np.array([0.9, 0.1], dtype=np.float32)  # a new hit and an updated one
    assert row.ids.tolist() == [0, 2, 5] and row[5] == np.float32(0.1)
    row[2] = -np.inf  # no longer a hit
    assert row.ids.tolist() == [0, 5] and not np.isfinite(row[2])
    empty = HitRow(np.zeros(0, dtype=np.int64), np.zeros(0), n=3)
    assert empty.top(2).tolist() == [] and empty[1] == -np.inf and empty[np.array([0, 2])].tolist() == [-np.inf] * 2
    assert empty.label_vote(np.zeros(3, dtype=np.int64), 2, 4).tolist() == [0.0, 0.0]
    with pytest.raises(InvalidInputError, match="out of range"):
        row[6]
    padded = index_hits(
        ExactSearch(np.eye(3, dtype=np.float32)), np.eye(3, dtype=np.float32), np.ones(3), np.eye(3)[:1], m=5
    )
    assert padded[0].ids.tolist() == [0, 1, 2]  # -1 padding dropped


def test_per_row_candidates_reads_index_hits_like_the_dense_block() -> None:
    rng = np.random.default_rng(9)
    E = rng.normal(size=(300, 8)).astype(np.float32)
    inv = (1.0 / np.linalg.norm(E, axis=1)).astype(np.float32)
    rows = rng.normal(size=(5, 8)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    eligible = rng.random(300) < 0.5
    for mask in (None, eligible):
        sparse = per_row_candidates(lambda D: index_hits(ExactSearch(E), E, inv, D, 30), rows, 6, mask)
        dense = per_row_candidates(lambda D: dense_hits(E, inv, D, 30), rows, 6, mask)
        assert sparse.tolist() == dense.tolist()
