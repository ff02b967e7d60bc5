"""Score in-context classification prompts with a causal LM.

:class:`ICLClassifier` renders demonstrations and a query with a
:class:`~promptkd.rendering.PromptTemplate`, runs the prompt once through the LM
and compares the log-probability of every label's full continuation.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptkd._lm import cache_kwarg, encode, forward_last, left_pad, model_device, pad_token_id, unpack_lm
from promptkd._optional import require
from promptkd._progress import default_show_progress_bar
from promptkd._validation import check_int
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.demo import Demo
from promptkd.rendering.template import PromptTemplate, as_template

__all__ = ["ICLClassifier", "label_continuation", "log_softmax"]

logger = logging.getLogger("promptkd")

Demos = Sequence[Demo] | Any  # a list of Demo or anything with a ``demos`` attribute (a Selection)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax of a float array along ``axis``.

    Examples
    --------
    >>> np.round(np.exp(log_softmax(np.array([0.0, 0.0]))), 3).tolist()
    [0.5, 0.5]
    """
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    z = x - m
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def label_continuation(template: PromptTemplate, label: str) -> str:
    """The text that follows the rendered query when the answer is ``label``.

    It is the part of the example pattern between the end of the query pattern
    and ``{output}`` (usually one space), followed by the label.

    Examples
    --------
    >>> label_continuation(PromptTemplate.from_string("Review: {input}\\nSentiment: {output}"), "positive")
    ' positive'
    """
    before = template.example.split("{output}", 1)[0]
    gap = before[len(template.query) :] if before.startswith(template.query) else " "
    return gap + label


def _as_demo_list(demos: Any, name: str = "demos") -> list[Demo]:
    if demos is None:
        return []
    if hasattr(demos, "demos") and not isinstance(demos, (list, tuple)):
        demos = demos.demos
    if isinstance(demos, Demo):
        raise InvalidTypeError(f"{name} must be a list of Demo objects (wrap a single demo in a list).")
    if isinstance(demos, (str, bytes)) or not isinstance(demos, Sequence):
        raise InvalidTypeError(f"{name} must be a list of Demo objects or a Selection, got {type(demos).__name__}.")
    out = []
    for i, d in enumerate(demos):
        if not isinstance(d, Demo):
            raise InvalidTypeError(f"{name}[{i}] must be a Demo, got {type(d).__name__}.")
        out.append(d)
    return out


def _resolve_lm(lm: Any) -> tuple[Any, Any, str]:
    """``(model, tokenizer, name)``; ``None`` loads the default model."""
    if lm is None:
        from promptkd.probes import load_lm

        lm = load_lm()
    return unpack_lm(lm)


class ICLClassifier:
    """Classify a query from in-context demonstrations with a causal LM.

    For each prompt the LM runs once; the score of a label is the sum of the
    log-probabilities of its continuation tokens (e.g. ``" positive"``).
    Single-token labels are read from the last position; multi-token labels
    reuse the prompt's key/value cache, so the shared prefix is never re-run.
    Prompts are batched with left padding and every scored prompt is cached,
    so an identical prompt is never scored twice.

    Parameters
    ----------
    lm
        A :class:`~promptkd.probes.LoadedLM`, a ``(model, tokenizer)`` pair of a
        transformers causal LM, or None to load the default model.
    template
        A :class:`~promptkd.rendering.PromptTemplate` or an example pattern
        such as ``"Review: {input}\\nSentiment: {output}"``.
    labels
        The label words (demo outputs) to choose from.
    calibrate
        Contextual calibration (Zhao et al., 2021): subtract the label scores
        of a content-free query (``content_free``, default ``"N/A"``) with the
        same demonstrations, then renormalise over labels.
    length_normalize
        Divide each label's log-probability by its number of tokens.
    batch_size
        Prompts per forward pass.
    content_free
        The content-free query used for calibration.
    cache_size
        Maximum number of prompts kept in the score cache (0 disables it).
    show_progress_bar
        Progress bar for long batches; default on when logging is at INFO.

    Examples
    --------
    Any object with the transformers call signature works; here a tiny stand-in
    (real use passes ``promptkd.probes.load_lm()``):

    >>> clf = ICLClassifier(lm=_toy_lm(), template="Review: {input}\\nSentiment: {output}",
    ...                     labels=["negative", "positive"])
    >>> clf.predict([Demo(input="great", output="positive")], "fine film") in {"negative", "positive"}
    True
    >>> clf.scores([], "fine film").shape
    (2,)
    """

    def __init__(
        self,
        lm: Any = None,
        template: PromptTemplate | str | None = None,
        labels: Sequence[str] | None = None,
        *,
        calibrate: bool = False,
        length_normalize: bool = False,
        batch_size: int = 8,
        content_free: str = "N/A",
        cache_size: int = 200_000,
        show_progress_bar: bool | None = None,
    ) -> None:
        if labels is None or isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) < 2:
            raise InvalidInputError(
                f"labels must be a list of at least two label words, got {labels!r}; pass e.g. labels=['negative', 'positive']."
            )
        labels = [str(lab) for lab in labels]
        if len(set(labels)) != len(labels):
            raise InvalidInputError(f"labels must be unique, got {labels!r}.")
        if not isinstance(content_free, str) or not content_free.strip():
            raise InvalidInputError("content_free must be a non-empty string such as 'N/A'.")
        self.template = as_template(template)
        self.labels = tuple(labels)
        self.calibrate = bool(calibrate)
        self.length_normalize = bool(length_normalize)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.cache_size = check_int(cache_size, "cache_size", minimum=0)
        self.content_free = content_free
        self.show_progress_bar = show_progress_bar
        self.model, self.tokenizer, self.lm_name = _resolve_lm(lm)
        self._label_ids = [self._encode(label_continuation(self.template, lab), special=False) for lab in self.labels]
        for lab, ids in zip(self.labels, self._label_ids, strict=True):
            if not ids:
                raise InvalidInputError(f"label {lab!r} tokenizes to nothing; use a non-empty label word.")
        self._label_len = np.array([len(ids) for ids in self._label_ids], dtype=np.float64)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_arg = cache_kwarg(self.model)
        self.n_forward_prompts = 0
        self.n_cache_hits = 0

    # ------------------------------------------------------------------ tokenisation / rendering
    def _encode(self, text: str, *, special: bool) -> list[int]:
        return encode(self.tokenizer, text, special=special)

    def render(self, demos: Demos, query: str) -> str:
        """The prompt text for ``demos`` and ``query`` (what the LM reads).

        Examples
        --------
        >>> clf = ICLClassifier(lm=_toy_lm(), template="Q: {input}\\nA: {output}", labels=["no", "yes"])
        >>> print(clf.render([Demo(input="1+1=2?", output="yes")], "2+2=5?"))
        Q: 1+1=2?
        A: yes
        <BLANKLINE>
        Q: 2+2=5?
        A:
        """
        return self.template.render(_as_demo_list(demos), query)

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` as the LM sees it (special tokens included)."""
        return len(self._encode(text, special=True))

    # ------------------------------------------------------------------ scoring core
    @property
    def device(self) -> Any:
        """The torch device of the model."""
        return model_device(self.model)

    def _forward(self, input_ids: Any, attention: Any, positions: Any, past: Any, keep_last: bool) -> Any:
        return forward_last(
            self.model,
            input_ids,
            attention,
            positions,
            1 if keep_last else None,
            use_cache=True,
            past=past,
            cache_arg=self._cache_arg,
        )

    def _score_batch(self, prompt_ids: list[list[int]]) -> np.ndarray:
        """Raw summed label log-probs (n_prompts, n_labels) for token-id prompts."""
        torch = require("torch", "probe")
        n = len(prompt_ids)
        ids, mask, positions = left_pad(torch, prompt_ids, pad_token_id(self.tokenizer), self.device)
        multi = [j for j, lab in enumerate(self._label_ids) if len(lab) > 1]
        out_scores = np.zeros((n, len(self.labels)), dtype=np.float64)
        with torch.inference_mode():
            out = self._forward(ids, mask, positions, None, keep_last=True)
            last = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
            first = torch.tensor([lab[0] for lab in self._label_ids], device=last.device)
            out_scores += last[:, first].double().cpu().numpy()
            if multi:
                past = getattr(out, "cache", None)
                if past is None:
                    past = getattr(out, "past_key_values", None)
                out_scores += self._continue_multi(torch, past, mask, positions, multi, n)
        return out_scores

    def _continue_multi(self, torch: Any, past: Any, mask: Any, positions: Any, multi: list[int], n: int) -> np.ndarray:
        """Log-probs of tokens 2.. of multi-token labels, reusing the prompt's KV cache."""
        m = len(multi)
        tails = [self._label_ids[j] for j in multi]
        width = max(len(t) for t in tails) - 1
        inp = torch.full((n * m, width), pad_token_id(self.tokenizer), dtype=torch.long)
        tmask = torch.zeros((n * m, width), dtype=torch.long)
        for b in range(n):
            for r, t in enumerate(tails):
                feed = t[:-1]
                inp[b * m + r, : len(feed)] = torch.tensor(feed, dtype=torch.long)
                tmask[b * m + r, : len(feed)] = 1
        device = mask.device
        inp, tmask = inp.to(device), tmask.to(device)
        rep_mask = mask.repeat_interleave(m, dim=0)
        full_mask = torch.cat([rep_mask, tmask], dim=1)
        start = positions[:, -1:].repeat_interleave(m, dim=0) + 1
        pos = start + torch.arange(width, device=device).unsqueeze(0)
        if hasattr(past, "batch_repeat_interleave"):
            past.batch_repeat_interleave(m)
        else:  # legacy (nested tuple) caches
            past = _repeat_nested(past, m)
        out = self._forward(inp, full_mask, pos, past, keep_last=False)
        logp = torch.log_softmax(out.logits.float(), dim=-1)
        res = np.zeros((n, len(self.labels)), dtype=np.float64)
        for r, (j, t) in enumerate(zip(multi, tails, strict=True)):
            targets = torch.tensor(t[1:], device=logp.device)
            rows = torch.arange(r, n * m, m, device=logp.device)
            lp = logp[rows][:, : len(t) - 1, :].gather(-1, targets.view(1, -1, 1).expand(n, -1, 1)).squeeze(-1)
            res[:, j] = lp.sum(-1).double().cpu().numpy()
        return res

    def raw_scores_texts(self, prompts: Sequence[str]) -> np.ndarray:
        """Summed label log-probabilities (n_prompts, n_labels) for rendered prompts.

        Uses and fills the prompt cache; uncached prompts are scored in batches
        of similar length.
        """
        prompts = list(prompts)
        result = np.zeros((len(prompts), len(self.labels)), dtype=np.float64)
        todo: dict[str, list[int]] = {}
        for i, p in enumerate(prompts):
            hit = self._cache.get(p)
            if hit is not None:
                self._cache.move_to_end(p)
                result[i] = hit
                self.n_cache_hits += 1
            else:
                todo.setdefault(p, []).append(i)
        if todo:
            texts = list(todo)
            encoded = [self._encode(t, special=True) for t in texts]
            order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
            batches = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]
            bar = None
            if default_show_progress_bar(self.show_progress_bar) and len(batches) > 1:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(texts), desc="scoring prompts", unit="prompt")
            for batch in batches:
                scores = self._score_batch([encoded[i] for i in batch])
                self.n_forward_prompts += len(batch)
                for row, i in zip(scores, batch, strict=True):
                    for pos in todo[texts[i]]:
                        result[pos] = row
                    if self.cache_size:
                        self._cache[texts[i]] = row
                        if len(self._cache) > self.cache_size:
                            self._cache.popitem(last=False)
                if bar is not None:
                    bar.update(len(batch))
            if bar is not None:
                bar.close()
        return result

    def _finish(self, raw: np.ndarray, cf_raw: np.ndarray | None) -> np.ndarray:
        scores = raw / self._label_len if self.length_normalize else raw
        if cf_raw is None:
            return scores
        cf = cf_raw / self._label_len if self.length_normalize else cf_raw
        return log_softmax(log_softmax(scores) - log_softmax(cf))

    # ------------------------------------------------------------------ public API
    def scores_batch(self, items: Sequence[tuple[Demos, str]]) -> np.ndarray:
        """Per-label scores, shape (n_items, n_labels), columns in :attr:`labels` order.

        Without calibration a score is the label's continuation log-probability
        (summed over its tokens, or averaged with ``length_normalize``). With
        calibration it is ``log_softmax(log_softmax(s) - log_softmax(s_cf))``
        where ``s_cf`` are the scores of the content-free query.
        """
        pairs = self._check_items(items)
        prompts = [self.template.render(d, q) for d, q in pairs]
        raw = self.raw_scores_texts(prompts)
        cf = None
        if self.calibrate:
            cf = self.raw_scores_texts([self.template.render(d, self.content_free) for d, _ in pairs])
        return self._finish(raw, cf)

    def scores(self, demos: Demos, query: str) -> np.ndarray:
        """Per-label scores (n_labels,) for one prompt; see :meth:`scores_batch`."""
        return self.scores_batch([(demos, query)])[0]

    def predict_batch(self, items: Sequence[tuple[Demos, str]]) -> list[str]:
        """Predicted label for each ``(demos, query)`` pair."""
        s = self.scores_batch(items)
        return [self.labels[int(j)] for j in np.argmax(s, axis=1)]

    def predict(self, demos: Demos, query: str) -> str:
        """Predicted label for ``query`` given ``demos`` (in prompt order)."""
        return self.predict_batch([(demos, query)])[0]

    def _check_items(self, items: Any) -> list[tuple[list[Demo], str]]:
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise InvalidTypeError("items must be a list of (demos, query) pairs.")
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise InvalidTypeError(f"items[{i}] must be a (demos, query) pair, got {type(item).__name__}.")
            demos, query = item
            if not isinstance(query, str):
                raise InvalidTypeError(f"items[{i}] query must be a string, got {type(query).__name__}.")
            out.append((_as_demo_list(demos, f"items[{i}] demos"), query))
        return out

    def clear_cache(self) -> None:
        """Forget every cached prompt score."""
        self._cache.clear()

    def __repr__(self) -> str:
        return (
            f"ICLClassifier(lm={self.lm_name!r}, labels={list(self.labels)!r}, calibrate={self.calibrate}, "
            f"length_normalize={self.length_normalize})"
        )


def _toy_lm() -> tuple[Any, Any]:
    """A tiny deterministic causal LM and character tokenizer for doctests (no downloads)."""
    torch = require("torch", "probe")

    class _Tok:
        pad_token_id = 0
        eos_token_id = 0

        def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
            ids = [1 + (ord(c) % 96) for c in text]
            return {"input_ids": ([97] if add_special_tokens else []) + ids}

    class _Out:
        def __init__(self, logits: Any, past: Any) -> None:
            self.logits = logits
            self.past_key_values = past

    class _Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            gen = torch.Generator().manual_seed(0)
            self.emb = torch.nn.Parameter(torch.randn(100, 8, generator=gen))
            self.out = torch.nn.Parameter(torch.randn(8, 100, generator=gen))

        def forward(self, input_ids: Any, attention_mask: Any, past_key_values: Any = None, **_: Any) -> _Out:
            h = self.emb[input_ids] * attention_mask[:, -input_ids.shape[1] :, None]
            prev = past_key_values[0] if past_key_values is not None else torch.zeros_like(h[:, :1]).sum(1)
            ctx = prev[:, None, :] + h.cumsum(1)
            return _Out(torch.tanh(ctx) @ self.out, (ctx[:, -1],))

    return _Model(), _Tok()


def _repeat_nested(obj: Any, m: int) -> Any:
    if isinstance(obj, (tuple, list)):
        return type(obj)(_repeat_nested(o, m) for o in obj)
    return obj.repeat_interleave(m, dim=0)
