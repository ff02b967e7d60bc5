"""ConE scores: how well the LM predicts the query after each single demonstration.

ConE (Peng et al., ACL 2024, "Revisiting Demonstration Selection Strategies in In-Context
Learning") prefers demonstrations that lower the LM's conditional entropy of the test input,
estimated by the cross-entropy of the input's tokens given the demonstration. Here the score
of a demo is the mean log-probability per token of the query text, read in the prompt that
``template`` renders with that one demo before the query, so the LM reads the same text the
classifier will. A higher score is a lower cross-entropy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptkd._lm import encode, forward_last, left_pad, model_device, pad_token_id, unpack_lm
from promptkd._optional import require
from promptkd._validation import check_int
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.demo import Demo
from promptkd.rendering.template import PromptTemplate, as_template

__all__ = ["QueryScores", "query_logprobs", "split_prompt"]

# rows of logits turned into log-probabilities at once (bounds the float32 copy for large vocabularies)
_SOFTMAX_ROWS = 8


def split_prompt(template: PromptTemplate, demo: Demo, query: str) -> tuple[str, str]:
    """``(context, scored)``: the one-demo prompt up to the query text, and the query text itself.

    ``context + scored`` is the prompt ``template`` renders for ``[demo]`` and ``query``, cut
    just after the query text (the answer cue that follows is not scored). Spaces between the
    query pattern and the query text go with the scored part, as a label's leading space does
    in :func:`promptkd.evaluation.label_continuation`, so the tokens match those of the full prompt.

    Examples
    --------
    >>> t = PromptTemplate.from_string("Review: {input}\\nSentiment: {output}")
    >>> split_prompt(t, Demo(input="loved it", output="positive"), "dull")
    ('Review: loved it\\nSentiment: positive\\n\\nReview:', ' dull')
    """
    rendered = template.render_with_spans([demo], query)
    q_start, _ = rendered.query_span
    start = q_start + len(template.query.split("{input}", 1)[0])
    end = start + len(query)
    while start > q_start and rendered.text[start - 1] == " ":
        start -= 1
    return rendered.text[:start], rendered.text[start:end]


@dataclass(frozen=True)
class QueryScores:
    """What :func:`query_logprobs` measured for one query.

    Attributes
    ----------
    scores
        (n_demos,) mean log-probability per query token after each demo (higher: the demo
        makes the query more predictable; minus the ConE cross-entropy).
    passes
        Sequences the LM ran (one per demo).
    forward_calls
        Forward calls (batches) those sequences took.
    tokens
        Real (unpadded) tokens the LM read.
    query_tokens
        Tokens of the scored query text.
    """

    scores: np.ndarray
    passes: int
    forward_calls: int
    tokens: int
    query_tokens: int


def query_logprobs(
    lm: Any,
    demos: Sequence[Demo],
    query: str,
    template: PromptTemplate | str | None = None,
    *,
    batch_size: int | None = None,
) -> QueryScores:
    """Score each demo by the mean log-probability of ``query``'s tokens in the one-demo prompt.

    The demos' prompts run through the LM together (left-padded, without gradients, on the
    model's device and in the model's dtype), ``batch_size`` sequences per forward call
    (None: all in one call). Only the logits of the query's positions are kept when the model
    supports ``logits_to_keep``.

    Parameters
    ----------
    lm
        A :class:`~promptkd.probes.LoadedLM` or a ``(model, tokenizer)`` pair of a causal LM.
    demos
        The candidate demonstrations.
    query
        The query text, as it fills ``{input}`` of the template's query pattern.
    template
        A :class:`~promptkd.rendering.PromptTemplate` or example pattern (default
        ``"Input: {input}\\nOutput: {output}"``); use the one the classifier uses.
    batch_size
        Sequences per forward call; None runs every demo in one call.

    Returns
    -------
    QueryScores

    Examples
    --------
    A tiny stand-in LM that predicts words it has already read (real use passes
    ``promptkd.probes.load_lm("smollm2")``):

    >>> from promptkd.rerank._toy import toy_lm
    >>> demos = [Demo(input="the plot was dull", output="neg"), Demo(input="stocks rose", output="biz")]
    >>> out = query_logprobs(toy_lm(), demos, "a dull plot", "Review: {input}\\nSentiment: {output}")
    >>> bool(out.scores[0] > out.scores[1]), out.passes, out.forward_calls
    (True, 2, 1)
    """
    torch = require("torch", "probe", purpose="LM reranking")
    model, tokenizer, _ = unpack_lm(lm)
    tmpl = as_template(template)
    if not isinstance(query, str):
        raise InvalidTypeError(f"query must be a string, got {type(query).__name__}.")
    if isinstance(demos, (str, Demo)) or not isinstance(demos, Sequence):
        raise InvalidTypeError(f"demos must be a list of Demo objects, got {type(demos).__name__}.")
    for i, d in enumerate(demos):
        if not isinstance(d, Demo):
            raise InvalidTypeError(f"demos[{i}] must be a Demo, got {type(d).__name__}.")
    size = len(demos) if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
    if not demos:
        return QueryScores(np.zeros(0), 0, 0, 0, 0)
    parts = [split_prompt(tmpl, d, query) for d in demos]
    scored = encode(tokenizer, parts[0][1], special=False)
    if not scored:
        raise InvalidInputError(f"the query {query!r} tokenizes to nothing, so there is nothing to score.")
    contexts = [encode(tokenizer, ctx, special=True) for ctx, _ in parts]
    if min(len(c) for c in contexts) == 0:
        raise InvalidInputError(
            "a rendered demonstration tokenizes to nothing; the query's first token has no context."
        )
    n_q = len(scored)
    pad = pad_token_id(tokenizer)
    device = model_device(model)
    out = np.zeros(len(demos), dtype=np.float64)
    calls = 0
    with torch.inference_mode():
        targets = torch.tensor(scored, dtype=torch.long, device=device)
        for s in range(0, len(demos), size):
            ids, mask, positions = left_pad(torch, [c + scored for c in contexts[s : s + size]], pad, device)
            logits = forward_last(model, ids, mask, positions, keep=n_q + 1).logits
            calls += 1
            # position t predicts token t + 1: the n_q positions before the last predict the query's tokens
            logits = logits[:, -(n_q + 1) : -1, :]
            for r in range(0, logits.shape[0], _SOFTMAX_ROWS):
                block = logits[r : r + _SOFTMAX_ROWS].float()
                picked = block.gather(-1, targets.view(1, -1, 1).expand(block.shape[0], -1, 1)).squeeze(-1)
                logp = picked - torch.logsumexp(block, dim=-1)
                out[s + r : s + r + block.shape[0]] = logp.mean(-1).double().cpu().numpy()
    tokens = sum(len(c) for c in contexts) + n_q * len(demos)
    return QueryScores(out, len(demos), calls, tokens, n_q)
