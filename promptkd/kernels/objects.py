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
``shift_invariant``, ``distance_based`` (a ``profile`` of the squared distance),
``gemm`` (its Gram and columns come from one matrix product),
``inner_product`` (``k(x, y) = <R(x), R(y)>`` with rows ``R`` from
``gemm_rows``), ``nonnegative``
and ``float64_distances`` (its profile magnifies the rounding of tiny
distances, so fast paths work in float64). A plain callable
``k(X, Y, *, bandwidth)`` becomes a :class:`CallableKernel` with none of them. Greedy selection asks a kernel for its
:meth:`Kernel.columns` provider; a composite combines its parts' providers, so
each part keeps its fast path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.kernels.columns import ColumnProvider, KernelColumns
from promptkd.kernels.functions import (
    KERNELS,
    PROFILES,
    Array,
    Bandwidth,
    KernelFn,
    _normalise_rows,
    cosine,
    imq,
    laplacian,
    linear,
    median_bandwidth,
    rbf,
)
from promptkd.kernels.views import EMBEDDING, Views, _block

__all__ = [
    "IMQ",
    "RBF",
    "CallableKernel",
    "Cosine",
    "Kernel",
    "Laplacian",
    "Linear",
    "Views",
    "as_kernel",
]


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
    inner_product: bool = False
    nonnegative: bool = False
    float64_distances: bool = False

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

    def without(self, view: str) -> Kernel | None:
        """The kernel with every part that reads ``view`` left out; None when nothing is left.

        A sum keeps its other terms and a product its other factors, so
        ``(RBF() + LexicalKernel()).without("lexical")`` is the RBF alone: what a
        selector herds with when the queries come without the feature block.

        Examples
        --------
        >>> from promptkd.kernels import LexicalKernel
        >>> (RBF() + LexicalKernel()).without("lexical")
        RBF()
        >>> LexicalKernel().without("lexical") is None
        True
        """
        return None if view in self.views else self

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

    def profile(self, d2: np.ndarray) -> np.ndarray:
        """The kernel's values from squared distances ``d2`` (float64; may reuse ``d2``'s memory).

        Only distance-based kernels (``distance_based``) have one.
        """
        raise InvalidInputError(f"{self!r} is not distance-based, so it has no profile of squared distances.")

    def gemm_rows(self, X: Any) -> Array:
        """Rows ``R`` with ``k(X, Y) = R(X) R(Y)^T``; only inner-product kernels (``inner_product``) have them."""
        raise InvalidInputError(f"{self!r} is not an inner-product kernel, so it has no GEMM rows.")

    # ---------------------------------------------------------------- algebra
    def __add__(self, other: Any) -> Kernel:
        if isinstance(other, (int, float)) and not isinstance(other, bool) and other == 0:
            return self  # so that sum([k1, k2]) works
        from promptkd.kernels.composite import SumKernel

        return SumKernel(self, _as_part(other, "+"))

    __radd__ = __add__

    def __mul__(self, other: Any) -> Kernel:
        from promptkd.kernels.composite import ProductKernel, ScaledKernel

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
        if Y is None:  # the built-in functions give k(X, X) an exact diagonal when Y is omitted
            return self.fn(A, bandwidth=self.bandwidth)
        return self.fn(A, _block(Y, self.view), bandwidth=self.bandwidth)

    def __call__(self, X: Any, Y: Any = None, *, bandwidth: Bandwidth | None = None) -> Array:
        """Gram matrix; a ``bandwidth`` given here is used when the object's own is ``"median"``.

        So ``get_kernel("rbf")(X, bandwidth=1.0)`` works as the function ``rbf``
        does, while an object with a numeric bandwidth keeps its own.
        """
        if bandwidth is not None and isinstance(self.bandwidth, str):
            return type(self)(bandwidth, view=self.view).gram(X, Y) if self.distance_based else self.gram(X, Y)
        return self.gram(X, Y)

    def columns(self, C: Any) -> ColumnProvider:
        k = self if self.resolved else self.resolve(C)
        return _BlockColumns(KernelColumns(np.asarray(_block(C, self.view)), k), self.view)

    def profile(self, d2: np.ndarray) -> np.ndarray:
        if not self.distance_based:
            return super().profile(d2)
        fn = PROFILES[self.fn.kernel_name]
        if isinstance(self.bandwidth, tuple):
            return sum(fn(np, d2, float(b)) for b in self.bandwidth) / len(self.bandwidth)
        return fn(np, d2, float(self.bandwidth))  # type: ignore[arg-type]

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
    unit_diagonal = shift_invariant = distance_based = gemm = nonnegative = True

    def profile(self, d2: np.ndarray) -> np.ndarray:
        if isinstance(self.bandwidth, (int, float)):  # in place: no temporary the size of d2
            d2 *= -1.0 / (2.0 * float(self.bandwidth) ** 2)
            return np.exp(d2, out=d2)
        return super().profile(d2)


class Laplacian(_FunctionKernel):
    """Laplacian kernel ``exp(-||x - y|| / bandwidth)``.

    Examples
    --------
    >>> round(float(Laplacian(bandwidth=1.0)(np.array([[0.0]]), np.array([[1.0]]))[0, 0]), 4)
    0.3679
    """

    fn = staticmethod(laplacian)
    unit_diagonal = shift_invariant = distance_based = gemm = nonnegative = True
    float64_distances = True  # the square root turns the rounding of tiny distances into sqrt(eps)


class IMQ(_FunctionKernel):
    """Inverse multiquadric kernel ``(1 + ||x - y||^2 / bandwidth^2)^(-1/2)``.

    Examples
    --------
    >>> round(float(IMQ(bandwidth=1.0)(np.array([[0.0]]), np.array([[1.0]]))[0, 0]), 4)
    0.7071
    """

    fn = staticmethod(imq)
    unit_diagonal = shift_invariant = distance_based = gemm = nonnegative = True


class Cosine(_FunctionKernel):
    """Cosine similarity ``<x, y> / (||x|| ||y||)`` (no bandwidth).

    Examples
    --------
    >>> Cosine()(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]])).tolist()
    [[1.0]]
    """

    fn = staticmethod(cosine)
    unit_diagonal = gemm = inner_product = True

    def __init__(self, *, view: str = EMBEDDING) -> None:
        super().__init__(1.0, view=view)

    def __repr__(self) -> str:
        return "Cosine()" if self.view == EMBEDDING else f"Cosine(view={self.view!r})"

    def gemm_rows(self, X: Any) -> Array:
        return _normalise_rows(X)

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

    def gemm_rows(self, X: Any) -> Array:
        return X


class CallableKernel(Kernel):
    """A plain callable ``k(X, Y, *, bandwidth)`` as a kernel object on the embedding rows.

    It has no capability (no unit diagonal, no fast path), so greedy selection
    calls it for every column it needs; ``bandwidth`` is passed to every call.

    Examples
    --------
    >>> def poly(X, Y, *, bandwidth=None):
    ...     return (1.0 + X @ Y.T) ** 2
    >>> k = CallableKernel(poly)
    >>> k(np.array([[1.0]]), np.array([[2.0]])).tolist(), k.gemm
    ([[9.0]], False)
    """

    def __init__(self, fn: KernelFn, bandwidth: Bandwidth = "median") -> None:
        if not callable(fn):
            raise InvalidTypeError(f"CallableKernel needs a callable k(X, Y, *, bandwidth), got {fn!r}.")
        self.fn = fn
        self.bandwidth = bandwidth

    def _key(self) -> tuple[Any, ...]:
        return (self.fn, self.bandwidth if not isinstance(self.bandwidth, list) else tuple(self.bandwidth))

    def gram(self, X: Any, Y: Any = None) -> Array:
        A = _block(X, EMBEDDING)
        return self.fn(A, A if Y is None else _block(Y, EMBEDDING), bandwidth=self.bandwidth)

    def columns(self, C: Any) -> ColumnProvider:
        return _BlockColumns(KernelColumns(np.asarray(_block(C, EMBEDDING)), self), EMBEDDING)

    def __repr__(self) -> str:
        return f"CallableKernel({getattr(self.fn, '__name__', type(self.fn).__name__)})"


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


_NAMED: dict[str, type[_FunctionKernel]] = {
    "rbf": RBF,
    "gaussian": RBF,
    "laplacian": Laplacian,
    "imq": IMQ,
    "cosine": Cosine,
    "linear": Linear,
}


def as_kernel(kernel: str | KernelFn | Kernel, **params: Any) -> Kernel:
    """A kernel object from a name (``"rbf"``, ``"laplacian"``, ``"imq"``, ``"cosine"``, ``"linear"``), a callable or an object.

    Parameters
    ----------
    kernel
        The name; ``"lexical"`` (:class:`~promptkd.kernels.LexicalKernel`); names
        joined by ``+`` for their sum (``"rbf+lexical"``, the
        :class:`~promptkd.Selector`'s default); a built-in kernel function (:func:`~promptkd.kernels.rbf`, ...),
        which becomes its object; another callable ``k(X, Y, *, bandwidth)``,
        which becomes a :class:`CallableKernel`; or a :class:`Kernel` (returned as
        it is).
    **params
        Settings of a named kernel or a callable, e.g. ``bandwidth=0.8``
        (cosine and linear have none and drop it).

    Examples
    --------
    >>> as_kernel("rbf", bandwidth=0.5)
    RBF(bandwidth=0.5)
    >>> from promptkd.kernels import laplacian
    >>> as_kernel(laplacian).distance_based
    True
    >>> as_kernel("rbf+lexical", bandwidth=0.5)
    SumKernel(RBF(bandwidth=0.5), LexicalKernel())
    """
    if isinstance(kernel, Kernel):
        if params:
            raise InvalidInputError(
                f"settings {sorted(params)} apply to kernel names only; {kernel!r} carries its own."
            )
        return kernel
    if callable(kernel) and not isinstance(kernel, str):
        name = getattr(kernel, "kernel_name", None)  # the built-in functions name themselves
        if not (isinstance(name, str) and KERNELS.get(name) is kernel):
            return CallableKernel(kernel, **params)
        kernel = name
    if isinstance(kernel, str) and "+" in kernel:
        from promptkd.kernels.composite import SumKernel

        return SumKernel(*(as_kernel(part.strip(), **params) for part in kernel.split("+")))
    if isinstance(kernel, str) and kernel == "lexical":
        from promptkd.kernels.feature_kernels import LexicalKernel

        return LexicalKernel()
    if isinstance(kernel, str) and kernel in _NAMED:
        cls = _NAMED[kernel]
        if not cls.distance_based:
            params.pop("bandwidth", None)
        return cls(**params)
    raise InvalidInputError(
        f"kernel={kernel!r} is not known; use one of {', '.join(sorted([*_NAMED, 'lexical']))} (or names joined "
        "by '+' for their sum), a Kernel object or a callable k(X, Y, *, bandwidth)."
    )
