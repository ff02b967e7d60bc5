"""Selectors, their shared result type and ordering policies."""

from promptkd.selection.base import BaseSelector
from promptkd.selection.herding import HerdingResult, herd
from promptkd.selection.ordering import OrderContext, OrderingPolicy, get_ordering
from promptkd.selection.selection import Selection
from promptkd.selection.selector import Selector
from promptkd.selection.target import Target

__all__ = [
    "BaseSelector",
    "HerdingResult",
    "OrderContext",
    "OrderingPolicy",
    "Selection",
    "Selector",
    "Target",
    "get_ordering",
    "herd",
]
