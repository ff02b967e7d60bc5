"""Counting the tokens of rendered demonstrations, for ``max_tokens`` budgets."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError, ModelLoadError

__all__ = ["OFFLINE_TOKENIZERS", "TokenCounter", "approx_tokens", "as_token_counter"]

logger = logging.getLogger("promptkd")


class TokenCounter:
    """Count tokens of texts with a tokenizer given in one of several forms.

    Parameters
    ----------
    tokenizer
        * an offline name: ``"smollm2"`` or ``"gemma-3-270m"`` (read from the
          installed model packages), ``"minilm"`` (the default embedder's) or
          ``"chars/4"`` (one token per 4 characters, no tokenizer at all);
        * a local folder with tokenizer files, or a hub name (read from the
          local Hugging Face cache; downloaded only when the hub is reachable
          and ``HF_HUB_OFFLINE`` is unset);
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


OFFLINE_TOKENIZERS = ("smollm2", "gemma-3-270m", "minilm", "chars/4")
_NAMED_HELP = (
    "offline tokenizers: 'smollm2' and 'gemma-3-270m' (from their installed packages), 'minilm' (the default "
    "embedder's), 'chars/4' (an approximation: one token per 4 characters)"
)


def approx_tokens(text: str) -> int:
    """Approximate token count, one token per 4 characters (rounded up); no tokenizer needed.

    English text averages about 4 characters per byte-pair token, so this is a fair estimate for
    budgets when no tokenizer of the target LM is at hand.

    Examples
    --------
    >>> approx_tokens("twelve chars"), approx_tokens("")
    (3, 0)
    """
    return -(-len(text) // 4)


def _load_tokenizer(name: str) -> Any:
    """A tokenizer by name: an offline one of :data:`OFFLINE_TOKENIZERS`, a local folder, or a hub name.

    Only a hub name can touch the network: it is read from the local Hugging Face cache first,
    and downloaded only when the hub is reachable and ``HF_HUB_OFFLINE`` is not set; otherwise
    the error comes at once, naming the offline choices.
    """
    lowered = name.strip().lower()
    if lowered in ("chars/4", "approx"):
        return approx_tokens
    try:
        from transformers import AutoTokenizer
    except ImportError as err:  # pragma: no cover - transformers is a core dependency
        raise ModelLoadError("loading a tokenizer by name needs transformers; pip install transformers.") from err
    if lowered in ("minilm", "all-minilm-l6-v2"):
        from promptkd.embeddings.sentence_transformers import default_model_path

        return AutoTokenizer.from_pretrained(str(default_model_path()), local_files_only=True)
    if lowered in ("smollm2", "smollm2-135m", "smollm2-135m-instruct", "gemma-3-270m", "gemma3-270m", "gemma"):
        from promptkd._packaged import load_packaged_tokenizer

        return load_packaged_tokenizer("gemma-3-270m" if lowered == "gemma" else lowered)
    if os.path.isdir(name):
        try:
            return AutoTokenizer.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError) as err:
            raise ModelLoadError(
                f"could not load a tokenizer from the folder {name!r} ({err}); it needs tokenizer files "
                f"(tokenizer.json or tokenizer_config.json). Or use one of the {_NAMED_HELP}."
            ) from err
    try:  # a hub name: the local Hugging Face cache first, never the network here
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError):
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not _hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub cannot be reached"
        raise ModelLoadError(
            f"could not load the tokenizer {name!r}: it is not a local folder, not in the local cache, and {why}; "
            f"use one of the {_NAMED_HELP}, a local folder with tokenizer files, or a callable text -> int."
        )
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"could not load the tokenizer {name!r} ({err}); use one of the {_NAMED_HELP}.") from err


def _hub_reachable(timeout: float = 2.0) -> bool:
    """One quick TCP connection to the hub, so that an unreachable hub fails in seconds, not after retries."""
    import socket

    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
    except OSError:
        return False
    return True


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
