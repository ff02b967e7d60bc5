"""Selectors, their shared result type, constraints and ordering policies."""

from promptkd.selection.ann import CandidateIndex
from promptkd.selection.base import BaseSelector
from promptkd.selection.baselines import (
    BM25Selector,
    DPPSelector,
    MMRSelector,
    RandomSelector,
    TopKSelector,
    VoteKSelector,
)
from promptkd.selection.constraints import ConstraintState, stratified_quotas
from promptkd.selection.herding import HerdingResult, SwapResult, herd, swap_refine
from promptkd.selection.ordering import (
    HerdingOrder,
    InterleaveLabelsOrder,
    LabelPriorOrder,
    OrderContext,
    OrderingPolicy,
    RandomOrder,
    ReverseOrder,
    SimilarityOrder,
    apply_ordering,
    available_orderings,
    get_ordering,
    register_ordering,
)
from promptkd.selection.selection import Selection
from promptkd.selection.selector import Selector
from promptkd.selection.settings import BudgetSettings, Constraints, IndexSettings
from promptkd.selection.target import Target, TargetSpec, build_target
from promptkd.selection.tokens import TokenCounter

__all__ = [
    "BM25Selector",
    "BaseSelector",
    "BudgetSettings",
    "CandidateIndex",
    "ConstraintState",
    "Constraints",
    "DPPSelector",
    "HerdingOrder",
    "HerdingResult",
    "IndexSettings",
    "InterleaveLabelsOrder",
    "LabelPriorOrder",
    "MMRSelector",
    "OrderContext",
    "OrderingPolicy",
    "RandomOrder",
    "RandomSelector",
    "ReverseOrder",
    "Selection",
    "Selector",
    "SimilarityOrder",
    "SwapResult",
    "Target",
    "TargetSpec",
    "TokenCounter",
    "TopKSelector",
    "VoteKSelector",
    "apply_ordering",
    "available_orderings",
    "build_target",
    "get_ordering",
    "herd",
    "register_ordering",
    "stratified_quotas",
    "swap_refine",
]
