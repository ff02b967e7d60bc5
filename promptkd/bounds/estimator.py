"""The :class:`BoundEstimator`: the generalisation bound and the budget it implies (docs/theory.md)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptkd._params import ParamsMixin
from promptkd._validation import check_float, check_int
from promptkd.bounds.constants import CONSTANTS_SOURCES, BudgetConstantsMixin, theory_A, unit_diagonal
from promptkd.bounds.curves import MMDCurvesMixin
from promptkd.bounds.results import BOUND_FORMULAS, Budget, BudgetPoint
from promptkd.bounds.shipped import default_token_cost
from promptkd.bounds.terms import BoundTermsMixin
from promptkd.bounds.tokens import DemoTokensMixin, TokenCountFn
from promptkd.exceptions import BudgetInfeasibleError, InvalidInputError, InvalidTypeError, NotFittedError
from promptkd.kernels.deviation import kernel_bound
from promptkd.kernels.functions import (
    Bandwidth,
    KernelFn,
    get_kernel,
    median_bandwidth,
    resolve_bandwidth,
)
from promptkd.kernels.mmd import mmd2
from promptkd.pool.pool import DemoPool
from promptkd.selection.candidates import per_row_candidates
from promptkd.selection.herding import herd
from promptkd.selection.target import Target, resolve_target

__all__ = ["BoundEstimator", "theory_A"]

logger = logging.getLogger(__name__)


def _kernel_name(kernel: str | KernelFn) -> str:
    return kernel if isinstance(kernel, str) else getattr(kernel, "__name__", "custom")


_WARNED_NO_TURN: set[tuple[float, float, float, int]] = set()


class BoundEstimator(BudgetConstantsMixin, BoundTermsMixin, DemoTokensMixin, MMDCurvesMixin, ParamsMixin):
    """Evaluate the KD bound for a demonstration set and choose how many demos to use.

    The bound, with probability at least ``1 - delta``, in one of two versions (``rademacher=``)::

        empirical: R_Q <= R_hat_P + 2 sqrt(2) rho (B/m) sqrt(trace K_SS) + 3 M sqrt(log(2/delta) / (2m)) + C MMD
        expected:  R_Q <= R_hat_P + 2 sqrt(2) rho B Phi / sqrt(m)         +   M sqrt(log(1/delta) / (2m)) + C MMD

    Each version carries its own confidence term: the empirical (data-dependent) complexity
    needs a second concentration step, hence ``3 M`` and ``log(2/delta)``. For unit-diagonal
    kernels (rbf, laplacian, imq, cosine) the two complexity terms coincide.

    and the budget along the herding path ``S_1 ⊂ S_2 ⊂ ...``::

        U(k) = A / sqrt(k) + C MMD_b(S_k, T) + lambda tokens(S_k)

    Parameters
    ----------
    kernel, bandwidth
        Kernel settings, as for :class:`~promptkd.Selector` (``"median"`` is
        resolved on the pool at fit time with the same rule as the Selector).
    delta
        Failure probability of the bound and of the MMD confidence interval.
    M
        Range of the loss, ``[0, M]``.
    rho
        Lipschitz constant of the loss.
    B
        Norm bound of the student (distilled weights).
    Phi
        Feature-norm bound ``sqrt(sup k(x, x))``; None derives it from the
        kernel (1 for rbf, laplacian, imq, cosine; the pool's largest
        ``sqrt(k(x, x))`` otherwise).
    C
        Coefficient of the MMD in the risk bound (the theory's ``rho * Phi * C``
        with the bias constant folded in; equal under normalised constants).
    A
        Budget constant; None uses :func:`theory_A` (about 4.05 with the
        defaults).
    candidates
        Size of the candidate set the herding path is computed on.
    seed
        Seed for the median-bandwidth subsample, random subsets and permutations.
    show_progress_bar
        Progress bars for long loops (None: on when logging at INFO).
    rademacher
        ``"empirical"`` (default, data-dependent) or ``"expected"``: which
        version of the bound :meth:`bound` evaluates.
    constants
        Where the budget's ``A``, ``C`` and intercept come from when neither ``A``
        nor ``C`` is given and nothing is calibrated: ``"shipped"`` (default) uses
        the constants promptkd ships for the pool's embedder, kernel and bandwidth
        (:mod:`promptkd.bounds.shipped`), falling back to the theory's when none
        match; ``"theory"`` always uses the theory's (``A`` about 4.05, ``C = 1``,
        no intercept). ``constants_source_`` says which were used.

    Examples
    --------
    >>> from promptkd import DemoPool
    >>> from promptkd.embeddings import HashingEmbedder
    >>> pool = DemoPool([{"input": f"film review {i} great", "output": "pos"} for i in range(6)]
    ...                 + [{"input": f"market report {i} stocks", "output": "biz"} for i in range(6)],
    ...                 embedder=HashingEmbedder(dim=64))
    >>> est = BoundEstimator().fit(pool, ["a great film review", "stocks in the market"])
    >>> budget = est.budget(k_max=6, token_cost=0.05)
    >>> 1 <= budget.k_star <= 6
    True
    >>> b = est.bound(budget.selected)
    >>> abs(b.total - (b.complexity_term + b.confidence_term + b.mmd_term)) < 1e-12
    True
    """

    def __init__(
        self,
        kernel: str | KernelFn = "rbf",
        bandwidth: Bandwidth = "median",
        delta: float = 0.05,
        M: float = 1.0,
        rho: float = 1.0,
        B: float = 1.0,
        Phi: float | None = None,
        C: float = 1.0,
        A: float | None = None,
        candidates: int = 256,
        seed: int = 0,
        show_progress_bar: bool | None = None,
        rademacher: str = "empirical",
        constants: str = "shipped",
    ) -> None:
        self.rademacher = rademacher
        self.constants = constants
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.delta = delta
        self.M = M
        self.rho = rho
        self.B = B
        self.Phi = Phi
        self.C = C
        self.A = A
        self.candidates = candidates
        self.seed = seed
        self.show_progress_bar = show_progress_bar

    # ------------------------------------------------------------------ settings and fitting
    def _check_settings(self) -> None:
        get_kernel(self.kernel)
        delta = check_float(self.delta, "delta", minimum=0.0, maximum=1.0, strict_min=True)
        if delta >= 1.0:
            raise InvalidInputError(f"delta must be in (0, 1) (a failure probability), got {delta}.")
        for name in ("M", "rho", "B", "C"):
            check_float(getattr(self, name), name, minimum=0.0)
        if self.Phi is not None:
            check_float(self.Phi, "Phi", minimum=0.0)
        if self.A is not None:
            check_float(self.A, "A", minimum=0.0)
        check_int(self.candidates, "candidates", minimum=1)
        check_int(self.seed, "seed", minimum=0)
        if self.constants not in CONSTANTS_SOURCES:
            raise InvalidInputError(f"constants={self.constants!r} is not known; use one of {CONSTANTS_SOURCES}.")
        if self.rademacher not in BOUND_FORMULAS:
            raise InvalidInputError(
                f"rademacher={self.rademacher!r} is not a version of the bound; use 'empirical' or 'expected'."
            )

    def fit(self, pool: DemoPool, target: Any = None, *, weights: Any = None) -> BoundEstimator:
        """Learn the pool's embeddings, the bandwidth, ``Phi`` and (optionally) a default target.

        Parameters
        ----------
        pool
            The :class:`~promptkd.DemoPool` demonstrations are drawn from.
        target
            Optional default target: a query string, a list of strings (one
            distribution), an embedding array, or a
            :class:`~promptkd.selection.Target`.
        weights
            Optional simplex weights of the target points.

        Returns
        -------
        BoundEstimator
            ``self``.
        """
        if not isinstance(pool, DemoPool):
            raise InvalidTypeError(f"fit expects a DemoPool, got {type(pool).__name__}; build one with DemoPool(...).")
        if len(pool) == 0:
            raise InvalidInputError("the pool is empty; add demonstrations before fitting a BoundEstimator.")
        self._check_settings()
        snap = pool.snapshot()
        emb = snap.embeddings if snap.embeddings is not None else pool.embed()
        snap = pool.snapshot()
        E = np.asarray(emb, dtype=np.float32)
        self.pool_ = pool
        self.demos_ = snap.demos
        self.embeddings_ = E
        self.n_demos_ = int(E.shape[0])
        self.dim_ = int(E.shape[1])
        self.inv_norms_ = (1.0 / np.maximum(np.linalg.norm(E, axis=1), 1e-12)).astype(np.float32)
        if isinstance(self.bandwidth, str) and self.bandwidth == "median":
            self.bandwidth_ = median_bandwidth(E, seed=self.seed)
        else:
            self.bandwidth_ = resolve_bandwidth(self.bandwidth, E[:1])
        if self.Phi is not None:
            self.Phi_ = float(self.Phi)
        elif unit_diagonal(self.kernel):
            self.Phi_ = 1.0
        else:
            self.Phi_ = math.sqrt(kernel_bound(E, kernel=self.kernel, bandwidth=self.bandwidth_))
        self._find_shipped(pool, E)
        self._token_cache: dict[tuple[Any, ...], int] = {}
        self._counters: dict[Any, TokenCountFn] = {}
        self.target_ = None if target is None else self._resolve_target(target, weights)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "pool_"):
            raise NotFittedError(
                "this BoundEstimator is not fitted yet; call .fit(pool) (or .fit(pool, target)) first."
            )

    # ------------------------------------------------------------------ helpers
    def _resolve_target(self, target: Any, weights: Any = None) -> Target:
        if isinstance(target, Target):
            if target.embeddings.ndim != 2 or target.embeddings.shape[1] != self.dim_:
                raise InvalidInputError(
                    f"the target has dimension {target.embeddings.shape[-1]} but the pool has {self.dim_}; "
                    "embed both with the same embedder."
                )
            return target
        return resolve_target(self.pool_, target, dim=self.dim_, weights=weights)

    def _target(self, target: Any) -> Target:
        self._check_fitted()
        if target is None:
            if self.target_ is None:
                raise InvalidInputError(
                    "no target: pass target=... (a query, a list of queries or embeddings) or fit(pool, target)."
                )
            return self.target_
        return self._resolve_target(target)

    def _indices(self, selection: Any) -> list[int]:
        raw = selection.indices if hasattr(selection, "indices") else selection
        if isinstance(raw, (str, bytes)) or raw is None:
            raise InvalidTypeError(f"pass a Selection or a sequence of pool indices, got {type(selection).__name__}.")
        arr = np.asarray(list(raw) if not isinstance(raw, np.ndarray) else raw)
        if arr.ndim != 1 or arr.size == 0:
            raise InvalidInputError("the selection is empty; pass at least one pool index.")
        if not np.issubdtype(arr.dtype, np.integer):
            raise InvalidTypeError(f"pool indices must be integers, got dtype {arr.dtype}.")
        bad = arr[(arr < 0) | (arr >= self.n_demos_)]
        if bad.size:
            raise InvalidInputError(
                f"index {int(bad[0])} is outside the pool (0..{self.n_demos_ - 1}); was the selection made on another pool?"
            )
        return [int(i) for i in arr]

    def _mmd2(self, rows: Sequence[int], target: Target) -> float:
        X = self.embeddings_[list(rows)]
        return mmd2(X, target.embeddings, kernel=self.kernel, bandwidth=self.bandwidth_, weights_y=target.weights)

    def _mask(self, allowed: Any) -> np.ndarray | None:
        if allowed is None:
            return None
        mask = np.asarray(allowed)
        if mask.dtype != bool or mask.shape != (self.n_demos_,):
            raise InvalidInputError(
                f"allowed must be a boolean mask over the pool (shape ({self.n_demos_},)), got {mask.dtype} {mask.shape}."
            )
        if not mask.any():
            raise InvalidInputError("allowed excludes every demonstration; loosen the filter.")
        return mask

    def _candidates(self, target: Target, size: int, mask: np.ndarray | None = None) -> np.ndarray:
        """Pool indices of the ``size`` most target-similar (allowed) demos, most similar first.

        As in :class:`~promptkd.Selector`, a multi-point target also brings each point's own
        nearest demos (:func:`~promptkd.selection.candidates.per_row_candidates`), so the budget
        path is the selector's herding path.
        """
        T = target.embeddings.astype(np.float32)
        T = T / np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
        q = (T.T @ target.weights.astype(np.float32)).astype(np.float32)
        sims = (self.embeddings_ @ q) * self.inv_norms_
        pool = np.arange(self.n_demos_) if mask is None else np.flatnonzero(mask)
        s = sims[pool]
        m = min(size, len(pool))
        if m < len(pool):
            top = np.argpartition(-s, m - 1)[:m]
            top = top[np.lexsort((pool[top], -s[top]))]
        else:
            top = np.lexsort((pool, -s))
        cand = pool[top]
        if T.shape[0] > 1 and m < len(pool):
            E, inv = self.embeddings_, self.inv_norms_
            extra = per_row_candidates(lambda D: (D @ E.T) * inv[None, :], T, -(-m // T.shape[0]), mask)
            cand = np.union1d(cand, extra)
            cand = cand[np.lexsort((cand, -sims[cand]))]
        return cand

    def herding_path(
        self, target: Any = None, k_max: int = 32, *, allowed: Any = None
    ) -> tuple[list[int], list[float]]:
        """Pool indices of the herding path (selection order) and the MMD2 of each prefix.

        Uses the Selector's greedy (:func:`promptkd.selection.herding.herd`) on the
        top-``candidates`` items by similarity; prefix MMD2 values come from
        :func:`promptkd.kernels.mmd2`.

        Parameters
        ----------
        target
            Target (defaults to the one given to :meth:`fit`).
        k_max
            Length of the path (clipped to the number of eligible candidates).
        allowed
            Optional boolean mask over the pool of items that may be chosen.
        """
        T = self._target(target)
        k_max = check_int(k_max, "k_max", minimum=1)
        pool_mask = self._mask(allowed)
        cand = self._candidates(T, max(self.candidates, k_max), pool_mask)
        C = np.asarray(self.embeddings_[cand], dtype=np.float32)
        res = herd(C, T.embeddings, T.weights, k_max, kernel=self.kernel, bandwidth=self.bandwidth_)
        path = [int(cand[j]) for j in res.order]
        values = [self._mmd2(path[: t + 1], T) for t in range(len(path))]
        return path, values

    # ------------------------------------------------------------------ the budget
    def budget(
        self,
        target: Any = None,
        *,
        k_max: int = 32,
        max_tokens: int | None = None,
        token_cost: float | None = None,
        tokenizer: Any = None,
        template: Any = None,
        target_error: float | None = None,
        allowed: Any = None,
    ) -> Budget:
        """Choose the number of demonstrations by minimising ``U(k)`` along the herding path.

        Parameters
        ----------
        target
            Target (defaults to the one given to :meth:`fit`); a query, a list
            of queries, an embedding array or a :class:`~promptkd.selection.Target`.
        k_max
            Largest k considered (clipped to the pool / eligible candidates).
        max_tokens
            Hard limit on the rendered demonstrations' tokens; demos longer than
            it are never chosen and sizes whose path exceeds it are infeasible.
        token_cost
            ``lambda``, the price of one prompt token in units of error (0.0001 is one
            accuracy point per 100 tokens); None uses promptkd's default
            (:func:`promptkd.bounds.shipped.default_token_cost`), 0 makes tokens free.
        tokenizer
            How tokens are counted (see :func:`promptkd.bounds.tokens.resolve_tokenizer`;
            None counts whitespace words).
        template
            Template the demos are rendered with before counting tokens.
        target_error
            Optional target error ``eps``; the budget then reports the largest
            acceptable MMD for it.
        allowed
            Optional boolean mask over the pool of demos that may be chosen
            (e.g. a Selector's metadata filter).

        Returns
        -------
        Budget

        Raises
        ------
        BudgetInfeasibleError
            When ``max_tokens`` is smaller than every candidate demonstration.
        """
        T = self._target(target)
        k_max = check_int(k_max, "k_max", minimum=1)
        token_cost = default_token_cost() if token_cost is None else check_float(token_cost, "token_cost", minimum=0.0)
        if max_tokens is not None:
            max_tokens = check_int(max_tokens, "max_tokens", minimum=1)
        if target_error is not None:
            target_error = check_float(target_error, "target_error", minimum=0.0)
        mask = self._mask(allowed)
        n_ok = self.n_demos_ if mask is None else int(mask.sum())
        if k_max > n_ok:
            logger.debug("k_max=%d is larger than the eligible pool; using %d", k_max, n_ok)
            k_max = n_ok
        cand = self._candidates(T, max(self.candidates, k_max), mask)
        cand_tokens = self.demo_tokens(cand, tokenizer=tokenizer, template=template)
        if max_tokens is not None:
            fits = cand_tokens <= max_tokens
            if not fits.any():
                raise BudgetInfeasibleError(
                    f"max_tokens={max_tokens} is smaller than every candidate demonstration (the shortest has "
                    f"{int(cand_tokens.min())} tokens); raise max_tokens to at least {int(cand_tokens.min())}."
                )
            mask = np.zeros(self.n_demos_, dtype=bool)
            mask[cand[fits]] = True  # cand already respects `allowed`
        path, values = self.herding_path(T, k_max, allowed=mask)
        tok_of = dict(zip(cand.tolist(), cand_tokens.tolist(), strict=True))
        A, C, intercept = self.A_, self.C_, self.intercept_
        points: list[BudgetPoint] = []
        cum = 0
        for t, (i, v) in enumerate(zip(path, values, strict=True)):
            k = t + 1
            cum += int(tok_of[i])
            mmd = math.sqrt(max(v, 0.0))
            complexity = A / math.sqrt(k)
            token_term = token_cost * cum
            U = intercept + complexity + C * mmd + token_term
            feasible = max_tokens is None or cum <= max_tokens
            points.append(BudgetPoint(k, complexity, float(v), mmd, C * mmd, cum, token_term, U, feasible))
        feasible_pts = [p for p in points if p.feasible]
        if not feasible_pts:  # pragma: no cover - the first step always fits when allowed is set
            raise BudgetInfeasibleError(f"no demonstration set fits max_tokens={max_tokens}; raise max_tokens.")
        k_star = min(feasible_pts, key=lambda p: (p.U, p.k)).k
        saturation = next((p.k for p in points if p.complexity < p.mmd_term), None)
        budget = Budget(
            k_star=k_star,
            curve=tuple(points),
            indices=tuple(path),
            saturation_k=saturation,
            A=A,
            C=C,
            intercept=intercept,
            constants=self.constants_,
            constants_source=self.constants_source_,
            token_cost=token_cost,
            max_tokens=max_tokens,
            target_error=target_error,
            kernel=_kernel_name(self.kernel),
            bandwidth=self.bandwidth_,
        )
        logger.info("budget: k*=%d, U(k*)=%.4f over k=1..%d", k_star, budget.U_star, len(points))
        last = feasible_pts[-1]
        key = (round(A, 12), round(C, 12), float(token_cost), k_max)
        if k_star == last.k and len(feasible_pts) > 1 and last.k == k_max and key not in _WARNED_NO_TURN:
            _WARNED_NO_TURN.add(key)  # once per setting, not once per query of a batch
            logger.warning(
                "budget: k* = k_max = %d because U(k) is still falling there: the A/sqrt(k) term (A = %.3g) "
                "outweighs what one more demo adds in C*MMD (C = %.3g) and tokens (token_cost = %.3g). To get a "
                "budget below k_max, calibrate A and C on your task (BoundEstimator.calibrate), raise token_cost "
                "(the price of a prompt token, in units of error), or raise k_max to see where the curve turns.",
                k_max,
                A,
                C,
                token_cost,
            )
        return budget

    def __repr__(self) -> str:
        return (
            f"BoundEstimator(kernel={self.kernel!r}, bandwidth={self.bandwidth!r}, delta={self.delta!r}, "
            f"M={self.M!r}, rho={self.rho!r}, B={self.B!r}, Phi={self.Phi!r}, C={self.C!r}, A={self.A!r}, "
            f"constants={self.constants!r})"
        )
