"""Counting the tokens of rendered demonstrations, for ``max_tokens`` budgets."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError, ModelLoadError

__all__ = ["TokenCounter", "as_token_counter"]

logger = logging.getLogger("promptkd")


class TokenCounter:
    """Count tokens of texts with a tokenizer given in one of several forms.

    Parameters
    ----------
    tokenizer
        * a transformers tokenizer name or local path (loaded with
          ``AutoTokenizer.from_pretrained``; offline if ``HF_HUB_OFFLINE=1``);
        * a tokenizer object with ``encode(text)`` (transformers, ``tokenizers``
          or tiktoken); special tokens are not counted;
        * a callable ``text -> int``.

    Examples
    --------
    >>> counter = TokenCounter(lambda text: len(text.split()))
    >>> counter.count(["one two", "three"]).tolist()
    [2, 1]
    """

    def __init__(self, tokenizer: Any) -> None:
        if tokenizer is None:
            raise InvalidInputError(
                "max_tokens needs a tokenizer: pass tokenizer= a transformers tokenizer name or path, "
                "a tokenizer object, or a callable text -> int."
            )
        if isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = _load_tokenizer(os.fspath(tokenizer))
        if not (hasattr(tokenizer, "encode") or callable(tokenizer)):
            raise InvalidTypeError(
                f"tokenizer must be a name/path, an object with encode(), or a callable text -> int; "
                f"got {type(tokenizer).__name__}."
            )
        self.tokenizer = tokenizer

    @property
    def name(self) -> str:
        """A short description of the tokenizer, for provenance."""
        tok = self.tokenizer
        return str(getattr(tok, "name_or_path", None) or getattr(tok, "__name__", None) or type(tok).__name__)

    def _is_hf(self) -> bool:
        return type(self.tokenizer).__module__.startswith("transformers") and callable(self.tokenizer)

    def count_one(self, text: str) -> int:
        """Tokens in one text."""
        tok = self.tokenizer
        if hasattr(tok, "encode"):
            try:
                out = tok.encode(text, add_special_tokens=False)
            except TypeError:
                out = tok.encode(text)
            ids = getattr(out, "ids", out)
            return len(ids)
        value = tok(text)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InvalidTypeError(
                f"the token-counting callable must return a non-negative int, got {value!r} for {text[:40]!r}."
            )
        return int(value)

    def count(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens in each text, as an int64 array (batched for transformers tokenizers)."""
        if self._is_hf() and len(texts) > 0:
            ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
            return np.array([len(x) for x in ids], dtype=np.int64)
        return np.array([self.count_one(t) for t in texts], dtype=np.int64)


def _load_tokenizer(name: str) -> Any:
    try:
        from transformers import AutoTokenizer
    except ImportError as err:  # pragma: no cover - transformers is a core dependency
        raise ModelLoadError("loading a tokenizer by name needs transformers; pip install transformers.") from err
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=offline or os.path.isdir(name))
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"could not load the tokenizer {name!r} ({err}); pass a local directory holding tokenizer files, "
            "a tokenizer object, or a callable text -> int."
        ) from err


def as_token_counter(tokenizer: Any) -> TokenCounter:
    """Wrap ``tokenizer`` (name, path, object or callable) in a :class:`TokenCounter`.

    Examples
    --------
    >>> as_token_counter(len).count(["abc"]).tolist()
    [3]
    """
    if isinstance(tokenizer, TokenCounter):
        return tokenizer
    return TokenCounter(tokenizer)


TokenizerLike = Any
CountFn = Callable[[str], int]
