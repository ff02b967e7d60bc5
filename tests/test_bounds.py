"""Tests of promptkd.bounds (BoundEstimator, Bound, Budget, calibration, plots) and the MMD deviation interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promptkd import BudgetInfeasibleError, DemoPool, InvalidInputError, InvalidTypeError, NotFittedError, Selector
from promptkd.bounds import (
    Bound,
    BoundEstimator,
    Budget,
    CalibrationReport,
    MMDCurves,
    calibrate,
    report,
    resolve_tokenizer,
    theory_A,
)
from promptkd.kernels import mmd2
from promptkd.kernels.deviation import (
    effective_sample_size,
    kernel_bound,
    mmd_confidence_interval,
    mmd_deviation,
)
from promptkd.rendering import PromptTemplate
from promptkd.selection.candidates import per_row_candidates
from promptkd.selection.herding import herd

# ---------------------------------------------------------------------------- helpers


def direct_rbf(X: np.ndarray, Y: np.ndarray, sigma: float) -> np.ndarray:
    d2 = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2.0 * sigma**2))


def direct_mmd2(X: np.ndarray, Y: np.ndarray, sigma: float, v: np.ndarray | None = None) -> float:
    v = np.full(len(Y), 1.0 / len(Y)) if v is None else v
    w = np.full(len(X), 1.0 / len(X))
    return float(
        w @ direct_rbf(X, X, sigma) @ w + v @ direct_rbf(Y, Y, sigma) @ v - 2 * w @ direct_rbf(X, Y, sigma) @ v
    )


def array_pool(E: np.ndarray, seed: int = 0) -> DemoPool:
    """A pool with precomputed embeddings and texts of varying length (for token counts)."""
    rng = np.random.default_rng(seed)
    demos = [
        {"input": f"item {i} " + " ".join(["word"] * int(rng.integers(2, 12))), "output": "x"} for i in range(len(E))
    ]
    return DemoPool(demos, embeddings=np.asarray(E, dtype=np.float32))


@pytest.fixture(scope="module")
def gauss() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    d = 8
    return {"T": rng.normal(size=(50, d)), "base": rng.normal(size=(400, d))}


# ---------------------------------------------------------------------------- deviation (Gretton 2012, Thm 7)


def test_deviation_formula_matches_theorem() -> None:
    m, n, K, delta = 40, 90, 2.0, 0.1
    expected = 2 * (math.sqrt(K / m) + math.sqrt(K / n)) + math.sqrt(2 * K * (m + n) / (m * n) * math.log(2 / delta))
    assert mmd_deviation(m, n, K=K, delta=delta) == pytest.approx(expected, rel=1e-12)
    # solving 2 exp(-eps^2 m n / (2 K (m + n))) = delta for eps gives back delta
    eps = expected - 2 * (math.sqrt(K / m) + math.sqrt(K / n))
    assert 2 * math.exp(-(eps**2) * m * n / (2 * K * (m + n))) == pytest.approx(delta, rel=1e-9)


def test_confidence_interval_covers_the_population_mmd() -> None:
    # Gaussians N(0, I) and N(mu, I) with an rbf kernel have a closed-form population MMD.
    d, sigma, shift = 2, 1.5, 0.8
    c = (sigma**2 / (sigma**2 + 2.0)) ** (d / 2)
    true_mmd = math.sqrt(2 * c * (1 - math.exp(-(shift**2) / (2 * (sigma**2 + 2.0)))))
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(40):
        X = rng.normal(size=(60, d))
        Y = rng.normal(size=(60, d))
        Y[:, 0] += shift
        ci = mmd_confidence_interval(X, Y, bandwidth=sigma, delta=0.05)
        covered += ci.lower <= true_mmd <= ci.upper
        assert ci.lower <= ci.mmd <= ci.upper
    assert covered >= 38  # level 95%; the distribution-free bound is conservative


def test_confidence_interval_fields_and_assumptions() -> None:
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(30, 3)), rng.normal(size=(20, 3))
    ci = mmd_confidence_interval(X, Y, bandwidth=1.0, delta=0.1)
    assert ci.mmd2 == pytest.approx(direct_mmd2(X, Y, 1.0), abs=1e-6)
    assert ci.mmd == pytest.approx(math.sqrt(ci.mmd2))
    assert ci.half_width == pytest.approx(mmd_deviation(30, 20, K=1.0, delta=0.1))
    assert ci.assumption_holds and ci.to_dict()["theorem"].startswith("Gretton")
    assert not mmd_confidence_interval(X, Y, kernel="cosine").assumption_holds
    assert kernel_bound(X, kernel="linear") == pytest.approx(float((X**2).sum(1).max()), rel=1e-5)
    assert effective_sample_size([1, 1, 2], 3) == pytest.approx(1 / (0.25**2 + 0.25**2 + 0.5**2))
    w = np.array([0.5, 0.25, 0.25] + [0.0] * 17)
    assert mmd_confidence_interval(X, Y, bandwidth=1.0, weights_y=w).n == pytest.approx(1 / (0.25 + 2 * 0.0625))


@pytest.mark.parametrize(
    ("kwargs", "err"),
    [({"m": 0, "n": 5}, InvalidInputError), ({"m": 5, "n": 5, "delta": 1.0}, InvalidInputError)],
)
def test_deviation_bad_input(kwargs: dict, err: type) -> None:
    with pytest.raises(err, match=r"delta|m must"):
        mmd_deviation(**kwargs)


# ---------------------------------------------------------------------------- the bound


def test_theory_A_is_the_design_constant() -> None:
    assert theory_A() == pytest.approx(2 * math.sqrt(2) + math.sqrt(math.log(20) / 2))
    assert theory_A() == pytest.approx(4.05, abs=0.01)
    assert theory_A(rho=2, B=0.5, Phi=3, M=2, delta=0.01) == pytest.approx(
        2 * math.sqrt(2) * 3 + 2 * math.sqrt(math.log(100) / 2)
    )


def test_bound_terms_match_direct_computation(gauss: dict) -> None:
    E, T = gauss["base"][:120], gauss["T"]
    sigma = 2.5
    est = BoundEstimator(bandwidth=sigma, delta=0.1, M=2.0, rho=1.5, B=0.7, C=1.3).fit(array_pool(E), T)
    idx = [3, 17, 42, 5, 99, 64]
    b = est.bound(idx, empirical_risk=0.25)
    S = E[idx]
    m = len(idx)
    trace = float(np.trace(direct_rbf(S, S, sigma)))
    rad = 0.7 / m * math.sqrt(trace)
    assert b.trace_kss == pytest.approx(trace, rel=1e-6)
    assert b.rademacher == pytest.approx(rad, rel=1e-6)
    assert b.complexity_term == pytest.approx(2 * math.sqrt(2) * 1.5 * rad, rel=1e-6)
    assert b.confidence_term == pytest.approx(3 * 2.0 * math.sqrt(math.log(2 / 0.1) / (2 * m)), rel=1e-12)
    mmd2_direct = direct_mmd2(S, T, sigma)
    assert b.mmd2 == pytest.approx(mmd2_direct, abs=1e-6)
    assert b.mmd_term == pytest.approx(1.3 * math.sqrt(mmd2_direct), rel=1e-5)
    half = mmd_deviation(m, len(T), K=1.0, delta=0.1)
    assert b.mmd_interval.upper == pytest.approx(math.sqrt(mmd2_direct) + half, rel=1e-5)
    assert b.mmd_term_upper == pytest.approx(1.3 * b.mmd_interval.upper)
    assert b.total == pytest.approx(0.25 + b.complexity_term + b.confidence_term + b.mmd_term)
    assert b.total_upper == pytest.approx(b.total - b.mmd_term + b.mmd_term_upper)
    assert b.m == m and b.indices == tuple(idx) and b.Phi == 1.0 and b.n_target == len(T)
    d = b.to_dict()
    assert d["mmd_interval"]["half_width"] == pytest.approx(half) and d["indices"] == idx
    text = str(b)
    assert "complexity" in text and "MMD" in text and f"{b.total:.4f}" in text


def test_linear_kernel_derives_phi_and_uses_the_trace(gauss: dict) -> None:
    E, T = gauss["base"][:80], gauss["T"]
    est = BoundEstimator(kernel="linear").fit(array_pool(E), T)
    phi = math.sqrt(float((E.astype(np.float32) ** 2).sum(1).max()))
    assert est.Phi_ == pytest.approx(phi, rel=1e-5)
    assert pytest.approx(theory_A(Phi=phi), rel=1e-5) == est.A_
    idx = list(range(10))
    b = est.bound(idx)
    assert b.trace_kss == pytest.approx(float((E[idx] ** 2).sum()), rel=1e-5)
    assert not b.mmd_interval.assumption_holds  # a linear kernel can be negative


def test_complexity_term_falls_as_inverse_sqrt_m() -> None:
    rng = np.random.default_rng(3)
    E = rng.normal(size=(1600, 5))
    T = rng.normal(size=(20, 5))
    for kernel in ("rbf", "linear"):
        est = BoundEstimator(kernel=kernel, bandwidth=2.0).fit(array_pool(E), T)
        scaled = []
        for m in (25, 100, 400, 1600):
            b = est.bound(list(range(m)))
            scaled.append(b.complexity_term * math.sqrt(m))
            assert b.confidence_term * math.sqrt(m) == pytest.approx(3 * math.sqrt(math.log(40) / 2))
        # on i.i.d. data trace(K_SS) grows like m, so complexity * sqrt(m) is flat
        assert max(scaled) / min(scaled) < 1.1, (kernel, scaled)


def test_mmd_term_is_zero_for_target_draws_and_grows_with_shift() -> None:
    rng = np.random.default_rng(4)
    d = 4
    T = rng.normal(size=(200, d))
    same = rng.normal(size=(200, d))
    values, lowers, pvals = [], [], []
    for shift in (0.0, 1.0, 2.0, 3.0):
        E = same.copy()
        E[:, 0] += shift
        est = BoundEstimator(bandwidth=2.0).fit(array_pool(E), T)
        b = est.bound(list(range(200)), permutation_test=True, n_permutations=99)
        values.append(b.mmd_term)
        lowers.append(b.mmd_interval.lower)
        pvals.append(b.mmd_p_value)
        if shift == 0.0:
            assert b.mmd_interval.lower == 0.0  # consistent with MMD(P, Q) = 0
            assert b.mmd_p_value > 0.05
            assert mmd2(E, T, bandwidth=2.0, unbiased=True) == pytest.approx(0.0, abs=5e-3)
            assert b.mmd_term < 0.1
    assert values == sorted(values) and values[-1] > 5 * values[0]
    assert lowers[-1] > 0.0 and pvals[-1] <= 0.01


def test_bound_accepts_a_selection_and_a_text_target(hashing_pool: DemoPool) -> None:
    query = "sports news: the coach and the team"
    sel = Selector(k=4, kernel="rbf").fit(hashing_pool).select(query)  # the bound's kernel: an RBF on embeddings
    est = BoundEstimator(bandwidth=sel.bandwidth).fit(hashing_pool, query)
    b = est.bound(sel)
    assert b.m == 4 and set(b.indices) == set(sel.indices)
    assert b.mmd2 == pytest.approx(sel.objective, abs=1e-6)  # same kernel, bandwidth and target
    # the estimator's own default is the plain median heuristic; Selector scales it by median_scale
    plain = Selector(k=4, kernel="rbf", median_scale=1.0).fit(hashing_pool).select(query)
    assert BoundEstimator().fit(hashing_pool, query).bound(plain).mmd2 == pytest.approx(plain.objective, abs=1e-6)
    # Selection.mmd2 is the reference RBF at the plain median: the estimator's default
    assert BoundEstimator().fit(hashing_pool, query).bound(sel).mmd2 == pytest.approx(sel.mmd2, abs=1e-6)
    assert sel.bandwidth == pytest.approx(2.0 * plain.bandwidth)


# ---------------------------------------------------------------------------- the budget


def test_budget_terms_match_direct_computation(gauss: dict) -> None:
    E, T = gauss["base"], gauss["T"]
    pool = array_pool(E)
    est = BoundEstimator(bandwidth=2.5, candidates=100).fit(pool, T)
    budget = est.budget(k_max=12, token_cost=0.004)
    A = theory_A()
    tmpl = PromptTemplate()
    cum = 0
    for p, i in zip(budget.curve, budget.indices, strict=True):
        cum += len(tmpl.render_demo(pool[i]).split())
        m2 = mmd2(E[list(budget.indices[: p.k])].astype(np.float32), T, bandwidth=2.5)
        assert p.complexity == pytest.approx(A / math.sqrt(p.k))
        assert p.mmd2 == pytest.approx(m2, abs=1e-6) and p.mmd == pytest.approx(math.sqrt(m2), abs=1e-6)
        assert p.tokens == cum and p.token_term == pytest.approx(0.004 * cum)
        assert pytest.approx(p.complexity + p.mmd_term + p.token_term) == p.U
    assert budget.k_star == int(np.argmin(budget.U)) + 1
    assert budget.selected == budget.indices[: budget.k_star]
    sat = next((p.k for p in budget.curve if p.complexity < p.mmd_term), None)
    assert budget.saturation_k == sat
    assert pytest.approx(A) == budget.A and budget.constants == "theory"
    d = budget.to_dict()
    assert d["k_star"] == budget.k_star and len(d["curve"]) == 12 and d["U_star"] == pytest.approx(budget.U_star)
    assert f"k* = {budget.k_star}" in str(budget)


def test_budget_path_is_the_selectors_herding_path(gauss: dict) -> None:
    E, T = gauss["base"], gauss["T"]
    pool = array_pool(E)
    est = BoundEstimator(candidates=64).fit(pool, T)
    budget = est.budget(k_max=10)
    # the same greedy on the same candidate set
    U = E / np.linalg.norm(E, axis=1, keepdims=True)
    Tu = T / np.linalg.norm(T, axis=1, keepdims=True)
    sims = U @ Tu.mean(0)
    # the top 64 by the mean direction, plus each target point's own nearest items (multi-point target)
    cand = np.union1d(
        np.argsort(-sims, kind="stable")[:64], per_row_candidates(lambda D: D @ U.T, Tu, -(-64 // len(T)))
    )
    cand = cand[np.lexsort((cand, -sims[cand]))]
    res = herd(E[cand].astype(np.float32), T.astype(np.float32), np.full(len(T), 1 / len(T)), 10,
               bandwidth=est.bandwidth_)  # fmt: skip
    assert budget.indices == tuple(int(cand[j]) for j in res.order)
    assert [p.mmd2 for p in budget.curve] == pytest.approx(list(res.mmd2_path), abs=1e-5)
    sel = Selector(k=10, candidates=64, bandwidth=est.bandwidth_).fit(pool).select(T.astype(np.float32))
    assert sorted(sel.indices) == sorted(budget.indices)
    assert sel.mmd2_path == pytest.approx([p.mmd2 for p in budget.curve], abs=1e-5)


def test_k_star_moves_down_as_the_pool_drifts_from_the_target(gauss: dict) -> None:
    # constants on the scale calibrated constants take (the MMD term matters); see docs/theory.md
    ks = []
    for shift in (0.0, 1.0, 2.0, 3.0):
        E = gauss["base"].copy()
        E[:, 0] += shift
        est = BoundEstimator(A=0.5, C=2.0).fit(array_pool(E), gauss["T"])
        ks.append(est.budget(k_max=64, token_cost=0.0).k_star)  # free tokens: the drift alone
    assert ks == sorted(ks, reverse=True) and ks[-1] < ks[0] / 2, ks


def test_k_star_moves_down_as_token_cost_grows(gauss: dict) -> None:
    est = BoundEstimator().fit(array_pool(gauss["base"]), gauss["T"])
    ks = [est.budget(k_max=48, token_cost=lam).k_star for lam in (0.0, 0.001, 0.003, 0.01, 0.03, 0.1)]
    assert ks[0] == 48  # with theory constants and free tokens, more demos always help here
    assert ks == sorted(ks, reverse=True) and ks[-1] < ks[1] < ks[0], ks


def test_max_tokens_constraint_and_infeasible_budget(gauss: dict) -> None:
    pool = array_pool(gauss["base"])
    est = BoundEstimator().fit(pool, gauss["T"])
    budget = est.budget(k_max=30, max_tokens=60)
    star = budget.best
    assert star.feasible and star.tokens <= 60
    assert all(p.feasible == (p.tokens <= 60) for p in budget.curve)
    shortest = min(est.demo_tokens(range(len(pool))))
    with pytest.raises(BudgetInfeasibleError, match="is smaller than every candidate demonstration"):
        est.budget(k_max=5, max_tokens=int(shortest) - 1)
    long_only = est.budget(k_max=5, max_tokens=int(shortest) + 1)
    assert all(est.demo_tokens([i])[0] <= shortest + 1 for i in long_only.indices)


def test_max_acceptable_mmd(gauss: dict) -> None:
    est = BoundEstimator(C=2.0).fit(array_pool(gauss["base"]), gauss["T"])
    budget = est.budget(k_max=8, target_error=3.0)
    assert budget.max_acceptable_mmd() == pytest.approx(1.5)
    p = budget.point(4)
    assert budget.max_acceptable_mmd(3.0, k=4) == pytest.approx(max((3.0 - p.complexity - p.token_term) / 2.0, 0))
    assert budget.to_dict()["max_acceptable_mmd"] == pytest.approx(1.5)
    with pytest.raises(InvalidInputError, match="not on the budget curve"):
        budget.point(99)


def test_budget_with_text_targets_and_real_tokenizer(hashing_pool: DemoPool) -> None:
    est = BoundEstimator().fit(hashing_pool)
    chars = est.budget("finance news: the bank and the market", k_max=6, tokenizer=len)
    words = est.budget("finance news: the bank and the market", k_max=6)
    assert chars.indices == words.indices  # tokenization does not change the path
    assert chars.curve[0].tokens > words.curve[0].tokens
    assert chars.k_star >= 1


# ---------------------------------------------------------------------------- calibration


def test_calibrate_recovers_known_constants() -> None:
    rng = np.random.default_rng(5)
    A, C, c0 = 0.6, 0.35, 0.12
    records = []
    for k in (1, 2, 4, 8, 16, 32):
        for mmd in rng.uniform(0.05, 0.9, size=10):
            records.append((k, float(mmd), c0 + A / math.sqrt(k) + C * mmd + rng.normal(0, 0.01)))
    rep = calibrate(records)
    assert pytest.approx(A, rel=0.05) == rep.A
    assert pytest.approx(C, rel=0.05) == rep.C
    assert rep.intercept == pytest.approx(c0, abs=0.02)
    assert rep.r2 > 0.95 and rep.n == 60 and len(rep.residuals) == 60
    assert rep.rmse == pytest.approx(float(np.sqrt(np.mean(np.square(rep.residuals)))))
    assert np.allclose(rep.predict([r[0] for r in records], [r[1] for r in records]) + rep.residuals,
                       [r[2] for r in records])  # fmt: skip
    assert "R^2" in str(rep) and rep.to_dict()["n"] == 60


def test_calibrate_updates_the_estimator_budget(gauss: dict) -> None:
    est = BoundEstimator().fit(array_pool(gauss["base"]), gauss["T"])
    before = est.budget(k_max=8, token_cost=0.0)
    records = [
        {"k": k, "mmd2": m**2, "error": 0.1 + 0.5 / math.sqrt(k) + 2.0 * m} for k in (1, 3, 9) for m in (0.1, 0.6)
    ]
    rep = est.calibrate(records)
    assert isinstance(rep, CalibrationReport)
    after = est.budget(k_max=8, token_cost=0.0)
    assert after.constants == "calibrated" and before.constants == "theory"
    assert pytest.approx(0.5) == after.A and pytest.approx(2.0) == after.C and after.intercept == pytest.approx(0.1)
    assert pytest.approx(0.1 + 0.5 / math.sqrt(3) + 2.0 * after.point(3).mmd) == after.point(3).U
    assert est.bound(after.selected).C == 1.0  # the bound keeps the theory's constants
    est.reset_calibration()
    assert pytest.approx(theory_A()) == est.budget(k_max=8).A


@pytest.mark.parametrize(
    ("records", "err", "match"),
    [
        ([], InvalidInputError, "empty"),
        ([(1, 0.1, 0.5), (2, 0.2, 0.4)], InvalidInputError, "at least 3 records"),
        ([(1, 0.1, 0.5), (1, 0.2, 0.4), (1, 0.3, 0.2)], InvalidInputError, "do not vary enough"),
        ([(0, 0.1, 0.5)], InvalidInputError, "must be >= 1"),
        ([(1, -0.1, 0.5)], InvalidInputError, "MMD is >= 0"),
        ([(1, 0.1)], InvalidTypeError, "triple"),
        ([{"k": 1, "error": 0.2}], InvalidInputError, "needs keys"),
        ("k,mmd,error", InvalidTypeError, "iterable"),
    ],
)
def test_calibrate_bad_records(records: object, err: type, match: str) -> None:
    with pytest.raises(err, match=match):
        calibrate(records)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- bad input


def test_estimator_bad_input(hashing_pool: DemoPool) -> None:
    with pytest.raises(NotFittedError, match="fit"):
        BoundEstimator().budget("q")
    with pytest.raises(InvalidTypeError, match="DemoPool"):
        BoundEstimator().fit([1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="delta"):
        BoundEstimator(delta=1.5).fit(hashing_pool)
    with pytest.raises(InvalidInputError, match="kernel"):
        BoundEstimator(kernel="nope").fit(hashing_pool)
    est = BoundEstimator().fit(hashing_pool)
    with pytest.raises(InvalidInputError, match="no target"):
        est.budget()
    with pytest.raises(InvalidInputError, match="outside the pool"):
        est.bound([0, 99], target="q")
    with pytest.raises(InvalidInputError, match="empty"):
        est.bound([], target="q")
    with pytest.raises(InvalidTypeError, match="integers"):
        est.bound([0.5], target="q")
    with pytest.raises(InvalidInputError, match="k_max must be >= 1"):
        est.budget("q", k_max=0)
    with pytest.raises(InvalidInputError, match="token_cost"):
        est.budget("q", token_cost=-1.0)
    with pytest.raises(InvalidInputError, match="dimension"):
        est.budget(np.zeros((2, 5)))
    with pytest.raises(InvalidTypeError, match="tokenizer"):
        est.budget("q", tokenizer=42)
    with pytest.raises(InvalidTypeError, match="either estimator"):
        report(hashing_pool, "q", estimator=BoundEstimator(), delta=0.1)


def test_resolve_tokenizer_kinds() -> None:
    class Enc:
        def encode(self, text: str) -> list[int]:
            return [0] * len(text.split("-"))

    assert resolve_tokenizer(Enc())("a-b-c") == 3
    assert resolve_tokenizer(lambda s: 7)("anything") == 7
    assert resolve_tokenizer(None)("two words") == 2
    with pytest.raises(InvalidTypeError, match="non-negative int"):
        resolve_tokenizer(lambda s: True)("x")
    with pytest.raises(InvalidInputError, match="empty"):
        resolve_tokenizer("  ")


def test_budget_respects_an_allowed_mask(gauss: dict) -> None:
    pool = array_pool(gauss["base"])
    est = BoundEstimator().fit(pool, gauss["T"])
    allowed = np.zeros(len(pool), dtype=bool)
    allowed[::3] = True
    budget = est.budget(k_max=12, allowed=allowed)
    assert all(i % 3 == 0 for i in budget.indices) and len(budget.indices) == 12
    # the same as the budget on the sub-pool of allowed demos (same bandwidth)
    sub = BoundEstimator(bandwidth=est.bandwidth_).fit(array_pool(gauss["base"][::3]), gauss["T"])
    assert budget.indices == tuple(3 * i for i in sub.budget(k_max=12).indices)
    with pytest.raises(InvalidInputError, match="boolean mask"):
        est.budget(k_max=3, allowed=[1, 0])
    with pytest.raises(InvalidInputError, match="excludes every"):
        est.budget(k_max=3, allowed=np.zeros(len(pool), dtype=bool))


# ---------------------------------------------------------------------------- plots, curves and the report


def test_mmd_curves_herding_beats_random(gauss: dict) -> None:
    est = BoundEstimator().fit(array_pool(gauss["base"]), gauss["T"])
    curves = est.mmd_curves(k_max=12, n_random=8)
    assert isinstance(curves, MMDCurves) and curves.k == tuple(range(1, 13))
    assert all(h <= r for h, r in zip(curves.herding, curves.random_mean, strict=True))
    assert all(lo <= mean <= hi for lo, mean, hi in zip(curves.random_low, curves.random_mean, curves.random_high,
                                                          strict=True))  # fmt: skip
    assert curves.to_dict()["n_random"] == 8 and max(curves.ratio) < 1.0


def test_plots_return_figures(gauss: dict, tmp_path) -> None:
    from matplotlib.figure import Figure

    est = BoundEstimator().fit(array_pool(gauss["base"]), gauss["T"])
    budget = est.budget(k_max=10, token_cost=0.01, max_tokens=50)
    bound = est.bound(budget.selected)
    curves = est.mmd_curves(k_max=10, n_random=4)
    for fig in (budget.plot(), bound.plot(), curves.plot()):
        assert isinstance(fig, Figure) and fig.axes
        out = tmp_path / "f.png"
        fig.savefig(out)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [t.get_text() for t in budget.plot().axes[0].get_legend().get_texts()]
    assert any(f"k* = {budget.k_star}" in s for s in labels)


@pytest.mark.slow
def test_report_with_the_real_embedder_writes_a_png(st_embedder, tmp_path) -> None:
    from conftest import make_demos

    pool = DemoPool(make_demos(n_per_label=12), embedder=st_embedder)
    queries = ["The coach praised the team after the match", "Shares and stock prices rose at the bank"]
    out = tmp_path / "bound.png"
    budget, bound = report(pool, queries, k_max=10, out_png=out, token_cost=0.005, n_random=5, n_permutations=50)
    assert isinstance(budget, Budget) and isinstance(bound, Bound)
    assert bound.m == budget.k_star and bound.indices == budget.selected and bound.mmd_p_value is not None
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # herding covers both target topics before anything else
    assert {pool[i].output for i in budget.indices[:2]} == {"sports", "finance"}
    # a real transformers tokenizer (the MiniLM one shipped offline) counts subword tokens
    from promptkd.embeddings.sentence_transformers import default_model_path

    sub = BoundEstimator().fit(pool).budget(queries, k_max=6, tokenizer=str(default_model_path()))
    assert sub.indices == budget.indices[:6] and sub.curve[-1].tokens > 0


@pytest.mark.parametrize("version", ["empirical", "expected"])
def test_each_version_of_the_bound_has_its_own_terms_on_a_non_unit_kernel(gauss: dict, version: str) -> None:
    """Linear kernel (k(x, x) = ||x||^2, not 1): every term checked against its formula."""
    E, T = gauss["base"] * 1.7, gauss["T"]
    est = BoundEstimator(kernel="linear", rademacher=version, delta=0.1, M=2.0, rho=0.5, B=3.0).fit(array_pool(E), T)
    idx = [0, 5, 9, 17, 40]
    b = est.bound(idx)
    m = len(idx)
    trace = float(np.sum(E[idx].astype(np.float32).astype(np.float64) ** 2))
    if version == "empirical":
        rad = 3.0 / m * np.sqrt(trace)
        conf = 3 * 2.0 * np.sqrt(np.log(2 / 0.1) / (2 * m))
    else:
        phi = np.sqrt(np.max(np.sum(E.astype(np.float64) ** 2, axis=1)))
        rad = 3.0 * phi / np.sqrt(m)
        conf = 2.0 * np.sqrt(np.log(1 / 0.1) / (2 * m))
    assert b.version == version and b.formula.startswith("R_Q <=")
    assert b.rademacher == pytest.approx(rad, rel=1e-4)
    assert b.complexity_term == pytest.approx(2 * np.sqrt(2) * 0.5 * rad, rel=1e-4)
    assert b.confidence_term == pytest.approx(conf, rel=1e-12)
    assert b.total == pytest.approx(b.complexity_term + b.confidence_term + b.mmd_term)
    with pytest.raises(InvalidInputError, match="rademacher"):
        BoundEstimator(rademacher="both").fit(array_pool(E))


def test_a_budget_that_never_turns_says_which_term_to_change(gauss: dict, caplog: pytest.LogCaptureFixture) -> None:
    from promptkd.bounds import estimator as est_module

    est_module._WARNED_NO_TURN.clear()
    est = BoundEstimator().fit(array_pool(gauss["base"]), gauss["T"])  # theory constants (no embedder)
    with caplog.at_level("WARNING", logger="promptkd"):
        budget = est.budget(k_max=6, token_cost=0.0)  # no token price
    assert budget.k_star == 6
    assert "k* = k_max = 6" in caplog.text and "token_cost" in caplog.text and "calibrate" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="promptkd"):
        est = BoundEstimator(A=0.01, C=1.0).fit(array_pool(gauss["base"]), gauss["T"])
        assert est.budget(k_max=6, token_cost=0.1).k_star < 6
    assert "k_max" not in caplog.text
