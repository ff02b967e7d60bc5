"""Attention probes on the real SmolLM2-135M-Instruct (session fixture ``smollm2``) plus fast unit tests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptkd import Demo
from promptkd.exceptions import InvalidInputError, InvalidTypeError, ModelLoadError
from promptkd.probes import AttentionProbe, ProbeReport, head_to_kv, load_lm, resolve_layers
from promptkd.probes._text import token_spans
from promptkd.rendering import PromptTemplate
from promptkd.selection import Selection

pytestmark = pytest.mark.usefixtures("single_torch_thread")


DEMOS = [
    Demo(input="loved every minute", output="positive"),
    Demo(input="a dull, tedious plot", output="negative"),
    Demo(input="warm and funny", output="positive"),
]
QUERY = "boring and far too long"
LAYERS = [0, 14, 29]


@pytest.fixture(scope="module")
def probe(smollm2):
    return AttentionProbe(smollm2, layers=LAYERS)


@pytest.fixture(scope="module")
def report(probe):
    return probe.probe(DEMOS, QUERY)


# ---------------------------------------------------------------- real model


def test_masses_nonnegative_and_sum_to_one_per_head(smollm2):
    rep = AttentionProbe(smollm2, layers="all").probe(DEMOS, QUERY)
    assert rep.demo_mass.shape == (30, 9, 3)
    assert np.all(rep.demo_mass >= 0)
    assert np.all(rep.query_mass >= -1e-6)
    total = rep.demo_mass.sum(-1) + rep.query_mass
    np.testing.assert_allclose(total, 1.0, atol=1e-5)
    # the masses are real attention: the query block holds a substantial part of it somewhere
    assert rep.query_mass.max() > 0.1
    assert np.all((rep.distillation_strength >= 0) & np.isfinite(rep.distillation_strength))


def test_spans_match_rendered_prompt_exactly(smollm2, report):
    template = PromptTemplate()
    rendered = template.render_with_spans(DEMOS, QUERY)
    assert (
        report.text
        == rendered.text
        == Selection(indices=(0, 1, 2), demos=tuple(DEMOS), scores=(0.0,) * 3, mmd2=0.0).render(query=QUERY)
    )
    assert report.spans_exact
    offsets = smollm2.tokenizer(report.text, return_offsets_mapping=True)["offset_mapping"]
    assert len(offsets) == report.n_tokens
    for demo, (a, b), (cs, ce) in zip(DEMOS, report.demo_token_spans, report.demo_char_spans, strict=True):
        assert report.text[offsets[a][0] : offsets[b - 1][1]] == template.render_demo(demo)
        assert report.text[cs:ce] == template.render_demo(demo)
    qa, qb = report.query_token_span
    assert report.text[offsets[qa][0] : offsets[qb - 1][1]] == "Input: boring and far too long\nOutput:"
    assert report.readout == report.n_tokens - 1 == qb - 1


def test_gqa_mapping_matches_the_model(smollm2, probe):
    """Head h of SmolLM2 reads KV head h // 3: rebuilding o_proj's input from values proves it."""
    import torch

    from promptkd.probes.probe import layer_terms, run_capture

    assert probe.spec.n_heads == 9 and probe.spec.n_kv_heads == 3
    assert probe.head_to_kv.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    ids = smollm2.tokenizer("Input: fine film\nOutput: positive\n\nInput: meh\nOutput:")["input_ids"]
    seen = {}
    hook = probe.spec.attention[14].o_proj.register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    try:
        with torch.no_grad():
            smollm2.model(torch.tensor([ids]))
    finally:
        hook.remove()
    truth = seen["x"][0, -1]
    cap, _ = run_capture(smollm2, probe.spec, [ids], [len(ids) - 1], [14])
    member = torch.zeros((1, len(ids)))
    w_o = probe.spec.attention[14].o_proj.weight

    def rebuilt(mapping):
        terms = layer_terms(cap.rows[14][0], cap.values[14][0], w_o, member, torch.as_tensor(mapping))
        return terms["z_all"].reshape(-1)

    assert torch.allclose(rebuilt(probe.head_to_kv), truth, atol=1e-5)
    assert not torch.allclose(rebuilt(np.arange(9) % 3), truth, atol=1e-3)


def test_loo_influence_of_empty_demo_is_zero(probe):
    template = PromptTemplate(example="{input}{output}", query="{input}")
    demos = [
        Demo(input="Review: loved every minute\nSentiment:", output=" positive"),
        Demo(input="", output=""),  # renders to the empty string
        Demo(input="Review: a dull, tedious plot\nSentiment:", output=" negative"),
    ]
    rep = probe.probe(
        demos, "Review: boring and far too long\nSentiment:", template, influence=True, answer=" negative"
    )
    assert rep.influence is not None and rep.influence.shape == (3,)
    assert abs(rep.influence[1]) < 1e-4
    assert np.all(rep.demo_mass[:, :, 1] == 0)
    assert np.max(np.abs(rep.influence[[0, 2]])) > 1e-3  # real demos do move the answer
    assert rep.answer == " negative" and rep.answer_logprob < 0


def test_influence_default_answer_and_remove_mode(probe):
    sel = Selection(indices=(0, 1), demos=tuple(DEMOS[:2]), scores=(0.5, 0.4), mmd2=0.1, query=QUERY)
    rep = probe.probe(sel, influence="remove")
    assert rep.text.endswith(QUERY + "\nOutput:")
    assert isinstance(rep.answer, str) and rep.answer
    assert rep.influence.shape == (2,) and np.all(np.isfinite(rep.influence))


def test_report_aggregates_dict_and_plot(report, tmp_path):
    agg = report.per_demo()
    assert set(agg) == {"demo_mass", "mass_share", "contribution_norm", "layer_contribution_norm"}
    np.testing.assert_allclose(agg["demo_mass"], report.demo_mass.mean(axis=(0, 1)))
    np.testing.assert_allclose(agg["mass_share"].sum(), 1.0)
    last = report.per_demo(layers=[29], exclude_sink=True)
    assert last["demo_mass"][0] <= report.per_demo(layers=[29])["demo_mass"][0]
    with pytest.raises(InvalidInputError, match="not probed"):
        report.per_demo(layers=[5])
    d = json.loads(json.dumps(report.to_dict()))
    assert d["head_to_kv"] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [x["output"] for x in d["demos"]] == ["positive", "negative", "positive"]
    import matplotlib

    matplotlib.use("Agg")
    ax = report.plot()
    ax.figure.savefig(tmp_path / "heat.png")
    ax2 = report.plot("contribution_norm", layer=14)
    assert len(ax2.get_yticklabels()) == 9
    assert (tmp_path / "heat.png").stat().st_size > 0


def test_probe_input_errors(probe):
    with pytest.raises(InvalidInputError, match="query"):
        probe.probe(DEMOS, None)
    with pytest.raises(InvalidTypeError):
        probe.probe("not demos", QUERY)
    with pytest.raises(InvalidInputError, match="influence"):
        probe.probe(DEMOS, QUERY, influence="maybe")


# ---------------------------------------------------------------- fast units


def test_head_to_kv_and_layers():
    assert head_to_kv(4, 4).tolist() == [0, 1, 2, 3]
    with pytest.raises(InvalidInputError):
        head_to_kv(9, 4)
    assert resolve_layers(range(2), 5) == (0, 1)
    assert resolve_layers(-1, 5) == (4,)
    with pytest.raises(InvalidInputError):
        resolve_layers([7], 5)
    with pytest.raises(InvalidInputError):
        resolve_layers("some", 5)
    with pytest.raises(InvalidTypeError):
        resolve_layers(1.5, 5)


def test_token_spans_assign_each_token_once():
    offsets = [(0, 0), (0, 4), (4, 6), (6, 10)]  # a special token, then a token straddling 5
    spans, exact = token_spans(offsets, [(0, 5), (5, 10)])
    assert spans == [(1, 3), (3, 4)] and not exact
    spans, exact = token_spans(offsets, [(0, 6), (6, 10)])
    assert spans == [(1, 3), (3, 4)] and exact


def test_load_lm_errors():
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_lm("./no/such/model", device="cpu")
    with pytest.raises(InvalidInputError, match="device"):
        load_lm(device="tpu")
    with pytest.raises(InvalidInputError, match="dtype"):
        load_lm(device="cpu", dtype="int3")
    with pytest.raises(InvalidTypeError):
        load_lm(3.5)


def test_report_for_docs_roundtrip():
    rep = ProbeReport.empty_for_docs()
    np.testing.assert_allclose(rep.demo_mass.sum(-1) + rep.query_mass, 1.0)
    assert rep.per_demo(exclude_sink=True)["demo_mass"][0] == pytest.approx(0.3 - 0.2)


# ---------------------------------------------------------------- distilled weights and ordering


def test_distilled_weights_equal_probe_demo_part(smollm2, probe):
    """The cached-prefix action equals the demo part of a full forward pass, per query and layer."""
    import torch

    from promptkd.probes import distilled_weights
    from promptkd.probes.probe import layer_terms, run_capture

    queries = ["boring and far too long", "a delight"]
    dw = distilled_weights(probe, DEMOS, queries, layers=[14, 29], explicit=True, n_features=64)
    assert dw.action.shape == (2, 2, 576) and dw.residual.shape == (2, 2, 576)
    kv = torch.as_tensor(probe.head_to_kv)
    for qi, q in enumerate(queries):
        enc = probe.encode(DEMOS, q)
        cap, _ = run_capture(smollm2, probe.spec, [enc.input_ids], [len(enc.input_ids) - 1], [14, 29])
        member = torch.zeros((3, len(enc.input_ids)))
        for i, (a, b) in enumerate(enc.demo_token_spans):
            member[i, a:b] = 1.0
        for li, layer in enumerate([14, 29]):
            w_o = probe.spec.attention[layer].o_proj.weight
            terms = layer_terms(cap.rows[layer][0], cap.values[layer][0], w_o, member, kv)
            np.testing.assert_allclose(dw.action[qi, li], terms["z_demo"].reshape(-1).numpy(), atol=1e-4)
            np.testing.assert_allclose(dw.demo_mass[qi, li], terms["mass"].sum(-1).numpy(), atol=1e-5)
    assert dw.distance(dw).tolist() == [0.0, 0.0]
    other = distilled_weights(smollm2, DEMOS[:1], queries, layers=[14, 29])
    assert np.all(dw.distance(other) > 0)
    assert dw.rf_weights[0].shape == (9, 64, 64) and dw.rf_relative_error.shape == (2,)


def test_probe_guided_order_in_selector(probe, hashing_pool):
    from promptkd.probes import ProbeGuidedOrder
    from promptkd.selection import Selector

    policy = ProbeGuidedOrder(probe, max_candidates=3)
    sel = Selector(k=3, order=policy).fit(hashing_pool).select("sports news: the coach and the team")
    assert sorted(sel.indices) == sorted(set(sel.indices)) and len(sel) == 3
    assert 1 <= len(policy.last_scores) <= 3
    best = min(policy.last_scores.values())
    assert all(0.0 <= s <= 1.0 for s in policy.last_scores.values())
    assert best == min(policy.last_scores.values())


def test_mmd_weights_prefers_target_like_demos():
    from promptkd.probes import mmd_weights

    rng = np.random.default_rng(1)
    target = rng.standard_normal((20, 3))
    demos = np.vstack([target[:2] + 0.05, rng.standard_normal((1, 3)) + 6.0])
    w = mmd_weights(demos, target)
    assert w.sum() == pytest.approx(1.0) and w[2] < 0.05 and np.all(w >= 0)


def test_theory_check_example_smoke(smollm2, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "theory_check.py"
    spec = importlib.util.spec_from_file_location("theory_check_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [{"text": f"a fine film number {i}", "label": "positive"} for i in range(8)]
    rows += [{"text": f"shares fell {i} percent", "label": "zfinance"} for i in range(8)]
    data = tmp_path / "mix.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    out = module.main(["--smoke", "--data", str(data), "--threads", "0", "--no-write"], lm=smollm2)
    assert out["layers"] == [0, 29] and out["n_sets"] == 2
    dist = np.array(out["distance"])
    assert dist.shape == (2, 2) and np.all(dist >= 0)
    assert np.array(out["mmd"]).shape == (2, 2)
    assert out["mmd"][1][0] > out["mmd"][0][0]  # all-shifted set is farther from the target than the target-only one
    assert not (tmp_path / "theory_check.md").exists()


def test_mmd_weights_use_the_kernels_package():
    from promptkd.kernels import RBF, median_bandwidth, mmd2
    from promptkd.probes import mmd_weights

    rng = np.random.default_rng(2)
    S, T = rng.standard_normal((5, 3)), rng.standard_normal((8, 3))
    bw = median_bandwidth(S, T)
    w = mmd_weights(S, T)
    np.testing.assert_allclose(w, mmd_weights(S, T, bandwidth=bw))
    np.testing.assert_allclose(w, mmd_weights(S, T, kernel=RBF(bandwidth=bw)))
    # a far-away demo gets no share under any kernel of promptkd.kernels
    far = np.vstack([S, S[:1] + 50.0])
    assert mmd_weights(far, T)[-1] < 1e-6 and mmd2(S, T, bandwidth=bw) > 0
    assert mmd_weights(S, T, kernel="laplacian").shape == (5,)
