"""Small helpers for running a causal LM on token-id prompts (torch is imported lazily).

Shared plumbing for code that scores text with a transformers causal LM: unpacking the
``lm`` argument, encoding, the pad id, left-padded batches with their position ids (right-padded
ones for the probes), and a forward pass that keeps only the last positions' logits when the
model supports it (and can continue from a KV cache). :class:`promptkd.rerank.LMReranker`,
:class:`promptkd.evaluation.ICLClassifier` and the attention probes run their LMs through them.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from promptkd.exceptions import InvalidTypeError

__all__ = [
    "cache_kwarg",
    "encode",
    "forward_last",
    "left_pad",
    "model_device",
    "pad_token_id",
    "right_pad",
    "unpack_lm",
]


def unpack_lm(lm: Any) -> tuple[Any, Any, str]:
    """``(model, tokenizer, name)`` from a LoadedLM-like object or a ``(model, tokenizer)`` pair.

    Examples
    --------
    >>> unpack_lm(("m", "t"))[1]
    't'
    >>> unpack_lm(3)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    promptkd.exceptions.InvalidTypeError: ...
    """
    if isinstance(lm, tuple) and len(lm) == 2:
        model, tokenizer = lm
        name = getattr(getattr(model, "config", None), "name_or_path", None) or type(model).__name__
        return model, tokenizer, str(name)
    if hasattr(lm, "model") and hasattr(lm, "tokenizer"):
        return lm.model, lm.tokenizer, str(getattr(lm, "name", type(lm.model).__name__))
    raise InvalidTypeError(
        "lm must be a LoadedLM from promptkd.probes.load_lm or a (model, tokenizer) pair of a transformers "
        f"causal LM; got {type(lm).__name__}."
    )


def encode(tokenizer: Any, text: str, *, special: bool) -> list[int]:
    """Token ids of ``text`` (``special``: with the tokenizer's special tokens, e.g. BOS).

    Examples
    --------
    >>> encode(lambda t, add_special_tokens: {"input_ids": [len(t)]}, "abc", special=False)
    [3]
    """
    enc = tokenizer(text, add_special_tokens=special)
    ids = enc["input_ids"] if isinstance(enc, dict) or hasattr(enc, "keys") else enc
    return [int(i) for i in ids]


def pad_token_id(tokenizer: Any) -> int:
    """The pad id: the tokenizer's pad, else EOS, else BOS, else 0 (padded positions are masked anyway).

    Examples
    --------
    >>> class Tok:
    ...     pad_token_id = None
    ...     eos_token_id = 2
    >>> pad_token_id(Tok())
    2
    """
    for attr in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, int):
            return value
    return 0


def model_device(model: Any) -> Any:
    """The torch device of the model's first parameter (``"cpu"`` when it has none).

    Examples
    --------
    >>> model_device(object())
    'cpu'
    """
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError, TypeError):
        return "cpu"


def left_pad(torch: Any, sequences: Sequence[Sequence[int]], pad: int, device: Any) -> tuple[Any, Any, Any]:
    """``(input_ids, attention_mask, position_ids)`` of left-padded sequences, on ``device``.

    Every sequence ends in the last column, so the last positions of all rows line up;
    positions count from 0 at each row's first real token.

    Examples
    --------
    >>> import torch
    >>> ids, mask, pos = left_pad(torch, [[5, 6, 7], [8]], 0, "cpu")
    >>> ids.tolist(), mask.tolist(), pos.tolist()
    ([[5, 6, 7], [0, 0, 8]], [[1, 1, 1], [0, 0, 1]], [[0, 1, 2], [0, 0, 0]])
    """
    n = len(sequences)
    width = max(len(s) for s in sequences)
    ids = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
        mask[i, width - len(seq) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def right_pad(torch: Any, sequences: Sequence[Sequence[int]], pad: int, device: Any) -> tuple[Any, Any]:
    """``(input_ids, attention_mask)`` of right-padded sequences, on ``device``.

    Every sequence starts in the first column, so each real token keeps the position and
    attention it has alone (the causal mask hides the padding after it); the probes read
    attention at those positions.

    Examples
    --------
    >>> import torch
    >>> ids, mask = right_pad(torch, [[5, 6, 7], [8]], 0, "cpu")
    >>> ids.tolist(), mask.tolist()
    ([[5, 6, 7], [8, 0, 0]], [[1, 1, 1], [1, 0, 0]])
    """
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
        mask[i, : len(seq)] = 1
    return ids.to(device), mask.to(device)


def forward_last(
    model: Any,
    input_ids: Any,
    attention_mask: Any,
    position_ids: Any,
    keep: int | None,
    *,
    use_cache: bool = False,
    past: Any = None,
    cache_arg: str = "past_key_values",
) -> Any:
    """Run the model once and return its output; ``keep`` asks for the logits of the last ``keep`` positions only.

    Models without a ``logits_to_keep`` argument return every position's logits; callers slice
    the last ``keep`` columns themselves, so the result is the same either way. ``use_cache``
    asks the model for its KV cache; ``past`` continues from one, passed as the forward
    argument ``cache_arg`` (see :func:`cache_kwarg`).
    """
    kwargs: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "use_cache": use_cache,
    }
    if past is not None:
        kwargs[cache_arg] = past
    if keep is not None:
        try:
            return model(**kwargs, logits_to_keep=keep)
        except TypeError:
            pass
    return model(**kwargs)


def cache_kwarg(model: Any) -> str:
    """Name of the forward argument that takes a KV cache (``cache`` in newer transformers).

    Examples
    --------
    >>> class Model:
    ...     def forward(self, input_ids, cache=None): ...
    >>> cache_kwarg(Model()), cache_kwarg(object())
    ('cache', 'past_key_values')
    """
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError, AttributeError):
        return "past_key_values"
    return "cache" if "cache" in params and "past_key_values" not in params else "past_key_values"
