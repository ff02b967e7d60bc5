"""The budget constants shipped with promptkd, and the default token price.

``promptkd/bounds/data/constants.json`` holds ``A``, ``C`` and an intercept per
embedder/kernel family, fitted by ``benchmarks/calibrate_constants.py`` on dev splits
of the benchmark tasks (errors measured with the evaluation harness; the file lists which), and the
default token price. :class:`~promptkd.bounds.BoundEstimator` looks the family up
when it is fitted and uses its constants unless it is given its own (``A=``, ``C=``,
:meth:`~promptkd.bounds.BoundEstimator.set_constants`) or calibrated.

A family is an embedder id, a kernel and a bandwidth rule (a multiple of the pool's
median heuristic): the MMD and so ``C`` change with each of them, so constants fitted
for one family are not used for another.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from promptkd.exceptions import InvalidInputError

__all__ = [
    "ShippedConstants",
    "default_token_cost",
    "find_shipped",
    "points_per_100_tokens",
    "shipped_data",
]

#: Two bandwidths follow the same rule when their ratios to the median heuristic differ by less than this
#: (a seeded subsample moves the median by far less; the shipped rules differ by a factor of 2).
SCALE_TOLERANCE = 0.05


@dataclass(frozen=True)
class ShippedConstants:
    """One family's fitted budget constants, as stored in the package's data file.

    Attributes
    ----------
    name
        The family's name, e.g. ``"minilm-rbf-2x"``.
    A, C, intercept
        The constants of ``U(k) = intercept + A / sqrt(k) + C * MMD_b + lambda * tokens``.
    embedder
        The embedder id the MMD was measured with.
    kernel
        The kernel (``"rbf"``).
    median_scale
        The bandwidth as a multiple of the pool's median heuristic.
    lm
        The language model whose errors were fitted.
    r2
        Within-task R^2 of the fit (see the data file for the rest of its report).
    version
        The data file's version.

    Examples
    --------
    >>> c = find_shipped("sentence-transformers:all-MiniLM-L6-v2", "rbf", 2.0)
    >>> c is not None and c.kernel == "rbf" and c.A >= 0
    True
    """

    name: str
    A: float
    C: float
    intercept: float
    embedder: str
    kernel: str
    median_scale: float
    lm: str
    r2: float
    version: str

    @property
    def source(self) -> str:
        """One line saying which constants these are."""
        return (
            f"shipped constants '{self.name}' v{self.version} (fitted on {self.lm} dev errors, "
            f"{self.embedder} embeddings, {self.kernel} at {self.median_scale:g} x median bandwidth)"
        )


@lru_cache(maxsize=1)
def shipped_data() -> dict[str, Any]:
    """The parsed data file ``promptkd/bounds/data/constants.json`` (read once).

    Examples
    --------
    >>> data = shipped_data()
    >>> data["format"], sorted(data)[:2]
    (1, ['default_token_cost', 'families'])
    """
    text = resources.files("promptkd.bounds").joinpath("data", "constants.json").read_text(encoding="utf-8")
    data = json.loads(text)
    if data.get("format") != 1 or not isinstance(data.get("families"), list):
        raise InvalidInputError("promptkd/bounds/data/constants.json is not a format-1 constants file; reinstall.")
    return data


def _family(entry: dict[str, Any], version: str) -> ShippedConstants:
    return ShippedConstants(
        name=str(entry["name"]),
        A=float(entry["A"]),
        C=float(entry["C"]),
        intercept=float(entry["intercept"]),
        embedder=str(entry["embedder"]),
        kernel=str(entry["kernel"]),
        median_scale=float(entry["median_scale"]),
        lm=str(entry["lm"]),
        r2=float(entry["fit"]["r2_within"]),
        version=version,
    )


def find_shipped(embedder: str | None, kernel: str, median_scale: float | None) -> ShippedConstants | None:
    """The shipped constants for an embedder/kernel/bandwidth family, or None.

    Parameters
    ----------
    embedder
        The pool's embedder id (``DemoPool.embedder_id``); a content fingerprint after
        ``@`` is ignored.
    kernel
        The kernel name.
    median_scale
        The bandwidth divided by the pool's median heuristic (None when unknown).

    Examples
    --------
    >>> find_shipped("hashing-v1:dim=64", "rbf", 1.0) is None
    True
    """
    if embedder is None or median_scale is None or not math.isfinite(median_scale):
        return None
    base = embedder.split("@", 1)[0]
    data = shipped_data()
    for entry in data["families"]:
        same_scale = abs(median_scale / float(entry["median_scale"]) - 1.0) < SCALE_TOLERANCE
        if entry["embedder"] == base and entry["kernel"] == kernel and same_scale:
            return _family(entry, str(data["version"]))
    return None


def points_per_100_tokens(token_cost: float) -> float:
    """A token price in error per token, stated in accuracy points per 100 prompt tokens.

    Examples
    --------
    >>> points_per_100_tokens(0.0001)
    1.0
    """
    return round(float(token_cost) * 1e4, 10)


def default_token_cost() -> float:
    """The default token price ``lambda``, in error per token (the data file states it per 100 tokens).

    Examples
    --------
    >>> 0 < default_token_cost() < 0.01
    True
    """
    return float(shipped_data()["default_token_cost"]["points_per_100_tokens"]) / 1e4
