"""Counting prompt tokens for the budget's ``lambda * tokens(S_k)`` term.

Tokenizers are handled by :class:`promptkd.selection.tokens.TokenCounter`, the
same code the Selector's ``max_tokens`` constraint uses, so a budget and a
token-constrained selection count tokens identically. Without a tokenizer the
budget counts whitespace-separated words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from promptkd.exceptions import InvalidInputError
from promptkd.selection.tokens import as_token_counter

__all__ = ["TokenCountFn", "resolve_tokenizer", "whitespace_tokens"]

TokenCountFn = Callable[[str], int]


def whitespace_tokens(text: str) -> int:
    """Number of whitespace-separated words: the tokenizer-free default.

    Examples
    --------
    >>> whitespace_tokens("Input: great film\\nOutput: positive")
    5
    """
    return len(text.split())


def resolve_tokenizer(tokenizer: Any = None) -> TokenCountFn:
    """Turn a tokenizer setting into a function ``text -> number of tokens``.

    Parameters
    ----------
    tokenizer
        ``None`` (whitespace words), a transformers tokenizer name or local path
        (loaded with ``AutoTokenizer``; offline when ``HF_HUB_OFFLINE=1``), any
        object with ``encode(text)`` (transformers, ``tokenizers`` or tiktoken;
        special tokens are not counted), a
        :class:`~promptkd.selection.tokens.TokenCounter`, or a callable
        ``text -> int``.

    Examples
    --------
    >>> resolve_tokenizer(None)("a b c")
    3
    >>> resolve_tokenizer(len)("abcd")
    4
    """
    if tokenizer is None:
        return whitespace_tokens
    if isinstance(tokenizer, str) and not tokenizer.strip():
        raise InvalidInputError("tokenizer is an empty string; pass a tokenizer name, a path, or None.")
    return as_token_counter(tokenizer).count_one
