"""MkDocs hook: turn the Sphinx roles of promptkd's numpydoc docstrings into links.

The docstrings cross-reference with Sphinx roles (``:class:`~promptkd.selection.Selection```), which
Markdown renders as the literal role followed by inline code. This hook rewrites each such pair into an
optional cross-reference that mkdocs-autorefs resolves against the objects rendered in the API reference:
a dotted path is used as it is, and a bare name (``TopKSelector``, ``BoundEstimator.budget``) is looked up
among the ``::: identifier`` blocks of ``docs/api/``. A reference that resolves to nothing stays inline
code, without the role. Loaded through ``hooks:`` in ``mkdocs.yml``.

It also holds a Griffe extension, :class:`RuntimeDocstrings`, loaded through the mkdocstrings options.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|const):<code>([^<]+)</code>")
BLOCK = re.compile(r"^:::\s+(promptkd[\w.]*)\s*$", flags=re.M)

_short: dict[str, str] = {}
_all: set[str] = set()


def on_config(config: Any) -> Any:
    """Index the API reference's identifiers, and by their last component (names that are unique only)."""
    _short.clear()
    _all.clear()
    seen: dict[str, set[str]] = {}
    for page in sorted((Path(config["docs_dir"]) / "api").glob("*.md")):
        for ident in BLOCK.findall(page.read_text(encoding="utf-8")):
            _all.add(ident)
            seen.setdefault(ident.rsplit(".", 1)[-1], set()).add(ident)
    _short.update({name: next(iter(ids)) for name, ids in seen.items() if len(ids) == 1})
    return config


def _identifier(target: str) -> str | None:
    if target.startswith("promptkd."):
        owner = target.rsplit(".", 1)[0]
        if target in _all or owner in _all:  # an object, or a member of one, as rendered
            return target
        return _short.get(target.rsplit(".", 1)[-1], target)  # promptkd.DemoPool -> promptkd.pool.DemoPool
    head, _, rest = target.partition(".")
    if head in _short:  # TopKSelector, BoundEstimator.budget
        return _short[head] + ("." + rest if rest else "")
    return None


def _replace(match: re.Match[str]) -> str:
    target = match.group(1).strip()
    short = target.startswith("~")
    target = target.lstrip("~.")
    title = target.rsplit(".", 1)[-1] if short else target
    ident = _identifier(target)
    code = f"<code>{title}</code>"
    if ident is None:
        return code
    return f'<autoref identifier="{ident}" optional>{code}</autoref>'


def on_page_content(html: str, **kwargs: Any) -> str:
    """Rewrite the roles of one page; autorefs resolves the references afterwards."""
    return ROLE.sub(_replace, html)


class RuntimeDocstrings(griffe.Extension):
    """Document module attributes that hold functions made at import time with the docstring they get then.

    ``rbf = _distance_kernel(...)`` followed by ``rbf.__doc__ = "..."`` is a function at run time but, read
    from the source, an attribute without a docstring; this extension gives it the run-time docstring.
    """

    def on_attribute_instance(self, *, node: Any, attr: Any, agent: Any, **kwargs: Any) -> None:
        parent = attr.parent
        if (
            attr.docstring is not None
            or parent is None
            or not parent.is_module
            or not attr.path.startswith("promptkd.")
        ):
            return
        if not re.match(r"_\w+\(", str(attr.value or "")):  # only values made by a module's private factory
            return
        try:
            value = getattr(importlib.import_module(parent.path), attr.name)
        except Exception:  # a module that needs an optional extra: leave the attribute as it is
            return
        if inspect.isfunction(value) and value.__doc__:
            attr.docstring = griffe.Docstring(
                inspect.cleandoc(value.__doc__),
                parent=attr,
                parser=getattr(agent, "docstring_parser", None),
                parser_options=getattr(agent, "docstring_options", None),
            )
