"""One call for the CLI: the budget, the bound at k* and a PNG of both."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from promptkd.bounds.estimator import BoundEstimator
from promptkd.bounds.results import Bound, Budget
from promptkd.exceptions import InvalidTypeError
from promptkd.pool.pool import DemoPool

__all__ = ["report"]

logger = logging.getLogger(__name__)


def report(
    pool: DemoPool,
    queries: Any,
    *,
    k_max: int = 16,
    out_png: str | Path | None = None,
    max_tokens: int | None = None,
    token_cost: float | None = None,
    tokenizer: Any = None,
    template: Any = None,
    target_error: float | None = None,
    permutation_test: bool = True,
    n_permutations: int = 200,
    n_random: int = 20,
    estimator: BoundEstimator | None = None,
    **settings: Any,
) -> tuple[Budget, Bound]:
    """Budget along the herding path, the bound at ``k*`` and (optionally) a three-panel PNG.

    Parameters
    ----------
    pool
        The demonstration pool.
    queries
        The target: a query, a list of queries (one distribution) or embeddings.
    k_max
        Largest number of demonstrations considered.
    out_png
        Where to write the figure (U(k) with k*, herding vs random MMD2, the
        bound's terms); None writes nothing. Needs the ``plot`` extra.
    max_tokens, token_cost, tokenizer, template, target_error
        Passed to :meth:`BoundEstimator.budget`.
    permutation_test, n_permutations
        Add a permutation p-value to the bound at ``k*``.
    n_random
        Random subsets per k for the herding-versus-random panel.
    estimator
        A configured (possibly calibrated) :class:`BoundEstimator`; otherwise one
        is built from ``settings`` (kernel, bandwidth, delta, M, rho, B, Phi, C,
        A, candidates, seed).

    Returns
    -------
    (Budget, Bound)

    Examples
    --------
    >>> from promptkd import DemoPool
    >>> from promptkd.embeddings import HashingEmbedder
    >>> pool = DemoPool([{"input": f"review {i}: a great film", "output": "pos"} for i in range(5)]
    ...                 + [{"input": f"report {i}: stocks fell", "output": "biz"} for i in range(5)],
    ...                 embedder=HashingEmbedder(dim=64))
    >>> budget, bound = report(pool, ["a great film", "stocks fell"], k_max=5, token_cost=0.02)
    >>> bound.m == budget.k_star
    True
    """
    if estimator is None:
        estimator = BoundEstimator(**settings)
    elif settings:
        raise InvalidTypeError(f"pass either estimator= or estimator settings, not both (got {sorted(settings)}).")
    estimator.fit(pool, queries)
    budget = estimator.budget(
        k_max=k_max,
        max_tokens=max_tokens,
        token_cost=token_cost,
        tokenizer=tokenizer,
        template=template,
        target_error=target_error,
    )
    bound = estimator.bound(budget.selected, permutation_test=permutation_test, n_permutations=n_permutations)
    if out_png is not None:
        from promptkd.bounds.plots import new_figure, save_figure

        curves = estimator.mmd_curves(k_max=k_max, n_random=n_random)
        fig, axes = new_figure(3, width=5.5, height=4.2)
        budget.plot(ax=axes[0])
        curves.plot(ax=axes[1])
        bound.plot(ax=axes[2])
        path = save_figure(fig, out_png)
        logger.info("wrote %s", path)
    return budget, bound
