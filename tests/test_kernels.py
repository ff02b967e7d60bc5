"""Mathematical properties of the kernels and the MMD estimators.

Reference values come from direct numpy implementations written here from the
formulas (Gretton et al. 2012), computed a different way from the library
(explicit pairwise differences instead of the ||x||^2 + ||y||^2 - 2<x, y> expansion).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist

from promptkd.exceptions import InvalidInputError
from promptkd.kernels import (
    KERNELS,
    cosine,
    imq,
    kernel_diag,
    laplacian,
    linear,
    median_bandwidth,
    mmd2,
    mmd2_from_kernels,
    mmd2_linear,
    mmd_permutation_test,
    rbf,
    resolve_bandwidth,
    sq_distances,
)

KERNEL_NAMES = ["rbf", "laplacian", "imq", "cosine", "linear"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def sample(n: int = 12, d: int = 5, seed: int = 0, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


# ---------------------------------------------------------------------------- direct reference implementations
def ref_gram(name: str, X: np.ndarray, Y: np.ndarray, sigma: float) -> np.ndarray:
    diff = X[:, None, :] - Y[None, :, :]
    d2 = (diff**2).sum(-1)
    if name == "rbf":
        return np.exp(-d2 / (2 * sigma**2))
    if name == "laplacian":
        return np.exp(-np.sqrt(d2) / sigma)
    if name == "imq":
        return 1.0 / np.sqrt(1.0 + d2 / sigma**2)
    if name == "linear":
        return np.einsum("id,jd->ij", X, Y)
    if name == "cosine":
        nx = np.sqrt((X**2).sum(1))[:, None]
        ny = np.sqrt((Y**2).sum(1))[None, :]
        return np.einsum("id,jd->ij", X, Y) / (nx * ny)
    raise AssertionError(name)


def ref_mmd2_biased(Kxx: np.ndarray, Kyy: np.ndarray, Kxy: np.ndarray) -> float:
    m, n = Kxy.shape
    total = 0.0
    total += sum(Kxx[i, j] for i in range(m) for j in range(m)) / m**2
    total += sum(Kyy[i, j] for i in range(n) for j in range(n)) / n**2
    total -= 2 * sum(Kxy[i, j] for i in range(m) for j in range(n)) / (m * n)
    return total


def ref_mmd2_unbiased(Kxx: np.ndarray, Kyy: np.ndarray, Kxy: np.ndarray) -> float:
    m, n = Kxy.shape
    sxx = sum(Kxx[i, j] for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(Kyy[i, j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(Kxy[i, j] for i in range(m) for j in range(n)) / (m * n)
    return sxx + syy - 2 * sxy


def ref_mmd2_weighted(Kxx: np.ndarray, Kyy: np.ndarray, Kxy: np.ndarray, w: np.ndarray, v: np.ndarray) -> float:
    w = w / w.sum()
    v = v / v.sum()
    return float(w @ Kxx @ w - 2 * w @ Kxy @ v + v @ Kyy @ v)


# ---------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_kernel_matches_reference_formula(name: str) -> None:
    X, Y = sample(7, 4, 1), sample(5, 4, 2)
    K = KERNELS[name](X, Y, bandwidth=1.3)
    np.testing.assert_allclose(K, ref_gram(name, X, Y, 1.3), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_kernel_symmetric_and_psd_numpy(name: str) -> None:
    X = sample(30, 6, 3)
    K = KERNELS[name](X, bandwidth=1.5)
    assert K.shape == (30, 30)
    np.testing.assert_allclose(K, K.T, atol=1e-10)
    eig = np.linalg.eigvalsh((K + K.T) / 2)
    assert eig.min() >= -1e-8 * max(1.0, eig.max())
    # k(X, Y) is the transpose of k(Y, X)
    Y = sample(4, 6, 4)
    np.testing.assert_allclose(KERNELS[name](X, Y, bandwidth=1.5), KERNELS[name](Y, X, bandwidth=1.5).T, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_kernel_torch_stays_on_device_and_matches_numpy(name: str, device: str) -> None:
    X = sample(20, 5, 5).astype(np.float32)
    Xt = torch.as_tensor(X, device=device)
    K = KERNELS[name](Xt, bandwidth=1.2)
    assert isinstance(K, torch.Tensor)
    assert K.device == Xt.device
    assert K.dtype == torch.float32
    np.testing.assert_allclose(K.cpu().numpy(), KERNELS[name](X, bandwidth=1.2), rtol=1e-4, atol=1e-5)
    Kc = K.double().cpu().numpy()
    np.testing.assert_allclose(Kc, Kc.T, atol=1e-5)
    assert np.linalg.eigvalsh((Kc + Kc.T) / 2).min() >= -1e-4
    diag = kernel_diag(Xt, kernel=name, bandwidth=1.2)
    assert isinstance(diag, torch.Tensor) and diag.device == Xt.device


@pytest.mark.parametrize("device", DEVICES)
def test_mmd_and_median_accept_torch_on_device(device: str) -> None:
    X, Y = sample(15, 3, 6), sample(12, 3, 7, shift=0.5)
    Xt, Yt = torch.as_tensor(X, device=device), torch.as_tensor(Y, device=device)
    assert mmd2(Xt, Yt) == pytest.approx(mmd2(X, Y), rel=1e-6, abs=1e-9)
    assert median_bandwidth(Xt, Yt) == pytest.approx(median_bandwidth(X, Y), rel=1e-6)
    assert sq_distances(Xt).device == Xt.device
    res = mmd_permutation_test(Xt, Yt, n_permutations=19, seed=1)
    ref = mmd_permutation_test(X, Y, n_permutations=19, seed=1)
    assert res.p_value == ref.p_value
    assert res.mmd2 == pytest.approx(ref.mmd2, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", ["rbf", "laplacian", "imq", "cosine"])
def test_normalised_kernels_have_unit_diagonal(name: str) -> None:
    X = sample(10, 3, 8) * 10.0
    K = KERNELS[name](X, bandwidth=0.7)
    np.testing.assert_allclose(np.diag(K), 1.0, atol=1e-12)
    np.testing.assert_allclose(kernel_diag(X, kernel=name, bandwidth=0.7), 1.0)
    assert np.all(K <= 1.0 + 1e-12)


def test_rbf_self_similarity_is_exactly_one_even_for_large_vectors() -> None:
    X = sample(6, 384, 9) * 1e3
    assert np.all(np.diag(rbf(X, bandwidth=1.0)) == 1.0)
    assert np.all(np.diag(sq_distances(X)) == 0.0)


def test_linear_kernel_diag_is_squared_norm() -> None:
    X = sample(5, 3, 10)
    np.testing.assert_allclose(kernel_diag(X, kernel="linear"), (X**2).sum(1))


def test_custom_callable_kernel_diag() -> None:
    X = sample(5, 3, 11)

    def poly(A: np.ndarray, B: np.ndarray | None = None, *, bandwidth: object = None) -> np.ndarray:
        B = A if B is None else B
        return (A @ B.T + 1.0) ** 2

    np.testing.assert_allclose(kernel_diag(X, kernel=poly), ((X**2).sum(1) + 1.0) ** 2)
    assert mmd2(X, X, kernel=poly) == pytest.approx(0.0, abs=1e-9)


def test_list_of_bandwidths_averages_the_kernels() -> None:
    X, Y = sample(6, 3, 12), sample(4, 3, 13)
    K = rbf(X, Y, bandwidth=[0.5, 2.0])
    np.testing.assert_allclose(K, (rbf(X, Y, bandwidth=0.5) + rbf(X, Y, bandwidth=2.0)) / 2)
    assert resolve_bandwidth(["median", 1.0], X) == (median_bandwidth(X), 1.0)


# ---------------------------------------------------------------------------- bandwidth
def test_median_bandwidth_matches_direct_computation() -> None:
    X, Y = sample(40, 5, 14), sample(25, 5, 15, shift=1.0)
    Z = np.vstack([X, Y])
    expected = np.sqrt(np.median(pdist(Z, "sqeuclidean")) / 2.0)
    assert median_bandwidth(X, Y) == pytest.approx(expected, rel=1e-9)
    assert median_bandwidth(X) == pytest.approx(np.sqrt(np.median(pdist(X, "sqeuclidean")) / 2.0), rel=1e-9)
    # the median heuristic gives k = exp(-1) at the median distance
    d2_med = np.median(pdist(Z, "sqeuclidean"))
    assert np.exp(-d2_med / (2 * median_bandwidth(X, Y) ** 2)) == pytest.approx(np.exp(-1.0))


def test_median_bandwidth_subsampling_is_seeded_and_close() -> None:
    X = sample(1500, 4, 16)
    full = np.sqrt(np.median(pdist(X, "sqeuclidean")) / 2.0)
    a = median_bandwidth(X, max_samples=400, seed=3)
    assert a == median_bandwidth(X, max_samples=400, seed=3)
    assert a == pytest.approx(full, rel=0.05)


def test_median_bandwidth_and_mmd_do_not_depend_on_the_order_of_the_samples() -> None:
    # two tight clusters far apart: the expansion's rounding is a visible part of the within-cluster
    # distances and depends on the rows' order, which once moved the median by 0.2 % between (X, Y) and (Y, X)
    X = 1.6589455 + np.array([[2.6e-7, -1e-9], [-9e-8, -1e-8], [0.0, 6.4e-8], [2.3e-7, 2.6e-7]])
    Y = np.array([[1.24e-7, 3.1e-8], [1.21e-7, -1.7e-8], [-1.1e-8, -2.0e-8], [-1.46e-7, -1.16e-7],
                  [9.5e-8, 4.4e-8], [2.7e-8, 3.6e-9], [6.4e-8, 1.74e-7], [-4.5e-8, 7.3e-8]])  # fmt: skip
    perm = np.random.default_rng(0).permutation(len(Y))
    assert median_bandwidth(X, Y) == median_bandwidth(Y, X) == median_bandwidth(X[::-1], Y[perm])
    assert mmd2(X, Y) == mmd2(Y, X) == mmd2(X[::-1], Y[perm])


def test_median_bandwidth_degenerate_inputs() -> None:
    assert median_bandwidth(np.ones((5, 3))) == 1.0
    assert median_bandwidth(np.ones((1, 3))) == 1.0
    assert median_bandwidth([[0.0], [2.0]]) == pytest.approx(np.sqrt(2.0))


# ---------------------------------------------------------------------------- MMD estimators
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_mmd2_agrees_with_direct_formulas(name: str) -> None:
    X, Y = sample(9, 4, 17), sample(7, 4, 18, shift=0.4)
    sigma = median_bandwidth(X, Y)
    Kxx, Kyy, Kxy = (ref_gram(name, A, B, sigma) for A, B in ((X, X), (Y, Y), (X, Y)))
    assert mmd2(X, Y, kernel=name) == pytest.approx(max(ref_mmd2_biased(Kxx, Kyy, Kxy), 0.0), abs=1e-6)
    assert mmd2(X, Y, kernel=name, unbiased=True) == pytest.approx(ref_mmd2_unbiased(Kxx, Kyy, Kxy), abs=1e-6)
    w = np.random.default_rng(1).uniform(0.1, 1.0, size=9)
    v = np.random.default_rng(2).uniform(0.1, 1.0, size=7)
    got = mmd2(X, Y, kernel=name, weights_x=w, weights_y=v)
    assert got == pytest.approx(max(ref_mmd2_weighted(Kxx, Kyy, Kxy, w, v), 0.0), abs=1e-6)
    # uniform weights are the biased estimator
    assert mmd2(X, Y, kernel=name, weights_x=np.ones(9)) == pytest.approx(mmd2(X, Y, kernel=name), abs=1e-12)


def test_mmd2_float32_inputs_agree_with_float64_reference() -> None:
    X, Y = sample(20, 16, 19), sample(15, 16, 20, shift=0.3)
    ref = ref_mmd2_biased(*(ref_gram("rbf", A, B, 2.0) for A, B in ((X, X), (Y, Y), (X, Y))))
    assert mmd2(X.astype(np.float32), Y.astype(np.float32), bandwidth=2.0) == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_mmd2_of_a_sample_with_itself_is_zero(name: str) -> None:
    X = sample(10, 3, 21)
    assert mmd2(X, X, kernel=name) == pytest.approx(0.0, abs=1e-9)
    assert mmd2(X, X.copy(), kernel=name, weights_x=np.arange(1, 11), weights_y=np.arange(1, 11)) == pytest.approx(
        0.0, abs=1e-9
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_biased_mmd2_is_non_negative(name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rng.integers(1, 8), 3))
    Y = rng.normal(size=(rng.integers(1, 8), 3))
    assert mmd2(X, Y, kernel=name) >= 0.0
    assert mmd2(X, Y, kernel=name, weights_x=rng.uniform(size=len(X)), weights_y=rng.uniform(size=len(Y))) >= 0.0


@pytest.mark.parametrize("name", ["rbf", "laplacian", "imq"])
def test_mmd2_is_invariant_to_row_order(name: str) -> None:
    X, Y = sample(11, 4, 22), sample(8, 4, 23, shift=0.5)
    rng = np.random.default_rng(0)
    px, py = rng.permutation(11), rng.permutation(8)
    for unbiased in (False, True):
        a = mmd2(X, Y, kernel=name, unbiased=unbiased)
        b = mmd2(X[px], Y[py], kernel=name, unbiased=unbiased)
        assert b == pytest.approx(a, abs=1e-12)
    w, v = rng.uniform(size=11), rng.uniform(size=8)
    a = mmd2(X, Y, kernel=name, weights_x=w, weights_y=v)
    assert mmd2(X[px], Y[py], kernel=name, weights_x=w[px], weights_y=v[py]) == pytest.approx(a, abs=1e-12)
    # swapping the two samples does not change the statistic either
    assert mmd2(Y, X, kernel=name) == pytest.approx(mmd2(X, Y, kernel=name), abs=1e-12)


def gaussian_rbf_population_mmd2(delta: float, s: float, ell: float, d: int) -> float:
    """Closed form MMD2 between N(0, s^2 I) and N(delta e_1, s^2 I) under exp(-|x-y|^2 / (2 ell^2))."""
    c = (ell**2 / (ell**2 + 2 * s**2)) ** (d / 2)
    return 2 * c * (1 - np.exp(-(delta**2) / (2 * (ell**2 + 2 * s**2))))


@pytest.mark.parametrize("delta", [0.0, 1.0])
def test_unbiased_estimator_expectation_matches_population_value(delta: float) -> None:
    rng = np.random.default_rng(123)
    d, m, n, draws, ell = 2, 8, 6, 600, 1.0
    shift = np.zeros(d)
    shift[0] = delta
    u, b = [], []
    for _ in range(draws):
        X, Y = rng.normal(size=(m, d)), rng.normal(size=(n, d)) + shift
        u.append(mmd2(X, Y, bandwidth=ell, unbiased=True))
        b.append(mmd2(X, Y, bandwidth=ell))
    u, b = np.asarray(u), np.asarray(b)
    target = gaussian_rbf_population_mmd2(delta, 1.0, ell, d)
    se = u.std(ddof=1) / np.sqrt(draws)
    assert abs(u.mean() - target) < 4 * se, (u.mean(), target, se)
    # the biased estimator is biased upwards by a clearly positive amount
    assert b.mean() - target > 4 * b.std(ddof=1) / np.sqrt(draws)
    if delta == 0.0:
        assert (u < 0).any()  # the unbiased estimator can go negative, as it should


def test_linear_time_estimator_is_unbiased() -> None:
    rng = np.random.default_rng(7)
    vals = [
        mmd2_linear(rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + np.array([1.0, 0.0]), bandwidth=1.0)
        for _ in range(300)
    ]
    target = gaussian_rbf_population_mmd2(1.0, 1.0, 1.0, 2)
    assert abs(np.mean(vals) - target) < 4 * np.std(vals, ddof=1) / np.sqrt(300)


def test_mmd2_from_kernels_matches_mmd2() -> None:
    X, Y = sample(6, 3, 24), sample(5, 3, 25)
    Kxx, Kyy, Kxy = rbf(X, bandwidth=1.0), rbf(Y, bandwidth=1.0), rbf(X, Y, bandwidth=1.0)
    assert mmd2_from_kernels(Kxx, Kyy, Kxy) == pytest.approx(mmd2(X, Y, bandwidth=1.0), abs=1e-12)
    assert mmd2_from_kernels(Kxx, Kyy, Kxy, unbiased=True) == pytest.approx(ref_mmd2_unbiased(Kxx, Kyy, Kxy), abs=1e-12)
    with pytest.raises(InvalidInputError, match="unbiased"):
        mmd2_from_kernels(Kxx, Kyy, Kxy, unbiased=True, weights_x=np.ones(6))


def test_mmd_grows_with_the_shift() -> None:
    X = sample(50, 2, 26)
    values = [mmd2(X, sample(50, 2, 27, shift=s), bandwidth=1.0) for s in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert np.all(np.diff(values) > 0)


# ---------------------------------------------------------------------------- permutation test
def test_permutation_pvalues_same_distribution_are_not_small() -> None:
    rng = np.random.default_rng(11)
    pvals = []
    for _ in range(40):
        X, Y = rng.normal(size=(15, 2)), rng.normal(size=(15, 2))
        pvals.append(mmd_permutation_test(X, Y, bandwidth=1.0, n_permutations=39, seed=int(rng.integers(1000))).p_value)
    pvals = np.asarray(pvals)
    assert np.all((pvals >= 1 / 40) & (pvals <= 1.0))
    # roughly uniform under H0: mean near 1/2, few rejections at 5 %
    assert 0.3 < pvals.mean() < 0.7
    assert (pvals <= 0.05).mean() <= 0.2
    # a Kolmogorov-Smirnov distance to U(0, 1) that a uniform sample of 40 rarely exceeds
    srt = np.sort(pvals)
    ks = np.max(np.abs(srt - np.arange(1, 41) / 40))
    assert ks < 0.3


def test_permutation_pvalue_small_for_shifted_distribution() -> None:
    rng = np.random.default_rng(12)
    for _ in range(5):
        X, Y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 1.5
        res = mmd_permutation_test(X, Y, n_permutations=99, seed=0)
        assert res.p_value <= 0.02
        stat, p_value = res  # unpacks as (mmd2, p_value)
        assert (stat, p_value) == (res.mmd2, res.p_value)
        assert res.mmd2 == pytest.approx(mmd2(X, Y), abs=1e-12)


def test_permutation_pvalue_formula_and_seed() -> None:
    X, Y = sample(10, 2, 28), sample(10, 2, 29)
    a = mmd_permutation_test(X, Y, n_permutations=50, seed=4)
    assert a == mmd_permutation_test(X, Y, n_permutations=50, seed=4)
    assert a.p_value * 51 == pytest.approx(round(a.p_value * 51))  # (1 + #exceed) / (1 + B)
    same = mmd_permutation_test(X, X, n_permutations=20, seed=0)
    assert same.p_value == 1.0  # every permutation is at least as extreme as a statistic of 0


def test_cdist_agrees_with_sq_distances() -> None:
    X, Y = sample(8, 6, 30), sample(5, 6, 31)
    np.testing.assert_allclose(sq_distances(X, Y), cdist(X, Y, "sqeuclidean"), atol=1e-9)


def test_every_named_kernel_is_reachable() -> None:
    assert set(KERNEL_NAMES) <= set(KERNELS)
    assert KERNELS["gaussian"] is rbf
    for fn in (rbf, laplacian, imq, cosine, linear):
        assert fn(sample(3, 2, 32), bandwidth=1.0).shape == (3, 3)


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_self_gram_diagonal_is_exact_so_laplacian_mmd_is_accurate(name: str) -> None:
    # the Laplacian kernel's square root turns 1e-16 rounding on the diagonal into 1e-8 errors
    rng = np.random.default_rng(0)
    C, T = rng.normal(size=(5, 3)), rng.normal(size=(2, 3))
    w = rng.dirichlet(np.ones(2))
    for rows in ([0], [1, 3], [0, 2, 4]):
        S = C[rows]
        Kss, Ktt, Kst = (ref_gram(name, A, B, 1.0) for A, B in ((S, S), (T, T), (S, T)))
        ref = ref_mmd2_weighted(Kss, Ktt, Kst, np.ones(len(rows)), w)
        assert mmd2(S, T, kernel=name, bandwidth=1.0, weights_y=w) == pytest.approx(max(ref, 0.0), abs=1e-12)
    X = rng.normal(size=(6, 4)) * 3
    assert np.all(np.diag(KERNELS[name](X, X, bandwidth=1.0)) == np.diag(KERNELS[name](X, bandwidth=1.0)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("as_torch", [False, True])
def test_duplicate_rows_across_samples_have_exact_zero_distance(dtype: type, as_torch: bool) -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(8, 384)).astype(dtype)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = np.vstack([X[3:6].copy(), rng.normal(size=(2, 384)).astype(dtype)])
    A, B = (torch.as_tensor(X), torch.as_tensor(Y)) if as_torch else (X, Y)
    D = sq_distances(A, B)
    D = D.numpy() if as_torch else D
    assert np.all(D[[3, 4, 5], [0, 1, 2]] == 0.0)
    K = laplacian(A, B, bandwidth=0.5)
    K = K.numpy() if as_torch else K
    assert np.all(K[[3, 4, 5], [0, 1, 2]] == 1.0)
    same = mmd2(A, torch.as_tensor(X.copy()) if as_torch else X.copy(), kernel="laplacian")
    assert same == pytest.approx(0.0, abs=1e-6 if dtype == np.float32 else 1e-12)  # float32 Gram rounding
    # large offsets do not swamp small distances either (the samples are centred first)
    far = X.astype(np.float64) + 1e4
    np.testing.assert_allclose(
        sq_distances(far[:3], far[3:6]), cdist(X[:3], X[3:6], "sqeuclidean"), rtol=1e-6, atol=1e-6
    )


def test_kernel_is_exactly_transpose_symmetric_and_median_ignores_tiny_scales() -> None:
    # found by fuzzing: centring on one sample's mean made k(X, Y) and k(Y, X).T differ by 2e-7
    X = np.array([[0.0]])
    Y = np.array([[9139.0], [0.0625], [0.0625000001], [0.0625], [0.0625]])
    bw = median_bandwidth(X, Y)
    np.testing.assert_array_equal(rbf(X, Y, bandwidth=bw), rbf(Y, X, bandwidth=bw).T)
    # a median squared distance of 1e-90 is no scale: the heuristic falls back to 1.0
    tiny = np.array([[1.4e-45, 1.4e-45]])
    assert median_bandwidth(tiny, np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])) == 1.0
