"""Pools opened lazily (columnar layout, memory-mapped embeddings) and candidate indexes saved beside them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promptkd import Demo, DemoPool, Selector
from promptkd.exceptions import InvalidInputError, PoolFormatError
from promptkd.pool.index_store import build_pool_index, find_saved_index
from promptkd.pool.lazy import LazyDemos
from promptkd.pool.persistence import MANIFEST

pytest.importorskip("pyarrow")


def make_pool(n: int = 120, dim: int = 16, seed: int = 0, dtype: type = np.float32) -> DemoPool:
    rng = np.random.default_rng(seed)
    demos = [
        {
            "input": f"text {i} é 中文",
            "output": str(i % 3),
            "metadata": {"group": i % 2, "tags": ["a", None]},
            **({"input_pair": f"second {i}"} if i % 5 == 0 else {}),
        }
        for i in range(n)
    ]
    return DemoPool(demos, embeddings=rng.normal(size=(n, dim)).astype(dtype))


def manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST).read_text(encoding="utf-8"))


def test_open_builds_no_demo_until_one_is_accessed(tmp_path: Path) -> None:
    pool = make_pool()
    lazy = DemoPool.open(pool.save(tmp_path / "p", layout="arrow"))
    demos = lazy.snapshot().demos
    assert isinstance(demos, LazyDemos) and lazy.is_lazy and not pool.is_lazy
    assert isinstance(lazy.embeddings, np.memmap)
    # columns, filters, lookups and embeddings are served without building a Demo
    assert len(lazy) == 120 and lazy.ids == pool.ids and lazy.outputs == pool.outputs and lazy.inputs == pool.inputs
    assert lazy.labels == ["0", "1", "2"]
    assert (
        lazy.mask(where={"group": 1, "output": ["0", "1"]}).tolist()
        == pool.mask(where={"group": 1, "output": ["0", "1"]}).tolist()
    )
    assert lazy.index_of(pool[17].id) == 17
    np.testing.assert_array_equal(lazy.embeddings, pool.embeddings)
    assert demos.built == 0
    assert lazy[10] == pool[10] and lazy[-1] == pool[-1]
    assert demos.built == 2
    assert demos.index(pool[7]) == 7 and pool[7] in demos and Demo(input="absent", output="x") not in demos
    assert demos.built == 4  # index() checks the one demo it finds
    with pytest.raises(InvalidInputError, match="out of range"):
        demos[120]
    # iterating builds every demo, equal to the validated ones
    assert [d.model_dump() for d in lazy] == [d.model_dump() for d in pool]
    assert all(a == b for a, b in zip(lazy, pool, strict=True))


def test_arrow_pool_loads_eagerly_and_jsonl_pool_opens(tmp_path: Path) -> None:
    pool = make_pool(dtype=np.float16)
    arrow_dir = pool.save(tmp_path / "a", layout="arrow")
    m = manifest(arrow_dir)
    assert m["schema_version"] == 2 and m["layout"] == "arrow" and m["files"]["demos"]["name"].endswith(".arrow")
    loaded = DemoPool.load(arrow_dir)
    assert not loaded.is_lazy and [d.model_dump() for d in loaded] == [d.model_dump() for d in pool]
    assert loaded.embeddings.dtype == np.float16
    opened = DemoPool.open(pool.save(tmp_path / "j"))  # the default JSONL layout opens too
    assert opened.is_lazy and opened.ids == pool.ids and opened.snapshot().demos.built == 0
    assert DemoPool.open(arrow_dir, verify=True).embeddings.dtype == np.float16


def test_damage_is_detected(tmp_path: Path) -> None:
    d = make_pool().save(tmp_path / "p", layout="arrow")
    demos_file = d / manifest(d)["files"]["demos"]["name"]
    raw = bytearray(demos_file.read_bytes())
    at = raw.find(b"text 7")
    raw[at] ^= 0x01  # same size, different content: only the checksum sees it
    demos_file.write_bytes(bytes(raw))
    assert DemoPool.open(d).snapshot().demos.built == 0
    with pytest.raises(PoolFormatError, match="checksum"):
        DemoPool.open(d, verify=True)
    with pytest.raises(PoolFormatError, match="checksum"):
        DemoPool.load(d)
    demos_file.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(PoolFormatError, match="Arrow"):
        DemoPool.open(d)
    with pytest.raises(InvalidInputError, match="layout"):
        make_pool().save(tmp_path / "q", layout="parquet")


def test_add_to_an_opened_pool_and_save_again(tmp_path: Path) -> None:
    pool = make_pool()
    d = pool.save(tmp_path / "p", layout="arrow")
    lazy = DemoPool.open(d)
    with pytest.raises(InvalidInputError, match="duplicate demo id"):
        lazy.add(pool[3])
    lazy.add(Demo(input="new one", output="2"), embeddings=np.ones((1, 16), dtype=np.float32))
    assert len(lazy) == 121 and lazy[120].input == "new one" and lazy.ids[-1] == lazy[120].id
    assert lazy.snapshot().demos.built == 0  # the added demo is held as given
    sub = lazy.subset([0, 120, 5])
    assert [d.input for d in sub] == [pool[0].input, "new one", pool[5].input]
    again = DemoPool.open(lazy.save(d, layout="arrow"))  # rewrites the directory it was opened from
    assert len(again) == 121 and again[120].input == "new one"
    np.testing.assert_array_equal(again.embeddings[:120], pool.embeddings)
    assert len([p for p in d.iterdir() if p.name.startswith("demos-")]) == 1
    assert lazy.subset(range(0, 120, 7)).is_lazy


def test_saved_index_is_loaded_not_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faiss = pytest.importorskip("faiss")
    pool = make_pool(n=400, dim=24)
    d = pool.save(tmp_path / "p", layout="arrow")
    queries = np.asarray(pool.embeddings[:6]) + 0.1
    settings = {"k": 4, "candidates": 32, "ann_threshold": 100}
    built = Selector(**settings).fit(pool)
    assert built.index_ is not None
    expected = built.select_batch(queries)
    index = build_pool_index(d)
    entry = manifest(d)["files"]["index"]
    assert entry["params"]["kind"] == "hnsw" and entry["params"]["hnsw_m"] == 32 and entry["params"]["n"] == 400
    assert (d / entry["name"]).stat().st_size == entry["size"] and index.n == 400

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index was rebuilt")

    with monkeypatch.context() as m:
        m.setattr(faiss, "IndexHNSWFlat", no_build)
        lazy = DemoPool.open(d, verify=True)
        fitted = Selector(**settings).fit(lazy)
    got = fitted.select_batch(queries)
    assert [s.indices for s in got] == [s.indices for s in expected]
    assert [s.mmd2 for s in got] == pytest.approx([s.mmd2 for s in expected])
    # other build parameters: not this index
    assert find_saved_index(np.asarray(lazy.embeddings)) is not None
    assert Selector(**settings, index="exact").fit(lazy).index_.kind == "exact"
    # a damaged index file is reported by verify and never used
    (d / entry["name"]).write_bytes(b"x" * entry["size"])
    with pytest.raises(PoolFormatError, match="checksum"):
        DemoPool.open(d, verify=True)
    # saving the pool again drops the index (new embeddings file) and removes its file
    lazy.save(d, layout="arrow")
    assert "index" not in manifest(d)["files"] and not (d / entry["name"]).exists()


def test_build_pool_index_needs_embeddings(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    d = DemoPool([{"input": "a", "output": "x"}]).save(tmp_path / "p", layout="arrow")
    with pytest.raises(InvalidInputError, match="no embeddings"):
        build_pool_index(d)


def test_damaged_metadata_names_the_demo() -> None:
    import pyarrow as pa

    from promptkd.pool.lazy import arrow_schema

    rows = {"id": ["a", "b"], "input": ["x", "y"], "output": ["1", "2"], "input_pair": [None, None]}
    lazy = LazyDemos(pa.Table.from_pydict({**rows, "metadata": ['{"k": 1}', "[1]"]}, schema=arrow_schema()))
    assert lazy[0].metadata == {"k": 1}
    with pytest.raises(InvalidInputError, match="demo 1"):
        list(lazy)
    with pytest.raises(InvalidInputError, match="demo 1"):
        lazy.metadata()
    good = LazyDemos(
        pa.Table.from_pydict({**rows, "metadata": ["{}", '{"k": [1, {"n": null}]}']}, schema=arrow_schema())
    )
    assert [d.metadata for d in good] == [{}, {"k": [1, {"n": None}]}]
    assert [r["metadata"] for r in good.records()] == [{}, {"k": [1, {"n": None}]}]
