"""Tests for promptkd.evaluation: LM scoring (real SmolLM2), tasks, the resumable experiment grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promptkd import Demo, InvalidInputError, InvalidTypeError, PromptTemplate
from promptkd.embeddings import HashingEmbedder
from promptkd.evaluation import (
    ExperimentResult,
    ICLClassifier,
    SelectorSpec,
    Task,
    label_continuation,
    load_task,
    log_softmax,
    majority_vote,
    read_rows,
    run_experiment,
    standard_selectors,
)
from promptkd.evaluation.scoring import _toy_lm
from promptkd.exceptions import PoolFormatError

SENTIMENT = "Review: {input}\nSentiment: {output}"
POS = ["I loved it, wonderful and great.", "Fantastic, brilliant, a joy.", "Superb and delightful, I love it."]
NEG = ["I hated it, awful and terrible.", "Horrible, boring, a waste.", "Dreadful and painful, I hate it."]
DEMOS = [
    Demo(input="An excellent, wonderful film. I loved it.", output="positive"),
    Demo(input="A terrible, awful film. I hated it.", output="negative"),
    Demo(input="Great acting, beautiful and moving.", output="positive"),
    Demo(input="Bad acting, ugly and dull.", output="negative"),
]


# ---------------------------------------------------------------------- scoring with the real SmolLM2
@pytest.fixture(scope="module")
def sentiment_clf(smollm2):
    return ICLClassifier(smollm2, template=SENTIMENT, labels=["negative", "positive"], batch_size=4)


def test_trivially_separable_task_is_accurate(sentiment_clf):
    queries = POS + NEG
    gold = ["positive"] * len(POS) + ["negative"] * len(NEG)
    preds = sentiment_clf.predict_batch([(DEMOS, q) for q in queries])
    acc = np.mean([p == g for p, g in zip(preds, gold, strict=True)])
    assert acc >= 5 / 6


def test_label_order_does_not_change_predictions(smollm2):
    labels = ["negative", "positive", "neutral"]
    a = ICLClassifier(smollm2, template=SENTIMENT, labels=labels)
    b = ICLClassifier(smollm2, template=SENTIMENT, labels=labels[::-1])
    items = [(DEMOS, q) for q in POS[:2] + NEG[:2]]
    assert a.predict_batch(items) == b.predict_batch(items)
    np.testing.assert_allclose(a.scores_batch(items), b.scores_batch(items)[:, ::-1], atol=1e-4)


def test_calibration_subtracts_content_free_scores(smollm2):
    raw = ICLClassifier(smollm2, template=SENTIMENT, labels=["negative", "positive"])
    cal = ICLClassifier(smollm2, template=SENTIMENT, labels=["negative", "positive"], calibrate=True)
    for demos in (DEMOS[:3], DEMOS):
        s = raw.scores(demos, POS[0])
        cf = raw.scores(demos, "N/A")
        expected = log_softmax(s - cf)
        got = cal.scores(demos, POS[0])
        np.testing.assert_allclose(got, expected, atol=1e-6)
        np.testing.assert_allclose(np.exp(got).sum(), 1.0, atol=1e-9)
        # the prediction is the raw argmax after removing the content-free bias, nothing else
        assert cal.predict(demos, POS[0]) == raw.labels[int(np.argmax(s - cf))]


def test_multi_token_labels_match_a_full_forward(smollm2):
    import torch

    labels = ["description of it", "person", "Abbreviation zz"]
    template = "Question: {input}\nAnswer Type: {output}"
    clf = ICLClassifier(smollm2, template=template, labels=labels, batch_size=2)
    assert max(len(ids) for ids in clf._label_ids) > 1
    demos = [Demo(input="Who wrote Hamlet?", output="person")]
    items = [(demos, "Where is Paris?"), ([], "What does NASA stand for?"), (demos, "Why?")]
    got = clf.scores_batch(items)  # batch of 2 + 1 with left padding
    tok, model = smollm2.tokenizer, smollm2.model
    for (d, q), row in zip(items, got, strict=True):
        pid = tok(clf.render(d, q))["input_ids"]
        for j, lab in enumerate(labels):
            lid = tok(label_continuation(clf.template, lab), add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([pid + lid])).logits[0].float(), -1)
            want = sum(float(logp[len(pid) - 1 + i, t]) for i, t in enumerate(lid))
            assert row[j] == pytest.approx(want, abs=2e-3)


def test_sdpa_attention_scores_like_eager(smollm2):
    from promptkd.probes import load_lm

    fused = load_lm(attn_implementation="sdpa", device="cpu")
    assert fused.model.config._attn_implementation == "sdpa"
    assert smollm2.model.config._attn_implementation == "eager"
    items = [(DEMOS, q) for q in POS[:2] + NEG[:1]] + [([], NEG[1])]
    eager = ICLClassifier(smollm2, template=SENTIMENT, labels=["negative", "positive"], batch_size=4)
    sdpa = ICLClassifier(fused, template=SENTIMENT, labels=["negative", "positive"], batch_size=4)
    np.testing.assert_allclose(sdpa.scores_batch(items), eager.scores_batch(items), atol=1e-3)
    with pytest.raises(InvalidInputError, match="attn_implementation"):
        load_lm(attn_implementation="flash")


def test_identical_prompts_are_scored_once(sentiment_clf):
    sentiment_clf.clear_cache()
    before = sentiment_clf.n_forward_prompts
    first = sentiment_clf.scores_batch([(DEMOS[:2], NEG[0]), (DEMOS[:2], NEG[0])])
    assert sentiment_clf.n_forward_prompts - before == 1
    again = sentiment_clf.scores(DEMOS[:2], NEG[0])
    assert sentiment_clf.n_forward_prompts - before == 1
    np.testing.assert_array_equal(first[0], first[1])
    np.testing.assert_array_equal(first[0], again)


def test_length_normalize_divides_by_token_count():
    lm = _toy_lm()
    labels = ["ab", "abcdef"]
    raw = ICLClassifier(lm, template="Q: {input}\nA: {output}", labels=labels)
    norm = ICLClassifier(lm, template="Q: {input}\nA: {output}", labels=labels, length_normalize=True)
    s, n = raw.scores([], "x"), norm.scores([], "x")
    np.testing.assert_allclose(n, s / np.array([3, 7]))  # " ab" and " abcdef" are 3 and 7 characters


def test_classifier_rejects_bad_arguments():
    with pytest.raises(InvalidInputError, match="labels"):
        ICLClassifier(_toy_lm(), labels=["only"])
    with pytest.raises(InvalidInputError, match="unique"):
        ICLClassifier(_toy_lm(), labels=["a", "a"])
    with pytest.raises(InvalidTypeError, match="lm must be"):
        ICLClassifier(lm="gpt", labels=["a", "b"])
    clf = ICLClassifier(_toy_lm(), labels=["a", "b"])
    with pytest.raises(InvalidTypeError, match="pair"):
        clf.scores_batch([("x",)])
    with pytest.raises(InvalidTypeError, match="Demo"):
        clf.predict(["not a demo"], "q")


def test_label_continuation_follows_the_template():
    t = PromptTemplate.from_string("Q: {input}\nA:{output}")
    assert label_continuation(t, "yes") == "yes"
    assert label_continuation(PromptTemplate.from_string(SENTIMENT), "no") == " no"


# ---------------------------------------------------------------------- tasks
def _write(folder: Path, split: str, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_load_task_from_a_folder(tmp_path):
    _write(
        tmp_path / "sst2", "train", [{"text": "good  film", "label": "positive"}, {"text": "bad", "label": "negative"}]
    )
    _write(tmp_path / "sst2", "test", [{"text": "fine", "label": "positive"}])
    test = load_task("sst2", "test", data_root=tmp_path)
    assert test.label_words == ("negative", "positive")  # union with train, sorted
    assert test.template.example == SENTIMENT
    train = load_task(tmp_path / "sst2", "train")
    assert train.inputs == ["good film", "bad"]  # whitespace collapsed
    assert [d.output for d in train.demos()] == ["positive", "negative"]
    assert len(train.pool(HashingEmbedder())) == 2
    custom = load_task(tmp_path / "sst2", "train", template="Text: {input}\nLabel: {output}", max_chars=2)
    assert custom.template.query == "Text: {input}\nLabel:" and custom.texts[0] == "go ..."
    with pytest.raises(InvalidInputError, match=r"dev\.jsonl"):
        load_task(tmp_path / "sst2", "dev")


def test_load_task_pair_task_joins_text_and_pair(tmp_path):
    rows = [
        {"text": "A man sleeps.", "text_pair": "A man is awake.", "label": "false"},
        {"text": "It rains.", "text_pair": "It is wet.", "label": "true"},
    ]
    _write(tmp_path / "rte", "test", rows)
    t = load_task(tmp_path / "rte", "test")
    assert t.is_pair and t.text_pairs == ("A man is awake.", "It is wet.")
    assert t.inputs[0] == "A man sleeps.\nquestion: A man is awake. True or False?"
    assert t.template.render([], t.inputs[1]).endswith("True or False?\nanswer:")


def test_load_task_bad_files(tmp_path):
    _write(tmp_path / "x", "test", [{"text": "a"}])
    with pytest.raises(PoolFormatError, match="label"):
        load_task(tmp_path / "x", "test")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "test.jsonl").write_text("{not json\n")
    with pytest.raises(PoolFormatError, match="JSON"):
        load_task(tmp_path / "y", "test")
    with pytest.raises(InvalidTypeError):
        load_task(42, "test")


def test_load_task_from_a_datasets_like_object():
    class ClassLabel:
        names = ("neg", "pos")

    class FakeDataset:  # the duck type of datasets.Dataset that load_task relies on
        column_names = ("sentence", "label")

        @property
        def features(self):
            return {"label": ClassLabel()}

        def __iter__(self):
            return iter(
                [{"sentence": "ok", "label": 1}, {"sentence": "meh", "label": 0}, {"sentence": "?", "label": -1}]
            )

    t = load_task(FakeDataset(), "train")
    assert t.labels == ("pos", "neg") and t.label_words == ("neg", "pos") and len(t) == 2


# ---------------------------------------------------------------------- experiment grid (fast, toy LM)
def _toy_task() -> tuple[Task, Task]:
    words = {"pos": ["good", "great", "fine", "nice"], "neg": ["bad", "awful", "poor", "sad"]}
    texts, labels = [], []
    for lab, ws in words.items():
        for w in ws:
            for v in ws:
                texts.append(f"{w} and {v}")
                labels.append(lab)
    train = Task("toy", "train", tuple(texts), None, tuple(labels), ("neg", "pos"), PromptTemplate())
    test = Task("toy", "test", tuple(texts[::3]), None, tuple(labels[::3]), ("neg", "pos"), PromptTemplate())
    return train, test


def test_run_experiment_rows_and_resume(tmp_path):
    path = tmp_path / "results.jsonl"
    lm = _toy_lm()
    kwargs = dict(k_values=[2, 3], seeds=[0, 1], n_test=6, lm=lm, results_path=path, embedder=HashingEmbedder())
    specs = standard_selectors(["zero-shot", "random", "topk", "promptkd", "promptkd-nbhd"])
    res = run_experiment(specs, [_toy_task()], **kwargs)
    # zero-shot 6 + random 2 k x 2 seeds x 6 + three deterministic selectors x 2 k x 6
    assert len(res.rows) == 6 + 24 + 36
    assert len(read_rows(path)) == len(res.rows)
    keys = {(r["selector"], r["k"], r["seed"], r["item"]) for r in res.rows}
    assert len(keys) == len(res.rows)
    row = next(r for r in res.rows if r["selector"] == "topk")
    assert row["n_demos"] == row["k"] and row["mmd2"] >= 0 and row["vote"] in {"neg", "pos"}
    assert row["tokens"] > 0 and len(row["scores"]) == 2

    # rerun: nothing new is written
    again = run_experiment(specs, [_toy_task()], **kwargs)
    assert len(read_rows(path)) == len(res.rows) == len(again.rows)

    # interrupted run: keep the first 10 rows plus half a line; resuming redoes only the missing rows
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:10]) + "\n" + lines[10][:15])
    resumed = run_experiment(specs, [_toy_task()], **kwargs)
    rows = read_rows(path)
    assert len(rows) == len(res.rows) == len(resumed.rows)
    assert {(r["selector"], r["k"], r["seed"], r["item"]) for r in rows} == keys
    by_key = {(r["selector"], r["k"], r["seed"], r["item"]): r["pred"] for r in res.rows}
    assert all(by_key[(r["selector"], r["k"], r["seed"], r["item"])] == r["pred"] for r in rows)


def test_neighbourhood_target_uses_other_test_items(tmp_path):
    seen = []

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def fit(self, pool):
            self.inner.fit(pool)
            return self

        def select(self, query, **kw):
            sel = self.inner.select(query, **kw)
            seen.append((kw.get("context"), sel.target_size))
            return sel

    from promptkd import Selector

    spec = SelectorSpec("nb", lambda k, s: Spy(Selector(k=k, seed=s)), neighbours=3)
    run_experiment([spec], [_toy_task()], k_values=[2], seeds=[0], n_test=5, lm=_toy_lm(), embedder=HashingEmbedder())
    assert len(seen) == 5
    assert all(ctx.shape == (3, 128) or ctx.shape[0] == 3 for ctx, _ in seen)
    assert all(size == 4 for _, size in seen)


def test_summary_paired_and_calibration_records():
    rng = np.random.default_rng(0)
    rows = []
    for task in ("a", "b"):
        for item in range(50):
            good = bool(rng.random() < 0.8)
            for sel, correct in (("promptkd", good), ("topk", good), ("zero-shot", item % 2 == 0)):
                k = 0 if sel == "zero-shot" else 4
                rows.append(
                    {"lm": "m", "task": task, "selector": sel, "k": k, "seed": 0, "item": item, "correct": correct,
                     "vote_correct": correct, "tokens": 10, "n_demos": k, "select_s": 0.0,
                     "mmd2": None if k == 0 else 0.25}
                )  # fmt: skip
    res = ExperimentResult(rows)
    summary = res.summary(n_boot=200)
    cell = next(c for c in summary if c.selector == "topk" and c.task == "a")
    assert cell.ci_low <= cell.accuracy <= cell.ci_high and cell.n_items == 50
    same = res.paired("promptkd", "topk", k=4)
    assert same.diff == 0 and same.ci_low == 0 and same.ci_high == 0 and same.n_tasks == 2
    vs_zero = res.paired("promptkd", "zero-shot", k=4)
    assert vs_zero.ci_low <= vs_zero.diff <= vs_zero.ci_high and vs_zero.diff > 0
    recs = res.calibration_records()
    assert len(recs) == 4 and all(r["mmd"] == pytest.approx(0.5) and r["k"] == 4 for r in recs)
    assert "| m | a | promptkd | 4 |" in res.to_markdown(summary)
    means = res.mean_over_tasks(summary)
    assert means[("m", "promptkd", "4")] == means[("m", "topk", "4")]


def test_majority_vote_and_bad_selector_names():
    assert majority_vote(["x", "y", "y", "x"], [0.1, 0.2, 0.3, 0.9]) == "x"
    with pytest.raises(InvalidInputError, match="unknown selector"):
        standard_selectors(["nope"])
    with pytest.raises(InvalidInputError, match="unique"):
        run_experiment(["topk", "topk"], [_toy_task()], lm=_toy_lm())
