"""Herding against random subsets: MMD2 to the target at every k, for :class:`~promptkd.bounds.BoundEstimator`."""

from __future__ import annotations

from typing import Any

import numpy as np

from promptkd._progress import default_show_progress_bar
from promptkd._validation import check_int
from promptkd.bounds.results import MMDCurves

__all__ = ["MMDCurvesMixin"]


class MMDCurvesMixin:
    """``mmd_curves``: the herding path's MMD2 beside nested random subsets of the pool."""

    n_demos_: int
    seed: int
    show_progress_bar: Any

    # ------------------------------------------------------------------ herding versus random
    def mmd_curves(self, target: Any = None, *, k_max: int = 32, n_random: int = 20) -> MMDCurves:
        """MMD2 to the target against k for the herding path and for random subsets of the pool.

        Random subsets are nested prefixes of seeded random permutations of the
        whole pool; every value comes from :func:`promptkd.kernels.mmd2`.

        Examples
        --------
        >>> from promptkd import DemoPool
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": f"text {i} about topic {i % 3}", "output": "x"} for i in range(12)],
        ...                 embedder=HashingEmbedder(dim=64))
        >>> from promptkd.bounds import BoundEstimator
        >>> curves = BoundEstimator().fit(pool, "text about topic 1").mmd_curves(k_max=4, n_random=5)
        >>> len(curves.k), curves.herding[0] <= curves.random_mean[0]
        (4, True)
        """
        from tqdm.auto import tqdm

        T = self._target(target)
        k_max = min(check_int(k_max, "k_max", minimum=1), self.n_demos_)
        n_random = check_int(n_random, "n_random", minimum=1)
        _, herding = self.herding_path(T, k_max)
        k_max = len(herding)
        rng = np.random.default_rng(self.seed)
        rand = np.empty((n_random, k_max), dtype=np.float64)
        show = default_show_progress_bar(self.show_progress_bar)
        for r in tqdm(range(n_random), desc="random subsets", disable=not show):
            perm = rng.permutation(self.n_demos_)[:k_max]
            for t in range(k_max):
                rand[r, t] = self._mmd2(perm[: t + 1].tolist(), T)
        return MMDCurves(
            k=tuple(range(1, k_max + 1)),
            herding=tuple(float(v) for v in herding),
            random_mean=tuple(float(v) for v in rand.mean(0)),
            random_std=tuple(float(v) for v in rand.std(0)),
            random_low=tuple(float(v) for v in np.quantile(rand, 0.1, axis=0)),
            random_high=tuple(float(v) for v in np.quantile(rand, 0.9, axis=0)),
            n_random=n_random,
        )
