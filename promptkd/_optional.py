"""Import optional dependencies lazily, failing with the pip extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from promptkd.exceptions import MissingDependencyError


def require(module: str, extra: str, *, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``extra``.

    Parameters
    ----------
    module
        Importable module name, e.g. ``"faiss"``.
    extra
        The promptkd extra that installs it, e.g. ``"ann"``.
    purpose
        Short description of the feature that needs it, used in the message.

    Examples
    --------
    >>> require("json", "dev").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        what = purpose or f"this feature (module {module!r})"
        raise MissingDependencyError(
            f"{what} needs the optional dependency {module!r}, which is not installed. "
            f'Install it with: pip install "promptkd[{extra}]"'
        ) from err
