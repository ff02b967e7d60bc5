"""The KD bound and the bound-derived budget: how many demonstrations pay off, and a plot of U(k).

U(k) = A/sqrt(k) + C*MMD(S_k, T) + lambda*tokens(S_k) is evaluated along the herding path
(every prefix of the MMD-herding order); k* minimises it. The bound is reported term by term.

Run:  python examples/bound_budget.py          (MiniLM embeddings, offline)
      python examples/bound_budget.py --smoke  (hashing embedder)
"""

from __future__ import annotations

from _common import DEMOS, embedder, parser

from promptkd import DemoPool, Selector
from promptkd.bounds import BoundEstimator
from promptkd.bounds.plots import new_figure, save_figure


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    pool = DemoPool.from_jsonl(DEMOS, id_key="id", embedder=embedder(args.smoke))
    # the traffic the prompt will serve: a handful of expected questions (the target distribution T)
    target = [
        "Which river flows through Cairo?",
        "Who painted the Mona Lisa?",
        "How many legs does a spider have?",
        "What does NASA stand for?",
    ]
    estimator = BoundEstimator().fit(pool, target)
    for cost in (0.0, 0.01):
        budget = estimator.budget(k_max=12, token_cost=cost, target_error=1.5)
        print(budget)
        print()
    bound = estimator.bound(budget.selected, permutation_test=True, n_permutations=100 if args.smoke else 500)
    print(bound)

    # the same budget, chosen inside the selector: k="auto"
    selection = Selector(k="auto", k_max=12, token_cost=0.01).fit(pool).select(target)
    print(f"\nSelector(k='auto') picked {selection.k} demos: {list(selection.labels)}")

    args.out.mkdir(parents=True, exist_ok=True)
    fig, axes = new_figure(3, width=5.5, height=4.2)
    budget.plot(ax=axes[0])
    estimator.mmd_curves(k_max=12, n_random=10 if args.smoke else 30).plot(ax=axes[1])
    bound.plot(ax=axes[2])
    path = save_figure(fig, args.out / "bound_budget.png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
