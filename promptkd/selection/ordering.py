"""Ordering policies: given a chosen set, decide the order demos appear in the prompt.

The set is chosen first and ordered second; each policy is a small object with
``__call__(context) -> permutation``, so selectors never branch on the policy.

Plugging in a policy
--------------------
Any callable ``policy(context: OrderContext) -> list[int]`` can be passed as
``order=``; :func:`register_ordering` makes it available by name. The context
carries the chosen demos, their pool indices, embeddings, similarities and
herding gains, the query text and the weighted target sample, which is what a
probe-guided policy (e.g. one that runs a language model over candidate
orders and keeps the one whose demo attention mass best matches the MMD
weights) needs; such a policy holds its model and template itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.demo import Demo

__all__ = [
    "HerdingOrder",
    "InterleaveLabelsOrder",
    "LabelPriorOrder",
    "OrderContext",
    "OrderingPolicy",
    "RandomOrder",
    "ReverseOrder",
    "SimilarityOrder",
    "apply_ordering",
    "available_orderings",
    "get_ordering",
    "register_ordering",
]


@dataclass(frozen=True)
class OrderContext:
    """What an ordering policy may look at; every tuple is in selection order.

    Attributes
    ----------
    demos
        The chosen demos.
    similarities
        Weighted mean cosine similarity of each demo to the target.
    gains
        Herding gain of each demo (decrease of MMD2 when it was added), or None.
    seed
        The selector's seed (for random policies).
    indices
        Pool positions of the demos.
    embeddings
        (k, d) embeddings of the demos, or None.
    query
        The query text when the target came from one string.
    target_embeddings, target_weights
        The weighted target sample, or None.
    label_prior
        The target's label distribution estimated from its nearest pool demos
        (label -> probability), filled in when the policy asks for it with a
        ``label_neighbours`` attribute; None otherwise.
    """

    demos: tuple[Demo, ...]
    similarities: tuple[float, ...]
    gains: tuple[float, ...] | None
    seed: int = 0
    indices: tuple[int, ...] = ()
    embeddings: Any = None
    query: str | None = None
    target_embeddings: Any = None
    target_weights: Any = None
    label_prior: Mapping[str, float] | None = None


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


class InterleaveLabelsOrder:
    """Alternate labels so that the prompt never ends with a run of one label.

    Small LMs tend to copy the label of the last demonstrations, so a tail like
    ``pos, pos, pos`` biases the answer. The order is built from the end
    backwards: each position takes, among the labels different from the one
    just placed after it, the label with the most demos left (ties: the label
    whose best remaining demo is more similar to the target), and from that
    label its most target-similar remaining demo. Whenever the chosen set has
    at least two labels, the last two demos differ; whenever no label holds
    more than half of the demos (rounded up), no two neighbours share a label.
    Any unavoidable run ends up at the front of the prompt.

    Examples
    --------
    >>> from promptkd.pool import Demo
    >>> demos = tuple(Demo(input=str(i), output=y) for i, y in enumerate("aaabb"))
    >>> ctx = OrderContext(demos, (0.1, 0.2, 0.3, 0.4, 0.5), None)
    >>> [demos[i].output for i in InterleaveLabelsOrder()(ctx)]
    ['a', 'b', 'a', 'b', 'a']
    """

    name = "interleave_labels"

    def __call__(self, context: OrderContext) -> list[int]:
        groups: dict[str, list[int]] = {}
        for i, d in enumerate(context.demos):
            groups.setdefault(d.output, []).append(i)
        sims = context.similarities
        for members in groups.values():
            members.sort(key=lambda i: (sims[i], -i))  # ascending: the best is popped first
        reversed_order: list[int] = []
        last: str | None = None
        while any(groups.values()):
            options = [lab for lab, members in groups.items() if members and lab != last]
            if not options:  # only the label just placed is left: the run goes to the front
                options = [lab for lab, members in groups.items() if members]
            label = max(options, key=lambda lab: (len(groups[lab]), sims[groups[lab][-1]], -groups[lab][-1], lab))
            reversed_order.append(groups[label].pop())
            last = label
        return reversed_order[::-1]


class LabelPriorOrder:
    """Demos of the target's most likely label last, the most similar of them at the very end.

    The likely label is read from the target's ``label_neighbours`` nearest pool
    demos (a similarity-weighted vote, :attr:`OrderContext.label_prior`), not
    from the chosen set alone. Demos are sorted by the prior probability of their
    label, then by similarity, both ascending. Small LMs lean towards the label
    of the last demonstrations (recency bias); this order makes the label they
    lean towards the one the neighbourhood of the query supports.

    Parameters
    ----------
    label_neighbours
        How many nearest pool demos vote on the target's label distribution.
    vote
        What "nearest" means for the vote: ``"embedding"`` (cosine of the
        embeddings) or ``"embedding+lexical"`` (that cosine plus the TF-IDF
        cosine of the texts, with a vocabulary fitted on the pool; the selector
        builds the TF-IDF rows at fit time, once).

    Examples
    --------
    >>> from promptkd.pool import Demo
    >>> demos = tuple(Demo(input=str(i), output=y) for i, y in enumerate("abab"))
    >>> ctx = OrderContext(demos, (0.9, 0.8, 0.7, 0.6), None, label_prior={"a": 0.25, "b": 0.75})
    >>> [demos[i].output + demos[i].input for i in LabelPriorOrder()(ctx)]
    ['a2', 'a0', 'b3', 'b1']
    """

    name = "label_prior"

    votes = ("embedding", "embedding+lexical")

    def __init__(self, label_neighbours: int = 16, vote: str = "embedding") -> None:
        if isinstance(label_neighbours, bool) or not isinstance(label_neighbours, int) or label_neighbours < 1:
            raise InvalidInputError(f"label_neighbours must be a positive int, got {label_neighbours!r}.")
        if vote not in self.votes:
            raise InvalidInputError(f"vote must be one of {', '.join(map(repr, self.votes))}, got {vote!r}.")
        self.label_neighbours = label_neighbours
        self.vote = vote
        self.name = "label_prior" if vote == "embedding" else "label_prior_lexical"

    def __call__(self, context: OrderContext) -> list[int]:
        prior = context.label_prior or {}
        sims = context.similarities
        return sorted(range(len(context.demos)), key=lambda i: (prior.get(context.demos[i].output, 0.0), sims[i], -i))

    def __repr__(self) -> str:
        extra = "" if self.vote == "embedding" else f", vote={self.vote!r}"
        return f"LabelPriorOrder(label_neighbours={self.label_neighbours}{extra})"


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
    "interleave_labels": InterleaveLabelsOrder,
    "label_prior": LabelPriorOrder,
    "label_prior_lexical": lambda: LabelPriorOrder(vote="embedding+lexical"),
}


def register_ordering(name: str, factory: Callable[[], OrderingPolicy], *, overwrite: bool = False) -> None:
    """Register a named ordering policy, usable afterwards as ``order=name``.

    Parameters
    ----------
    name
        The policy name.
    factory
        Zero-argument callable returning the policy (a class works).
    overwrite
        Replace an existing policy of that name instead of raising.

    Examples
    --------
    >>> class ShortestLast:
    ...     name = "shortest_last"
    ...     def __call__(self, context):
    ...         return sorted(range(len(context.demos)), key=lambda i: -len(context.demos[i].input))
    >>> register_ordering("shortest_last", ShortestLast, overwrite=True)
    >>> get_ordering("shortest_last").name
    'shortest_last'
    """
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"name must be a non-empty string, got {name!r}.")
    if not callable(factory):
        raise InvalidTypeError(f"factory must be callable (e.g. the policy class), got {type(factory).__name__}.")
    if name in _POLICIES and not overwrite:
        raise InvalidInputError(f"an ordering named {name!r} is already registered; pass overwrite=True to replace it.")
    _POLICIES[name] = factory


def available_orderings() -> list[str]:
    """Names usable as ``order=``.

    Examples
    --------
    >>> "interleave_labels" in available_orderings()
    True
    """
    return sorted(_POLICIES)


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
    """Run ``policy`` and check it returned a permutation.

    Examples
    --------
    >>> from promptkd.pool import Demo
    >>> ctx = OrderContext((Demo(input="a", output="x"), Demo(input="b", output="y")), (0.9, 0.1), None)
    >>> apply_ordering(get_ordering("similarity"), ctx)
    [1, 0]
    """
    try:
        perm = [int(i) for i in policy(context)]
    except TypeError as err:
        raise InvalidTypeError(
            f"the ordering policy {policy!r} must return a list of positions (ints); calling it failed: {err}"
        ) from err
    if sorted(perm) != list(range(len(context.demos))):
        raise InvalidInputError(
            f"the ordering policy {policy!r} did not return a permutation of the chosen demos: {perm}."
        )
    return perm
