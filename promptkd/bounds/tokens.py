"""Counting prompt tokens for the budget's ``lambda * tokens(S_k)`` term."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from promptkd.exceptions import InvalidInputError, InvalidTypeError, ModelLoadError

__all__ = ["TokenCounter", "resolve_tokenizer", "whitespace_tokens"]

TokenCounter = Callable[[str], int]


def whitespace_tokens(text: str) -> int:
    """Number of whitespace-separated words: the tokenizer-free default.

    Examples
    --------
    >>> whitespace_tokens("Input: great film\\nOutput: positive")
    5
    """
    return len(text.split())


def _count_result(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise InvalidTypeError(f"{where} returned a bool; it must return a token count or a sequence of tokens.")
    if isinstance(value, int):
        count = value
    elif hasattr(value, "input_ids"):  # a transformers BatchEncoding
        count = len(value.input_ids)
    elif isinstance(value, Sequence) or hasattr(value, "__len__"):
        count = len(value)
    else:
        raise InvalidTypeError(
            f"{where} returned {type(value).__name__}; it must return an int or a sequence of token ids."
        )
    if count < 0:
        raise InvalidInputError(f"{where} returned a negative token count ({count}).")
    return int(count)


def _from_encode(tok: Any) -> TokenCounter:
    def count(text: str) -> int:
        try:
            ids = tok.encode(text, add_special_tokens=False)
        except TypeError:  # tokenizers without the keyword (e.g. tiktoken)
            ids = tok.encode(text)
        return _count_result(ids, f"{type(tok).__name__}.encode")

    return count


def resolve_tokenizer(tokenizer: Any = None) -> TokenCounter:
    """Turn a tokenizer setting into a function ``text -> number of tokens``.

    Parameters
    ----------
    tokenizer
        ``None`` (whitespace words), a transformers tokenizer name or local path
        (loaded with ``AutoTokenizer``; honours ``HF_HUB_OFFLINE``), any object
        with ``encode(text)`` (transformers or tiktoken tokenizers), or a
        callable returning an int or a sequence of tokens.

    Examples
    --------
    >>> resolve_tokenizer(None)("a b c")
    3
    >>> resolve_tokenizer(lambda s: list(s))("abcd")
    4
    """
    if tokenizer is None:
        return whitespace_tokens
    if isinstance(tokenizer, str):
        if not tokenizer.strip():
            raise InvalidInputError("tokenizer is an empty string; pass a tokenizer name, a path, or None.")
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(tokenizer)
        except Exception as err:
            raise ModelLoadError(
                f"could not load the tokenizer {tokenizer!r} ({type(err).__name__}: {err}); pass a local tokenizer "
                "path, a loaded tokenizer object, or a callable text -> token count."
            ) from err
        return _from_encode(tok)
    if hasattr(tokenizer, "encode"):
        return _from_encode(tokenizer)
    if callable(tokenizer):

        def count(text: str) -> int:
            return _count_result(tokenizer(text), "the tokenizer callable")

        return count
    raise InvalidTypeError(
        f"tokenizer must be None, a name or path, an object with encode(text), or a callable; got {type(tokenizer).__name__}."
    )
