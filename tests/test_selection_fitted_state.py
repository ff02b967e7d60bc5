"""What ``Selector.fit`` builds: the budget estimator only when it is needed, and no Demo of a lazy pool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from promptkd import DemoPool, Selector
from promptkd.embeddings import HashingEmbedder
from promptkd.kernels import RBF, LabelKernel, LexicalKernel

pytest.importorskip("pyarrow")


def lazy_pool(tmp_path: Path, n: int = 200) -> DemoPool:
    rng = np.random.default_rng(0)
    words = ["river", "bank", "coach", "team", "cell", "protein", "market", "goal"]
    demos = [
        {
            "input": " ".join(rng.choice(words, size=4)) + f" {i}",
            "output": str(i % 3),
            **({"input_pair": f"second {i}"} if i % 7 == 0 else {}),
        }
        for i in range(n)
    ]
    pool = DemoPool(demos, embedder=HashingEmbedder(dim=64))
    pool.embed()
    return DemoPool.open(pool.save(tmp_path / "pool", layout="arrow"), embedder=HashingEmbedder(dim=64))


@pytest.mark.parametrize(
    "kernel",
    ["rbf", RBF() * LabelKernel(beta=0.25), RBF() + 0.5 * LexicalKernel()],
    ids=["rbf", "rbf-x-label", "rbf-plus-lexical"],
)
def test_fit_and_select_build_only_the_selected_demos(tmp_path: Path, kernel) -> None:
    pool = lazy_pool(tmp_path)
    demos = pool.snapshot().demos
    sel = Selector(k=4, kernel=kernel, candidates=40).fit(pool)
    assert demos.built == 0  # labels, lexical rows and the candidate stage read columns only
    assert sel.estimator_ is None  # a fixed k builds no budget estimator
    out = sel.select("the coach and the team at the river")
    assert len(out) == 4 and demos.built == 4


def test_lexical_rows_read_the_pair_text_as_demo_text(tmp_path: Path) -> None:
    pool = lazy_pool(tmp_path, n=30)
    sel = Selector(k=2, kernel=RBF() + LexicalKernel(), candidates=10).fit(pool)
    eager = Selector(k=2, kernel=RBF() + LexicalKernel(), candidates=10).fit(
        DemoPool.load(tmp_path / "pool", embedder=HashingEmbedder(dim=64))
    )
    assert (sel.lexical_rows_ != eager.lexical_rows_).nnz == 0
    assert "second" in sel.lexical_.vocabulary  # the input_pair text is part of the demo's text


def test_the_estimator_is_built_in_fit_only_when_needed(tmp_path: Path) -> None:
    pool = lazy_pool(tmp_path, n=60)
    assert Selector(k=3).fit(pool).estimator_ is None
    auto = Selector(k="auto", k_max=5, candidates=20).fit(pool)
    assert auto.estimator_ is not None
    before = auto.estimator_
    auto.select("coach team")
    assert auto.estimator_ is before  # select reads it, never replaces it
