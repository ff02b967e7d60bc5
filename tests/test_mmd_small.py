"""The small-sample MMD2 that every Selection reports agrees with the general path."""

from __future__ import annotations

import numpy as np
import pytest

from promptkd.kernels import RBF, Laplacian, get_kernel
from promptkd.kernels.mmd import SMALL_ROWS, mmd2, mmd2_small


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
