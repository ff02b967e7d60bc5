"""Quickstart: build a pool, select demonstrations for a query by kernel MMD, render the prompt.

Run:  python examples/quickstart.py          (real all-MiniLM-L6-v2 embeddings, offline)
      python examples/quickstart.py --smoke  (hashing embedder, a second)
"""

from __future__ import annotations

import numpy as np
from _common import DEMOS, embedder, parser

from promptkd import DemoPool, Selector


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    pool = DemoPool.from_jsonl(DEMOS, id_key="id", embedder=embedder(args.smoke))
    print(f"pool: {len(pool)} demos, labels {pool.labels}")

    # the example pool mixes three tasks: keep the sentiment demos for a review
    selector = Selector(k=4, where={"task": "sentiment"}).fit(pool)
    query = "The soundtrack was gorgeous but the plot dragged on forever."
    selection = selector.select(query)
    print(selection.explain())

    # how good is the set? compare its MMD2 with random 4-subsets of the pool
    target = selector.make_target(query)
    rng = np.random.default_rng(0)
    eligible = np.flatnonzero(pool.mask(where={"task": "sentiment"}))
    random_mmd2 = [selector.target_mmd2(rng.choice(eligible, 4, replace=False).tolist(), target) for _ in range(100)]
    print(
        f"MMD2 selected {selection.mmd2:.4f} vs random sentiment 4-subsets "
        f"{np.mean(random_mmd2):.4f} +/- {np.std(random_mmd2):.4f}"
    )

    # one set for a whole distribution of expected queries, with every label covered
    batch = ["Which river flows through Cairo?", "Who wrote Hamlet?", "How many moons does Mars have?"]
    questions = Selector(k=4, label_balance="cover", where={"task": "question_type"}).fit(pool)
    shared = questions.select(batch)
    print("one set for three questions:", list(zip(shared.ids, shared.labels, strict=True)))

    print("\nrendered prompt:\n" + selection.render("Review: {input}\nAnswer: {output}"))


if __name__ == "__main__":
    main()
