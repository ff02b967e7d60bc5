"""The shipped budget constants, their precedence, the default token price and how a Selection shows them."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomllib

from promptkd import DemoPool, Selector
from promptkd.bounds import BoundEstimator, theory_A
from promptkd.bounds.constants import unit_diagonal
from promptkd.bounds.results import Budget, BudgetPoint
from promptkd.bounds.shipped import (
    default_token_cost,
    find_shipped,
    points_per_100_tokens,
    shipped_data,
)
from promptkd.embeddings import HashingEmbedder
from promptkd.exceptions import InvalidInputError
from promptkd.kernels import RBF, LabelKernel, Laplacian, LexicalKernel, Linear

MINILM = "sentence-transformers:all-MiniLM-L6-v2"
REPO = Path(__file__).resolve().parents[1]


class MiniLMStandIn:
    """Hashing vectors under MiniLM's id: the shipped family is chosen by id, so no model is needed here."""

    id = MINILM

    def __init__(self) -> None:
        self._inner = HashingEmbedder(dim=64)

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        return self._inner.encode(texts, **kwargs)


@pytest.fixture
def minilm_pool(hashing_pool: DemoPool) -> DemoPool:
    return DemoPool(list(hashing_pool), embedder=MiniLMStandIn())


def family(scale: float) -> dict:
    return next(f for f in shipped_data()["families"] if f["median_scale"] == scale)


# ---------------------------------------------------------------------------- the data file


def test_the_data_file_is_package_data_with_a_family_per_bandwidth_rule() -> None:
    path = resources.files("promptkd.bounds").joinpath("data", "constants.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == 1 and data["version"] and "calibrate_constants.py" in data["generated_by"]
    assert {(f["embedder"], f["kernel"], f["median_scale"]) for f in data["families"]} == {
        (MINILM, "rbf", 1.0),
        (MINILM, "rbf", 2.0),
    }
    for f in data["families"]:
        assert all(math.isfinite(f[key]) for key in ("A", "C", "intercept"))
        assert f["A"] >= 0 and f["C"] >= 0 and f["lm"] == "gemma-3-270m"
        assert set(f["fit"]) >= {"r2_within", "r2", "rmse", "bootstrap_95", "n_records"}
    # the wheel carries it
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "bounds/data/*.json" in package_data["promptkd"]


def test_find_shipped_matches_embedder_kernel_and_bandwidth_rule() -> None:
    c = find_shipped(MINILM + "@abc123", "rbf", 2.0 * 1.03)  # fingerprint ignored, scale within 5%
    assert c is not None and c.median_scale == 2.0 and family(2.0)["A"] == c.A
    assert "gemma-3-270m" in c.source and "2 x median" in c.source
    assert find_shipped(MINILM, "rbf", 1.5) is None
    assert find_shipped(MINILM, "laplacian", 1.0) is None
    assert find_shipped("hashing-v1:dim=64", "rbf", 1.0) is None
    assert find_shipped(None, "rbf", 1.0) is None


def test_default_token_cost_is_stated_per_100_tokens() -> None:
    points = shipped_data()["default_token_cost"]["points_per_100_tokens"]
    assert points > 0
    assert default_token_cost() == pytest.approx(points / 1e4)
    assert points_per_100_tokens(default_token_cost()) == pytest.approx(points)


# ---------------------------------------------------------------------------- which constants the budget uses


def test_an_estimator_on_a_minilm_pool_uses_the_shipped_constants(minilm_pool: DemoPool) -> None:
    est = BoundEstimator().fit(minilm_pool, "the coach and the team")  # 1 x median bandwidth
    f = family(1.0)
    assert est.constants_ == "shipped"
    assert (est.A_, est.C_, est.intercept_) == pytest.approx((f["A"], f["C"], f["intercept"]))
    budget = est.budget(k_max=5, token_cost=0.0)
    assert budget.constants == "shipped" and budget.constants_source.startswith("shipped constants 'minilm-rbf-1x'")
    p = budget.point(3)
    assert pytest.approx(f["intercept"] + f["A"] / math.sqrt(3) + f["C"] * p.mmd) == p.U
    # the bound itself keeps the theory's constants: the shipped ones are a budget calibration
    assert est.bound(budget.selected).C == 1.0


def test_own_constants_calibration_and_theory_take_precedence(minilm_pool: DemoPool) -> None:
    user = BoundEstimator(A=0.7).fit(minilm_pool)
    assert user.constants_ == "user" and user.A_ == 0.7 and user.intercept_ == 0.0
    assert BoundEstimator(C=2.0).fit(minilm_pool).constants_ == "user"
    theory = BoundEstimator(constants="theory").fit(minilm_pool)
    assert theory.constants_ == "theory" and pytest.approx(theory_A()) == theory.A_
    cal = BoundEstimator().fit(minilm_pool).set_constants(0.3, 0.4, 0.05)
    assert cal.constants_ == "calibrated" and (cal.A_, cal.C_, cal.intercept_) == (0.3, 0.4, 0.05)
    cal.reset_calibration()
    assert cal.constants_ == "shipped"
    with pytest.raises(InvalidInputError, match="constants="):
        BoundEstimator(constants="mine").fit(minilm_pool)


def test_an_unknown_family_falls_back_to_theory_and_says_why(hashing_pool: DemoPool, minilm_pool: DemoPool) -> None:
    est = BoundEstimator().fit(hashing_pool)
    assert est.constants_ == "theory" and pytest.approx(theory_A()) == est.A_
    assert "no shipped constants for embedder 'hashing-v1:dim=128'" in est.constants_source_
    odd = BoundEstimator(bandwidth=3.7).fit(minilm_pool)  # a bandwidth outside the shipped rules
    assert odd.constants_ == "theory" and "x median bandwidth" in odd.constants_source_


def test_the_selector_budget_uses_the_shipped_constants_for_its_bandwidth(minilm_pool: DemoPool) -> None:
    sel = Selector(k="auto", k_max=6, candidates=30).fit(minilm_pool)  # 2 x median by default
    s = sel.select("the coach and the team")
    f = family(2.0)
    assert s.budget.constants == "shipped" and pytest.approx(f["A"]) == s.budget.A
    assert "minilm-rbf-2x" in s.budget.constants_source


# ---------------------------------------------------------------------------- the token price on display


def test_budget_states_the_token_price_in_points_per_100_tokens() -> None:
    point = BudgetPoint(1, 0.5, 0.04, 0.2, 0.1, 40, 0.012, 0.612, True)
    b = Budget(1, (point,), (0,), None, 0.5, 0.5, 0.0, "shipped", 0.0003, None, constants_source="shipped x")
    assert b.token_cost_points == pytest.approx(3.0)
    text = str(b)
    assert "3 accuracy points per 100 tokens" in text and "constants: shipped x" in text
    d = b.to_dict()
    assert d["token_cost_points_per_100_tokens"] == pytest.approx(3.0) and d["constants_source"] == "shipped x"


def test_budget_without_a_token_cost_uses_the_default_price(minilm_pool: DemoPool) -> None:
    est = BoundEstimator().fit(minilm_pool, "profit at the bank")
    assert est.budget(k_max=4).token_cost == pytest.approx(default_token_cost())
    assert est.budget(k_max=4, token_cost=0.0).token_cost == 0.0


def test_selector_auto_charges_the_default_price_unless_told_otherwise(minilm_pool: DemoPool) -> None:
    default = Selector(k="auto", k_max=6, candidates=30).fit(minilm_pool).select("profit at the bank")
    assert default.budget.token_cost == pytest.approx(default_token_cost())
    free = Selector(k="auto", k_max=6, candidates=30, token_cost=0.0).fit(minilm_pool).select("profit at the bank")
    assert free.budget.token_cost == 0.0
    # the price only ever lowers the chosen size on the same herding path
    assert default.budget.k_star <= free.budget.k_star
    # a fixed k with the default price builds no estimator: nothing to charge
    assert Selector(k=3).fit(minilm_pool).estimator_ is None


def test_explain_shows_k_star_the_token_price_and_the_constants(minilm_pool: DemoPool) -> None:
    sel = Selector(k="auto", k_max=6, candidates=30, token_cost=0.0002).fit(minilm_pool)
    s = sel.select("the coach and the team")
    text = s.explain()
    assert f"budget: k*={s.budget.k_star} of k=1..6" in text
    assert "token price: 2 accuracy points per 100 prompt tokens (token_cost=0.0002)" in text
    assert "(shipped)" in text and "from: shipped constants 'minilm-rbf-2x'" in text


# ---------------------------------------------------------------------------- unit diagonal by capability


def test_unit_diagonal_is_read_from_the_kernel_object() -> None:
    assert unit_diagonal("rbf") and unit_diagonal("cosine") and unit_diagonal(RBF())
    assert not unit_diagonal("linear") and not unit_diagonal(Linear())
    assert unit_diagonal(RBF() * Laplacian())
    assert not unit_diagonal(RBF() * LabelKernel())  # label distributions are not unit vectors
    assert not unit_diagonal(RBF() + LexicalKernel())  # a sum of two unit kernels has diagonal 2
    assert not unit_diagonal(lambda X, Y: X @ Y.T)  # a plain callable: not known, Phi comes from the pool


def test_a_linear_kernel_still_derives_phi_from_the_pool(hashing_pool: DemoPool) -> None:
    E = np.asarray(hashing_pool.embed(), dtype=np.float64)
    est = BoundEstimator(kernel="linear").fit(hashing_pool)
    assert est.Phi_ == pytest.approx(np.sqrt(np.max(np.sum(E**2, axis=1))), rel=1e-5)
    assert BoundEstimator(kernel="rbf").fit(hashing_pool).Phi_ == 1.0
