"""promptkd: choose and order in-context-learning demonstrations by kernel MMD.

Examples
--------
>>> from promptkd import Demo, DemoPool, Selector
>>> from promptkd.embeddings import HashingEmbedder
>>> pool = DemoPool([Demo(input="loved it", output="positive"), Demo(input="hated it", output="negative")],
...                 embedder=HashingEmbedder())
>>> Selector(k=1).fit(pool).select("I loved this film").demos[0].output
'positive'
"""

from __future__ import annotations

import logging

from promptkd.bounds import Bound, BoundEstimator, Budget, CalibrationReport
from promptkd.evaluation import ICLClassifier, load_task, run_experiment
from promptkd.exceptions import (
    BudgetInfeasibleError,
    InvalidInputError,
    InvalidTypeError,
    MissingDependencyError,
    ModelLoadError,
    NotFittedError,
    PersistenceError,
    PoolFormatError,
    PromptKDError,
)
from promptkd.pool import Demo, DemoPool
from promptkd.probes import AttentionProbe, ProbeReport, load_lm
from promptkd.rendering import PromptTemplate
from promptkd.selection import (
    BaseSelector,
    BM25Selector,
    DPPSelector,
    MMRSelector,
    RandomSelector,
    Selection,
    Selector,
    TopKSelector,
    VoteKSelector,
)

__version__ = "0.1.0"

logging.getLogger("promptkd").addHandler(logging.NullHandler())

__all__ = [
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
]
