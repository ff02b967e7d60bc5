"""Figures for bounds and budgets (the ``plot`` extra, matplotlib).

Figures are built with matplotlib's object API on the Agg canvas, so nothing
here touches pyplot's global state or needs a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptkd._optional import require

if TYPE_CHECKING:  # pragma: no cover
    from promptkd.bounds.results import Bound, Budget, MMDCurves

__all__ = ["new_figure", "plot_bound", "plot_budget", "plot_mmd_curves", "save_figure"]


def new_figure(ncols: int = 1, *, width: float = 6.0, height: float = 4.0) -> tuple[Any, list[Any]]:
    """A Figure on the Agg canvas with ``ncols`` axes side by side.

    Examples
    --------
    >>> fig, axes = new_figure(2)
    >>> len(axes)
    2
    """
    require("matplotlib", "plot", purpose="plotting bounds and budgets")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _axes(ax: Any) -> tuple[Any, Any]:
    if ax is None:
        fig, axes = new_figure(1)
        return fig, axes[0]
    return ax.figure, ax


def plot_budget(budget: Budget, ax: Any = None) -> Any:
    """Stack the terms of ``U(k)`` against k, draw ``U(k)`` and mark ``k*``.

    Examples
    --------
    >>> from promptkd.bounds.results import Budget, BudgetPoint
    >>> pts = tuple(BudgetPoint(k, 2 / k**0.5, 0.04, 0.2, 0.2, 5 * k, 0.0, 2 / k**0.5 + 0.2, True) for k in (1, 2, 3))
    >>> fig = plot_budget(Budget(3, pts, (0, 1, 2), None, 2.0, 1.0, 0.0, "user", 0.0, None))
    >>> type(fig).__name__
    'Figure'
    """
    fig, ax = _axes(ax)
    ks = [p.k for p in budget.curve]
    layers = [[p.complexity for p in budget.curve], [p.mmd_term for p in budget.curve]]
    labels = ["A/sqrt(k)  (complexity + confidence)", "C*MMD  (bias)"]
    if budget.token_cost > 0:
        layers.append([p.token_term for p in budget.curve])
        labels.append("lambda*tokens")
    base = [budget.intercept] * len(ks)
    colors = ["#4C72B0", "#DD8452", "#55A868"]
    for layer, label, color in zip(layers, labels, colors, strict=False):
        top = [b + v for b, v in zip(base, layer, strict=True)]
        ax.fill_between(ks, base, top, alpha=0.45, label=label, color=color, step=None)
        base = top
    ax.plot(ks, [p.U for p in budget.curve], color="black", lw=1.8, label="U(k)")
    star = budget.best
    ax.axvline(star.k, color="crimson", ls="--", lw=1.2)
    ax.plot([star.k], [star.U], marker="*", ms=14, color="crimson", label=f"k* = {star.k}, U = {star.U:.3f}")
    if budget.saturation_k is not None:
        ax.axvline(budget.saturation_k, color="grey", ls=":", lw=1.0, label=f"saturation k = {budget.saturation_k}")
    infeasible = [p.k for p in budget.curve if not p.feasible]
    if infeasible:
        ax.axvspan(min(infeasible) - 0.5, max(infeasible) + 0.5, color="grey", alpha=0.15, label="over max_tokens")
    ax.set_xlabel("k (demonstrations, herding order)")
    ax.set_ylabel("bound U(k)")
    ax.set_title(f"Budget ({budget.constants} constants)")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def plot_bound(bound: Bound, ax: Any = None) -> Any:
    """Bar chart of the bound's terms, with the MMD confidence interval as an error bar.

    Examples
    --------
    >>> from promptkd.kernels.deviation import MMDInterval
    >>> from promptkd.bounds.results import Bound
    >>> ci = MMDInterval(0.04, 0.2, 0.0, 0.9, 0.7, 4, 8, 1.0, 0.05, True)
    >>> b = Bound(4, 8, (0, 1, 2, 3), 0.0, 4.0, 0.5, 1.41, 0.61, 0.04, 0.2, ci, None, 0.2, 0.9, 2.22, 2.92,
    ...           0.05, 1.0, 1.0, 1.0, 1.0, 1.0)
    >>> type(plot_bound(b)).__name__
    'Figure'
    """
    fig, ax = _axes(ax)
    names = ["empirical risk", "complexity", "confidence", "C*MMD", "total"]
    values = [bound.empirical_risk, bound.complexity_term, bound.confidence_term, bound.mmd_term, bound.total]
    colors = ["#8172B3", "#4C72B0", "#64B5CD", "#DD8452", "black"]
    ax.bar(names, values, color=colors, alpha=0.8)
    err_low = bound.mmd_term - bound.C * bound.mmd_interval.lower
    err_high = bound.mmd_term_upper - bound.mmd_term
    ax.errorbar([3], [bound.mmd_term], yerr=[[err_low], [err_high]], color="black", capsize=5, lw=1)
    ax.errorbar([4], [bound.total], yerr=[[0.0], [bound.total_upper - bound.total]], color="grey", capsize=5, lw=1)
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("contribution to the risk bound")
    ax.set_title(f"Bound for m = {bound.m} (delta = {bound.delta:g}); bars: {100 * (1 - bound.delta):g}% MMD interval")
    ax.tick_params(axis="x", labelsize=8)
    return fig


def plot_mmd_curves(curves: MMDCurves, ax: Any = None) -> Any:
    """MMD2 to the target against k: herding path versus random subsets (mean and 10-90% band).

    Examples
    --------
    >>> from promptkd.bounds.results import MMDCurves
    >>> c = MMDCurves((1, 2), (0.5, 0.3), (0.9, 0.6), (0.1, 0.1), (0.8, 0.5), (1.0, 0.7), 5)
    >>> type(plot_mmd_curves(c)).__name__
    'Figure'
    """
    fig, ax = _axes(ax)
    ks = list(curves.k)
    ax.fill_between(ks, curves.random_low, curves.random_high, color="grey", alpha=0.25, label="random 10-90%")
    ax.plot(ks, curves.random_mean, color="grey", lw=1.5, label=f"random subsets (mean of {curves.n_random})")
    ax.plot(ks, curves.herding, color="#4C72B0", lw=2.0, marker="o", ms=3, label="herding path")
    ax.set_xlabel("k (demonstrations)")
    ax.set_ylabel("MMD2 to target (biased)")
    ax.set_title("Herding versus random subsets")
    ax.legend(fontsize=8)
    return fig


def save_figure(fig: Any, path: str | Path, *, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (PNG, SVG or PDF by extension), creating parent folders.

    Examples
    --------
    >>> import tempfile, os
    >>> fig, _ = new_figure(1)
    >>> out = save_figure(fig, os.path.join(tempfile.mkdtemp(), "f.png"))
    >>> out.stat().st_size > 0
    True
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out
