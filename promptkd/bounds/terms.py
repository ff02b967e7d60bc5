"""The bound evaluated term by term for one demonstration set (its two versions: docs/theory.md)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from promptkd._validation import check_float, check_int
from promptkd.bounds.results import BOUND_FORMULAS, Bound
from promptkd.kernels.deviation import kernel_bound, mmd_confidence_interval
from promptkd.kernels.functions import kernel_diag
from promptkd.kernels.mmd import mmd_permutation_test

__all__ = ["BoundTermsMixin"]


class BoundTermsMixin:
    """:meth:`bound` for :class:`~promptkd.bounds.BoundEstimator`."""

    # ------------------------------------------------------------------ the bound
    def bound(
        self,
        selection_or_indices: Any,
        *,
        target: Any = None,
        permutation_test: bool = False,
        n_permutations: int = 200,
        empirical_risk: float = 0.0,
    ) -> Bound:
        """Evaluate every term of the bound for a set of demonstrations.

        Parameters
        ----------
        selection_or_indices
            A :class:`~promptkd.Selection` or a sequence of pool indices.
        target
            Target (defaults to the one given to :meth:`fit`).
        permutation_test
            Also compute a permutation-test p-value for the MMD (target weights
            are ignored by the test).
        n_permutations
            Permutations of the test.
        empirical_risk
            ``R_hat_P``, if known (e.g. the LM's error on the demonstrations).

        Returns
        -------
        Bound
        """
        T = self._target(target)
        idx = self._indices(selection_or_indices)
        empirical_risk = check_float(empirical_risk, "empirical_risk", minimum=0.0)
        n_permutations = check_int(n_permutations, "n_permutations", minimum=1)
        S = self.embeddings_[idx]
        m = len(idx)
        diag = np.asarray(kernel_diag(S, kernel=self.kernel, bandwidth=self.bandwidth_), dtype=np.float64)
        trace = float(diag.sum())
        if self.rademacher == "empirical":
            # data-dependent version: empirical Rademacher complexity of the kernel class on S, whose own
            # concentration step costs the larger confidence term 3M sqrt(log(2/delta) / 2m)
            rademacher = self.B / m * math.sqrt(max(trace, 0.0))
            confidence = 3.0 * self.M * math.sqrt(math.log(2.0 / self.delta) / (2.0 * m))
        else:  # expected version: sup_x k(x, x) = Phi^2 bounds the expected complexity
            rademacher = self.B * float(self.Phi_) / math.sqrt(m)
            confidence = self.M * math.sqrt(math.log(1.0 / self.delta) / (2.0 * m))
        complexity = 2.0 * math.sqrt(2.0) * self.rho * rademacher
        K = max(
            kernel_bound(S, kernel=self.kernel, bandwidth=self.bandwidth_),
            kernel_bound(T.embeddings, kernel=self.kernel, bandwidth=self.bandwidth_),
        )
        ci = mmd_confidence_interval(
            S, T.embeddings, kernel=self.kernel, bandwidth=self.bandwidth_, delta=self.delta,
            weights_y=T.weights, K=K,
        )  # fmt: skip
        p_value = None
        if permutation_test:
            p_value = mmd_permutation_test(
                S, T.embeddings, kernel=self.kernel, bandwidth=self.bandwidth_,
                n_permutations=n_permutations, seed=self.seed,
            ).p_value  # fmt: skip
        C = float(self.C)
        mmd_term = C * ci.mmd
        mmd_upper = C * ci.upper
        base = empirical_risk + complexity + confidence
        return Bound(
            m=m,
            n_target=ci.n,
            indices=tuple(idx),
            empirical_risk=empirical_risk,
            trace_kss=trace,
            rademacher=rademacher,
            complexity_term=complexity,
            confidence_term=confidence,
            mmd2=ci.mmd2,
            mmd=ci.mmd,
            mmd_interval=ci,
            mmd_p_value=p_value,
            mmd_term=mmd_term,
            mmd_term_upper=mmd_upper,
            total=base + mmd_term,
            total_upper=base + mmd_upper,
            delta=float(self.delta),
            M=float(self.M),
            rho=float(self.rho),
            B=float(self.B),
            Phi=float(self.Phi_),
            C=C,
            formula=BOUND_FORMULAS[self.rademacher],
            version=self.rademacher,
        )
