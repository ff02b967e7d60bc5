"""Grouped settings of :class:`~promptkd.selection.Selector`: constraints, the candidate index, the budget.

Each group is a frozen dataclass, so a group can be built once, shared and compared. A Selector takes
them as ``constraints=``, ``index=`` and ``budget=``; every field of a group is also accepted as a flat
keyword of the Selector (``Selector(max_tokens=200, tokenizer=tok)``), which folds into its group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypedDict

from promptkd.exceptions import InvalidTypeError

__all__ = ["BudgetSettings", "Constraints", "IndexSettings", "SettingsKeywords"]


@dataclass(frozen=True)
class Constraints:
    """Hard constraints on a selection: they compose with the objective and are never broken.

    Parameters
    ----------
    max_tokens
        Token budget for the rendered demonstrations (``template`` applied to
        each demo, counted with ``tokenizer``); the greedy maximises MMD2
        decrease per token and never exceeds it.
    tokenizer
        A transformers tokenizer name or local path, a tokenizer object, or a
        callable ``text -> int``. Needed by ``max_tokens``; when given without
        it, token counts are still reported.
    template
        :class:`~promptkd.rendering.PromptTemplate` or example pattern used to
        render demos for counting (default ``"Input: {input}\\nOutput: {output}"``).
    label_balance
        None, ``"cover"`` (``min(k, #labels)`` distinct labels) or
        ``"stratified"`` (label counts within one of ``k`` times the eligible
        pool's label proportions, summing to ``k``).
    dedup_threshold
        No two chosen demos have cosine similarity at or above this value.
    where
        Metadata filter (as :meth:`DemoPool.filter`): only matching demos are chosen.

    Examples
    --------
    >>> from promptkd import Selector
    >>> rules = Constraints(label_balance="cover", dedup_threshold=0.95)
    >>> Selector(k=4, constraints=rules).label_balance
    'cover'
    """

    max_tokens: int | None = None
    tokenizer: Any = None
    template: Any = None
    label_balance: str | None = None
    dedup_threshold: float | None = None
    where: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class IndexSettings:
    """Where and how the candidate stage finds the items most similar to the target.

    Parameters
    ----------
    kind
        Candidate index above ``ann_threshold``: ``"auto"`` (HNSW if faiss is
        installed, else exact numpy with a warning), ``"exact"``, ``"ivf"`` or
        ``"hnsw"`` (faiss, the ``ann`` extra). ``Selector(index="hnsw")`` is
        short for ``Selector(index=IndexSettings(kind="hnsw"))``.
    ann_threshold
        Pool size from which the faiss index is used (None: never).
    nprobe, ef_search
        Recall settings of the IVF and HNSW indexes.
    dtype
        Storage of the pool embeddings: None (as the pool has them),
        ``"float32"`` or ``"float16"`` (half the memory; products in float32).
    device
        Where the similarity stage (one GEMM per chunk) runs: ``"auto"``
        (default) uses CUDA or MPS when available and otherwise numpy on the
        CPU (for pools under 20,000 demos torch is only used if it is already
        imported); ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"cpu"`` force torch on
        that device; None forces numpy. Herding itself runs on the CPU over the
        small candidate set.

    Examples
    --------
    >>> from promptkd import Selector
    >>> Selector(k=4, index=IndexSettings(kind="hnsw", ef_search=256)).ef_search
    256
    """

    kind: str = "auto"
    ann_threshold: int | None = 500_000
    nprobe: int = 16
    ef_search: int = 128
    dtype: str | None = None
    device: str | None = "auto"


@dataclass(frozen=True)
class BudgetSettings:
    """How ``k="auto"`` chooses the number of demonstrations (see :class:`~promptkd.bounds.BoundEstimator`).

    Parameters
    ----------
    k_max
        The largest k considered.
    token_cost
        The price of a prompt token in the budget, in error per token (0.0001
        is one accuracy point per 100 tokens); None, the default, uses
        promptkd's stated default price,
        :func:`promptkd.bounds.shipped.default_token_cost`; 0 makes tokens free.
    bound_estimator
        An optional configured ``BoundEstimator``.

    Examples
    --------
    >>> from promptkd import Selector
    >>> Selector(k="auto", budget=BudgetSettings(k_max=16, token_cost=0.0)).k_max
    16
    """

    k_max: int = 32
    token_cost: float | None = None
    bound_estimator: Any = None


class SettingsKeywords(TypedDict, total=False):
    """The flat keywords a Selector accepts for the fields of its setting groups."""

    max_tokens: int | None
    tokenizer: Any
    template: Any
    label_balance: str | None
    dedup_threshold: float | None
    where: Mapping[str, Any] | None
    ann_threshold: int | None
    nprobe: int
    ef_search: int
    dtype: str | None
    device: str | None
    k_max: int
    token_cost: float | None
    bound_estimator: Any


#: the Selector parameter that holds each group, and the group's type
GROUPS: dict[str, type] = {"constraints": Constraints, "index": IndexSettings, "budget": BudgetSettings}
#: flat keyword -> the group parameter its field lives in (``kind`` is the ``index`` string itself)
SHORTHANDS: dict[str, str] = {f.name: group for group, cls in GROUPS.items() for f in fields(cls) if f.name != "kind"}
#: each group at its defaults (frozen, so one instance serves every Selector that leaves the group unset)
_DEFAULTS: dict[str, Any] = {param: cls() for param, cls in GROUPS.items()}


def as_group(param: str, value: Any) -> Any:
    """The settings object of the group ``param`` for a stored value (an ``index`` string is its kind).

    Examples
    --------
    >>> as_group("index", "hnsw").kind, as_group("budget", None).k_max
    ('hnsw', 32)
    """
    if value is None:  # the shorthand properties read through here on every access: no new object
        return _DEFAULTS[param]
    cls = GROUPS[param]
    if param == "index" and isinstance(value, str):
        return IndexSettings(kind=value)
    if not isinstance(value, cls):
        raise InvalidTypeError(f"{param} must be a {cls.__name__}, got {type(value).__name__}.")
    return value


def fold_shorthands(groups: dict[str, Any], flat: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """The group values with the flat keywords ``flat`` folded in (a flat keyword overrides the group's field).

    A group that no flat keyword touches is returned as given, so a constructor
    stores exactly what it was passed (which ``sklearn.base.clone`` checks).

    Examples
    --------
    >>> fold_shorthands({"constraints": None, "index": "auto", "budget": None}, {"nprobe": 32}, "Selector")["index"]
    IndexSettings(kind='auto', ann_threshold=500000, nprobe=32, ef_search=128, dtype=None, device='auto')
    """
    unknown = sorted(set(flat) - set(SHORTHANDS))
    if unknown:
        raise InvalidTypeError(f"{owner}() got unexpected keyword argument(s) {unknown}.")
    out = dict(groups)
    for param in GROUPS:
        mine = {name: value for name, value in flat.items() if SHORTHANDS[name] == param}
        if mine:
            out[param] = replace(as_group(param, groups[param]), **mine)
    return out


def flat_keywords(param: str, value: Any) -> dict[str, Any]:
    """The flat keywords that rebuild a group value: its fields that differ from the defaults (and the index kind).

    Examples
    --------
    >>> flat_keywords("budget", BudgetSettings(k_max=8)), flat_keywords("index", "hnsw")
    ({'k_max': 8}, {'index': 'hnsw'})
    """
    group = as_group(param, value)
    default = type(group)()
    out = {f.name: getattr(group, f.name) for f in fields(group) if getattr(group, f.name) != getattr(default, f.name)}
    if param == "index":
        out.pop("kind", None)
        out = {"index": group.kind, **out}
    return out


def shorthand(param: str, name: str) -> property:
    """A property that reads (and, assigned, replaces) field ``name`` of the group stored under ``param``.

    Examples
    --------
    >>> class Thing:
    ...     constraints = None
    ...     max_tokens = shorthand("constraints", "max_tokens")
    >>> t = Thing(); t.max_tokens = 5; t.constraints
    Constraints(max_tokens=5, tokenizer=None, template=None, label_balance=None, dedup_threshold=None, where=None)
    """

    def get(self: Any) -> Any:
        return getattr(as_group(param, getattr(self, param)), name)

    def set_(self: Any, value: Any) -> None:
        setattr(self, param, replace(as_group(param, getattr(self, param)), **{name: value}))

    return property(get, set_, doc=f"The ``{name}`` of ``{param}`` (assigning it replaces the group).")
