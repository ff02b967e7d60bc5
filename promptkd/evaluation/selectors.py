"""The selectors of an experiment grid: how each is built (``SelectorSpec``) and the benchmark's named set."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from promptkd.evaluation.results import ZERO_SHOT
from promptkd.exceptions import InvalidInputError

__all__ = ["SelectorSpec", "standard_selectors"]


@dataclass(frozen=True)
class SelectorSpec:
    """How to build and query one selector in the grid.

    Parameters
    ----------
    name
        Name in results and tables.
    factory
        ``factory(k, seed) -> BaseSelector`` (unfitted); None means zero-shot (no demos).
    seeded
        Run once per seed (otherwise once, with seed 0).
    neighbours
        When > 0 the target is the query (weight ``query_weight``) plus its
        ``neighbours`` nearest other test inputs (unlabelled).
    query_weight
        Target mass on the query when ``neighbours > 0``.
    fixed_k
        Run only at this k (e.g. ``"auto"``) instead of every k of the grid.
    embedder
        Key of the embedder the selector's pool uses (``"default"`` or one passed in ``embedders``).

    Examples
    --------
    >>> SelectorSpec("zero-shot").factory is None
    True
    """

    name: str
    factory: Callable[[Any, int], Any] | None = None
    seeded: bool = False
    neighbours: int = 0
    query_weight: float = 0.5
    fixed_k: int | str | None = None
    embedder: str = "default"


def standard_selectors(names: Sequence[str] | None = None, **promptkd_kwargs: Any) -> list[SelectorSpec]:
    """The selectors of the quality benchmark, by name.

    Names: ``zero-shot``, ``random``, ``topk``, ``mmr``, ``dpp``, ``votek``,
    ``bm25``, ``topk-prior`` and ``bm25-prior`` (TopK and BM25 with the
    ``"label_prior"`` order; ``<name>-lexvote`` with its lexical vote for TopK, BM25,
    MMR and promptkd; ``mmr-lexvote-d0.25`` and ``dpp-lexvote-d0.3``, MMR and DPP
    with that order and vote at the diversity their dev tuning chose), ``promptkd`` (per-query target, the Selector's defaults: the
    ``"rbf+lexical"`` kernel and the ``"label_prior_lexical"`` order),
    ``promptkd-rbf`` (an RBF on the embeddings and the ``"label_prior"`` order: the
    defaults before those), ``promptkd-sim`` (an RBF and the most similar demo
    last: the defaults before the label-aware ones), ``promptkd-hybrid`` (the
    hybrid kernel ``RBF() + LexicalKernel()`` with the ``"label_prior"`` order),
    ``promptkd-nbhd`` (query plus 8 nearest test inputs), ``promptkd-lm`` (promptkd
    on the ``"lm"`` embedder), ``promptkd-auto`` (``k="auto"`` with at most 8 demos,
    the largest k of the benchmark grid), ``promptkd-auto16`` (``k="auto"`` with at
    most 16 demos and otherwise the budget's defaults: shipped constants, default
    token price), ``promptkd-rbf-auto16`` (the same on ``promptkd-rbf``), and
    ``promptkd-auto16-p1`` / ``promptkd-rbf-auto16-p1`` (those two at a price of 1
    accuracy point per 100 tokens).
    ``promptkd_kwargs`` go to every promptkd :class:`~promptkd.Selector`.

    Examples
    --------
    >>> [s.name for s in standard_selectors(["zero-shot", "topk", "promptkd"])]
    ['zero-shot', 'topk', 'promptkd']
    """
    from promptkd.kernels import RBF, LexicalKernel
    from promptkd.selection import Selector
    from promptkd.selection import baselines as b
    from promptkd.selection.ordering import LabelPriorOrder

    def pk(**extra: Any) -> Callable[[Any, int], Any]:
        def make(k: Any, seed: int) -> Any:
            return Selector(k=k, seed=seed, **{**promptkd_kwargs, **extra})

        return make

    def base(cls: Any, **extra: Any) -> Callable[[Any, int], Any]:
        return lambda k, seed: cls(k=k, seed=seed, **extra)

    lexvote, hybrid = LabelPriorOrder(vote="embedding+lexical"), RBF() + LexicalKernel()
    # the Selector's defaults before "rbf+lexical": every other promptkd variant names its kernel and order,
    # so its rows stay what they were when the defaults move
    rbf = {"kernel": "rbf", "order": "label_prior"}

    table = {
        ZERO_SHOT: SelectorSpec(ZERO_SHOT),
        "random": SelectorSpec("random", base(b.RandomSelector), seeded=True),
        "topk": SelectorSpec("topk", base(b.TopKSelector)),
        "mmr": SelectorSpec("mmr", base(b.MMRSelector)),
        "dpp": SelectorSpec("dpp", base(b.DPPSelector)),
        "votek": SelectorSpec("votek", base(b.VoteKSelector)),
        "bm25": SelectorSpec("bm25", base(b.BM25Selector)),
        "topk-prior": SelectorSpec("topk-prior", base(b.TopKSelector, order="label_prior")),
        "bm25-prior": SelectorSpec("bm25-prior", base(b.BM25Selector, order="label_prior")),
        "promptkd": SelectorSpec("promptkd", pk()),
        "promptkd-rbf": SelectorSpec("promptkd-rbf", pk(**rbf)),
        "promptkd-sim": SelectorSpec("promptkd-sim", pk(kernel="rbf", order="similarity")),
        "promptkd-hybrid": SelectorSpec("promptkd-hybrid", pk(kernel=hybrid, order="label_prior")),
        "topk-lexvote": SelectorSpec("topk-lexvote", base(b.TopKSelector, order=lexvote)),
        "bm25-lexvote": SelectorSpec("bm25-lexvote", base(b.BM25Selector, order=lexvote)),
        "mmr-lexvote": SelectorSpec("mmr-lexvote", base(b.MMRSelector, order=lexvote)),
        # the MMR and DPP settings that won their families' dev tuning (benchmarks/tune_dev.py)
        "mmr-lexvote-d0.25": SelectorSpec("mmr-lexvote-d0.25", base(b.MMRSelector, diversity=0.25, order=lexvote)),
        "dpp-lexvote-d0.3": SelectorSpec("dpp-lexvote-d0.3", base(b.DPPSelector, diversity=0.3, order=lexvote)),
        "promptkd-lexvote": SelectorSpec("promptkd-lexvote", pk(kernel="rbf", order=lexvote)),
        "promptkd-nbhd": SelectorSpec("promptkd-nbhd", pk(), neighbours=8),
        "promptkd-lm": SelectorSpec("promptkd-lm", pk(), embedder="lm"),
        "promptkd-auto": SelectorSpec("promptkd-auto", pk(k_max=8), fixed_k="auto"),
        "promptkd-auto16": SelectorSpec("promptkd-auto16", pk(k_max=16), fixed_k="auto"),
        "promptkd-rbf-auto16": SelectorSpec("promptkd-rbf-auto16", pk(k_max=16, **rbf), fixed_k="auto"),
        # the same two at the first default price, 1 accuracy point per 100 tokens (rows scored before it moved)
        "promptkd-auto16-p1": SelectorSpec("promptkd-auto16-p1", pk(k_max=16, token_cost=1e-4), fixed_k="auto"),
        "promptkd-rbf-auto16-p1": SelectorSpec(
            "promptkd-rbf-auto16-p1", pk(k_max=16, token_cost=1e-4, **rbf), fixed_k="auto"
        ),
    }
    if names is None:
        names = list(table)
    out = []
    for n in names:
        if n not in table:
            raise InvalidInputError(f"unknown selector {n!r}; choose from {sorted(table)} or pass a SelectorSpec.")
        out.append(table[n])
    return out
