"""Attention probe: what a real LM's attention does with each selected demonstration.

Selects demonstrations, runs the prompt through SmolLM2-135M-Instruct (offline, eager attention)
and reports, at the token that predicts the answer: the attention mass on each demo, the norm of
what each demo writes through the output projection, leave-one-out influence on the answer's
log-probability, and a layers x demos heatmap.

Run:  python examples/attention_probe.py          (MiniLM embeddings, all 30 layers, influence)
      python examples/attention_probe.py --smoke  (hashing embedder, 2 layers, 3 demos)
"""

from __future__ import annotations

import numpy as np
from _common import DEMOS, embedder, parser

from promptkd import DemoPool, Selector
from promptkd.probes import AttentionProbe


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    pool = DemoPool.from_jsonl(DEMOS, id_key="id", embedder=embedder(args.smoke))
    query = "The soundtrack was gorgeous but the plot dragged on forever."
    template = "Review: {input}\nSentiment: {output}"
    k = 3 if args.smoke else 4
    selection = Selector(k=k, where={"task": "sentiment"}).fit(pool).select(query)

    probe = AttentionProbe(layers=[0, -1] if args.smoke else "all")
    report = probe.probe(selection, query, template, influence=True, answer=" positive")
    per_demo = report.per_demo()
    print(f"{report.model}: {report.n_tokens} tokens, layers {list(report.layers)[:6]}...")
    print(f"{'pos':>3} {'label':<9} {'mass':>7} {'share':>6} {'contrib':>8} {'influence':>9}  demo")
    for i, demo in enumerate(report.demos):
        print(
            f"{i:>3} {demo.output:<9} {per_demo['demo_mass'][i]:7.4f} {per_demo['mass_share'][i]:6.3f} "
            f"{per_demo['contribution_norm'][i]:8.4f} {report.influence[i]:+9.4f}  {demo.input[:50]}"
        )
    print(f"log p(' positive' | prompt) = {report.answer_logprob:.4f}")
    strength = report.layer_distillation_strength
    print(
        f"distillation strength (demo share of the attention output): first layer {strength[0]:.3f}, "
        f"last {strength[-1]:.3f}, mean {float(np.mean(strength)):.3f}"
    )
    # does the cheap proxy (attention mass) rank demos like the expensive one (leave-one-out influence)?
    rank_corr = np.corrcoef(np.argsort(np.argsort(per_demo["demo_mass"])), np.argsort(np.argsort(report.influence)))
    print(f"rank correlation of mass and influence over {len(report.demos)} demos: {rank_corr[0, 1]:+.2f}")

    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    ax = report.plot("demo_mass")
    ax.figure.tight_layout()
    path = args.out / "attention_probe.png"
    ax.figure.savefig(path, dpi=120)
    plt.close(ax.figure)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
