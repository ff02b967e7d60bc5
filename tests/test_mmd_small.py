"""The small-sample MMD2 that every Selection reports agrees with the general path."""

from __future__ import annotations

import numpy as np
import pytest

from promptkd.kernels import RBF, Laplacian, get_kernel
from promptkd.kernels.mmd import SMALL_ROWS, mmd2, mmd2_small, mmd2_small_batch


@pytest.mark.parametrize("offset", [0.0, 1e3])
@pytest.mark.parametrize("kernel", [RBF(0.8), Laplacian(1.5)])
def test_mmd2_small_equals_mmd2_with_weights_and_a_large_common_offset(kernel, offset: float) -> None:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((8, 32)) + offset
    Y = rng.standard_normal((3, 32)) + offset
    v = np.array([0.5, 0.3, 0.2])
    want = mmd2(X - offset, Y - offset, kernel=kernel, weights_y=v)  # distances do not depend on the offset
    assert mmd2_small(X, Y, kernel, weights_y=v) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_mmd2_small_hands_large_samples_and_unresolved_kernels_to_mmd2() -> None:
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((SMALL_ROWS, 4)), rng.standard_normal((2, 4))
    assert mmd2_small(X, Y, RBF(1.0)) == pytest.approx(mmd2(X, Y, kernel=RBF(1.0)), rel=1e-6)
    median = get_kernel("rbf")  # bandwidth "median": resolved by mmd2 on the pooled sample
    assert mmd2_small(X[:4], Y, median) == pytest.approx(mmd2(X[:4], Y, kernel="rbf"), rel=1e-6)


def test_identical_samples_have_zero_mmd2() -> None:
    X = np.ones((3, 5))
    assert mmd2_small(X, X[:1], RBF(1.0)) == 0.0


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_mmd2_small_batch_equals_mmd2_pair_by_pair(offset: float) -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((6, 8, 16)) + offset
    Y = rng.standard_normal((6, 3, 16)) + offset
    W = rng.dirichlet(np.ones(3), size=6)
    got = mmd2_small_batch(X, Y, RBF(2.0), weights_y=W)
    want = [mmd2(X[b] - offset, Y[b] - offset, kernel=RBF(2.0), weights_y=W[b]) for b in range(6)]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_select_batch_reports_the_mmd2_select_reports() -> None:
    from promptkd import DemoPool, Selector

    rng = np.random.default_rng(6)
    E = rng.standard_normal((300, 12)).astype(np.float32)
    pool = DemoPool([{"input": f"d{i}", "output": "ab"[i % 2]} for i in range(300)], embeddings=E)
    sel = Selector(k=5).fit(pool)
    queries = rng.standard_normal((7, 12)).astype(np.float32)
    batch = sel.select_batch(queries, context=E[:2])  # three-row targets: query and two context rows
    for q, got in zip(queries, batch, strict=True):
        one = sel.select(q, context=E[:2])
        assert got.indices == one.indices
        assert got.mmd2 == pytest.approx(one.mmd2, rel=1e-12, abs=1e-15)
        assert got.mmd2 == pytest.approx(sel.target_mmd2(got.indices, sel.make_target(q, context=E[:2])), rel=1e-12)
