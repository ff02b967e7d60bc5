"""The :class:`ProbeReport` returned by :meth:`AttentionProbe.probe`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from promptkd._optional import require
from promptkd.exceptions import InvalidInputError
from promptkd.pool.demo import Demo

__all__ = ["METRICS", "ProbeReport"]

METRICS = ("demo_mass", "contribution_norm")


@dataclass(frozen=True)
class ProbeReport:
    """What attention did with each demonstration at the readout token.

    Arrays are indexed ``[layer, head, demo]`` where ``layer`` runs over
    :attr:`layers` (positions, not absolute layer numbers) and ``head`` over query heads.

    Attributes
    ----------
    model
        Name of the probed model.
    text
        The rendered prompt (same template code as ``Selection.render``).
    demos
        The demonstrations in prompt order.
    layers
        Absolute indices of the probed layers.
    n_heads, n_kv_heads
        Query and key/value head counts; :attr:`head_to_kv` maps query head -> KV head.
    demo_char_spans, demo_token_spans
        Character span of each demo in :attr:`text` and its half-open token span.
    query_token_span
        Token span of the query block.
    readout
        Token position whose attention is read (default: the last prompt token).
    spans_exact
        False when a token straddles a demo boundary.
    demo_mass
        (L, H, m) attention of the readout token summed over each demo's tokens.
    query_mass
        (L, H) attention on every token outside the demos (the query block, prefix and
        separators: the part that builds W_ZS); ``demo_mass.sum(-1) + query_mass == 1``.
    sink_mass
        (L, H) attention on token 0 (the attention sink), included in whatever block holds token 0.
    contribution_norm
        (L, H, m) norm of each head's demo contribution through the output projection,
        ``||W_O[h] sum_{tau in demo} A[t, tau] v_tau||``.
    layer_contribution_norm
        (L, m) norm of the demo's contribution summed over heads (its residual-stream write).
    distillation_strength
        (L, H) ``||demo-token part|| / ||whole attention output||`` per head, through W_O.
    layer_distillation_strength
        (L,) the same ratio for the whole layer (all heads summed).
    influence
        (m,) leave-one-out influence on the answer log-probability
        (``log p(answer | prompt) - log p(answer | prompt without demo i)``), or None.
    answer, answer_logprob
        The scored answer and its log-probability under the full prompt, or None.

    Examples
    --------
    >>> r = ProbeReport.empty_for_docs()
    >>> r.per_demo()["demo_mass"].round(2).tolist()
    [0.3, 0.2]
    """

    model: str
    text: str
    demos: tuple[Demo, ...]
    layers: tuple[int, ...]
    n_heads: int
    n_kv_heads: int
    head_to_kv: tuple[int, ...]
    demo_char_spans: tuple[tuple[int, int], ...]
    demo_token_spans: tuple[tuple[int, int], ...]
    query_token_span: tuple[int, int]
    readout: int
    n_tokens: int
    spans_exact: bool
    demo_mass: np.ndarray
    query_mass: np.ndarray
    sink_mass: np.ndarray
    contribution_norm: np.ndarray
    layer_contribution_norm: np.ndarray
    distillation_strength: np.ndarray
    layer_distillation_strength: np.ndarray
    influence: np.ndarray | None = None
    answer: str | None = None
    answer_logprob: float | None = None
    sink_demo: int = -1

    @property
    def m(self) -> int:
        """Number of demonstrations."""
        return len(self.demos)

    def _layer_positions(self, layers: Any) -> list[int]:
        if layers is None:
            return list(range(len(self.layers)))
        if isinstance(layers, (int, np.integer)):
            layers = [int(layers)]
        elif isinstance(layers, (range, slice)):
            layers = list(range(max(self.layers) + 1)[layers]) if isinstance(layers, slice) else list(layers)
        pos = []
        for layer in layers:
            if layer not in self.layers:
                raise InvalidInputError(f"layer {layer} was not probed; probed layers are {list(self.layers)}.")
            pos.append(self.layers.index(layer))
        return pos

    def per_demo(self, layers: Any = None, *, exclude_sink: bool = False) -> dict[str, np.ndarray]:
        """Per-demo aggregates: mean over heads and over ``layers`` (default: all probed layers).

        Parameters
        ----------
        layers
            Absolute layer indices (int, list, range or slice) to average over.
        exclude_sink
            Subtract the attention-sink mass (token 0) from the demo that contains it.

        Returns
        -------
        dict
            ``demo_mass``, ``contribution_norm`` and ``layer_contribution_norm``, each of shape (m,),
            plus ``mass_share``: demo mass divided by the total demo mass.
        """
        pos = self._layer_positions(layers)
        mass = self.demo_mass[pos].copy()
        if exclude_sink and self.sink_demo >= 0:
            mass[..., self.sink_demo] -= self.sink_mass[pos]
        mean_mass = mass.mean(axis=(0, 1))
        total = mean_mass.sum()
        return {
            "demo_mass": mean_mass,
            "mass_share": mean_mass / total if total > 0 else np.full_like(mean_mass, np.nan),
            "contribution_norm": self.contribution_norm[pos].mean(axis=(0, 1)),
            "layer_contribution_norm": self.layer_contribution_norm[pos].mean(axis=0),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays become nested lists).

        Examples
        --------
        >>> sorted(ProbeReport.empty_for_docs().to_dict())[:3]
        ['answer', 'answer_logprob', 'contribution_norm']
        """
        agg = self.per_demo()
        return {
            "model": self.model,
            "text": self.text,
            "layers": list(self.layers),
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "head_to_kv": list(self.head_to_kv),
            "readout": self.readout,
            "n_tokens": self.n_tokens,
            "spans_exact": self.spans_exact,
            "demos": [
                {
                    "position": i,
                    "id": d.id,
                    "input": d.input,
                    "output": d.output,
                    "char_span": list(self.demo_char_spans[i]),
                    "token_span": list(self.demo_token_spans[i]),
                    "mean_demo_mass": float(agg["demo_mass"][i]),
                    "mean_contribution_norm": float(agg["contribution_norm"][i]),
                    "influence": None if self.influence is None else float(self.influence[i]),
                }
                for i, d in enumerate(self.demos)
            ],
            "query_token_span": list(self.query_token_span),
            "demo_mass": self.demo_mass.tolist(),
            "query_mass": self.query_mass.tolist(),
            "sink_mass": self.sink_mass.tolist(),
            "contribution_norm": self.contribution_norm.tolist(),
            "layer_contribution_norm": self.layer_contribution_norm.tolist(),
            "distillation_strength": self.distillation_strength.tolist(),
            "layer_distillation_strength": self.layer_distillation_strength.tolist(),
            "influence": None if self.influence is None else self.influence.tolist(),
            "answer": self.answer,
            "answer_logprob": self.answer_logprob,
        }

    def plot(self, metric: str = "demo_mass", *, layer: int | None = None, ax: Any = None) -> Any:
        """Heatmap of ``metric`` (needs the ``plot`` extra: matplotlib).

        Without ``layer``: layers x demos, averaged over heads. With ``layer``: heads x demos
        for that layer, heads labelled with their KV head.

        Returns
        -------
        matplotlib.axes.Axes
        """
        if metric not in METRICS:
            raise InvalidInputError(f"metric={metric!r} is not plottable; use one of {METRICS}.")
        plt = require("matplotlib.pyplot", "plot", purpose="ProbeReport.plot")
        data = getattr(self, metric)
        if ax is None:
            _, ax = plt.subplots(figsize=(1.0 + 0.6 * max(self.m, 2), 1.0 + 0.25 * len(self.layers)))
        if layer is None:
            grid, ylabels, ytitle = data.mean(axis=1), [str(x) for x in self.layers], "layer"
        else:
            grid = data[self._layer_positions(layer)[0]]
            ylabels = [f"h{h}/kv{g}" for h, g in enumerate(self.head_to_kv)]
            ytitle = f"head (layer {layer})"
        im = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_xticks(range(self.m), [f"{i}:{d.output[:10]}" for i, d in enumerate(self.demos)], rotation=45)
        ax.set_yticks(range(len(ylabels)), ylabels)
        ax.set_xlabel("demonstration (prompt order: label)")
        ax.set_ylabel(ytitle)
        ax.set_title(f"{metric} at the readout token ({self.model})")
        ax.figure.colorbar(im, ax=ax)
        return ax

    @classmethod
    def empty_for_docs(cls) -> ProbeReport:
        """A tiny hand-made report (1 layer, 2 heads, 2 demos) for examples and docs."""
        mass = np.array([[[0.4, 0.1], [0.2, 0.3]]])
        return cls(
            model="toy",
            text="a\n\nb\n\nc",
            demos=(Demo(input="a", output="x"), Demo(input="b", output="y")),
            layers=(0,),
            n_heads=2,
            n_kv_heads=1,
            head_to_kv=(0, 0),
            demo_char_spans=((0, 1), (3, 4)),
            demo_token_spans=((0, 1), (2, 3)),
            query_token_span=(4, 5),
            readout=4,
            n_tokens=5,
            spans_exact=True,
            demo_mass=mass,
            query_mass=1.0 - mass.sum(-1),
            sink_mass=np.array([[0.3, 0.1]]),
            contribution_norm=mass * 2.0,
            layer_contribution_norm=mass.sum(1),
            distillation_strength=np.array([[0.6, 0.5]]),
            layer_distillation_strength=np.array([0.55]),
            sink_demo=0,
        )
