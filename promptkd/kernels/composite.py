"""Sums, products and positive multiples of kernel objects (what ``+``, ``*`` and a weight build)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.kernels.columns import ColumnProvider
from promptkd.kernels.functions import Array
from promptkd.kernels.objects import Kernel

__all__ = ["ProductKernel", "ScaledKernel", "SumKernel"]


class _Composite(Kernel):
    view = None

    def __init__(self, *parts: Kernel) -> None:
        flat: list[Kernel] = []
        for p in parts:
            if not isinstance(p, Kernel):
                raise InvalidTypeError(f"kernel parts must be Kernel objects, got {type(p).__name__}.")
            flat.extend(p.parts if type(p) is type(self) else (p,))  # type: ignore[attr-defined]
        self.parts: tuple[Kernel, ...] = tuple(flat)

    @property
    def views(self) -> frozenset[str]:
        return frozenset().union(*(p.views for p in self.parts))

    @property
    def resolved(self) -> bool:
        return all(p.resolved for p in self.parts)

    @property
    def gemm(self) -> bool:  # type: ignore[override]
        return all(p.gemm for p in self.parts)

    @property
    def nonnegative(self) -> bool:  # type: ignore[override]
        return all(p.nonnegative for p in self.parts)

    def _key(self) -> tuple[Any, ...]:
        return self.parts

    def without(self, view: str) -> Kernel | None:
        kept = [q for q in (p.without(view) for p in self.parts) if q is not None]
        if len(kept) == len(self.parts):
            return self
        return None if not kept else kept[0] if len(kept) == 1 else type(self)(*kept)

    def resolve(
        self, X: Any = None, Y: Any = None, *, median_scale: float = 1.0, median: float | None = None
    ) -> Kernel:
        return type(self)(*(p.resolve(X, Y, median_scale=median_scale, median=median) for p in self.parts))

    def columns(self, C: Any) -> ColumnProvider:
        return _CombinedColumns([p.columns(C) for p in self.parts], self._combine, self._constant)

    #: how the parts' target constants ``v' K_YY v`` combine into this kernel's (None: from the combined Gram)
    _constant: Any = None

    @staticmethod
    @abstractmethod
    def _combine(values: list[Any]) -> Any:
        """Combine the parts' values entry by entry."""

    def gram(self, X: Any, Y: Any = None) -> Array:
        return self._combine([np.asarray(p.gram(X, Y), dtype=np.float64) for p in self.parts])


class SumKernel(_Composite):
    """``k1 + k2 + ...``; MMD2 under a sum kernel is the sum of the parts' MMD2.

    Examples
    --------
    >>> from promptkd.kernels import RBF, Cosine
    >>> k = RBF(bandwidth=1.0) + Cosine()
    >>> k
    SumKernel(RBF(bandwidth=1.0), Cosine())
    >>> k.unit_diagonal, k.shift_invariant
    (False, False)
    """

    @property
    def shift_invariant(self) -> bool:  # type: ignore[override]
        return all(p.shift_invariant for p in self.parts)

    @staticmethod
    def _combine(values: list[Any]) -> Any:
        out = values[0]
        for v in values[1:]:
            out = out + v
        return out

    _constant = _combine  # v'(K1 + K2)v = v'K1v + v'K2v: each part may answer without a Gram

    def __repr__(self) -> str:
        return f"SumKernel({', '.join(map(repr, self.parts))})"


class ProductKernel(_Composite):
    """``k1 * k2 * ...`` (elementwise product of Gram matrices).

    Examples
    --------
    >>> from promptkd.kernels import RBF, LabelKernel
    >>> k = RBF() * LabelKernel(beta=0.25)
    >>> sorted(k.views)
    ['embedding', 'label']
    """

    @property
    def unit_diagonal(self) -> bool:  # type: ignore[override]
        return all(p.unit_diagonal for p in self.parts)

    @staticmethod
    def _combine(values: list[Any]) -> Any:
        out = values[0]
        for v in values[1:]:
            out = out * v
        return out

    def __repr__(self) -> str:
        return f"ProductKernel({', '.join(map(repr, self.parts))})"


class ScaledKernel(Kernel):
    """``weight * k`` with a positive weight.

    Examples
    --------
    >>> from promptkd.kernels import Linear
    >>> (0.5 * Linear())(np.array([[2.0]])).tolist()
    [[2.0]]
    """

    view = None

    def __init__(self, kernel: Kernel, weight: float) -> None:
        if not isinstance(kernel, Kernel):
            raise InvalidTypeError(f"kernel must be a Kernel object, got {type(kernel).__name__}.")
        if not weight > 0 or not np.isfinite(weight):
            raise InvalidInputError(f"a kernel weight must be a positive finite number, got {weight!r}.")
        self.kernel, self.weight = kernel, float(weight)

    @property
    def views(self) -> frozenset[str]:
        return self.kernel.views

    @property
    def resolved(self) -> bool:
        return self.kernel.resolved

    @property
    def gemm(self) -> bool:  # type: ignore[override]
        return self.kernel.gemm

    @property
    def shift_invariant(self) -> bool:  # type: ignore[override]
        return self.kernel.shift_invariant

    @property
    def distance_based(self) -> bool:  # type: ignore[override]
        return self.kernel.distance_based

    @property
    def inner_product(self) -> bool:  # type: ignore[override]
        return self.kernel.inner_product

    @property
    def nonnegative(self) -> bool:  # type: ignore[override]
        return self.kernel.nonnegative

    def profile(self, d2: np.ndarray) -> np.ndarray:
        return self.weight * self.kernel.profile(d2)

    def gemm_rows(self, X: Any) -> Array:
        return np.sqrt(self.weight) * self.kernel.gemm_rows(X)

    def _key(self) -> tuple[Any, ...]:
        return (self.kernel, self.weight)

    def without(self, view: str) -> Kernel | None:
        inner = self.kernel.without(view)
        return self if inner is self.kernel else None if inner is None else ScaledKernel(inner, self.weight)

    def resolve(
        self, X: Any = None, Y: Any = None, *, median_scale: float = 1.0, median: float | None = None
    ) -> Kernel:
        return ScaledKernel(self.kernel.resolve(X, Y, median_scale=median_scale, median=median), self.weight)

    def gram(self, X: Any, Y: Any = None) -> Array:
        return self.weight * self.kernel.gram(X, Y)

    def columns(self, C: Any) -> ColumnProvider:
        w = self.weight

        def scale(values: list[Any]) -> Any:
            return w * values[0]

        return _CombinedColumns([self.kernel.columns(C)], scale, scale)  # entries and target constant alike

    def __repr__(self) -> str:
        return f"{self.weight:g} * {self.kernel!r}"


class _CombinedColumns:
    """Providers of the parts, combined entry by entry (sum, product or scale)."""

    def __init__(self, parts: list[Any], combine: Any, constant: Any = None) -> None:
        self.parts, self.combine, self.constant = parts, combine, constant

    def cross(self, Y: Any) -> np.ndarray:
        return self.combine([p.cross(Y) for p in self.parts])

    def target_gram(self, Y: Any) -> np.ndarray:
        return self.combine([p.target_gram(Y) for p in self.parts])

    def target_constant(self, Y: Any, weights: np.ndarray) -> float:
        if self.constant is not None:
            return float(self.constant([p.target_constant(Y, weights) for p in self.parts]))
        return float(weights @ self.target_gram(Y) @ weights)

    def diag(self) -> np.ndarray:
        return self.combine([p.diag() for p in self.parts])

    def column(self, j: int) -> np.ndarray:
        return self.combine([p.column(j) for p in self.parts])
