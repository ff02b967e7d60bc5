"""scikit-learn style parameters: ``get_params``/``set_params`` from the constructor's signature.

Constructors store each argument under its own name, so the settings of an object can be read back,
changed and copied without knowing its class: ``sklearn.base.clone`` works on every selector and on
the bound estimator.
"""

from __future__ import annotations

import inspect
from typing import Any

from promptkd.exceptions import InvalidInputError

__all__ = ["ParamsMixin"]


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
        for name, value in params.items():
            if name not in valid:
                raise InvalidInputError(
                    f"{type(self).__name__} has no parameter {name!r}; valid parameters: {', '.join(valid)}."
                )
            setattr(self, name, value)
        return self
