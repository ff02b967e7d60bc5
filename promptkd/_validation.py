"""Small argument checks shared across the library.

They turn bad input into :mod:`promptkd.exceptions` errors with messages that
name the argument, say what was wrong and how to fix it.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer >= ``minimum``.

    Examples
    --------
    >>> check_int(3, "k", minimum=1)
    3
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError(
            f"{name} must be an integer, got {type(value).__name__} ({value!r:.60}); pass a whole number."
        )
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidInputError(f"{name} must be >= {minimum}, got {value}; pass an integer of at least {minimum}.")
    return value


def check_float(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_min: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` inside the given range.

    Examples
    --------
    >>> check_float(0.5, "delta", minimum=0.0, maximum=1.0)
    0.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{name} must be a number, got {type(value).__name__} ({value!r:.60}); pass a float.")
    value = float(value)
    if not np.isfinite(value):
        raise InvalidInputError(f"{name} must be a finite number, got {value}; pass a finite value.")
    if minimum is not None and (value <= minimum if strict_min else value < minimum):
        op = ">" if strict_min else ">="
        raise InvalidInputError(f"{name} must be {op} {minimum}, got {value}; pass a value {op} {minimum}.")
    if maximum is not None and value > maximum:
        raise InvalidInputError(f"{name} must be <= {maximum}, got {value}; pass a value <= {maximum}.")
    return value


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``.

    Examples
    --------
    >>> check_choice("rbf", "kernel", ("rbf", "linear"))
    'rbf'
    """
    if not isinstance(value, str) or value not in choices:
        raise InvalidInputError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")
    return value


def as_matrix(
    value: Any,
    name: str,
    *,
    dim: int | None = None,
    allow_empty: bool = False,
    dtype: Any = np.float32,
) -> np.ndarray:
    """Validate a 2-D numeric matrix of finite values and return it as ``dtype``.

    A 1-D vector is accepted as one row. ``float16`` input is kept as ``float16``
    when ``dtype`` is ``None``.

    Examples
    --------
    >>> as_matrix([[1, 2], [3, 4]], "X").shape
    (2, 2)
    """
    if value is None:
        raise InvalidTypeError(f"{name} must be a 2-D array of numbers, got None.")
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise InvalidTypeError(f"{name} must be a 2-D array of numbers: {err}") from err
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InvalidTypeError(f"{name} must hold numbers, got an array of dtype {arr.dtype}.")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (rows x dimensions), got shape {arr.shape}.")
    if arr.shape[0] == 0 and not allow_empty:
        raise InvalidInputError(f"{name} is empty (shape {arr.shape}); pass at least one row.")
    if arr.shape[1] == 0:
        raise InvalidInputError(f"{name} has zero columns (shape {arr.shape}).")
    if dim is not None and arr.shape[1] != dim:
        raise InvalidInputError(
            f"{name} has dimension {arr.shape[1]} but {dim} was expected; embed it with the same embedder as the pool."
        )
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise InvalidInputError(f"{name} contains NaN or infinite values (first at row {bad}); clean or re-embed it.")
    return arr


def check_weights(weights: Any, n: int, name: str) -> np.ndarray:
    """Validate non-negative weights of length ``n`` and normalise them to sum 1.

    Examples
    --------
    >>> check_weights([1, 3], 2, "weights").tolist()
    [0.25, 0.75]
    """
    if weights is None:
        return np.full(n, 1.0 / n)
    try:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise InvalidTypeError(f"{name} must be a sequence of numbers: {err}") from err
    if w.shape[0] != n:
        raise InvalidInputError(f"{name} has {w.shape[0]} entries but there are {n} rows; pass one weight per row.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InvalidInputError(f"{name} must be finite and non-negative; remove NaN, inf and negative weights.")
    total = w.sum()
    if total <= 0:
        raise InvalidInputError(f"{name} must have a positive sum; give at least one row a positive weight.")
    return w / total
