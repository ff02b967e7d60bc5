"""scikit-learn style parameters: ``get_params``/``set_params`` from the constructor's signature.

Constructors store each argument under its own name, so the settings of an object can be read back,
changed and copied without knowing its class: ``sklearn.base.clone`` works on every selector and on
the bound estimator.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from promptkd.exceptions import InvalidInputError

__all__ = ["ParamsMixin", "Renamed", "renamed_params"]

_C = TypeVar("_C", bound=type)


class ParamsMixin:
    """``get_params``/``set_params`` for classes whose ``__init__`` stores every argument as is.

    Examples
    --------
    >>> class Thing(ParamsMixin):
    ...     def __init__(self, a: int = 1, *, b: str = "x") -> None:
    ...         self.a, self.b = a, b
    >>> Thing(a=2).get_params()
    {'a': 2, 'b': 'x'}
    >>> Thing().set_params(b="y").b
    'y'
    """

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The constructor's named arguments, in order."""
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor settings of this object (``deep`` is accepted for scikit-learn; nothing nests)."""
        missing = [name for name in self._get_param_names() if not hasattr(self, name)]
        if missing:
            raise InvalidInputError(
                f"cannot read the settings of {type(self).__name__}: its __init__ argument(s) {missing} are not "
                "stored under their own names, so a copy could not be rebuilt; store each argument as self.<name>."
            )
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> ParamsMixin:
        """Change settings by name and return ``self``; refit afterwards for them to take effect.

        Raises
        ------
        InvalidInputError
            For a name that is not a constructor argument (the message lists the valid ones).
        """
        valid = self._get_param_names()
        shorthands = getattr(self, "_shorthand_params", frozenset())  # flat names of grouped settings
        for name, value in params.items():
            if name not in valid and name not in shorthands:
                raise InvalidInputError(
                    f"{type(self).__name__} has no parameter {name!r}; valid parameters: {', '.join(valid)}."
                )
            setattr(self, name, value)
        return self


class Renamed(NamedTuple):
    """A deprecated constructor keyword: its new name, how an old value converts, and what the warning adds."""

    new: str
    convert: Callable[[Any], Any] | None = None
    note: str = "same meaning"


def renamed_params(**renames: Renamed) -> Callable[[_C], _C]:
    """Class decorator: the constructor still accepts old keyword names, with a ``DeprecationWarning``.

    Apply it above the decorator that makes ``__init__`` (e.g. ``@dataclass``).
    The signature, and so ``get_params``, shows only the new names; the old
    ones are listed in the class's ``_renamed_params``.

    Examples
    --------
    >>> import warnings
    >>> from dataclasses import dataclass
    >>> @renamed_params(lambda_=Renamed("diversity", lambda v: 1.0 - v, "diversity = 1 - lambda_"))
    ... @dataclass
    ... class Thing(ParamsMixin):
    ...     diversity: float = 0.5
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     thing = Thing(lambda_=0.75)
    >>> thing.get_params(), str(caught[0].message)
    ({'diversity': 0.25}, 'Thing(lambda_=...) is deprecated; use diversity=... (diversity = 1 - lambda_).')
    """

    def decorate(cls: _C) -> _C:
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            for old in [name for name in kwargs if name in renames]:
                new, convert, note = renames[old]
                if new in kwargs:
                    raise InvalidInputError(
                        f"{cls.__name__} got both {old}= (deprecated) and {new}=; pass {new}= only."
                    )
                warnings.warn(
                    f"{cls.__name__}({old}=...) is deprecated; use {new}=... ({note}).",
                    DeprecationWarning,
                    stacklevel=2,
                )
                value = kwargs.pop(old)
                kwargs[new] = value if convert is None else convert(value)
            init(self, *args, **kwargs)

        cls.__init__ = __init__  # type: ignore[misc]
        cls._renamed_params = {**getattr(cls, "_renamed_params", {}), **renames}  # type: ignore[attr-defined]
        return cls

    return decorate
