"""The exception hierarchy of promptkd.

Every error the library raises on purpose derives from :class:`PromptKDError`, so
applications can catch one class. Each family also derives from the built-in
exception a Python user would expect (``ValueError`` for bad values, ``TypeError``
for wrong types, ``ImportError`` for a missing optional dependency, ``OSError`` for
files), so generic handlers keep working.

Messages follow one rule: say which argument (or file) was wrong, what was wrong
with it, and how to fix it.

Examples
--------
>>> from promptkd.exceptions import InvalidInputError, PromptKDError
>>> try:
...     raise InvalidInputError("k must be a positive integer, got 0; pass k >= 1.")
... except PromptKDError as err:
...     print(type(err).__name__)
InvalidInputError
"""

from __future__ import annotations

__all__ = [
    "BudgetInfeasibleError",
    "InvalidInputError",
    "InvalidTypeError",
    "MissingDependencyError",
    "ModelLoadError",
    "NotFittedError",
    "PersistenceError",
    "PoolFormatError",
    "PromptKDError",
]


class PromptKDError(Exception):
    """Root of every error promptkd raises on purpose."""


class InvalidInputError(PromptKDError, ValueError):
    """An argument has an invalid value (empty, out of range, NaN, wrong shape...)."""


class InvalidTypeError(InvalidInputError, TypeError):
    """An argument has the wrong type."""


class NotFittedError(PromptKDError, AttributeError):
    """A selector or estimator was used before ``fit`` was called."""


class MissingDependencyError(PromptKDError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


class PersistenceError(PromptKDError, OSError):
    """Reading or writing a saved object failed."""


class PoolFormatError(PersistenceError):
    """A saved pool directory is damaged, foreign, or from a newer schema."""


class ModelLoadError(PromptKDError, OSError):
    """A model could not be loaded (missing package, offline and not cached, bad path)."""


class BudgetInfeasibleError(PromptKDError, ValueError):
    """No selection can satisfy the requested budget (e.g. max_tokens too small)."""
