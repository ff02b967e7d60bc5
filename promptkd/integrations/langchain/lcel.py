"""The LCEL step :class:`PromptKDRunnable`: an input dict in, the same dict plus the selected examples out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from promptkd._optional import require
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.integrations.hooks import check_hooks, emit
from promptkd.pool import Demo
from promptkd.rendering import PromptTemplate as PKTemplate
from promptkd.selection import Selection

require("langchain_core", "langchain", purpose="the LangChain integration")

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage  # noqa: E402
from langchain_core.runnables import Runnable, RunnableConfig  # noqa: E402

from promptkd.integrations.langchain.selector import PromptKDExampleSelector  # noqa: E402

__all__ = ["PromptKDRunnable"]


class PromptKDRunnable(Runnable[dict[str, Any], dict[str, Any]]):
    """LCEL step: ``{...inputs}`` -> ``{...inputs, examples, examples_text, example_messages, selection}``.

    Put it in front of a prompt so ``hook | prompt | llm`` composes: use
    ``{examples_text}`` in a ``PromptTemplate``, or
    ``MessagesPlaceholder("example_messages")`` in a ``ChatPromptTemplate``.

    Parameters
    ----------
    example_selector
        A :class:`PromptKDExampleSelector`.
    example_prompt
        How one example is written into ``examples_text``: a LangChain
        ``PromptTemplate``, a format string such as ``"Q: {input}\\nA: {output}"``
        (example keys as fields), or ``None`` for promptkd's default
        ``"Input: ...\\nOutput: ..."``.
    separator
        Text between examples in ``examples_text``.
    examples_key, text_key, messages_key, selection_key
        Output key names (``None`` leaves that output out).
    hooks
        Extra hooks called on each selection (besides the selector's own).

    Examples
    --------
    >>> from langchain_core.prompts import PromptTemplate
    >>> from promptkd.embeddings import HashingEmbedder
    >>> sel = PromptKDExampleSelector.from_examples(
    ...     [{"input": "2+2", "output": "4"}, {"input": "3+3", "output": "6"}], k=1, embedder=HashingEmbedder())
    >>> chain = sel.as_runnable(example_prompt="{input} = {output}") | PromptTemplate.from_template(
    ...     "{examples_text}\\n{input} =")
    >>> chain.invoke({"input": "3+3"}).to_string()
    '3+3 = 6\\n3+3 ='
    """

    def __init__(
        self,
        example_selector: PromptKDExampleSelector,
        *,
        example_prompt: Any = None,
        separator: str = "\n\n",
        examples_key: str | None = "examples",
        text_key: str | None = "examples_text",
        messages_key: str | None = "example_messages",
        selection_key: str | None = "selection",
        hooks: Iterable[Any] | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(example_selector, PromptKDExampleSelector):
            raise InvalidTypeError(
                f"example_selector must be a PromptKDExampleSelector, got {type(example_selector).__name__}."
            )
        if example_prompt is not None and not isinstance(example_prompt, str) and not hasattr(example_prompt, "format"):
            raise InvalidTypeError("example_prompt must be a LangChain PromptTemplate, a format string, or None.")
        self.example_selector = example_selector
        self.example_prompt = example_prompt
        self.separator = separator
        self.examples_key = examples_key
        self.text_key = text_key
        self.messages_key = messages_key
        self.selection_key = selection_key
        self.hooks = check_hooks(hooks)
        self.name = name or "PromptKDSelectExamples"

    def _format_example(self, example: Mapping[str, Any], demo: Demo) -> str:
        if self.example_prompt is None:
            return PKTemplate().render_demo(demo)
        if isinstance(self.example_prompt, str):
            try:
                return self.example_prompt.format(**example)
            except KeyError as err:
                raise InvalidInputError(
                    f"example_prompt uses {{{err.args[0]}}} but the examples have keys {sorted(example)}; fix the template."
                ) from err
        return str(self.example_prompt.format(**example))

    def _messages(self, selection: Selection) -> list[BaseMessage]:
        messages: list[BaseMessage] = []
        for demo in selection.demos:
            messages.append(HumanMessage(content=demo.input))
            messages.append(AIMessage(content=demo.output))
        return messages

    def _output(
        self, inputs: Mapping[str, Any], examples: list[dict[str, Any]], selection: Selection
    ) -> dict[str, Any]:
        emit("on_select", selection, hooks=self.hooks, source="langchain-runnable")
        out = dict(inputs)
        if self.examples_key:
            out[self.examples_key] = examples
        if self.text_key:
            out[self.text_key] = self.separator.join(
                self._format_example(e, d) for e, d in zip(examples, selection.demos, strict=True)
            )
        if self.messages_key:
            out[self.messages_key] = self._messages(selection)
        if self.selection_key:
            out[self.selection_key] = selection
        return out

    @staticmethod
    def _check_input(inputs: Any) -> Mapping[str, Any]:
        if not isinstance(inputs, Mapping):
            raise InvalidTypeError(
                f"the runnable's input must be a dict of prompt variables, got {type(inputs).__name__}."
            )
        return inputs

    def _run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        inputs = self._check_input(inputs)  # type: ignore[assignment]
        examples, selection = self.example_selector.select(inputs)
        return self._output(inputs, examples, selection)

    async def _arun(self, inputs: dict[str, Any]) -> dict[str, Any]:
        inputs = self._check_input(inputs)  # type: ignore[assignment]
        examples, selection = await self.example_selector.aselect(inputs)
        return self._output(inputs, examples, selection)

    def invoke(self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        """Select examples for one input dict (traced as a chain run)."""
        return self._call_with_config(self._run, input, config)

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Async :meth:`invoke` using the selector's native async path."""
        return await self._acall_with_config(self._arun, input, config)
