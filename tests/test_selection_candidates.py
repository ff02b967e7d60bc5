"""The candidate stage keeps every mode of a multi-point target."""

from __future__ import annotations

import numpy as np

from promptkd import DemoPool, Selector
from promptkd.selection.candidates import per_row_candidates


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
