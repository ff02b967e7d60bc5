"""Selectors by name, and their settings as JSON (for the CLI, adapters and save/load).

Names map to classes in :mod:`promptkd.selection` (``"promptkd"``, alias
``"mmd"``) and, when present, the baselines in
:mod:`promptkd.selection.baselines` (``"random"``, ``"topk"``, ``"mmr"``,
``"dpp"``, ``"votek"``, ``"bm25"``). Settings round-trip through plain JSON,
never pickle; only classes defined inside the ``promptkd`` package are rebuilt
from a saved config.

Examples
--------
>>> from promptkd.integrations.registry import make_selector, selector_config, selector_from_config
>>> sel = make_selector("promptkd", k=3, candidates=64)
>>> cfg = selector_config(sel)
>>> cfg["name"], cfg["params"]["k"], cfg["params"]["candidates"]
('promptkd', 3, 64)
>>> selector_from_config(cfg).candidates
64
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from promptkd.exceptions import InvalidInputError, InvalidTypeError, PersistenceError
from promptkd.selection import BaseSelector
from promptkd.selection.settings import GROUPS, flat_keywords

__all__ = ["make_selector", "selector_class", "selector_config", "selector_from_config", "selector_names"]

# name -> (module, class name); baselines are looked up lazily so this works before they exist
_BUILTIN: dict[str, tuple[str, str]] = {
    "promptkd": ("promptkd.selection", "Selector"),
    "random": ("promptkd.selection.baselines", "RandomSelector"),
    "topk": ("promptkd.selection.baselines", "TopKSelector"),
    "mmr": ("promptkd.selection.baselines", "MMRSelector"),
    "dpp": ("promptkd.selection.baselines", "DPPSelector"),
    "votek": ("promptkd.selection.baselines", "VoteKSelector"),
    "bm25": ("promptkd.selection.baselines", "BM25Selector"),
}
_ALIASES = {"mmd": "promptkd", "herding": "promptkd", "selector": "promptkd", "top-k": "topk", "vote-k": "votek"}


def _load(module: str, name: str) -> type | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    cls = getattr(mod, name, None)
    return cls if isinstance(cls, type) else None


def selector_names() -> list[str]:
    """Names of the selectors available in this installation.

    Examples
    --------
    >>> "promptkd" in selector_names()
    True
    """
    return [name for name, (mod, cls) in _BUILTIN.items() if _load(mod, cls) is not None]


def selector_class(name: str) -> type:
    """The selector class for ``name`` (case-insensitive; ``"mmd"`` is ``"promptkd"``).

    Examples
    --------
    >>> selector_class("MMD").__name__
    'Selector'
    """
    if not isinstance(name, str):
        raise InvalidTypeError(f"selector must be a name such as 'promptkd' or 'topk', got {type(name).__name__}.")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in _BUILTIN:
        cls = _load(*_BUILTIN[key])
        if cls is not None:
            return cls
    raise InvalidInputError(f"selector {name!r} is not known; use one of {', '.join(selector_names())}.")


def make_selector(name: str | BaseSelector = "promptkd", **options: Any) -> BaseSelector:
    """Build a selector by name with constructor ``options``; an instance is returned as is.

    Options the selector does not accept raise
    :class:`~promptkd.exceptions.InvalidInputError` naming the ones it does.

    Examples
    --------
    >>> make_selector("promptkd", k=2).k
    2
    """
    if isinstance(name, BaseSelector):
        if options:
            raise InvalidInputError(
                f"selector options {sorted(options)} were given with a selector instance; set them on the instance."
            )
        return name
    cls = selector_class(name)
    accepted = cls._get_param_names()
    renamed = getattr(cls, "_renamed_params", {})  # deprecated names still load (the constructor warns)
    shorthands = getattr(cls, "_shorthand_params", frozenset())  # flat names of grouped settings
    unknown = sorted(set(options) - set(accepted) - set(renamed) - set(shorthands))
    if unknown:
        raise InvalidInputError(f"{cls.__name__} does not accept option(s) {unknown}; it accepts {sorted(accepted)}.")
    return cls(**options)


def _name_of(cls: type) -> str:
    for name, (mod, clsname) in _BUILTIN.items():
        if clsname == cls.__name__ and _load(mod, clsname) is cls:
            return name
    return f"{cls.__module__}:{cls.__qualname__}"


def selector_params(selector: BaseSelector) -> dict[str, Any]:
    """Constructor settings of ``selector`` (scikit-learn's ``get_params`` idea).

    Examples
    --------
    >>> from promptkd import Selector
    >>> selector_params(Selector(k=5))["k"]
    5
    """
    if not isinstance(selector, BaseSelector):
        raise InvalidTypeError(f"selector must be a promptkd selector, got {type(selector).__name__}.")
    return selector.get_params()


def selector_config(selector: BaseSelector) -> dict[str, Any]:
    """JSON-ready ``{"name", "params"}`` describing ``selector``'s settings.

    Raises :class:`~promptkd.exceptions.PersistenceError` when a setting is not
    JSON (e.g. a custom kernel function), naming the setting.
    """
    params: dict[str, Any] = {}
    for key, value in selector_params(selector).items():
        # grouped settings are saved as the flat keywords that differ from the defaults: JSON holds no
        # settings object, and configs saved before the groups (every flat keyword) still load
        grouped = key in GROUPS and bool(getattr(selector, "_shorthand_params", ()))
        params.update(flat_keywords(key, value) if grouped else {key: value})
    clean: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, tuple):
            value = list(value)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise PersistenceError(
                f"the selector setting {key}={value!r:.60} cannot be saved as JSON; use a named setting "
                "(e.g. kernel='rbf', order='similarity') to save this selector."
            ) from err
        clean[key] = value
    return {"name": _name_of(type(selector)), "params": clean}


def selector_from_config(config: dict[str, Any]) -> BaseSelector:
    """Rebuild an unfitted selector from :func:`selector_config` output.

    Only promptkd's own classes are rebuilt (a config cannot import arbitrary code).
    """
    if not isinstance(config, dict) or "name" not in config:
        raise PersistenceError("the selector config must be a JSON object with 'name' and 'params'.")
    name = config["name"]
    params = dict(config.get("params") or {})
    if isinstance(name, str) and ":" in name:
        module, _, qualname = name.partition(":")
        if not (module == "promptkd" or module.startswith("promptkd.")):
            raise PersistenceError(
                f"the saved selector class {name!r} is not part of promptkd; rebuild it yourself and pass selector=."
            )
        cls = _load(module, qualname)
        if cls is None or not issubclass(cls, BaseSelector):
            raise PersistenceError(f"the saved selector class {name!r} cannot be imported; check the promptkd version.")
        return cls(**params)
    try:
        return make_selector(name, **params)
    except InvalidInputError as err:
        raise PersistenceError(f"cannot rebuild the saved selector: {err}") from err


def clone_selector(selector: BaseSelector) -> BaseSelector:
    """A new unfitted selector with the same settings; never the same object.

    Raises
    ------
    InvalidInputError
        When the selector's class cannot be rebuilt from its own ``get_params()``
        (its ``__init__`` does not store every argument under its own name).

    Examples
    --------
    >>> from promptkd import Selector
    >>> s = Selector(k=3); c = clone_selector(s); (c is s, c.k)
    (False, 3)
    """
    params = selector_params(selector)
    try:
        return type(selector)(**params)
    except TypeError as err:
        raise InvalidInputError(
            f"cannot make a fresh copy of {type(selector).__name__}: its constructor rejects its own settings "
            f"{sorted(params)} ({err}); store every __init__ argument under its own name so get_params() can "
            "rebuild it."
        ) from err
