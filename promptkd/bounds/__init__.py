"""The KD bound, the bound-derived budget, calibration of its constants, and plots.

Examples
--------
>>> from promptkd import DemoPool
>>> from promptkd.bounds import BoundEstimator
>>> from promptkd.embeddings import HashingEmbedder
>>> pool = DemoPool([{"input": f"great film number {i}", "output": "pos"} for i in range(8)],
...                 embedder=HashingEmbedder(dim=64))
>>> est = BoundEstimator().fit(pool, "a great film")
>>> est.budget(k_max=4).k_star in range(1, 5)
True
"""

from promptkd.bounds.calibration import CalibrationReport, calibrate
from promptkd.bounds.estimator import BoundEstimator, theory_A
from promptkd.bounds.plots import plot_bound, plot_budget, plot_mmd_curves
from promptkd.bounds.report import report
from promptkd.bounds.results import Bound, Budget, BudgetPoint, MMDCurves
from promptkd.bounds.tokens import resolve_tokenizer
from promptkd.selection.budget import set_default_estimator_factory

# Selector(k="auto") builds its default budget estimator through this registry
set_default_estimator_factory(BoundEstimator)

__all__ = [
    "Bound",
    "BoundEstimator",
    "Budget",
    "BudgetPoint",
    "CalibrationReport",
    "MMDCurves",
    "calibrate",
    "plot_bound",
    "plot_budget",
    "plot_mmd_curves",
    "report",
    "resolve_tokenizer",
    "theory_A",
]
