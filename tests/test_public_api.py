"""The curated public API is pinned: additions and removals are deliberate."""

from __future__ import annotations

import subprocess
import sys

import promptkd

EXPECTED = {
    "AttentionProbe",
    "BM25Selector",
    "BaseSelector",
    "Bound",
    "BoundEstimator",
    "Budget",
    "BudgetInfeasibleError",
    "CalibrationReport",
    "DPPSelector",
    "Demo",
    "DemoPool",
    "ICLClassifier",
    "InvalidInputError",
    "InvalidTypeError",
    "MMRSelector",
    "MissingDependencyError",
    "ModelLoadError",
    "NotFittedError",
    "PersistenceError",
    "PoolFormatError",
    "ProbeReport",
    "PromptKDError",
    "PromptTemplate",
    "RandomSelector",
    "Selection",
    "Selector",
    "TopKSelector",
    "VoteKSelector",
    "__version__",
    "load_lm",
    "load_task",
    "run_experiment",
}


def test_all_is_pinned():
    assert set(promptkd.__all__) == EXPECTED
    assert len(promptkd.__all__) == len(set(promptkd.__all__))


def test_every_name_resolves():
    for name in promptkd.__all__:
        assert getattr(promptkd, name) is not None, name


def test_import_has_no_heavy_side_effects():
    code = (
        "import os, sys, warnings; import numpy, scipy, pydantic; "
        "before = dict(os.environ); filters = list(warnings.filters); import promptkd; "
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'matplotlib') if m in sys.modules]; "
        "assert not heavy, heavy; assert dict(os.environ) == before; assert warnings.filters == filters; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_error_families_subclass_builtins():
    assert issubclass(promptkd.InvalidInputError, ValueError)
    assert issubclass(promptkd.InvalidTypeError, TypeError)
    assert issubclass(promptkd.MissingDependencyError, ImportError)
    assert issubclass(promptkd.PoolFormatError, promptkd.PersistenceError)
    for name in ("InvalidInputError", "NotFittedError", "ModelLoadError", "BudgetInfeasibleError"):
        assert issubclass(getattr(promptkd, name), promptkd.PromptKDError)
