"""The LangChain example selector: :class:`PromptKDExampleSelector` and its save/load (package docs: ``promptkd.integrations.langchain``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from promptkd._optional import require
from promptkd.embeddings.base import Embedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.integrations.hooks import check_hooks, emit
from promptkd.integrations.langchain.persistence import SelectorPersistenceMixin
from promptkd.integrations.registry import clone_selector, make_selector
from promptkd.pool import Demo, DemoPool
from promptkd.selection import BaseSelector, Selection

require("langchain_core", "langchain", purpose="the LangChain integration")

from langchain_core.example_selectors import BaseExampleSelector  # noqa: E402

if TYPE_CHECKING:
    from promptkd.integrations.langchain.lcel import PromptKDRunnable

__all__ = ["PromptKDExampleSelector", "example_to_demo"]

logger = logging.getLogger("promptkd")

EXAMPLE_KEY = "lc_example"


def _example_id(example: Mapping[str, Any]) -> str:
    payload = json.dumps(example, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return "lc-" + hashlib.sha256(payload).hexdigest()[:16]


def _as_text(value: Any, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    raise InvalidTypeError(f"example value for key {key!r} must be text, got {type(value).__name__}.")


def example_to_demo(example: Mapping[str, Any], input_keys: Sequence[str], output_key: str) -> Demo:
    """A :class:`~promptkd.Demo` for a LangChain example; the example itself is kept in its metadata.

    Examples
    --------
    >>> d = example_to_demo({"q": "2+2?", "a": "4", "src": "math"}, ["q"], "a")
    >>> d.input, d.output, d.metadata["lc_example"]["src"]
    ('2+2?', '4', 'math')
    """
    if not isinstance(example, Mapping):
        raise InvalidTypeError(f"an example must be a dict of key to text, got {type(example).__name__}.")
    missing = [k for k in [*input_keys, output_key] if k not in example]
    if missing:
        raise InvalidInputError(
            f"example {dict(example)!r:.100} has no key(s) {missing}; every example needs "
            f"{[*input_keys, output_key]} (set input_keys=/output_key= to match your data)."
        )
    record = {str(k): v for k, v in example.items()}
    try:
        json.dumps(record)
    except TypeError as err:
        raise InvalidTypeError(f"example values must be JSON types (text, numbers): {err}.") from err
    return Demo(
        input="\n".join(_as_text(example[k], k) for k in input_keys),
        output=_as_text(example[output_key], output_key),
        id=_example_id(record),
        metadata={EXAMPLE_KEY: record},
    )


class PromptKDExampleSelector(SelectorPersistenceMixin, BaseExampleSelector):
    """LangChain example selector that picks and orders examples by kernel MMD.

    Build it with :meth:`from_examples` (LangChain-style dict examples),
    :meth:`from_pool` (an existing :class:`~promptkd.DemoPool`), or
    :meth:`from_selector` (an existing, possibly fitted, selector).

    Parameters
    ----------
    selector
        Any promptkd selector (``Selector``, a baseline, ...); fitted here if it
        is not fitted to ``pool``.
    pool
        The demonstrations. Each demo's ``metadata["lc_example"]`` (set by
        :meth:`from_examples`) is returned verbatim; demos without it are
        returned as ``{input_keys[0]: demo.input, output_key: demo.output}``.
    input_keys
        Example keys whose values form the text that is embedded (joined by a
        newline, in this order).
    output_key
        Example key of the answer/label (the demo's ``output``).
    query_keys
        Keys of ``input_variables`` that form the query. ``None``: ``input_keys``
        when all are present in the input, else every string input value
        (sorted by key, as LangChain's own selectors do).
    example_keys
        If given, returned examples are filtered to these keys.
    hooks
        Extra :mod:`promptkd.integrations.hooks` hooks called on every selection.

    Examples
    --------
    >>> from promptkd.embeddings import HashingEmbedder
    >>> ex = [{"question": f"what is {i}+{i}?", "answer": str(2 * i)} for i in range(5)]
    >>> sel = PromptKDExampleSelector.from_examples(ex, k=2, embedder=HashingEmbedder())
    >>> sel.input_keys, sel.output_key
    (['question'], 'answer')
    >>> len(sel.select_examples({"question": "what is 3+3?"}))
    2
    """

    def __init__(
        self,
        selector: BaseSelector,
        pool: DemoPool,
        *,
        input_keys: Sequence[str] = ("input",),
        output_key: str = "output",
        query_keys: Sequence[str] | None = None,
        example_keys: Sequence[str] | None = None,
        hooks: Iterable[Any] | None = None,
    ) -> None:
        if not isinstance(selector, BaseSelector):
            raise InvalidTypeError(
                f"selector must be a promptkd selector (e.g. promptkd.Selector()), got {type(selector).__name__}."
            )
        if not isinstance(pool, DemoPool):
            raise InvalidTypeError(f"pool must be a promptkd.DemoPool, got {type(pool).__name__}.")
        self.input_keys = self._check_keys(input_keys, "input_keys")
        if not isinstance(output_key, str) or not output_key:
            raise InvalidTypeError(f"output_key must be a non-empty string, got {output_key!r}.")
        if output_key in self.input_keys:
            raise InvalidInputError(
                f"output_key {output_key!r} is also in input_keys; an example key is one or the other."
            )
        self.output_key = output_key
        self.query_keys = None if query_keys is None else self._check_keys(query_keys, "query_keys")
        self.example_keys = None if example_keys is None else self._check_keys(example_keys, "example_keys")
        self.hooks = check_hooks(hooks)
        self.pool = pool
        self._lock = threading.RLock()
        self._template = selector
        if getattr(selector, "pool_", None) is pool and len(pool) == getattr(selector, "n_demos_", -1):
            self._fitted: BaseSelector | None = selector
        else:
            self._fitted = None
            if len(pool):
                self._refit()

    # ------------------------------------------------------------------ constructors
    @staticmethod
    def _check_keys(keys: Any, name: str) -> list[str]:
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, Sequence) or not keys or not all(isinstance(k, str) and k for k in keys):
            raise InvalidTypeError(f"{name} must be a non-empty list of key names, got {keys!r}.")
        return list(keys)

    @staticmethod
    def _infer_keys(
        example: Mapping[str, Any], input_keys: Sequence[str] | None, output_key: str | None
    ) -> tuple[list[str], str]:
        keys = list(example)
        if output_key is None:
            if input_keys is not None:
                rest = [k for k in keys if k not in input_keys]
                if len(rest) != 1:
                    raise InvalidInputError(
                        f"cannot tell the output key: the examples have keys {keys}; pass output_key=..."
                    )
                output_key = rest[0]
            else:
                output_key = "output" if "output" in keys else keys[-1]
        if input_keys is None:
            input_keys = [k for k in keys if k != output_key]
            if not input_keys:
                raise InvalidInputError(f"the examples have only the key {output_key!r}; pass input_keys=...")
        return list(input_keys), output_key

    def _to_demo(self, example: Mapping[str, Any]) -> Demo:
        return example_to_demo(example, self.input_keys, self.output_key)

    @classmethod
    def from_examples(
        cls,
        examples: Sequence[Mapping[str, Any]],
        embedder: Embedder | None = None,
        *,
        input_keys: Sequence[str] | None = None,
        output_key: str | None = None,
        k: int | str = 4,
        selector: str | BaseSelector = "promptkd",
        query_keys: Sequence[str] | None = None,
        example_keys: Sequence[str] | None = None,
        hooks: Iterable[Any] | None = None,
        **selector_options: Any,
    ) -> PromptKDExampleSelector:
        """Build from LangChain-style examples (dicts of text).

        Parameters
        ----------
        examples
            The examples, e.g. ``[{"input": "happy", "output": "sad"}, ...]``.
        embedder
            Embedder for examples and queries; ``None`` is the default
            sentence-transformers model (all-MiniLM-L6-v2, offline).
        input_keys, output_key
            Which keys are embedded and which is the answer. By default
            ``output_key`` is ``"output"`` if present (else the last key) and
            ``input_keys`` are the other keys.
        k
            Number of examples, or ``"auto"`` when the selector supports it.
        selector
            A selector name (``"promptkd"``, ``"topk"``, ``"mmr"``, ...) or an
            instance (then ``k`` and options must be set on it).
        **selector_options
            Passed to the selector's constructor (``kernel=``, ``candidates=``,
            ``max_tokens=``, ``label_balance=``, ...).
        """
        if isinstance(examples, (str, bytes, Mapping)) or not isinstance(examples, Iterable):
            raise InvalidTypeError("examples must be a list of dicts, e.g. [{'input': ..., 'output': ...}].")
        examples = list(examples)
        if not examples:
            raise InvalidInputError("examples is empty; pass at least one example (or use from_pool).")
        if not isinstance(examples[0], Mapping):
            raise InvalidTypeError(f"examples[0] must be a dict, got {type(examples[0]).__name__}.")
        ikeys, okey = cls._infer_keys(examples[0], input_keys, output_key)
        sel = selector if isinstance(selector, BaseSelector) else make_selector(selector, k=k, **selector_options)
        if isinstance(selector, BaseSelector) and selector_options:
            raise InvalidInputError("selector options were given with a selector instance; set them on the instance.")
        ikeys = cls._check_keys(ikeys, "input_keys")
        pool = DemoPool([example_to_demo(e, ikeys, okey) for e in examples], embedder=embedder)
        return cls(
            sel, pool, input_keys=ikeys, output_key=okey, query_keys=query_keys, example_keys=example_keys, hooks=hooks
        )

    @classmethod
    def from_pool(
        cls,
        pool: DemoPool,
        selector: str | BaseSelector = "promptkd",
        *,
        k: int | str = 4,
        input_key: str = "input",
        output_key: str = "output",
        query_keys: Sequence[str] | None = None,
        hooks: Iterable[Any] | None = None,
        **selector_options: Any,
    ) -> PromptKDExampleSelector:
        """Build from an existing :class:`~promptkd.DemoPool`.

        Returned examples are ``{input_key: demo.input, output_key: demo.output}``
        (plus the demo's metadata keys that are not ``lc_example``).

        Examples
        --------
        >>> from promptkd import DemoPool
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": f"text {i}", "output": "x"} for i in range(4)], embedder=HashingEmbedder())
        >>> PromptKDExampleSelector.from_pool(pool, k=1).select_examples({"input": "text 2"})
        [{'input': 'text 2', 'output': 'x'}]
        """
        if isinstance(selector, BaseSelector):
            if selector_options:
                raise InvalidInputError("selector options were given with a selector instance; set them on it.")
            sel = selector
        else:
            sel = make_selector(selector, k=k, **selector_options)
        return cls(sel, pool, input_keys=[input_key], output_key=output_key, query_keys=query_keys, hooks=hooks)

    @classmethod
    def from_selector(
        cls, selector: BaseSelector, pool: DemoPool | None = None, **kwargs: Any
    ) -> PromptKDExampleSelector:
        """Wrap an existing selector (fitted or not); ``pool`` defaults to the one it was fitted on."""
        if pool is None:
            pool = getattr(selector, "pool_", None)
            if pool is None:
                raise InvalidInputError("the selector is not fitted; pass pool= or fit it first.")
        return cls(selector, pool, **kwargs)

    # ------------------------------------------------------------------ state
    @property
    def selector(self) -> BaseSelector:
        """The fitted selector used for the current pool."""
        with self._lock:
            if self._fitted is None:
                if not len(self.pool):
                    raise InvalidInputError("the selector has no examples yet; add_example(...) first.")
                self._refit()
            assert self._fitted is not None
            return self._fitted

    def _refit(self) -> None:
        with self._lock:
            fresh = clone_selector(self._template)
            self._fitted = fresh.fit(self.pool)

    def __len__(self) -> int:
        return len(self.pool)

    def __bool__(self) -> bool:
        # a selector is truthy even before it has examples (LangChain tests `if example_selector:`)
        return True

    def __repr__(self) -> str:
        return (
            f"PromptKDExampleSelector(n={len(self.pool)}, selector={self._template!r}, "
            f"input_keys={self.input_keys!r}, output_key={self.output_key!r})"
        )

    # ------------------------------------------------------------------ LangChain API
    def add_example(self, example: dict[str, str]) -> str:
        """Add one example; returns its id. The selector refits on the next selection.

        Examples
        --------
        >>> from promptkd.embeddings import HashingEmbedder
        >>> sel = PromptKDExampleSelector.from_examples([{"input": "a", "output": "b"}], k=1, embedder=HashingEmbedder())
        >>> _ = sel.add_example({"input": "c", "output": "d"})
        >>> len(sel)
        2
        """
        demo = self._to_demo(example)
        with self._lock:
            self.pool.add(demo)
            self._fitted = None
        return demo.id

    async def aadd_example(self, example: dict[str, str]) -> str:
        """Async :meth:`add_example` (embedding runs in a worker thread)."""
        return await asyncio.to_thread(self.add_example, example)

    def query_text(self, input_variables: Mapping[str, Any]) -> str:
        """The query text built from ``input_variables`` (see ``query_keys``).

        Examples
        --------
        >>> from promptkd.embeddings import HashingEmbedder
        >>> sel = PromptKDExampleSelector.from_examples([{"input": "a", "output": "b"}], k=1, embedder=HashingEmbedder())
        >>> sel.query_text({"input": "hello", "other": 3})
        'hello'
        >>> sel.query_text({"b": "world", "a": "hello"})
        'hello world'
        """
        if not isinstance(input_variables, Mapping):
            raise InvalidTypeError(f"input_variables must be a dict, got {type(input_variables).__name__}.")
        keys = self.query_keys
        if keys is not None:
            missing = [k for k in keys if k not in input_variables]
            if missing:
                raise InvalidInputError(
                    f"input_variables has no key(s) {missing} (has {sorted(input_variables)}); "
                    "pass them or change query_keys."
                )
            return "\n".join(_as_text(input_variables[k], k) for k in keys)
        if all(k in input_variables for k in self.input_keys):
            return "\n".join(_as_text(input_variables[k], k) for k in self.input_keys)
        values = [input_variables[k] for k in sorted(input_variables) if isinstance(input_variables[k], str)]
        text = " ".join(v for v in values if v.strip())
        if not text:
            raise InvalidInputError(
                f"input_variables {sorted(input_variables)} hold no text to select examples for; "
                "pass the query text or set query_keys."
            )
        return text

    def to_examples(self, selection: Selection) -> list[dict[str, Any]]:
        """The example dicts for a :class:`~promptkd.selection.Selection`, in its order."""
        out = []
        for demo in selection.demos:
            stored = demo.metadata.get(EXAMPLE_KEY)
            if isinstance(stored, Mapping):
                example = dict(stored)
            else:
                example = {k: v for k, v in demo.metadata.items() if k != EXAMPLE_KEY}
                example[self.input_keys[0]] = demo.input
                example[self.output_key] = demo.output
            if self.example_keys is not None:
                example = {k: example[k] for k in self.example_keys if k in example}
            out.append(example)
        return out

    def select(self, input_variables: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Selection]:
        """Select examples and also return the :class:`~promptkd.selection.Selection` (for tracing).

        Examples
        --------
        >>> from promptkd.embeddings import HashingEmbedder
        >>> sel = PromptKDExampleSelector.from_examples(
        ...     [{"input": "a b", "output": "x"}, {"input": "c d", "output": "y"}], k=1, embedder=HashingEmbedder())
        >>> examples, selection = sel.select({"input": "a b"})
        >>> examples[0]["output"] == selection.demos[0].output
        True
        """
        query = self.query_text(input_variables)
        selection = self.selector.select(query)
        emit("on_select", selection, hooks=self.hooks, source="langchain", query=query)
        return self.to_examples(selection), selection

    def select_examples(self, input_variables: dict[str, str]) -> list[dict[str, Any]]:
        """Examples for ``input_variables``, in the selector's prompt order."""
        return self.select(input_variables)[0]

    async def aselect(self, input_variables: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Selection]:
        """Async :meth:`select`: the selector's own ``aselect``, without blocking the event loop."""
        query = self.query_text(input_variables)
        with self._lock:
            fitted = self._fitted
        if fitted is None:
            fitted = await asyncio.to_thread(lambda: self.selector)
        selection = await fitted.aselect(query)
        emit("on_select", selection, hooks=self.hooks, source="langchain", query=query)
        return self.to_examples(selection), selection

    async def aselect_examples(self, input_variables: dict[str, str]) -> list[dict[str, Any]]:
        """Async :meth:`select_examples`."""
        return (await self.aselect(input_variables))[0]

    def as_runnable(self, **kwargs: Any) -> PromptKDRunnable:
        """An LCEL step for pipelines: see :class:`PromptKDRunnable`."""
        from promptkd.integrations.langchain.lcel import PromptKDRunnable

        return PromptKDRunnable(self, **kwargs)
