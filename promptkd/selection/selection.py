"""The :class:`Selection` result type shared by every selector."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from promptkd.pool.demo import Demo
from promptkd.rendering.template import PromptTemplate, RenderedPrompt, as_template

__all__ = ["Selection"]


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _budget_lines(budget: Any) -> list[str]:
    """The budget's decision in :meth:`Selection.explain`: k*, the token price and the constants used."""
    curve = getattr(budget, "curve", ())
    head = f"budget: k*={budget.k_star}"
    if curve:
        head += f" of k=1..{len(curve)}"
    if hasattr(budget, "U_star"):
        head += f", U(k*)={budget.U_star:.4f}"
    lines = [head]
    cost = getattr(budget, "token_cost", None)
    if cost is not None:
        points = round(float(cost) * 1e4, 10)
        lines.append(f"  token price: {points:g} accuracy points per 100 prompt tokens (token_cost={float(cost):g})")
    kind = getattr(budget, "constants", None)
    if kind is not None:
        text = f"  constants: A={budget.A:.4g}, C={budget.C:.4g}, intercept={budget.intercept:.4g} ({kind})"
        lines.append(text)
        source = getattr(budget, "constants_source", "")
        if source:
            lines.append(f"  from: {source}")
    return lines


@dataclass(frozen=True)
class Selection:
    """Demonstrations chosen for a target, in prompt order, with provenance.

    All per-demo tuples are aligned with :attr:`indices` (prompt order).

    Attributes
    ----------
    indices
        Positions of the chosen demos in the pool, in prompt order.
    demos
        The chosen :class:`~promptkd.pool.Demo` objects, in prompt order.
    scores
        Similarity of each demo to the target (weighted mean cosine similarity).
    mmd2
        Biased (weighted) MMD2 between the chosen demos and the target under the
        pool's reference kernel: an RBF at the median-heuristic bandwidth of the
        pool (:attr:`reference_bandwidth`, the same for every selector fitted on
        that pool), so values of different selectors compare.
    method
        Name of the selector that produced it.
    gains
        Decrease of MMD2 when each demo was added (herding selectors), else None.
    selection_rank
        Step at which each demo was chosen (0 = first), in prompt order.
    mmd2_path
        The optimiser's MMD2 (its own kernel and bandwidth) of the first t chosen
        demos, for t = 1..k, in selection order.
    phases
        The optimiser's MMD2 after each phase (e.g. ``{"greedy": ..., "swap": ...}``).
    query
        The query text when the target was a single string.
    target_size
        Number of target points (query plus context).
    kernel, bandwidth
        The selector's kernel settings (what ``mmd2_path``, ``phases`` and
        ``objective`` use).
    objective
        The optimiser's own objective for the chosen set (the last entry of
        ``mmd2_path``), or None for selectors that do not minimise MMD2.
    reference_bandwidth
        Bandwidth of the reference RBF behind ``mmd2``.
    tokens
        Total tokens of the rendered demonstrations, when a token budget was used.
    demo_tokens
        Tokens of each rendered demonstration (prompt order), when a token budget was used.
    budget
        The :class:`~promptkd.bounds.Budget` when ``k="auto"`` chose the size
        (its ``token_cost``, ``constants`` and ``constants_source`` say what the
        choice assumed; :meth:`explain` prints them).
    """

    indices: tuple[int, ...]
    demos: tuple[Demo, ...]
    scores: tuple[float, ...]
    mmd2: float
    method: str = "selector"
    gains: tuple[float, ...] | None = None
    selection_rank: tuple[int, ...] | None = None
    mmd2_path: tuple[float, ...] = ()
    phases: dict[str, float] = field(default_factory=dict)
    query: str | None = None
    target_size: int = 1
    kernel: str = "rbf"
    bandwidth: Any = None
    tokens: int | None = None
    budget: Any = None
    demo_tokens: tuple[int, ...] | None = None
    objective: float | None = None
    reference_bandwidth: float | None = None

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def k(self) -> int:
        """Number of chosen demonstrations."""
        return len(self.indices)

    @property
    def ids(self) -> tuple[str, ...]:
        """Ids of the chosen demos, in prompt order."""
        return tuple(d.id for d in self.demos)

    @property
    def labels(self) -> tuple[str, ...]:
        """Outputs of the chosen demos, in prompt order."""
        return tuple(d.output for d in self.demos)

    def render(self, template: PromptTemplate | str | None = None, query: str | None = None) -> str:
        """Render the prompt: the demos in order, then the query.

        Parameters
        ----------
        template
            A :class:`~promptkd.rendering.PromptTemplate`, an example pattern
            such as ``"Review: {input}\\nSentiment: {output}"``, or None.
        query
            Query text; defaults to :attr:`query`.

        Examples
        --------
        >>> s = Selection(indices=(0,), demos=(Demo(input="hi", output="greeting"),), scores=(0.9,), mmd2=0.1)
        >>> print(s.render(query="hello"))
        Input: hi
        Output: greeting
        <BLANKLINE>
        Input: hello
        Output:
        """
        return self.render_with_spans(template, query).text

    def render_with_spans(
        self, template: PromptTemplate | str | None = None, query: str | None = None
    ) -> RenderedPrompt:
        """Like :meth:`render`, also returning each demo's character span."""
        q = self.query if query is None else query
        return as_template(template).render_with_spans(self.demos, q if q is not None else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with every field and per-demo provenance.

        Examples
        --------
        >>> s = Selection(indices=(3,), demos=(Demo(input="a", output="b", id="d3"),), scores=(0.5,), mmd2=0.2)
        >>> s.to_dict()["demos"][0]["id"]
        'd3'
        """
        per_demo = []
        for pos, (i, d) in enumerate(zip(self.indices, self.demos, strict=False)):
            per_demo.append(
                {
                    "position": pos,
                    "index": int(i),
                    "id": d.id,
                    "input": d.input,
                    **({"input_pair": d.input_pair} if d.input_pair is not None else {}),
                    "output": d.output,
                    "metadata": dict(d.metadata),
                    "similarity": _num(self.scores[pos]),
                    "gain": _num(self.gains[pos]) if self.gains is not None else None,
                    "selection_rank": int(self.selection_rank[pos]) if self.selection_rank is not None else None,
                    "running_mmd2": _num(self.mmd2_path[self.selection_rank[pos]])
                    if self.selection_rank is not None and len(self.mmd2_path) > self.selection_rank[pos]
                    else None,
                    "tokens": int(self.demo_tokens[pos]) if self.demo_tokens is not None else None,
                }
            )
        bw = self.bandwidth
        return {
            "method": self.method,
            "k": self.k,
            "indices": [int(i) for i in self.indices],
            "mmd2": _num(self.mmd2),
            "objective": _num(self.objective),
            "reference_bandwidth": _num(self.reference_bandwidth),
            "mmd2_path": [float(x) for x in self.mmd2_path],
            "phases": {k: float(v) for k, v in self.phases.items()},
            "query": self.query,
            "target_size": self.target_size,
            "kernel": self.kernel,
            "bandwidth": list(bw) if isinstance(bw, tuple) else bw,
            "tokens": self.tokens,
            "budget": self.budget.to_dict() if hasattr(self.budget, "to_dict") else self.budget,
            "demos": per_demo,
        }

    def explain(self) -> str:
        """A readable table: per demo its id, label, similarity, herding gain and running MMD2.

        When ``k="auto"`` chose the size, the lines after the header give the budget's
        decision: ``k*``, the token price (in accuracy points per 100 prompt tokens) and
        which constants ``U(k)`` used.

        Examples
        --------
        >>> s = Selection(indices=(0,), demos=(Demo(input="hi", output="greet", id="d0"),), scores=(0.9,), mmd2=0.1)
        >>> print(s.explain().splitlines()[0])
        selector: 1 demos, MMD2 to target = 0.100000
        """
        lines = [f"{self.method}: {self.k} demos, MMD2 to target = {self.mmd2:.6f}"]
        if self.reference_bandwidth is not None:
            lines[0] += f" (reference RBF, bandwidth {self.reference_bandwidth:.4g})"
        if self.objective is not None:
            lines.append(f"objective (the selector's own kernel {self.kernel}): {self.objective:.6f}")
        if self.phases:
            lines.append("phases: " + ", ".join(f"{k}={v:.6f}" for k, v in self.phases.items()))
        if self.budget is not None and hasattr(self.budget, "k_star"):
            lines.extend(_budget_lines(self.budget))
        if self.tokens is not None:
            lines.append(f"tokens: {self.tokens}")
        tok_head = f" {'tokens':>6}" if self.demo_tokens is not None else ""
        lines.append(
            f"{'pos':>3}  {'id':<18} {'label':<14} {'sim':>7} {'gain':>9} {'step':>4} {'run MMD2':>9}{tok_head}  input"
        )
        for row in self.to_dict()["demos"]:
            gain = "" if row["gain"] is None else f"{row['gain']:.5f}"
            step = "" if row["selection_rank"] is None else str(row["selection_rank"] + 1)
            run = "" if row["running_mmd2"] is None else f"{row['running_mmd2']:.5f}"
            sim = "" if row["similarity"] is None else f"{row['similarity']:.3f}"
            text = row["input"].replace("\n", " ")
            text = text if len(text) <= 50 else text[:47] + "..."
            tok = f" {row['tokens']:>6}" if row["tokens"] is not None else ""
            lines.append(
                f"{row['position']:>3}  {row['id'][:18]:<18} {row['output'][:14]:<14} {sim:>7} {gain:>9} {step:>4} {run:>9}{tok}  {text}"
            )
        return "\n".join(lines)
