"""Kernel objects: one type that knows its profile, its bandwidth rule and its capabilities, and composes.

A kernel object is called like the kernel functions, ``k(X, Y=None)``, and
returns the Gram matrix. Kernels add and multiply, and a number scales them::

    RBF() + 0.5 * Cosine()                  # a sum kernel
    RBF() * LabelKernel(beta=0.25)          # a joint kernel on (input, label) pairs

Rows may carry several named blocks of features (:class:`Views`): the dense
embedding, a label distribution, ... Each base kernel reads one block (its
``view``), so a product of an embedding kernel and a label kernel is a kernel
on the joint input-label space. A plain array is the ``"embedding"`` block.

Capabilities are attributes, not identities: ``unit_diagonal``,
``shift_invariant``, ``distance_based`` and ``gemm`` (its Gram and columns come
from one matrix product). Greedy selection asks a kernel for its
:meth:`Kernel.columns` provider; a composite combines its parts' providers, so
each part keeps its fast path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.kernels.columns import ColumnProvider, KernelColumns
from promptkd.kernels.functions import (
    Array,
    Bandwidth,
    cosine,
    imq,
    laplacian,
    linear,
    median_bandwidth,
    rbf,
    self_gram,
)

__all__ = [
    "IMQ",
    "RBF",
    "Cosine",
    "Kernel",
    "LabelKernel",
    "Laplacian",
    "LexicalKernel",
    "Linear",
    "ProductKernel",
    "ScaledKernel",
    "SumKernel",
    "Views",
    "as_kernel",
]

EMBEDDING = "embedding"


class Views(Mapping[str, Any]):
    """Named feature blocks for the same rows, e.g. embeddings and label distributions.

    Parameters
    ----------
    embedding
        (n, d) embeddings, or None.
    **blocks
        Other blocks, each with n rows (``label=`` (n, L) label distributions).

    Examples
    --------
    >>> v = Views(np.zeros((3, 2)), label=np.eye(3))
    >>> len(v), sorted(v), v.take([0, 2])["label"].shape
    (3, ['embedding', 'label'], (2, 3))
    """

    def __init__(self, embedding: Any = None, **blocks: Any) -> None:
        data = {EMBEDDING: embedding, **blocks} if embedding is not None else dict(blocks)
        if not data:
            raise InvalidInputError("Views needs at least one feature block.")
        sizes = {name: _n_rows(block) for name, block in data.items()}
        if len(set(sizes.values())) != 1:
            raise InvalidInputError(f"every feature block must have the same number of rows; got {sizes}.")
        self._data = data
        self._n = next(iter(sizes.values()))

    def __getitem__(self, name: str) -> Any:
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n_rows,)``: enough for code that only asks how many rows there are."""
        return (self._n,)

    def take(self, rows: Any) -> Views:
        """The same blocks restricted to ``rows``."""
        idx = np.asarray(rows, dtype=np.int64)
        return Views(**{name: _take(block, idx) for name, block in self._data.items()})


def _n_rows(block: Any) -> int:
    shape = getattr(block, "shape", None)
    return int(shape[0]) if shape is not None else len(block)


def _take(block: Any, idx: np.ndarray) -> Any:
    return block[idx] if _is_sparse(block) else np.asarray(block)[idx]


def _is_sparse(block: Any) -> bool:
    return type(block).__module__.startswith("scipy.sparse")


def _block(X: Any, view: str) -> Any:
    """The ``view`` block of ``X`` (a plain array is the embedding block)."""
    if isinstance(X, Views):
        if view not in X:
            raise InvalidInputError(
                f"this kernel reads the {view!r} block, but the rows only have {sorted(X)}; "
                f"pass Views(..., {view}=...) with that block."
            )
        return X[view]
    if view != EMBEDDING:
        raise InvalidInputError(
            f"this kernel reads the {view!r} block; pass the rows as Views(embeddings, {view}=...), not a plain array."
        )
    return X


class Kernel(ABC):
    """Base class of kernel objects. Subclasses implement :meth:`gram` and :meth:`columns`.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0]])
    >>> k = RBF(bandwidth=1.0) + Linear()
    >>> np.round(k(X), 4).tolist()
    [[1.0, 0.6065], [0.6065, 2.0]]
    """

    #: the feature block a base kernel reads; None for composites
    view: str | None = EMBEDDING
    unit_diagonal: bool = False
    shift_invariant: bool = False
    distance_based: bool = False
    gemm: bool = False

    # ---------------------------------------------------------------- the interface
    @abstractmethod
    def gram(self, X: Any, Y: Any = None) -> Array:
        """Gram matrix ``k(X, Y)`` (``Y`` defaults to ``X``)."""

    @abstractmethod
    def columns(self, C: Any) -> ColumnProvider:
        """The provider greedy selection uses on the fixed candidate rows ``C``."""

    def resolve(
        self, X: Any = None, Y: Any = None, *, median_scale: float = 1.0, median: float | None = None
    ) -> Kernel:
        """A copy with data-dependent settings fixed.

        Every ``"median"`` bandwidth becomes ``median`` when it is given, else
        ``median_scale`` times the median heuristic on the pooled rows of
        ``X`` and ``Y``.
        """
        return self

    @property
    def views(self) -> frozenset[str]:
        """Every feature block the kernel reads."""
        return frozenset({self.view}) if self.view is not None else frozenset()

    @property
    def resolved(self) -> bool:
        """Whether every setting is a number (no ``"median"`` left)."""
        return True

    # ---------------------------------------------------------------- function-style use
    def __call__(self, X: Any, Y: Any = None, *, bandwidth: Bandwidth | None = None) -> Array:
        """Gram matrix; ``bandwidth`` is accepted for the function signature and ignored (objects carry theirs)."""
        return self.gram(X, Y)

    def diag(self, X: Any) -> np.ndarray:
        """``k(x_i, x_i)`` for every row, float64."""
        return np.asarray(self.resolve(X).columns(X).diag(), dtype=np.float64)

    # ---------------------------------------------------------------- algebra
    def __add__(self, other: Any) -> Kernel:
        if isinstance(other, (int, float)) and not isinstance(other, bool) and other == 0:
            return self  # so that sum([k1, k2]) works
        return SumKernel(self, _as_part(other, "+"))

    __radd__ = __add__

    def __mul__(self, other: Any) -> Kernel:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return ScaledKernel(self, float(other))
        return ProductKernel(self, _as_part(other, "*"))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def _key(self) -> tuple[Any, ...]:
        return ()


def _as_part(other: Any, op: str) -> Kernel:
    if isinstance(other, Kernel):
        return other
    if isinstance(other, str):
        return as_kernel(other)
    raise InvalidTypeError(f"a kernel can only be combined with another kernel or a number by {op!r}, got {other!r}.")


# -------------------------------------------------------------------- base kernels on embeddings
class _FunctionKernel(Kernel):
    """A built-in kernel function with its own bandwidth (the embedding block)."""

    fn: Any = None
    name = ""

    def __init__(self, bandwidth: Bandwidth = "median", *, view: str = EMBEDDING) -> None:
        if isinstance(bandwidth, bool) or not (
            isinstance(bandwidth, (int, float, str, tuple, list))
            and (bandwidth == "median" or not isinstance(bandwidth, str))
        ):
            raise InvalidInputError(
                f"bandwidth must be a positive number, a list of them or 'median'; got {bandwidth!r}."
            )
        if isinstance(bandwidth, (int, float)) and not bandwidth > 0:
            raise InvalidInputError(f"bandwidth must be positive, got {bandwidth!r}.")
        self.bandwidth: Bandwidth = tuple(float(b) for b in bandwidth) if isinstance(bandwidth, list) else bandwidth
        self.view = view

    @property
    def resolved(self) -> bool:
        return not isinstance(self.bandwidth, str)

    def _key(self) -> tuple[Any, ...]:
        return (self.bandwidth, self.view)

    def resolve(
        self, X: Any = None, Y: Any = None, *, median_scale: float = 1.0, median: float | None = None
    ) -> Kernel:
        if not (isinstance(self.bandwidth, str) and self.bandwidth == "median"):
            return self
        if median is not None:
            return type(self)(float(median), view=self.view)
        if X is None:
            raise InvalidInputError(f"{self!r} has a median bandwidth: pass rows to resolve it on, or median=.")
        A = np.asarray(_block(X, self.view))
        B = None if Y is None else np.asarray(_block(Y, self.view))
        return type(self)(float(median_scale) * float(median_bandwidth(A, B)), view=self.view)

    def gram(self, X: Any, Y: Any = None) -> Array:
        A = _block(X, self.view)
        if Y is None:
            return self_gram(self.fn, A, self.bandwidth)
        return self.fn(A, _block(Y, self.view), bandwidth=self.bandwidth)

    def columns(self, C: Any) -> ColumnProvider:
        k = self if self.resolved else self.resolve(C)
        return _BlockColumns(KernelColumns(np.asarray(_block(C, self.view)), self.fn, k.bandwidth), self.view)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        bw = "" if self.bandwidth == "median" else f"bandwidth={self.bandwidth!r}"
        view = "" if self.view == EMBEDDING else f"view={self.view!r}"
        return f"{type(self).__name__}({', '.join(x for x in (bw, view) if x)})"


class RBF(_FunctionKernel):
    """Gaussian kernel ``exp(-||x - y||^2 / (2 bandwidth^2))``; ``bandwidth="median"`` uses the median heuristic.

    Examples
    --------
    >>> round(float(RBF(bandwidth=1.0)(np.array([[0.0]]), np.array([[1.0]]))[0, 0]), 4)
    0.6065
    """

    fn = staticmethod(rbf)
    unit_diagonal = shift_invariant = distance_based = gemm = True


class Laplacian(_FunctionKernel):
    """Laplacian kernel ``exp(-||x - y|| / bandwidth)``.

    Examples
    --------
    >>> round(float(Laplacian(bandwidth=1.0)(np.array([[0.0]]), np.array([[1.0]]))[0, 0]), 4)
    0.3679
    """

    fn = staticmethod(laplacian)
    unit_diagonal = shift_invariant = distance_based = gemm = True


class IMQ(_FunctionKernel):
    """Inverse multiquadric kernel ``(1 + ||x - y||^2 / bandwidth^2)^(-1/2)``.

    Examples
    --------
    >>> round(float(IMQ(bandwidth=1.0)(np.array([[0.0]]), np.array([[1.0]]))[0, 0]), 4)
    0.7071
    """

    fn = staticmethod(imq)
    unit_diagonal = shift_invariant = distance_based = gemm = True


class Cosine(_FunctionKernel):
    """Cosine similarity ``<x, y> / (||x|| ||y||)`` (no bandwidth).

    Examples
    --------
    >>> Cosine()(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]])).tolist()
    [[1.0]]
    """

    fn = staticmethod(cosine)
    unit_diagonal = gemm = True

    def __init__(self, *, view: str = EMBEDDING) -> None:
        super().__init__(1.0, view=view)

    def __repr__(self) -> str:
        return "Cosine()" if self.view == EMBEDDING else f"Cosine(view={self.view!r})"

    def resolve(
        self, X: Any = None, Y: Any = None, *, median_scale: float = 1.0, median: float | None = None
    ) -> Kernel:
        return self


class Linear(Cosine):
    """Linear kernel ``<x, y>``.

    Examples
    --------
    >>> Linear()(np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]])).tolist()
    [[11.0]]
    """

    fn = staticmethod(linear)
    unit_diagonal = False

    def __repr__(self) -> str:
        return "Linear()" if self.view == EMBEDDING else f"Linear(view={self.view!r})"


class _BlockColumns:
    """A provider that reads one feature block of the target rows before delegating."""

    def __init__(self, inner: Any, view: str) -> None:
        self.inner, self.view = inner, view

    def cross(self, Y: Any) -> np.ndarray:
        return self.inner.cross(np.asarray(_block(Y, self.view)))

    def target_gram(self, Y: Any) -> np.ndarray:
        return self.inner.target_gram(np.asarray(_block(Y, self.view)))

    def target_constant(self, Y: Any, weights: np.ndarray) -> float:
        return self.inner.target_constant(np.asarray(_block(Y, self.view)), weights)

    def diag(self) -> np.ndarray:
        return self.inner.diag()

    def column(self, j: int) -> np.ndarray:
        return self.inner.column(j)


# -------------------------------------------------------------------- the label kernel
class LabelKernel(Kernel):
    """Kernel on label distributions: ``beta + (1 - beta) * <p, q>``.

    Rows of the ``"label"`` block are distributions over the label set: one-hot
    for a demonstration, an estimate (e.g. the labels of the nearest pool demos)
    for a query. Between two demos it is ``1`` when the labels agree and
    ``beta`` otherwise; multiplied with an input kernel it gives the joint
    input-label kernel ``k_x(x, x') * (beta + (1 - beta) [y = y'])``.

    Parameters
    ----------
    beta
        Similarity of two different labels, in ``[0, 1]``; ``beta = 1`` ignores labels.

    Examples
    --------
    >>> P = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> LabelKernel(beta=0.25)(Views(label=P)).tolist()
    [[1.0, 0.25], [0.25, 1.0]]
    """

    view = "label"
    gemm = True

    def __init__(self, beta: float = 0.0) -> None:
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta <= 1.0:
            raise InvalidInputError(f"beta must be a number in [0, 1], got {beta!r}.")
        self.beta = float(beta)

    def _key(self) -> tuple[Any, ...]:
        return (self.beta,)

    def gram(self, X: Any, Y: Any = None) -> Array:
        A = np.asarray(_block(X, self.view), dtype=np.float64)
        B = A if Y is None else np.asarray(_block(Y, self.view), dtype=np.float64)
        return self.beta + (1.0 - self.beta) * (A @ B.T)

    def columns(self, C: Any) -> ColumnProvider:
        return _LabelColumns(np.asarray(_block(C, self.view), dtype=np.float64), self.beta)

    def __repr__(self) -> str:
        return f"LabelKernel(beta={self.beta:g})"


class _LabelColumns:
    def __init__(self, P: np.ndarray, beta: float) -> None:
        self.P, self.beta = P, beta

    def cross(self, Y: Any) -> np.ndarray:
        return self.beta + (1.0 - self.beta) * (self.P @ np.asarray(_block(Y, "label"), dtype=np.float64).T)

    def target_gram(self, Y: Any) -> np.ndarray:
        Q = np.asarray(_block(Y, "label"), dtype=np.float64)
        return self.beta + (1.0 - self.beta) * (Q @ Q.T)

    def target_constant(self, Y: Any, weights: np.ndarray) -> float:
        return float(weights @ self.target_gram(Y) @ weights)

    def diag(self) -> np.ndarray:
        return self.beta + (1.0 - self.beta) * np.einsum("ij,ij->i", self.P, self.P)

    def column(self, j: int) -> np.ndarray:
        return self.beta + (1.0 - self.beta) * (self.P @ self.P[j])


# -------------------------------------------------------------------- the lexical kernel
class LexicalKernel(Kernel):
    """Cosine kernel on sparse lexical features (the ``"lexical"`` block), e.g. TF-IDF rows.

    It measures word overlap, which dense sentence embeddings blur; added to an
    embedding kernel (``RBF() + 0.5 * LexicalKernel()``) it gives a hybrid
    lexical + dense kernel. Rows may be scipy sparse matrices or dense arrays;
    they are L2-normalised here, so the diagonal is 1 for every non-empty row.
    A :class:`~promptkd.selection.Selector` with this kernel fits a TF-IDF
    vocabulary on the pool's inputs and encodes the query texts with it.

    Examples
    --------
    >>> X = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    >>> np.round(LexicalKernel()(Views(lexical=X)), 4).tolist()
    [[1.0, 0.7071], [0.7071, 1.0]]
    """

    view = "lexical"
    gemm = True

    def gram(self, X: Any, Y: Any = None) -> Array:
        A = _unit_rows(_block(X, self.view))
        B = A if Y is None else _unit_rows(_block(Y, self.view))
        return _dense(A @ B.T)

    def columns(self, C: Any) -> ColumnProvider:
        return _LexicalColumns(_unit_rows(_block(C, self.view)))

    def __repr__(self) -> str:
        return "LexicalKernel()"


def _unit_rows(A: Any) -> Any:
    if _is_sparse(A):
        from scipy.sparse import diags

        norms = np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
        return (diags(1.0 / np.maximum(norms, 1e-12)) @ A).tocsr()
    A = np.asarray(A, dtype=np.float64)
    return A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)


def _dense(M: Any) -> np.ndarray:
    return np.asarray(M.toarray() if _is_sparse(M) else M, dtype=np.float64)


class _LexicalColumns:
    def __init__(self, U: Any) -> None:
        self.U = U
        self._diag = _dense(U.multiply(U).sum(axis=1) if _is_sparse(U) else (U * U).sum(axis=1)[:, None]).ravel()

    def cross(self, Y: Any) -> np.ndarray:
        return _dense(self.U @ _unit_rows(_block(Y, "lexical")).T)

    def target_gram(self, Y: Any) -> np.ndarray:
        V = _unit_rows(_block(Y, "lexical"))
        return _dense(V @ V.T)

    def target_constant(self, Y: Any, weights: np.ndarray) -> float:
        return float(weights @ self.target_gram(Y) @ weights)

    def diag(self) -> np.ndarray:
        return self._diag.copy()

    def column(self, j: int) -> np.ndarray:
        return _dense(self.U @ self.U[j].T).ravel()


# -------------------------------------------------------------------- composites
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

    def _key(self) -> tuple[Any, ...]:
        return self.parts

    def resolve(
        self, X: Any = None, Y: Any = None, *, median_scale: float = 1.0, median: float | None = None
    ) -> Kernel:
        return type(self)(*(p.resolve(X, Y, median_scale=median_scale, median=median) for p in self.parts))

    def columns(self, C: Any) -> ColumnProvider:
        return _CombinedColumns([p.columns(C) for p in self.parts], self._combine)

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

    def __repr__(self) -> str:
        return f"SumKernel({', '.join(map(repr, self.parts))})"


class ProductKernel(_Composite):
    """``k1 * k2 * ...`` (elementwise product of Gram matrices).

    Examples
    --------
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

    def _key(self) -> tuple[Any, ...]:
        return (self.kernel, self.weight)

    def resolve(
        self, X: Any = None, Y: Any = None, *, median_scale: float = 1.0, median: float | None = None
    ) -> Kernel:
        return ScaledKernel(self.kernel.resolve(X, Y, median_scale=median_scale, median=median), self.weight)

    def gram(self, X: Any, Y: Any = None) -> Array:
        return self.weight * self.kernel.gram(X, Y)

    def columns(self, C: Any) -> ColumnProvider:
        w = self.weight
        return _CombinedColumns([self.kernel.columns(C)], lambda values: w * values[0])

    def __repr__(self) -> str:
        return f"{self.weight:g} * {self.kernel!r}"


class _CombinedColumns:
    """Providers of the parts, combined entry by entry (sum, product or scale)."""

    def __init__(self, parts: list[Any], combine: Any) -> None:
        self.parts, self.combine = parts, combine

    def cross(self, Y: Any) -> np.ndarray:
        return self.combine([p.cross(Y) for p in self.parts])

    def target_gram(self, Y: Any) -> np.ndarray:
        return self.combine([p.target_gram(Y) for p in self.parts])

    def target_constant(self, Y: Any, weights: np.ndarray) -> float:
        return float(weights @ self.target_gram(Y) @ weights)

    def diag(self) -> np.ndarray:
        return self.combine([p.diag() for p in self.parts])

    def column(self, j: int) -> np.ndarray:
        return self.combine([p.column(j) for p in self.parts])


_NAMED: dict[str, type[_FunctionKernel]] = {
    "rbf": RBF,
    "gaussian": RBF,
    "laplacian": Laplacian,
    "imq": IMQ,
    "cosine": Cosine,
    "linear": Linear,
}


def as_kernel(kernel: str | Kernel, **params: Any) -> Kernel:
    """A kernel object from a name (``"rbf"``, ``"laplacian"``, ``"imq"``, ``"cosine"``, ``"linear"``) or an object.

    Parameters
    ----------
    kernel
        The name, or a :class:`Kernel` (returned as it is).
    **params
        Settings of a named kernel, e.g. ``bandwidth=0.8``.

    Examples
    --------
    >>> as_kernel("rbf", bandwidth=0.5)
    RBF(bandwidth=0.5)
    """
    if isinstance(kernel, Kernel):
        if params:
            raise InvalidInputError(
                f"settings {sorted(params)} apply to kernel names only; {kernel!r} carries its own."
            )
        return kernel
    if isinstance(kernel, str) and kernel in _NAMED:
        cls = _NAMED[kernel]
        if cls in (Cosine, Linear):
            params.pop("bandwidth", None)
        return cls(**params)
    raise InvalidInputError(f"kernel={kernel!r} is not known; use one of {sorted(_NAMED)} or a Kernel object.")
