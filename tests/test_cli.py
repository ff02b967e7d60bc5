"""The ``promptkd`` command line, run as a real subprocess (``python -m promptkd ...``).

Each subprocess start costs about a second, so the tests are few and each checks
several things; pools are built with the hashing embedder unless the real model
is the point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from promptkd import DemoPool, Selector

ROOT = Path(__file__).resolve().parents[1]
DEMOS = ROOT / "examples" / "data" / "demos.jsonl"


def run(*args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "promptkd", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def saved_pool(tmp_path_factory) -> Path:
    """``pool build`` a CSV copy of the example demos with the hashing embedder (also tests the cache)."""
    tmp = tmp_path_factory.mktemp("cli")
    csv_path = tmp / "demos.csv"
    rows = [json.loads(line) for line in DEMOS.read_text().splitlines() if line.strip()]
    import csv

    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "text", "label", "task"])
        writer.writeheader()
        for r in rows:
            writer.writerow({"id": r["id"], "text": r["input"], "label": r["output"], "task": r["task"]})
    out = tmp / "pool"
    cache = tmp / "cache"
    args = ["pool", "build", str(csv_path), str(out), "--input-key", "text", "--output-key", "label"]
    args += ["--embedder", "hashing", "--dim", "64", "--cache-dir", str(cache), "--json"]
    first = json.loads(run(*args).stdout)
    assert first["n_demos"] == len(rows) and first["dim"] == 64 and first["cache_misses"] == len(rows)
    again = json.loads(run(*args).stdout)  # rebuilding reads every vector from the cache
    assert again["cache_hits"] == len(rows) and again["cache_misses"] == 0
    assert (cache / "embeddings.sqlite").is_file()
    return out


def test_pool_build_and_info(saved_pool):
    pool = DemoPool.load(saved_pool)
    assert pool.embedder_id == "hashing-v1:dim=64" and pool.has_embeddings
    assert pool[0].metadata == {"task": "sentiment"}
    info = json.loads(run("pool", "info", str(saved_pool), "--json").stdout)
    assert info["n_demos"] == len(pool) and info["embedding_shape"] == [len(pool), 64]
    assert info["labels"]["positive"] == pool.outputs.count("positive") and info["metadata_keys"] == ["task"]
    text = run("pool", "info", str(saved_pool)).stdout
    assert f"demos: {len(pool)}" in text and "hashing-v1:dim=64" in text


def test_select_single_query_text_and_json_match_the_library(saved_pool):
    query = "Which river flows through Cairo?"
    text = run("select", "--pool", str(saved_pool), "-q", query, "--k", "3", "--random-trials", "20").stdout
    assert "rendered prompt:" in text and text.rstrip().endswith(f"Input: {query}\nOutput:")
    row = json.loads(run("select", "--pool", str(saved_pool), "-q", query, "--k", "3", "--json").stdout)
    expected = Selector(k=3).fit(DemoPool.load(saved_pool)).select(query)
    assert row["indices"] == list(expected.indices) and row["mmd2"] == pytest.approx(expected.mmd2)
    assert row["random_mmd2_mean"] > row["mmd2"]
    assert row["prompt"] == expected.render(None, query)


def test_select_queries_file_to_jsonl_with_baseline_and_constraints(saved_pool, tmp_path):
    queries = tmp_path / "q.jsonl"
    qs = ["The film was a delight.", "Who painted the Mona Lisa?", "Shares slumped after earnings."]
    queries.write_text("".join(json.dumps({"question": q}) + "\n" for q in qs))
    out = tmp_path / "sel.jsonl"
    args = ["select", "--pool", str(saved_pool), "--queries-file", str(queries), "--query-key", "question"]
    proc = run(*args, "--out", str(out), "--selector", "mmr", "--k", "4", "--where", "task=sentiment|news_topic")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["query"] for r in rows] == qs and all(r["method"] == "mmr" and r["k"] == 4 for r in rows)
    # MMR has no metadata filter: the CLI runs it on the filtered pool and maps indices back to the full pool
    full = DemoPool.load(saved_pool)
    for r in rows:
        assert all(d["metadata"]["task"] in ("sentiment", "news_topic") for d in r["demos"])
        assert [full[i].id for i in r["indices"]] == [d["id"] for d in r["demos"]]
    assert f"wrote {len(qs)} selection(s)" in proc.stderr
    # the promptkd selector with hard constraints, to stdout
    constraints = ["--label-balance", "cover", "--max-tokens", "60", "--dedup-threshold", "0.95", "--swaps", "2"]
    proc = run(*args, "--k", "4", *constraints, "--where", "task=sentiment|news_topic")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(qs)
    for r in rows:
        assert r["tokens"] <= 60 and len({d["output"] for d in r["demos"]}) == r["k"]
        assert all(d["metadata"]["task"] in ("sentiment", "news_topic") for d in r["demos"])


@pytest.mark.slow  # draws and saves the bound plots with matplotlib (about 3 s)
def test_bound_report_json_and_png(saved_pool, tmp_path):
    png = tmp_path / "bound.png"
    args = ["bound", "--pool", str(saved_pool), "-q", "Which river flows through Cairo?", "-q", "Capital of Peru?"]
    proc = run(*args, "--k-max", "6", "--png", str(png), "--permutations", "20", "--json")
    data = json.loads(proc.stdout)
    budget, bound = data["budget"], data["bound"]
    assert 1 <= budget["k_star"] <= 6 and bound["m"] == budget["k_star"]
    assert bound["total"] == pytest.approx(
        bound["empirical_risk"] + bound["complexity_term"] + bound["confidence_term"] + bound["mmd_term"]
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = run(*args, "--k-max", "4", "--permutations", "0").stdout
    assert "k*" in text and "Bound for m=" in text


def run_inprocess(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI's ``main`` in this process (fast, for error paths and help)."""
    from promptkd.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_errors_are_one_line_with_conventional_exit_codes(saved_pool, tmp_path, capsys):
    # one real subprocess for the exit status as the shell sees it
    proc = run("select", "--pool", str(tmp_path / "missing"), "-q", "x", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
    cases = [
        (["select", "--pool", str(saved_pool), "-q", "x", "--k", "zero"], 2, "--k must be"),
        (["select", "--pool", str(saved_pool), "-q", "x", "--selector", "nope"], 2, "not known"),
        (["select", "--pool", str(saved_pool)], 2, "--query"),
        (["select", "--pool", str(saved_pool), "-q", "x", "--bogus"], 2, "No such option"),
        (["select", "--pool", str(saved_pool), "-q", "x", "--k", "999"], 2, "larger than the pool"),
        (["select", "--pool", str(saved_pool), "-q", "x", "--selector", "topk", "--swaps", "1"], 2, "accepts"),
        (["bound", "--pool", str(saved_pool), "-q", "x", "--png", str(tmp_path / "b.txt")], 2, ".png"),
        (["probe", "--pool", str(saved_pool), "-q", "x", "--layers", "first"], 2, "--layers"),
        (["eval", "--task", "t", "--selectors", "topk", "--seeds", "a,b"], 2, "--seeds"),
    ]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    cases.append((["pool", "info", str(broken)], 1, "error:"))
    for args, code, needle in cases:
        rc, _, err = run_inprocess(capsys, *args)
        assert rc == code, (args, rc, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (args, err)


def test_help_for_every_command_and_version(capsys):
    top = run("--help").stdout
    for cmd in ("select", "bound", "pool", "probe", "eval"):
        assert cmd in top
    for args, needle in [
        (("pool", "build", "--help"), "--embedder"),
        (("pool", "info", "--help"), "--json"),
        (("select", "--help"), "--queries-file"),
        (("bound", "--help"), "--png"),
        (("probe", "--help"), "--influence"),
        (("eval", "--help"), "--selectors"),
    ]:
        rc, out, _ = run_inprocess(capsys, *args)
        assert rc == 0 and needle in out
    rc, out, _ = run_inprocess(capsys, "--version")
    assert rc == 0 and out.startswith("promptkd ")


@pytest.mark.slow
def test_probe_reports_attention_and_writes_heatmap(saved_pool, tmp_path):
    """``probe`` on the real SmolLM2 (one layer, two demos, to keep it quick)."""
    png = tmp_path / "heat.png"
    query = "Which river flows through Cairo?"
    args = ["probe", "--pool", str(saved_pool), "-q", query, "--k", "2", "--layers", "-1", "--png", str(png)]
    data = json.loads(run(*args, "--influence", "--answer", " location", "--json").stdout)
    expected = Selector(k=2).fit(DemoPool.load(saved_pool)).select(query)
    assert [d["id"] for d in data["demos"]] == list(expected.ids)
    assert data["text"] == expected.render(None, query) and data["layers"] == [29]
    masses = np.asarray(data["demo_mass"])  # (layers, heads, demos)
    assert masses.shape == (1, data["n_heads"], 2)
    total = masses.sum(-1) + np.asarray(data["query_mass"])
    assert np.allclose(total, 1.0, atol=1e-4)  # attention rows sum to one over demos + rest
    assert data["answer"] == " location" and data["answer_logprob"] < 0
    assert all(d["influence"] is not None for d in data["demos"])
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_eval_harness_on_a_toy_task(tmp_path):
    """``eval`` with the real SmolLM2 on a 4-item task folder; results resume from the JSONL file."""
    task = tmp_path / "toy"
    task.mkdir()
    pos = ["a wonderful, moving film", "great acting and a clever plot", "I loved every minute"]
    neg = ["a dull, lifeless film", "terrible acting and a silly plot", "I hated every minute"]
    train = [{"text": t, "label": "positive"} for t in pos] + [{"text": t, "label": "negative"} for t in neg]
    test = [{"text": "a charming, clever movie", "label": "positive"}, {"text": "a tedious film", "label": "negative"}]
    (task / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (task / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    results = tmp_path / "rows.jsonl"
    args = ["eval", "--task", str(task), "--selectors", "zero-shot,topk,promptkd", "--k", "2", "--n-test", "2"]
    args += ["--embedder", "hashing", "--results", str(results), "--no-progress", "--json"]
    data = json.loads(run(*args).stdout)
    cells = {c["selector"]: c for c in data["cells"]}
    assert set(cells) == {"zero-shot", "topk", "promptkd"}
    assert all(c["n_items"] == 2 and 0.0 <= c["accuracy"] <= 1.0 for c in cells.values())
    assert cells["promptkd"]["n_demos"] == 2.0 and cells["zero-shot"]["n_demos"] == 0.0
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 3 * 2 and {r["selector"] for r in rows} == set(cells)
