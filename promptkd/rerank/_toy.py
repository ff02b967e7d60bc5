"""A tiny deterministic "copy" LM and word tokenizer for doctests and unit tests (no downloads).

The model predicts the words it has already read: the logit of a token is ``strength`` times
the number of times that token occurred earlier in the sequence (padding excluded). A query is
therefore more likely after a demonstration that shares its words, which is the behaviour the
reranker's tests check, with numbers that can be worked out by hand.
"""

from __future__ import annotations

import zlib
from typing import Any

from promptkd._optional import require

__all__ = ["toy_lm"]

VOCAB = 512
PAD, BOS = 0, 1


class ToyTokenizer:
    """Whitespace tokenizer: each word maps to a stable id in ``[2, VOCAB)``; BOS is 1, padding 0."""

    pad_token_id = PAD
    eos_token_id = PAD
    bos_token_id = BOS

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = [2 + zlib.crc32(word.encode("utf-8")) % (VOCAB - 2) for word in text.split()]
        return {"input_ids": ([BOS] if add_special_tokens else []) + ids}


def toy_lm(strength: float = 3.0) -> tuple[Any, ToyTokenizer]:
    """``(model, tokenizer)``: the copy LM described in the module docstring.

    ``model.n_calls`` and ``model.n_sequences`` count forward calls and the sequences they ran.

    Examples
    --------
    >>> model, tok = toy_lm()
    >>> tok("a b", add_special_tokens=False)["input_ids"] == tok("a b c", add_special_tokens=False)["input_ids"][:2]
    True
    """
    torch = require("torch", "probe")

    class _Out:
        def __init__(self, logits: Any) -> None:
            self.logits = logits

    class CopyLM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(float(strength)), requires_grad=False)
            self.n_calls = 0
            self.n_sequences = 0

        def forward(self, input_ids: Any, attention_mask: Any = None, **_: Any) -> _Out:
            self.n_calls += 1
            self.n_sequences += int(input_ids.shape[0])
            seen = torch.nn.functional.one_hot(input_ids, VOCAB).float()
            if attention_mask is not None:
                seen = seen * attention_mask[..., None].float()
            return _Out(self.scale * seen.cumsum(1))

    return CopyLM().train(False), ToyTokenizer()  # inference mode (what .eval() does)
