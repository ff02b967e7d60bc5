"""DSPy: compile a program with the MMDFewShot teleprompter (shared set, and per-call selection).

DSPy talks to LMs through endpoints; to stay offline this example uses DSPy's own test LM
(``dspy.utils.DummyLM``), so what it shows is which demonstrations each predictor receives and
the exact prompt DSPy builds from them.

Run:  python examples/dspy_program.py          (MiniLM embeddings, offline)
      python examples/dspy_program.py --smoke  (hashing embedder)
"""

from __future__ import annotations

import json

import dspy
from _common import DEMOS, embedder, parser
from dspy.utils import DummyLM

from promptkd.integrations.dspy import MMDFewShot


class TopicThenExplain(dspy.Module):
    """A two-predictor program: classify the headline, then explain the label."""

    def __init__(self) -> None:
        super().__init__()
        self.classify = dspy.Predict("headline -> topic")
        self.explain = dspy.Predict("headline, topic -> reason")

    def forward(self, headline: str) -> dspy.Prediction:
        topic = self.classify(headline=headline).topic
        return self.explain(headline=headline, topic=topic)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    rows = [json.loads(line) for line in DEMOS.read_text().splitlines() if line.strip()]
    trainset = [
        dspy.Example(headline=r["input"], topic=r["output"], reason=f"it is about {r['output']}").with_inputs(
            "headline"
        )
        for r in rows
        if r["task"] == "news_topic"
    ]
    # the traffic we expect: technology and business headlines
    valset = [
        dspy.Example(headline=h).with_inputs("headline")
        for h in ["Chipmaker unveils a faster AI accelerator", "Startup raises funds for battery software"]
    ]
    emb = embedder(args.smoke)

    shared = MMDFewShot(k=3, embedder=emb).compile(TopicThenExplain(), trainset=trainset, valset=valset)
    print("shared demos (matched to the valset):", [d.topic for d in shared.classify.demos])

    lm = DummyLM([{"topic": "technology"}, {"reason": "it is about technology"}])
    with dspy.context(lm=lm):
        print("prediction:", shared(headline="New smartphone chip doubles battery life").reason)
    prompt = lm.history[0]["messages"]
    print(f"the classify prompt has {len(prompt)} messages; first demo turn:\n{prompt[1]['content'][:200]}")

    # per-call: each call's predictors get demos chosen for that call's inputs (forward is not patched)
    per_call = MMDFewShot(k=2, embedder=emb, mode="per_call").compile(TopicThenExplain(), trainset=trainset)
    lm = DummyLM([{"topic": "x"}, {"reason": "y"}] * 2)
    with dspy.context(lm=lm):
        for headline in ["Striker signs for a record fee", "Bank profits fall as rates drop"]:
            per_call(headline=headline)
    for call in lm.history[::2]:
        user_turns = [m["content"] for m in call["messages"] if m["role"] == "user"]
        demos = [t.split("[[ ## headline ## ]]")[1].split("\n")[1] for t in user_turns[:-1]]
        print("per-call demos:", demos)


if __name__ == "__main__":
    main()
