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
from promptkd.rendering import PromptTemplate
from promptkd.selection import BaseSelector, Selection, Selector

__version__ = "0.1.0"

logging.getLogger("promptkd").addHandler(logging.NullHandler())

__all__ = [
    "BaseSelector",
    "BudgetInfeasibleError",
    "Demo",
    "DemoPool",
    "InvalidInputError",
    "InvalidTypeError",
    "MissingDependencyError",
    "ModelLoadError",
    "NotFittedError",
    "PersistenceError",
    "PoolFormatError",
    "PromptKDError",
    "PromptTemplate",
    "Selection",
    "Selector",
    "__version__",
]
