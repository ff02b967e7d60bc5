"""LangChain: MMD-selected few-shot examples in FewShotPromptTemplate, chat prompts and an LCEL chain.

Run:  python examples/langchain_fewshot.py          (MiniLM embeddings; SmolLM2-135M answers, offline)
      python examples/langchain_fewshot.py --smoke  (hashing embedder; langchain-core's FakeListLLM answers)
"""

from __future__ import annotations

import asyncio
import json

from _common import DEMOS, embedder, parser
from langchain_core.prompts import (
    ChatPromptTemplate,
    FewShotChatMessagePromptTemplate,
    FewShotPromptTemplate,
    PromptTemplate,
)
from langchain_core.runnables import RunnableLambda

from promptkd.integrations.hooks import LoggingHook
from promptkd.integrations.langchain import PromptKDExampleSelector


def local_llm(smoke: bool):
    """An LCEL-compatible LLM: SmolLM2 greedy decoding (offline), or langchain-core's FakeListLLM."""
    if smoke:
        from langchain_core.language_models.fake import FakeListLLM

        return FakeListLLM(responses=["location", "negative", "location"])
    import torch

    from promptkd.probes import load_lm

    lm = load_lm()

    def generate(prompt) -> str:
        text = prompt.to_string() if hasattr(prompt, "to_string") else str(prompt)
        ids = lm.tokenizer(text, return_tensors="pt").to(lm.device)
        with torch.no_grad():
            out = lm.model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=lm.tokenizer.eos_token_id)
        answer = lm.tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        return answer.strip().split("\n")[0]

    return RunnableLambda(generate, name="SmolLM2")


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    rows = [json.loads(line) for line in DEMOS.read_text().splitlines() if line.strip()]
    examples = [{"question": r["input"], "answer": r["output"]} for r in rows if r["task"] == "question_type"]

    selector = PromptKDExampleSelector.from_examples(
        examples, embedder=embedder(args.smoke), k=4, hooks=[LoggingHook()], label_balance="cover"
    )
    example_prompt = PromptTemplate.from_template("Question: {question}\nType: {answer}")

    # 1. a classic few-shot prompt whose examples are chosen per input
    prompt = FewShotPromptTemplate(
        example_selector=selector,
        example_prompt=example_prompt,
        prefix="Classify the type of each question.",
        suffix="Question: {question}\nType:",
        input_variables=["question"],
    )
    llm = local_llm(args.smoke)
    chain = prompt | llm
    question = "Which river flows through Cairo?"
    print(prompt.format(question=question))
    print("->", chain.invoke({"question": question}))

    # 2. chat models: the same selector inside FewShotChatMessagePromptTemplate
    chat = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer with the question type only."),
            FewShotChatMessagePromptTemplate(
                example_selector=selector,
                example_prompt=ChatPromptTemplate.from_messages([("human", "{question}"), ("ai", "{answer}")]),
                input_variables=["question"],
            ),
            ("human", "{question}"),
        ]
    )
    print("\nchat messages:", [m.type for m in chat.invoke({"question": "Who painted the Mona Lisa?"}).to_messages()])

    # 3. the pipeline step: select once, keep the Selection for tracing, compose with | prompt | llm
    hook = selector.as_runnable(example_prompt=example_prompt)
    traced = hook | PromptTemplate.from_template("{examples_text}\n\nQuestion: {question}\nType:") | llm
    print("\nLCEL chain ->", traced.invoke({"question": "When did the Berlin Wall fall?"}))
    step = hook.invoke({"question": "When did the Berlin Wall fall?"})
    print("selection for tracing:", step["selection"].ids, f"MMD2={step['selection'].mmd2:.4f}")

    # 4. async, and saving the selector (pool + JSON config; no pickle)
    picked = asyncio.run(selector.aselect_examples({"question": "How far is the Moon?"}))
    print("async:", [e["answer"] for e in picked])
    path = selector.save(args.out / "langchain_selector")
    reloaded = PromptKDExampleSelector.load(path)
    same = reloaded.select_examples({"question": question}) == selector.select_examples({"question": question})
    print(f"saved to {path}; reloaded selector gives the same examples: {same}")


if __name__ == "__main__":
    main()
