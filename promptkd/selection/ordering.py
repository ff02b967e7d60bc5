"""Ordering policies: given a chosen set, decide the order demos appear in the prompt.

The set is chosen first and ordered second; each policy is a small object with
``__call__(context) -> permutation``, so selectors never branch on the policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.demo import Demo

__all__ = [
    "HerdingOrder",
    "OrderContext",
    "OrderingPolicy",
    "RandomOrder",
    "ReverseOrder",
    "SimilarityOrder",
    "get_ordering",
]


@dataclass(frozen=True)
class OrderContext:
    """What an ordering policy may look at; every tuple is in selection order."""

    demos: tuple[Demo, ...]
    similarities: tuple[float, ...]
    gains: tuple[float, ...] | None
    seed: int = 0


@runtime_checkable
class OrderingPolicy(Protocol):
    """Returns a permutation of ``range(len(context.demos))``: the prompt order."""

    def __call__(self, context: OrderContext) -> list[int]:  # pragma: no cover - protocol
        ...


class SimilarityOrder:
    """Most target-similar demonstration last (closest to the query), the default."""

    name = "similarity"

    def __call__(self, context: OrderContext) -> list[int]:
        return sorted(range(len(context.demos)), key=lambda i: (context.similarities[i], -i))


class HerdingOrder:
    """Keep the selection order: every prefix is a low-MMD set."""

    name = "herding"

    def __call__(self, context: OrderContext) -> list[int]:
        return list(range(len(context.demos)))


class ReverseOrder:
    """Selection order reversed: the first-chosen (most representative) demo last."""

    name = "reverse"

    def __call__(self, context: OrderContext) -> list[int]:
        return list(range(len(context.demos)))[::-1]


class RandomOrder:
    """A seeded random permutation."""

    name = "random"

    def __call__(self, context: OrderContext) -> list[int]:
        return [int(i) for i in np.random.default_rng(context.seed).permutation(len(context.demos))]


_POLICIES: dict[str, Callable[[], OrderingPolicy]] = {
    "similarity": SimilarityOrder,
    "herding": HerdingOrder,
    "reverse": ReverseOrder,
    "random": RandomOrder,
}


def register_ordering(name: str, factory: Callable[[], OrderingPolicy]) -> None:
    """Register a named ordering policy (used by ``order=name``)."""
    _POLICIES[name] = factory


def get_ordering(order: str | OrderingPolicy | Callable[[OrderContext], Any]) -> OrderingPolicy:
    """Resolve ``order=``: a policy name, a policy object, or a callable.

    Examples
    --------
    >>> get_ordering("similarity").name
    'similarity'
    """
    if isinstance(order, str):
        if order not in _POLICIES:
            raise InvalidInputError(f"order={order!r} is not known; use one of {sorted(_POLICIES)} or a callable.")
        return _POLICIES[order]()
    if callable(order):
        return order  # type: ignore[return-value]
    raise InvalidTypeError(f"order must be a policy name or a callable, got {type(order).__name__}.")


def apply_ordering(policy: OrderingPolicy, context: OrderContext) -> list[int]:
    """Run ``policy`` and check it returned a permutation."""
    perm = [int(i) for i in policy(context)]
    if sorted(perm) != list(range(len(context.demos))):
        raise InvalidInputError(
            f"the ordering policy {policy!r} did not return a permutation of the chosen demos: {perm}."
        )
    return perm
