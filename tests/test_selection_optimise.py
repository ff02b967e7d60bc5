"""Mathematics of the greedy and the swaps: MMD2 decreases, provenance is exact, no M x M matrix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptkd import DemoPool, Selector
from promptkd.kernels import mmd2
from promptkd.kernels.functions import rbf
from promptkd.selection.herding import herd, swap_refine


def unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered_pool() -> DemoPool:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16)) * 2
    X = np.vstack([c + rng.normal(size=(40, 16)) for c in centres])
    return DemoPool([{"input": f"d{i}", "output": f"c{i // 40}"} for i in range(200)], embeddings=X.astype(np.float32))


def test_herding_beats_random_subsets(clustered_pool: DemoPool) -> None:
    rng = np.random.default_rng(1)
    X = clustered_pool.embeddings.astype(np.float64)  # float64 references: float32 laplacian loses ~1e-5
    target = X[rng.choice(200, size=30, replace=False)] + 0.1 * rng.normal(size=(30, 16))
    for kernel in ("rbf", "laplacian", "imq"):
        sel = Selector(k=8, candidates=200, kernel=kernel).fit(clustered_pool)
        s = sel.select(target)
        randoms = [
            mmd2(X[rng.choice(200, size=8, replace=False)], target, kernel=kernel, bandwidth=sel.bandwidth_)
            for _ in range(200)
        ]
        assert s.objective < np.percentile(randoms, 5), kernel
        # the herding path is non-increasing after the first steps and ends at the set's MMD2
        assert s.objective == pytest.approx(
            mmd2(X[list(s.indices)], target, kernel=kernel, bandwidth=sel.bandwidth_), abs=1e-6
        )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    m=st.integers(5, 40),
    n=st.integers(1, 12),
    k=st.integers(1, 6),
    bw=st.floats(0.3, 4.0),
    kernel=st.sampled_from(["rbf", "laplacian", "imq", "cosine", "linear"]),
)
def test_swaps_never_increase_mmd2(seed: int, m: int, n: int, k: int, bw: float, kernel: str) -> None:
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(m, 3))
    T = rng.normal(size=(n, 3))
    w = rng.dirichlet(np.ones(n))
    k = min(k, m)
    res = herd(C, T, w, k, kernel=kernel, bandwidth=bw, keep_columns=True)
    out = swap_refine(C, res, kernel=kernel, bandwidth=bw, max_swaps=5)
    assert out.mmd2_after <= out.mmd2_before + 1e-9
    assert out.mmd2_before == pytest.approx(res.mmd2_path[-1], abs=1e-6)
    assert len(set(out.order)) == k
    # the reported path is the exact MMD2 of every prefix of the final order
    for t in range(1, k + 1):
        direct = mmd2(C[list(out.order[:t])], T, kernel=kernel, bandwidth=bw, weights_y=w)
        assert out.mmd2_path[t - 1] == pytest.approx(direct, abs=1e-6)


def test_swaps_improve_a_greedy_result_and_record_phases(clustered_pool: DemoPool) -> None:
    rng = np.random.default_rng(2)
    Q = clustered_pool.embeddings[rng.choice(200, size=20, replace=False)]
    plain = Selector(k=6, candidates=100).fit(clustered_pool)
    swapped = Selector(k=6, candidates=100, swaps=10).fit(clustered_pool)
    improved = 0
    for q in Q:
        a, b = plain.select(q[None] + rng.normal(size=(4, 16)).astype(np.float32)), None
        b = swapped.select(q[None] + rng.normal(size=(4, 16)).astype(np.float32) * 0)  # different target
        assert set(b.phases) == {"greedy", "swap"} and set(a.phases) == {"greedy"}
        assert b.phases["swap"] <= b.phases["greedy"] + 1e-12
        assert b.objective == pytest.approx(b.phases["swap"], abs=1e-9)
        improved += b.phases["swap"] < b.phases["greedy"] - 1e-9
    assert improved > 0


def test_no_candidate_by_candidate_matrix_is_built() -> None:
    calls: list[tuple[int, int]] = []

    def spy_kernel(X, Y=None, *, bandwidth=1.0):
        out = rbf(X, Y, bandwidth=bandwidth)
        calls.append(tuple(out.shape))
        return out

    rng = np.random.default_rng(3)
    M, n, k = 97, 5, 6
    C = rng.normal(size=(M, 4))
    T = rng.normal(size=(n, 4))
    res = herd(C, T, np.full(n, 1 / n), k, kernel=spy_kernel, bandwidth=1.0, keep_columns=True)
    swap_refine(C, res, kernel=spy_kernel, bandwidth=1.0, max_swaps=3)
    assert all(shape != (M, M) for shape in calls)
    assert max(a * b for a, b in calls) <= M * n  # at most one candidates x target block
    ref = herd(C, T, np.full(n, 1 / n), k, kernel="rbf", bandwidth=1.0)
    assert ref.order == res.order  # the fast built-in path and the generic path agree


def test_herding_is_deterministic_and_the_seed_only_moves_random_parts(hashing_pool: DemoPool) -> None:
    a = Selector(k=5, seed=3, order="random").fit(hashing_pool).select("the coach and the bank")
    b = Selector(k=5, seed=3, order="random").fit(hashing_pool).select("the coach and the bank")
    c = Selector(k=5, seed=4, order="random").fit(hashing_pool).select("the coach and the bank")
    assert a == b
    assert set(a.indices) == set(c.indices)


def test_provenance_matches_recomputed_values(clustered_pool: DemoPool) -> None:
    rng = np.random.default_rng(4)
    X = clustered_pool.embeddings
    T = X[:5] + 0.2 * rng.normal(size=(5, 16)).astype(np.float32)
    sel = Selector(
        k=5, swaps=4, label_balance="cover", dedup_threshold=0.95, order="interleave_labels", candidates=80
    ).fit(clustered_pool)
    s = sel.select(T)
    d = s.to_dict()
    by_step = sorted(d["demos"], key=lambda r: r["selection_rank"])
    running = [float(rbf(T, T, bandwidth=sel.bandwidth_).mean())]  # MMD2 of the empty set: v' K_TT v
    for t, row in enumerate(by_step, start=1):
        prefix = [r["index"] for r in by_step[:t]]
        direct = mmd2(X[prefix], T, bandwidth=sel.bandwidth_)
        assert row["running_mmd2"] == pytest.approx(direct, abs=1e-6)
        assert row["gain"] == pytest.approx(running[-1] - direct, abs=1e-6)
        running.append(direct)
        assert row["similarity"] == pytest.approx(float(sel.similarities(sel.make_target(T))[row["index"]]), abs=1e-6)
        assert row["id"] == clustered_pool[row["index"]].id and row["output"] == clustered_pool[row["index"]].output
    assert d["objective"] == pytest.approx(running[-1], abs=1e-6)
    # the reported MMD2 is the reference RBF's, at the pool's plain median bandwidth
    assert d["mmd2"] == pytest.approx(mmd2(X[list(s.indices)], T, bandwidth=sel.reference_bandwidth_), abs=1e-6)
    assert sel.reference_bandwidth_ == pytest.approx(sel.bandwidth_ / sel.median_scale)
    text = s.explain()
    assert "phases: greedy=" in text and "swap=" in text
    assert all(row["id"][:18] in text for row in d["demos"])


def test_swap_is_kept_only_when_the_recomputed_objective_drops(monkeypatch: pytest.MonkeyPatch) -> None:
    """A swap predicted to help from stored columns is undone if the fresh column says otherwise."""
    from promptkd.kernels.columns import KernelColumns

    rng = np.random.default_rng(3)
    C = rng.normal(size=(40, 3)).astype(np.float32)
    T = rng.normal(size=(6, 3)).astype(np.float32)
    res = herd(C, T, np.full(6, 1 / 6), 4, bandwidth=1.5, keep_columns=True)
    honest = swap_refine(C, res, bandwidth=1.5, max_swaps=5)
    assert honest.n_swaps > 0  # the case has a real improvement to find
    fresh_column = KernelColumns.column

    def drifting_column(self, j: int) -> np.ndarray:  # a column whose rounding disagrees with the stored ones
        return fresh_column(self, j) + 0.5

    monkeypatch.setattr(KernelColumns, "column", drifting_column)
    out = swap_refine(C, res, bandwidth=1.5, max_swaps=5)
    assert out.n_swaps == 0 and out.order == res.order
    assert out.mmd2_after == res.mmd2_path[-1]
