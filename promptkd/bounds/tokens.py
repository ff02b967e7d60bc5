"""Counting prompt tokens for the budget's ``lambda * tokens(S_k)`` term.

Tokenizers are handled by :class:`promptkd.selection.tokens.TokenCounter`, the
same code the Selector's ``max_tokens`` constraint uses, so a budget and a
token-constrained selection count tokens identically. Without a tokenizer the
budget counts whitespace-separated words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError
from promptkd.rendering.template import PromptTemplate, as_template
from promptkd.selection.tokens import as_token_counter

__all__ = ["DemoTokensMixin", "TokenCountFn", "resolve_tokenizer", "whitespace_tokens"]

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


class DemoTokensMixin:
    """Token counts of rendered demos, cached per tokenizer and template, for the budget's token price."""

    @staticmethod
    def _tokenizer_key(tokenizer: Any) -> Any:
        try:
            hash(tokenizer)
        except TypeError:
            return ("id", id(tokenizer))
        return tokenizer  # keeps the object alive, so the key cannot be reused by another object

    def _counter(self, tokenizer: Any) -> TokenCountFn:
        key = self._tokenizer_key(tokenizer)
        if key not in self._counters:
            self._counters[key] = resolve_tokenizer(tokenizer)
        return self._counters[key]

    def demo_tokens(self, indices: Sequence[int], *, tokenizer: Any = None, template: Any = None) -> np.ndarray:
        """Token count of each demo (as rendered by ``template``), cached per tokenizer and template.

        Examples
        --------
        >>> from promptkd import DemoPool
        >>> from promptkd.embeddings import HashingEmbedder
        >>> pool = DemoPool([{"input": "one two", "output": "x"}], embedder=HashingEmbedder(dim=8))
        >>> from promptkd.bounds import BoundEstimator
        >>> BoundEstimator().fit(pool).demo_tokens([0]).tolist()  # "Input: one two / Output: x"
        [5]
        """
        self._check_fitted()
        tmpl: PromptTemplate = as_template(template)
        count = self._counter(tokenizer)
        tkey = self._tokenizer_key(tokenizer)
        out = np.empty(len(indices), dtype=np.int64)
        for pos, i in enumerate(indices):
            key = (tkey, tmpl, int(i))
            if key not in self._token_cache:
                self._token_cache[key] = int(count(tmpl.render_demo(self.demos_[int(i)])))
            out[pos] = self._token_cache[key]
        return out
