"""Per-item scores of ICL result rows: proper scores of the LM's label distribution and demo diagnostics.

Accuracy only says whether the arg-max label was right. The rows also keep the
LM's log-probability of every label, so each item gets two bounded proper
scores of the label distribution renormalised over the label set:

- the Brier score ``sum_c (p_c - [c = gold])^2`` (0 is perfect, 2 the worst);
- the log-loss ``-log p_gold`` (in nats; clipped at ``-log 1e-6``).

A proper score is maximised in expectation only by the true distribution, so a
selector cannot improve it by making the LM confidently repeat the neighbours'
majority label. (A raw log-probability *margin* has no such guarantee.)

Two diagnostics read the demonstrations in prompt order:

- ``copies_last``: the prediction equals the label of the last demonstration
  (small LMs do this often; a high rate with low accuracy means recency bias);
- ``gold_precision``: the fraction of the demonstrations whose label is the
  item's gold label (what retrieval alone contributes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError

__all__ = ["LOGLOSS_CAP", "item_metrics", "with_item_metrics"]

LOGLOSS_CAP = float(-np.log(1e-6))


def item_metrics(
    scores: Sequence[float], labels: Sequence[str], gold: str, pred: str, demo_labels: Sequence[str] = ()
) -> dict[str, float | None]:
    """Proper scores and demo diagnostics of one scored item.

    Parameters
    ----------
    scores
        The LM's log-probability of each label, in the order of ``labels``.
    labels
        The task's label words.
    gold, pred
        The gold label and the predicted one.
    demo_labels
        Labels of the demonstrations in prompt order (empty for zero-shot).

    Returns
    -------
    dict
        ``p_gold``, ``brier``, ``logloss``, ``copies_last`` (None without
        demonstrations) and ``gold_precision`` (None without demonstrations).

    Examples
    --------
    >>> m = item_metrics([np.log(0.75), np.log(0.25)], ["pos", "neg"], "pos", "pos", ["neg", "pos"])
    >>> round(m["p_gold"], 3), round(m["brier"], 4), m["copies_last"], m["gold_precision"]
    (0.75, 0.125, 1.0, 0.5)
    """
    if len(scores) != len(labels):
        raise InvalidInputError(f"got {len(scores)} scores for {len(labels)} labels {list(labels)}.")
    if gold not in labels:
        raise InvalidInputError(f"gold label {gold!r} is not one of the task's labels {list(labels)}.")
    s = np.asarray(scores, dtype=np.float64)
    p = np.exp(s - s.max())
    p /= p.sum()
    g = list(labels).index(gold)
    onehot = np.zeros_like(p)
    onehot[g] = 1.0
    demos = list(demo_labels)
    return {
        "p_gold": float(p[g]),
        "brier": float(np.sum((p - onehot) ** 2)),
        "logloss": float(min(-np.log(max(p[g], 1e-300)), LOGLOSS_CAP)),
        "copies_last": None if not demos else float(pred == demos[-1]),
        "gold_precision": None if not demos else float(np.mean([d == gold for d in demos])),
    }


def with_item_metrics(
    rows: Iterable[Mapping[str, Any]], label_words: Mapping[str, Sequence[str]]
) -> list[dict[str, Any]]:
    """Copies of ``rows`` with :func:`item_metrics` added (``label_words`` maps task -> label order).

    Rows without ``scores`` are copied unchanged.

    Examples
    --------
    >>> rows = [{"task": "t", "label": "a", "pred": "b", "scores": [-2.0, -1.0], "demo_labels": ["b"]}]
    >>> out = with_item_metrics(rows, {"t": ["a", "b"]})
    >>> out[0]["copies_last"], out[0]["logloss"] > 1.0
    (1.0, True)
    """
    out = []
    for r in rows:
        row = dict(r)
        if row.get("scores") is not None:
            task = str(row["task"])
            if task not in label_words:
                raise InvalidInputError(f"no label words for task {task!r}; pass label_words[{task!r}].")
            row.update(
                item_metrics(row["scores"], label_words[task], row["label"], row["pred"], row.get("demo_labels") or ())
            )
        out.append(row)
    return out
