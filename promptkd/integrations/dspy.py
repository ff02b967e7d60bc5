"""DSPy adapter: the :class:`MMDFewShot` teleprompter.

``MMDFewShot(k=4).compile(student, trainset=..., valset=...)`` returns a copy of
``student`` whose predictors carry MMD-selected demonstrations (the original
``dspy.Example`` objects from the trainset):

* ``mode="shared"`` (default): one set for every call, chosen so its embedding
  distribution matches the target distribution (the ``valset`` inputs when
  given, else the ``trainset`` inputs).
* ``mode="per_call"``: the shared set is the default (``predictor.demos``), and
  on each call of a predictor the demos are re-selected for that call's inputs
  and passed to DSPy as the call's ``demos=`` argument, which
  ``dspy.Predict`` uses instead of ``predictor.demos`` for that call. Each
  predictor becomes an instance of a subclass of its own class (e.g.
  ``PerCallPredict``) that does this in ``forward`` and ``aforward``; the
  selection is a local value of the call, so concurrent calls (threads,
  asyncio tasks) each see their own, and ``predictor.demos`` stays a plain
  list.

Needs the ``dspy`` extra (``pip install "promptkd[dspy]"``).

Examples
--------
>>> import dspy
>>> from dspy.utils import DummyLM
>>> from promptkd.embeddings import HashingEmbedder
>>> train = [dspy.Example(question=f"what is {i} plus {i}?", answer=str(2 * i)).with_inputs("question")
...          for i in range(6)]
>>> program = dspy.Predict("question -> answer")
>>> compiled = MMDFewShot(k=2, embedder=HashingEmbedder()).compile(program, trainset=train)
>>> len(compiled.demos), all(d in train for d in compiled.demos)
(2, True)
>>> with dspy.context(lm=DummyLM([{"answer": "8"}])):
...     compiled(question="what is 4 plus 4?").answer
'8'
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from promptkd._optional import require
from promptkd.embeddings.base import Embedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.integrations.hooks import check_hooks, emit
from promptkd.integrations.registry import clone_selector, make_selector
from promptkd.pool import Demo, DemoPool
from promptkd.selection import BaseSelector, Selection

dspy = require("dspy", "dspy", purpose="the DSPy integration")

from dspy.teleprompt.teleprompt import Teleprompter  # noqa: E402

__all__ = ["MMDFewShot"]

logger = logging.getLogger("promptkd")

MODES = ("shared", "per_call")


class _PerCallSource:
    """What a per-call predictor selects with: the teleprompter and the predictor's name (never copied)."""

    __slots__ = ("name", "owner")

    def __init__(self, owner: MMDFewShot, name: str) -> None:
        self.owner, self.name = owner, name

    def __deepcopy__(self, memo: dict[int, Any]) -> _PerCallSource:
        return self

    def demos_for(self, kwargs: Mapping[str, Any]) -> list[Any] | None:
        """The demos selected for one call's inputs; None when the inputs carry no text."""
        owner = self.owner
        query = owner._query_text(kwargs)
        if query is None:
            return None
        selection = owner.selector_.select(query)
        emit("on_select", selection, hooks=owner.hooks, source="dspy", predictor=self.name)
        return [owner.trainset_[i] for i in selection.indices]


class _PerCallDemos:
    """Mixin for a predictor whose every call passes its own demos to DSPy (``demos=``).

    ``dspy.Predict.forward(..., demos=...)`` uses the given demos for that call
    instead of ``self.demos``, so each call's selection is a local value: no
    state is shared between concurrent calls, and ``self.demos`` stays the plain
    list of the shared set (what ``save``, ``dump_state`` and printing see).
    A call that passes ``demos=`` itself keeps them.
    """

    _promptkd_source: _PerCallSource

    def _with_demos(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if "demos" not in kwargs:
            demos = self._promptkd_source.demos_for(kwargs)
            if demos is not None:
                kwargs["demos"] = demos
        return kwargs

    def forward(self, **kwargs: Any) -> Any:
        return super().forward(**self._with_demos(kwargs))  # type: ignore[misc]

    async def aforward(self, **kwargs: Any) -> Any:
        return await super().aforward(**self._with_demos(kwargs))  # type: ignore[misc]


_PER_CALL_CLASSES: dict[type, type] = {}
_PER_CALL_LOCK = threading.Lock()


def _per_call_class(cls: type) -> type:
    """``cls`` with :class:`_PerCallDemos` in front (one class per predictor class, made once)."""
    if issubclass(cls, _PerCallDemos):
        return cls
    with _PER_CALL_LOCK:
        if cls not in _PER_CALL_CLASSES:
            _PER_CALL_CLASSES[cls] = type(f"PerCall{cls.__name__}", (_PerCallDemos, cls), {"__module__": __name__})
        return _PER_CALL_CLASSES[cls]


class MMDFewShot(Teleprompter):
    """DSPy teleprompter: assign kernel-MMD-selected demos to every predictor.

    Parameters
    ----------
    k
        Demos per predictor (or ``"auto"`` when the selector supports it).
    selector
        A promptkd selector name (``"promptkd"``, ``"topk"``, ...) or instance.
    embedder
        Embedder for example inputs; ``None`` is the default sentence-transformers
        model (all-MiniLM-L6-v2, offline).
    mode
        ``"shared"`` or ``"per_call"`` (see the module docstring).
    input_keys
        Example fields that form the text to embed. ``None``: each example's
        ``with_inputs`` keys.
    target
        For the shared set: ``"valset"`` (valset inputs when given, else
        trainset), ``"trainset"``.
    hooks
        Extra :mod:`promptkd.integrations.hooks` hooks called on each selection.
    **selector_options
        Passed to the selector's constructor.

    Attributes
    ----------
    selection_
        The shared :class:`~promptkd.selection.Selection` after :meth:`compile`.
    selector_
        The fitted selector.
    pool_
        The :class:`~promptkd.DemoPool` built from the trainset.
    """

    def __init__(
        self,
        k: int | str = 4,
        *,
        selector: str | BaseSelector = "promptkd",
        embedder: Embedder | None = None,
        mode: str = "shared",
        input_keys: Sequence[str] | None = None,
        target: str = "valset",
        hooks: Iterable[Any] | None = None,
        **selector_options: Any,
    ) -> None:
        if mode not in MODES:
            raise InvalidInputError(f"mode={mode!r} is not known; use one of {', '.join(MODES)}.")
        if target not in ("valset", "trainset"):
            raise InvalidInputError(f"target={target!r} is not known; use 'valset' or 'trainset'.")
        if isinstance(input_keys, str):
            input_keys = [input_keys]
        self.k = k
        self.selector = selector
        self.embedder = embedder
        self.mode = mode
        self.input_keys = None if input_keys is None else list(input_keys)
        self.target = target
        self.hooks = check_hooks(hooks)
        self.selector_options = dict(selector_options)

    # ------------------------------------------------------------------ helpers
    def _keys_of(self, example: Any) -> list[str]:
        if self.input_keys is not None:
            return self.input_keys
        keys = getattr(example, "_input_keys", None)
        if not keys:
            raise InvalidInputError(
                "trainset examples have no input fields; call .with_inputs('question', ...) on each example "
                "or pass input_keys= to MMDFewShot."
            )
        return sorted(keys)

    def _example_text(self, example: Any, keys: Sequence[str]) -> str:
        parts = []
        for key in keys:
            if key not in example:
                raise InvalidInputError(
                    f"example {example!r:.80} has no field {key!r}; check input_keys / with_inputs."
                )
            parts.append(str(example[key]))
        return "\n".join(parts)

    def _query_text(self, kwargs: Mapping[str, Any]) -> str | None:
        keys = [k for k in self.input_keys_ if k in kwargs]
        if keys:
            text = "\n".join(str(kwargs[k]) for k in keys)
        else:
            text = " ".join(str(kwargs[k]) for k in sorted(kwargs) if isinstance(kwargs[k], str))
        return text if text.strip() else None

    def _build_pool(self, trainset: Sequence[Any]) -> DemoPool:
        demos = []
        for i, ex in enumerate(trainset):
            if not isinstance(ex, dspy.Example):
                raise InvalidTypeError(f"trainset[{i}] must be a dspy.Example, got {type(ex).__name__}.")
            keys = self._keys_of(ex)
            labels = [k for k in ex.keys() if k not in keys]  # noqa: SIM118 - Example.keys() hides dspy_ fields
            output = "\n".join(str(ex[k]) for k in labels)
            demos.append(
                Demo(input=self._example_text(ex, keys), output=output, id=f"train-{i}", metadata={"index": i})
            )
        return DemoPool(demos, embedder=self.embedder)

    # ------------------------------------------------------------------ the DSPy API
    def compile(
        self,
        student: Any,
        *,
        trainset: Sequence[Any],
        teacher: Any = None,
        valset: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Return a copy of ``student`` whose predictors hold MMD-selected demos.

        Parameters
        ----------
        student
            A ``dspy.Module`` (its predictors get the demos).
        trainset
            ``dspy.Example`` objects the demos are chosen from.
        teacher
            Unused (accepted for DSPy's compile signature).
        valset
            Examples whose inputs define the target distribution (shared mode).
        """
        if not isinstance(student, dspy.Module):
            raise InvalidTypeError(
                f"student must be a dspy.Module (e.g. dspy.Predict(...)), got {type(student).__name__}."
            )
        if kwargs:
            raise InvalidInputError(f"compile got unexpected argument(s) {sorted(kwargs)}.")
        trainset = list(trainset or [])
        if not trainset:
            raise InvalidInputError("trainset is empty; pass dspy.Example objects to choose demos from.")
        self.trainset_ = trainset
        self.input_keys_ = self._keys_of(trainset[0])
        self.pool_ = self._build_pool(trainset)
        sel = (
            clone_selector(self.selector)  # the caller's instance is not refitted
            if isinstance(self.selector, BaseSelector)
            else make_selector(self.selector, k=self.k, **self.selector_options)
        )
        self.selector_ = sel.fit(self.pool_)
        source = list(valset) if (valset and self.target == "valset") else trainset
        target_texts = [self._example_text(ex, self._keys_of(ex)) for ex in source]
        self.selection_: Selection = self.selector_.select(target_texts)
        emit("on_select", self.selection_, hooks=self.hooks, source="dspy", mode="shared")
        shared = [trainset[i] for i in self.selection_.indices]
        program = student.reset_copy()
        for name, predictor in program.named_predictors():
            predictor.demos = list(shared)
            if self.mode == "per_call":
                predictor._promptkd_source = _PerCallSource(self, name)
                predictor.__class__ = _per_call_class(type(predictor))
        program._compiled = True
        logger.info(
            "MMDFewShot: %d demos (%s) for %d predictor(s), MMD2=%.5f",
            len(shared),
            self.mode,
            len(program.predictors()),
            self.selection_.mmd2,
        )
        return program

    def get_params(self) -> dict[str, Any]:
        """Settings of the teleprompter (DSPy's ``Teleprompter.get_params``)."""
        return {
            "k": self.k,
            "selector": self.selector,
            "mode": self.mode,
            "input_keys": self.input_keys,
            "target": self.target,
            **self.selector_options,
        }
