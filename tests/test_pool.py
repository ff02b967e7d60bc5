"""Demo and DemoPool behaviour: construction, ids, views, add, filter, JSONL input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promptkd import Demo, DemoPool
from promptkd.embeddings import HashingEmbedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool import content_id, read_jsonl
from promptkd.pool.records import count_repeats


def test_demo_ids_are_deterministic_from_content() -> None:
    a = Demo(input="great film", output="pos")
    assert a.id == Demo(input="great film", output="pos").id == content_id("great film", "pos")
    assert a.id != Demo(input="great film", output="neg").id
    assert Demo(input="x", output="y", id="mine").id == "mine"
    assert Demo(input="x", output="y", id=7).id == "7"
    assert Demo(input="x", output=1).output == "1"
    assert Demo(input="x", output=True).output == "true"
    with pytest.raises(Exception):  # noqa: B017 - frozen pydantic model
        a.input = "changed"  # type: ignore[misc]


def test_pool_basic_container_protocol(hashing_pool: DemoPool) -> None:
    assert len(hashing_pool) == 30
    assert hashing_pool[0].output == "sports"
    assert hashing_pool[-1].output == "science"
    assert [d.id for d in hashing_pool] == hashing_pool.ids
    assert len(hashing_pool[2:5]) == 3
    assert hashing_pool.labels == ["finance", "science", "sports"]
    assert "DemoPool(n=30" in repr(hashing_pool)


def test_embeddings_are_lazy_cached_float32(hashing_pool: DemoPool) -> None:
    assert not hashing_pool.has_embeddings
    E = hashing_pool.embeddings
    assert E.shape == (30, 128) and E.dtype == np.float32
    assert hashing_pool.embeddings is E  # cached, not recomputed
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    assert hashing_pool.dim == 128


def test_precomputed_embeddings_are_validated_and_kept() -> None:
    E = np.random.default_rng(0).normal(size=(3, 4))
    pool = DemoPool([{"input": str(i), "output": "x"} for i in range(3)], embeddings=E)
    assert pool.embeddings.dtype == np.float32
    np.testing.assert_allclose(pool.embeddings, E.astype(np.float32))
    assert pool.embedder_id == "precomputed"
    half = DemoPool([{"input": "a", "output": "x"}], embeddings=np.ones((1, 4), dtype=np.float16))
    assert half.embeddings.dtype == np.float16


def test_add_keeps_embeddings_aligned(hashing_pool: DemoPool) -> None:
    hashing_pool.embed()
    hashing_pool.add([{"input": "new finance text about shares", "output": "finance"}])
    assert len(hashing_pool) == 31
    assert hashing_pool.embeddings.shape == (31, 128)
    expected = HashingEmbedder(dim=128).encode(["new finance text about shares"])
    np.testing.assert_allclose(hashing_pool.embeddings[-1], expected[0], atol=1e-6)
    with pytest.raises(InvalidInputError, match="duplicate demo id"):
        hashing_pool.add(hashing_pool[0])
    assert len(hashing_pool) == 31  # a failed add changes nothing


def test_snapshot_is_not_affected_by_later_add(hashing_pool: DemoPool) -> None:
    hashing_pool.embed()
    snap = hashing_pool.snapshot()
    hashing_pool.add({"input": "one more", "output": "sports"})
    assert len(snap.demos) == 30 and snap.embeddings.shape[0] == 30


def test_filter_subset_and_mask(hashing_pool: DemoPool) -> None:
    hashing_pool.embed()
    fin = hashing_pool.filter(where={"topic": "finance"})
    assert len(fin) == 10 and set(fin.outputs) == {"finance"}
    np.testing.assert_array_equal(fin.embeddings, hashing_pool.embeddings[10:20])
    two = hashing_pool.filter(where={"topic": ["finance", "science"]})
    assert len(two) == 20
    small = hashing_pool.filter(lambda d: d.metadata["i"] < 2)
    assert len(small) == 6
    assert hashing_pool.mask(where={"output": "sports"}).sum() == 10
    sub = hashing_pool.subset([5, 0])
    assert [d.id for d in sub] == [hashing_pool[5].id, hashing_pool[0].id]
    assert hashing_pool.index_of(hashing_pool[7].id) == 7


def test_from_records_maps_keys_and_metadata() -> None:
    rows = [{"text": "fine", "label": 1, "src": "a", "uid": "r1"}, {"text": "bad", "label": 0, "src": "b", "uid": "r2"}]
    pool = DemoPool.from_records(rows, input_key="text", output_key="label", id_key="uid", embedder=HashingEmbedder())
    assert pool.ids == ["r1", "r2"]
    assert pool[0].metadata == {"src": "a"}
    only = DemoPool.from_records(rows, input_key="text", output_key="label", metadata_keys=[])
    assert only[0].metadata == {}


def test_from_jsonl_and_read_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "pool.jsonl"
    lines = [json.dumps({"input": f"q{i}", "output": "a", "tag": i}) for i in range(4)]
    p.write_text("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n", encoding="utf-8")
    assert len(read_jsonl(p)) == 4
    pool = DemoPool.from_jsonl(p, embedder=HashingEmbedder(dim=16))
    assert len(pool) == 4 and pool[3].metadata == {"tag": 3}
    assert pool.embeddings.shape == (4, 16)


def test_read_jsonl_errors_name_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"input": "a", "output": "b"}\n{not json}\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"bad\.jsonl:2"):
        read_jsonl(p)
    p.write_bytes(b'{"input": "a", "output": "b"}\n\xff\xfe\n')
    with pytest.raises(InvalidInputError, match="UTF-8"):
        read_jsonl(p)
    p.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="JSON object"):
        read_jsonl(p)
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(InvalidTypeError):
        read_jsonl(42)  # type: ignore[arg-type]


def test_encode_texts_uses_pool_embedder(hashing_pool: DemoPool) -> None:
    X = hashing_pool.encode_texts(["a goal for the team", "bank profit"])
    assert X.shape == (2, 128) and X.dtype == np.float32


def test_pool_without_embedder_uses_precomputed_only() -> None:
    pool = DemoPool([{"input": "a", "output": "x"}], embeddings=np.ones((1, 3)))
    with pytest.raises(InvalidInputError, match="precomputed"):
        pool.encode_texts(["query"])


def test_encode_texts_accepts_arrays_and_iterables(hashing_pool: DemoPool) -> None:
    texts = ["a goal for the team", "bank profit"]
    expected = hashing_pool.encode_texts(texts)
    np.testing.assert_array_equal(hashing_pool.encode_texts(np.array(texts)), expected)
    np.testing.assert_array_equal(hashing_pool.encode_texts(t for t in texts), expected)
    np.testing.assert_array_equal(hashing_pool.encode_texts(tuple(texts)), expected)


def test_repeated_rows_load_with_ids_of_their_own(tmp_path) -> None:
    rows = [{"text": "fine", "label": "pos"}, {"text": "dull", "label": "neg"}, {"text": "fine", "label": "pos"}]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    pool = DemoPool.from_jsonl(path, input_key="text", output_key="label", embedder=HashingEmbedder())
    assert len(pool) == 3 and len(set(pool.ids)) == 3
    assert pool.ids[2] == pool.ids[0] + ".2"  # stable: the same file always gives the same ids
    assert count_repeats(pool.demos) == 1
    exact = DemoPool.from_jsonl(path, input_key="text", output_key="label", dedupe="exact", embedder=HashingEmbedder())
    assert exact.inputs == ["fine", "dull"]
    with pytest.raises(InvalidInputError, match="dedupe"):
        DemoPool.from_jsonl(path, input_key="text", output_key="label", dedupe="fuzzy")


def test_a_repeated_explicit_id_names_both_lines(tmp_path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"id": "a", "input": "x", "output": "y"}\n\n{"id": "a", "input": "z", "output": "y"}\n')
    with pytest.raises(
        InvalidInputError, match=r"duplicate demo id 'a' at .*train.jsonl:3 \(first at .*train.jsonl:1\)"
    ):
        DemoPool.from_jsonl(path, id_key="id")
