"""LangChain adapter: an MMD example selector and an LCEL pipeline step.

:class:`PromptKDExampleSelector` is a real
``langchain_core.example_selectors.BaseExampleSelector``: drop it into
``FewShotPromptTemplate`` or ``FewShotChatMessagePromptTemplate`` as
``example_selector=``. It returns examples in the selector's prompt order and
can be saved to and loaded from a directory (the pool via
:meth:`promptkd.DemoPool.save` plus a JSON config; no pickle).

:class:`PromptKDRunnable` is an LCEL ``Runnable`` that maps an input dict to the
same dict plus the selected examples, their rendered text, chat messages and the
:class:`~promptkd.selection.Selection` (for tracing), so ``hook | prompt | llm``
composes.

Needs the ``langchain`` extra (``pip install "promptkd[langchain]"``).

Examples
--------
>>> from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate
>>> from promptkd.embeddings import HashingEmbedder
>>> examples = [{"input": "happy", "output": "sad"}, {"input": "tall", "output": "short"},
...             {"input": "sunny", "output": "gloomy"}]
>>> sel = PromptKDExampleSelector.from_examples(examples, k=2, embedder=HashingEmbedder())
>>> prompt = FewShotPromptTemplate(
...     example_selector=sel, example_prompt=PromptTemplate.from_template("{input} -> {output}"),
...     suffix="{adjective} ->", input_variables=["adjective"])
>>> text = prompt.format(adjective="cheerful")
>>> text.count("->")
3
"""

from __future__ import annotations

from promptkd.integrations.langchain.lcel import PromptKDRunnable
from promptkd.integrations.langchain.selector import PromptKDExampleSelector, example_to_demo

__all__ = ["PromptKDExampleSelector", "PromptKDRunnable", "example_to_demo"]
