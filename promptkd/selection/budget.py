"""The plug-in point through which ``Selector(k="auto")`` gets its budget estimator.

The selection layer does not import :mod:`promptkd.bounds`, which sits above it. Instead,
:mod:`promptkd.bounds` registers :class:`~promptkd.bounds.BoundEstimator` here when it is
imported (``import promptkd`` always imports it), and :class:`~promptkd.selection.Selector`
builds its default estimator through :func:`make_default_estimator`. An estimator passed as
``Selector(bound_estimator=...)`` is used as given and bypasses this registry.

An estimator is any object with ``fit(pool) -> self`` and ``budget(target, *, k_max, max_tokens,
token_cost, tokenizer, template, allowed) -> Budget``; a factory is a callable taking the keyword
arguments ``kernel``, ``bandwidth``, ``candidates`` and ``seed`` and returning an estimator.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.selection.feature_blocks import kernel_object

__all__ = ["BudgetMixin", "default_estimator_factory", "make_default_estimator", "set_default_estimator_factory"]

EstimatorFactory = Callable[..., Any]

_lock = threading.Lock()
_factory: EstimatorFactory | None = None


def set_default_estimator_factory(factory: EstimatorFactory | None) -> EstimatorFactory | None:
    """Register the factory that builds ``Selector``'s budget estimator for ``k="auto"``.

    Parameters
    ----------
    factory
        A callable ``factory(*, kernel, bandwidth, candidates, seed)`` returning an estimator
        with ``fit(pool)`` and ``budget(...)``, or None to unregister.

    Returns
    -------
    EstimatorFactory or None
        The factory registered before this call.

    Examples
    --------
    >>> previous = set_default_estimator_factory(None)
    >>> default_estimator_factory() is None
    True
    >>> set_default_estimator_factory(previous) is None
    True
    """
    global _factory
    if factory is not None and not callable(factory):
        raise InvalidTypeError(f"factory must be callable or None, got {type(factory).__name__}.")
    with _lock:
        previous, _factory = _factory, factory
    return previous


def default_estimator_factory() -> EstimatorFactory | None:
    """The registered estimator factory, or None if none is registered.

    Examples
    --------
    >>> import promptkd
    >>> default_estimator_factory() is promptkd.BoundEstimator
    True
    """
    return _factory


def make_default_estimator(**kwargs: Any) -> Any:
    """Build the default budget estimator with the registered factory.

    Parameters
    ----------
    **kwargs
        Passed to the factory (``kernel``, ``bandwidth``, ``candidates``, ``seed``).

    Returns
    -------
    object
        The factory's estimator; without a registered factory, a stand-in whose ``fit`` succeeds
        and whose ``budget`` raises :class:`~promptkd.exceptions.InvalidInputError`, so that a
        fixed ``k`` keeps working and only ``k="auto"`` fails.

    Examples
    --------
    >>> previous = set_default_estimator_factory(None)
    >>> est = make_default_estimator(kernel="rbf").fit(None)
    >>> est.budget(None)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    promptkd.exceptions.InvalidInputError: ...
    >>> _ = set_default_estimator_factory(previous)
    """
    factory = _factory
    if factory is None:
        return _NoEstimator()
    return factory(**kwargs)


class _NoEstimator:
    """Stands in for the budget estimator when none is registered; asking it for a budget fails."""

    def fit(self, pool: Any, *args: Any, **kwargs: Any) -> _NoEstimator:
        return self

    def budget(self, *args: Any, **kwargs: Any) -> Any:
        raise InvalidInputError(
            "k='auto' needs a budget estimator, and none is registered: import promptkd.bounds (which registers "
            "BoundEstimator), pass bound_estimator=, or pass an integer k."
        )


class BudgetMixin:
    """``k="auto"`` for :class:`~promptkd.selection.Selector`: the budget estimator and the per-target k."""

    k: Any
    kernel: Any
    candidates: int
    seed: int
    k_max: int
    max_tokens: int | None
    token_cost: float | None
    tokenizer: Any
    template: Any
    bound_estimator: Any
    bandwidth_: Any
    pool_: Any
    eligible_: Any
    eligible_idx_: Any

    @property
    def _needs_estimator(self) -> bool:
        """Whether ``fit`` builds the budget estimator: with ``k="auto"`` or a budget setting.

        A budget setting is ``bound_estimator=`` or an explicit positive ``token_cost`` (None means
        the default price, which only matters once ``k="auto"`` asks for a budget). Otherwise no
        estimator is built (at a million demos it costs seconds and gigabytes), and a per-call
        ``select(..., k="auto")`` raises instead of building one while selecting.
        """
        return self.k == "auto" or self.bound_estimator is not None or (self.token_cost or 0.0) > 0.0

    def _fit_estimator(self) -> None:
        # built here or never: select() reads fitted state only, so nothing is created or changed
        # while selecting and threads cannot race on it
        self.estimator_ = self._make_estimator().fit(self.pool_) if self._needs_estimator else None

    def _make_estimator(self) -> Any:
        if self.bound_estimator is not None:
            return self.bound_estimator
        # the bound is stated on the input embeddings: a kernel object contributes its RBF scale only
        kernel = "rbf" if kernel_object(self.kernel) is not None else self.kernel
        # promptkd.bounds registers BoundEstimator as the default factory
        return make_default_estimator(
            kernel=kernel, bandwidth=self.bandwidth_, candidates=self.candidates, seed=self.seed
        )

    def _resolve_k_for(self, target: Any, k: Any) -> tuple[int, Any]:
        value = self.k if k is None else k
        if value != "auto":
            return self._resolve_k(value), None  # type: ignore[attr-defined]
        if self.estimator_ is None:
            raise InvalidInputError(
                f"k='auto' needs the budget estimator, which fit builds only when it is needed; this selector was "
                f"fitted with k={self.k!r}. Fit Selector(k='auto', ...) or pass bound_estimator= (or a positive "
                "token_cost), or pass an integer k."
            )
        budget = self.estimator_.budget(
            target,
            k_max=min(self.k_max, len(self.eligible_idx_)),
            max_tokens=self.max_tokens,
            token_cost=self.token_cost,
            tokenizer=self.tokenizer,
            template=self.template,
            allowed=self.eligible_,
        )
        return int(budget.k_star), budget
