"""Attention probes: what a real transformer's attention does with each demonstration."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptkd._lm import pad_token_id, right_pad
from promptkd._validation import check_int
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.demo import Demo
from promptkd.probes._model import Capture, ModelSpec, eager_attention, head_to_kv, model_spec, resolve_layers
from promptkd.probes._text import EncodedPrompt, as_demos, encode_prompt
from promptkd.probes.loading import LoadedLM, load_lm
from promptkd.probes.report import ProbeReport
from promptkd.rendering.template import PromptTemplate

logger = logging.getLogger(__name__)

__all__ = ["AttentionProbe", "answer_logprobs", "run_capture"]


def run_capture(
    lm: LoadedLM,
    spec: ModelSpec,
    batch: Sequence[Sequence[int]],
    readouts: Sequence[int],
    layers: Sequence[int],
    *,
    keys: bool = False,
    values: bool = True,
    logits: bool = False,
) -> tuple[Capture, Any]:
    """One forward pass over right-padded ``batch`` with hooks on ``layers``.

    Right padding keeps every real token's positions and attention unchanged (the
    causal mask hides the padding from earlier tokens). Returns the capture and, when
    ``logits=True``, the next-token logits at each readout position, (B, V).
    """
    import torch

    ids, mask = right_pad(torch, batch, pad_token_id(lm.tokenizer), lm.device)
    cap = Capture(spec, layers, keys=keys, values=values)
    cap.readout = torch.as_tensor(list(readouts), dtype=torch.long, device=lm.device)
    out_logits = None
    with torch.inference_mode(), eager_attention(lm.model), cap.attach():
        if logits:
            hidden = lm.model.get_decoder()(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            rows = hidden[torch.arange(len(batch), device=hidden.device), cap.readout]
            out_logits = _project(lm.model, rows)
        else:
            lm.model.get_decoder()(input_ids=ids, attention_mask=mask, use_cache=False)
    return cap, out_logits


def _project(model: Any, hidden: Any) -> Any:
    """Apply the LM head (and Gemma-style final logit soft-capping) to selected hidden states."""
    import torch

    logits = model.get_output_embeddings()(hidden).float()
    cap = getattr(getattr(model.config, "text_config", None) or model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def answer_logprobs(
    lm: LoadedLM, prompts: Sequence[Sequence[int]], answer: Sequence[int], *, batch_size: int = 8
) -> np.ndarray:
    """Sum of log p(answer tokens) after each tokenised prompt (the answer is appended as token ids).

    Only the positions that predict answer tokens go through the LM head.
    """
    import torch

    answer = list(answer)
    if not answer:
        raise InvalidInputError("answer is empty; pass a non-empty answer string.")
    out = np.zeros(len(prompts))
    decoder = lm.model.get_decoder()
    target = torch.as_tensor(answer, device=lm.device)
    for start in range(0, len(prompts), batch_size):
        chunk = [list(p) + answer for p in prompts[start : start + batch_size]]
        ids, mask = right_pad(torch, chunk, pad_token_id(lm.tokenizer), lm.device)
        with torch.inference_mode(), eager_attention(lm.model):
            hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            for b, seq in enumerate(chunk):
                first = len(seq) - len(answer) - 1  # position predicting the first answer token
                logp = torch.log_softmax(_project(lm.model, hidden[b, first : first + len(answer)]), dim=-1)
                out[start + b] = float(logp[torch.arange(len(answer)), target].sum())
    return out


def layer_terms(rows: Any, values: Any, w_o: Any, membership: Any, kv_index: Any) -> dict[str, Any]:
    """Per-head quantities of one layer for one prompt (all torch, on the model device).

    rows: (H, T) attention of the readout; values: (T, G, hd); w_o: (D, H*hd);
    membership: (m, T) 0/1 demo indicator; kv_index: (H,) KV head of each query head.
    """
    import torch

    n_heads = rows.shape[0]
    vh = values[:, kv_index, :]  # (T, H, hd): GQA expansion, as repeat_kv does
    wo = w_o.float().view(w_o.shape[0], n_heads, -1)  # (D, H, hd)
    mass = rows @ membership.T  # (H, m)
    z_demo = torch.einsum("ht,mt,thd->hmd", rows, membership, vh)  # (H, m, hd)
    r_demo = torch.einsum("hme,dhe->hmd", z_demo, wo)  # (H, m, D)
    z_all = torch.einsum("ht,thd->hd", rows, vh)  # (H, hd)
    r_all = torch.einsum("he,dhe->hd", z_all, wo)  # (H, D)
    r_demo_sum = r_demo.sum(1)  # (H, D)
    tiny = 1e-12
    return {
        "mass": mass,
        "contribution_norm": r_demo.norm(dim=-1),
        "layer_contribution_norm": r_demo.sum(0).norm(dim=-1),
        "strength": r_demo_sum.norm(dim=-1) / r_all.norm(dim=-1).clamp_min(tiny),
        "layer_strength": r_demo_sum.sum(0).norm() / r_all.sum(0).norm().clamp_min(tiny),
        "z_demo": z_demo.sum(1),  # (H, hd): W_0 phi(W^Q x) per head, before W_O
        "z_all": z_all,
    }


class AttentionProbe:
    """Read, at the readout token, how much each demonstration is attended to and what it writes.

    One forward pass with eager attention gives every probed layer's attention row at the
    readout token and the value vectors (forward hooks; nothing else is stored), from
    which the per-head demo mass, contribution norms and distillation strength follow
    exactly. Leave-one-out influence on an answer's log-probability is computed on request
    (one extra batched pass per ``batch_size`` demos).

    Parameters
    ----------
    lm
        A :class:`~promptkd.probes.LoadedLM`, a model name/path for :func:`~promptkd.probes.load_lm`,
        or None for the default SmolLM2-135M-Instruct.
    layers
        ``"all"``, an int, a slice/range or a list of layer indices (negative from the end).
    readout
        ``"last"`` (the last prompt token, which predicts the answer) or a token index.
    device
        Device for :func:`load_lm` when ``lm`` is not already loaded.

    Examples
    --------
    >>> AttentionProbe.__name__
    'AttentionProbe'

    With the real model (not run here, it loads SmolLM2)::

        probe = AttentionProbe(layers=[0, 15, 29])
        report = probe.probe(selection, "a gripping thriller", influence=True)
        report.per_demo()["demo_mass"]
    """

    def __init__(
        self,
        lm: LoadedLM | str | None = None,
        layers: Any = "all",
        readout: str | int = "last",
        *,
        device: str | None = None,
    ) -> None:
        self.lm = lm if isinstance(lm, LoadedLM) else load_lm(lm, device=device)
        self.spec = model_spec(self.lm.model)
        self.layers = resolve_layers(layers, self.spec.n_layers)
        if not (readout == "last" or (isinstance(readout, int) and not isinstance(readout, bool))):
            raise InvalidInputError(f"readout must be 'last' or a token index (int), got {readout!r}.")
        self.readout = readout
        self.head_to_kv = head_to_kv(self.spec.n_heads, self.spec.n_kv_heads)

    def __repr__(self) -> str:
        return f"AttentionProbe(lm={self.lm.name!r}, layers={len(self.layers)} layers, readout={self.readout!r})"

    def encode(self, demos: Sequence[Demo], query: str, template: PromptTemplate | str | None = None) -> EncodedPrompt:
        """Render the prompt and map each demo's characters to tokens (exact offsets)."""
        return encode_prompt(self.lm.tokenizer, demos, query, template)

    def _readout_index(self, n_tokens: int) -> int:
        if self.readout == "last":
            return n_tokens - 1
        idx = int(self.readout)
        if not -n_tokens <= idx < n_tokens:
            raise InvalidInputError(f"readout={idx} is outside the prompt's {n_tokens} tokens.")
        return idx % n_tokens

    def probe(
        self,
        selection_or_demos: Any,
        query: str | None = None,
        template: PromptTemplate | str | None = None,
        influence: bool | str = False,
        *,
        answer: str | None = None,
        batch_size: int = 8,
    ) -> ProbeReport:
        """Probe one prompt built from demonstrations and a query.

        Parameters
        ----------
        selection_or_demos
            A :class:`~promptkd.selection.Selection` (its demos, in prompt order) or a list of Demo.
        query
            The query text; defaults to the Selection's query.
        template
            Same meaning as in ``Selection.render`` (None: the default template).
        influence
            False, True/``"blank"`` (replace demo i's rendered text by an empty string, keeping the
            separators, so everything else is byte-identical) or ``"remove"`` (re-render without demo i).
        answer
            Text scored for the influence, appended verbatim to the prompt (mind the leading space,
            e.g. ``" positive"``). Default: the model's most likely next token at the readout.
        batch_size
            Prompts per forward pass for the leave-one-out passes.

        Returns
        -------
        ProbeReport
        """
        import torch

        demos, query = as_demos(selection_or_demos, query)
        check_int(batch_size, "batch_size", minimum=1)
        if influence not in (False, True, "blank", "remove"):
            raise InvalidInputError(f"influence must be False, True, 'blank' or 'remove', got {influence!r}.")
        enc = self.encode(demos, query, template)
        n_tokens = len(enc.input_ids)
        t = self._readout_index(n_tokens)
        want_logits = bool(influence) and answer is None
        cap, logits = run_capture(self.lm, self.spec, [enc.input_ids], [t], self.layers, logits=want_logits)

        dev = self.lm.device
        m = len(demos)
        membership = torch.zeros((m, n_tokens), device=dev)
        for i, (a, b) in enumerate(enc.demo_token_spans):
            membership[i, a:b] = 1.0
        kv_index = torch.as_tensor(self.head_to_kv, device=dev)
        keys = ("mass", "contribution_norm", "layer_contribution_norm", "strength", "layer_strength")
        acc: dict[str, list[Any]] = {k: [] for k in keys}
        sink, rest = [], []
        outside = (membership.sum(0) == 0).float()  # tokens in no demo: query block, prefix, separators
        with torch.inference_mode():
            for layer in self.layers:
                rows = cap.rows[layer][0]
                terms = layer_terms(
                    rows, cap.values[layer][0], self.spec.attention[layer].o_proj.weight, membership, kv_index
                )
                for k in keys:
                    acc[k].append(terms[k])
                sink.append(rows[:, 0])
                rest.append(rows @ outside)
        stacked = {k: torch.stack(v).cpu().double().numpy() for k, v in acc.items()}
        demo_mass = stacked["mass"]
        sink_demo = next((i for i, (a, b) in enumerate(enc.demo_token_spans) if a <= 0 < b), -1)

        infl = None
        answer_text = answer
        answer_lp = None
        if influence:
            infl, answer_text, answer_lp = self._influence(
                enc, demos, query, template, influence, answer, logits, batch_size
            )

        return ProbeReport(
            model=self.lm.name,
            text=enc.rendered.text,
            demos=demos,
            layers=self.layers,
            n_heads=self.spec.n_heads,
            n_kv_heads=self.spec.n_kv_heads,
            head_to_kv=tuple(int(x) for x in self.head_to_kv),
            demo_char_spans=enc.rendered.demo_spans,
            demo_token_spans=enc.demo_token_spans,
            query_token_span=enc.query_token_span,
            readout=t,
            n_tokens=n_tokens,
            spans_exact=enc.exact,
            demo_mass=demo_mass,
            query_mass=torch.stack(rest).cpu().double().numpy(),
            sink_mass=torch.stack(sink).cpu().double().numpy(),
            contribution_norm=stacked["contribution_norm"],
            layer_contribution_norm=stacked["layer_contribution_norm"],
            distillation_strength=stacked["strength"],
            layer_distillation_strength=stacked["layer_strength"],
            influence=infl,
            answer=answer_text,
            answer_logprob=answer_lp,
            sink_demo=sink_demo,
        )

    def demo_masses(
        self,
        prompts: Sequence[tuple[Sequence[Demo], str]],
        template: PromptTemplate | str | None = None,
        *,
        exclude_sink: bool = True,
        batch_size: int = 8,
    ) -> list[np.ndarray]:
        """Per-demo attention mass for many prompts, batched: one (L, H, m) array per prompt.

        Cheaper than :meth:`probe` (no values, no output projection); used by
        :class:`~promptkd.probes.ProbeGuidedOrder` to compare candidate orders.

        Parameters
        ----------
        prompts
            ``(demos, query)`` pairs.
        template
            As in :meth:`probe`.
        exclude_sink
            Do not count the attention sink (token 0) in the demo that holds it.
        batch_size
            Prompts per forward pass.
        """
        import torch

        check_int(batch_size, "batch_size", minimum=1)
        encoded = [self.encode(tuple(d), q, template) for d, q in prompts]
        out: list[np.ndarray] = []
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start : start + batch_size]
            readouts = [self._readout_index(len(e.input_ids)) for e in chunk]
            cap, _ = run_capture(self.lm, self.spec, [e.input_ids for e in chunk], readouts, self.layers, values=False)
            rows = torch.stack([cap.rows[layer] for layer in self.layers], 1)  # (B, L, H, T)
            for b, enc in enumerate(chunk):
                member = torch.zeros((len(enc.demo_token_spans), rows.shape[-1]), device=rows.device)
                for i, (a, e) in enumerate(enc.demo_token_spans):
                    member[i, a:e] = 1.0
                if exclude_sink:
                    member[:, 0] = 0.0
                out.append((rows[b] @ member.T).cpu().double().numpy())
        return out

    def _influence(
        self,
        enc: EncodedPrompt,
        demos: tuple[Demo, ...],
        query: str,
        template: Any,
        mode: bool | str,
        answer: str | None,
        logits: Any,
        batch_size: int,
    ) -> tuple[np.ndarray, str, float]:
        tok = self.lm.tokenizer
        if enc.query_token_span[1] != len(enc.input_ids) and self.readout != "last":
            logger.debug("influence scores the answer after the whole prompt, not after readout=%s", self.readout)
        if answer is None:
            answer_ids = [int(logits[0].argmax())]
            answer = tok.decode(answer_ids)
        else:
            if not isinstance(answer, str) or not answer:
                raise InvalidTypeError(f"answer must be a non-empty string, got {answer!r}.")
            answer_ids = list(tok(answer, add_special_tokens=False)["input_ids"])
        text = enc.rendered.text
        variants: list[list[int]] = [list(enc.input_ids)]
        for i in range(len(demos)):
            if mode == "remove":
                ablated = self.encode(demos[:i] + demos[i + 1 :], query, template).input_ids
            else:
                s, e = enc.rendered.demo_spans[i]
                ablated = tok(text[:s] + text[e:], add_special_tokens=True)["input_ids"]
            variants.append(list(ablated))
        lps = answer_logprobs(self.lm, variants, answer_ids, batch_size=batch_size)
        return lps[0] - lps[1:], answer, float(lps[0])
