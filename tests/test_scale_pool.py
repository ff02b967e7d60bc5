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
    assert entry["params"]["storage"] == "fp16"  # half-precision vectors in the graph; hits are scored in float32
    assert (d / entry["name"]).stat().st_size == entry["size"] and index.n == 400

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index was rebuilt")

    with monkeypatch.context() as m:
        m.setattr(faiss, "IndexHNSWFlat", no_build)
        m.setattr(faiss, "IndexHNSWSQ", no_build)
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


def test_columns_and_codes_read_without_building_demos(tmp_path: Path) -> None:
    pool = make_pool(n=90)
    lazy = DemoPool.open(pool.save(tmp_path / "p", layout="arrow"))
    lazy.add([Demo(input="late", output="zz"), Demo(input="later", output="0")], embeddings=np.ones((2, 16)))
    for p in (pool, lazy):
        for name in ("id", "input", "output", "input_pair"):
            assert p.column(name) == [getattr(d, name) for d in p]
        values = p.column("output")
        names, codes = p.column_codes("output")
        expected_names, expected_codes = np.unique(np.array(values), return_inverse=True)
        assert names == tuple(expected_names.tolist()) and codes.dtype == np.int64
        np.testing.assert_array_equal(codes, expected_codes)
    assert lazy.column_codes("output")[0][-1] == "zz"
    again = DemoPool.open(tmp_path / "p")
    again.column("output")
    again.column_codes("id")
    assert again.snapshot().demos.built == 0
    with pytest.raises(InvalidInputError, match="not a demo text field"):
        again.column("metadata")
    with pytest.raises(InvalidInputError, match="not a demo text field"):
        pool.column_codes("label")
    with pytest.raises(InvalidInputError, match="missing values"):
        again.column_codes("input_pair")


def test_index_storage_fp16_by_default_and_saved_flat_indexes_still_load(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    from promptkd.pool.ann import CandidateIndex

    pool = make_pool(n=300, dim=16)
    d = pool.save(tmp_path / "p", layout="arrow")
    flat = build_pool_index(d, storage="flat")
    assert flat.params["storage"] == "flat" and type(flat.index).__name__ == "IndexHNSWFlat"
    lazy = DemoPool.open(d)
    # "auto" loads the saved float32 index as it is; an explicit other storage builds its own
    assert CandidateIndex(lazy.embeddings, "hnsw").params["storage"] == "flat"
    assert CandidateIndex(lazy.embeddings, "hnsw", storage="fp16").params["storage"] == "fp16"
    old = manifest(d)
    del old["files"]["index"]["params"]["storage"]  # an index saved before the storage was recorded: float32
    (d / MANIFEST).write_text(json.dumps(old), encoding="utf-8")
    assert CandidateIndex(lazy.embeddings, "hnsw", storage="flat").params["storage"] == "flat"
    assert CandidateIndex(lazy.embeddings, "hnsw").params["storage"] == "flat"
    half = build_pool_index(d)
    assert half.params["storage"] == "fp16" and type(half.index).__name__ == "IndexHNSWSQ"
    Q = np.asarray(lazy.embeddings[:5])
    assert CandidateIndex(lazy.embeddings, "hnsw", ef_search=400).search(Q, 1)[:, 0].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(InvalidInputError, match="storage"):
        CandidateIndex(lazy.embeddings, "hnsw", storage="int8")


@pytest.mark.parametrize("layout", ["arrow", "jsonl"])
def test_row_norms_are_saved_and_mapped_on_open(tmp_path: Path, layout: str) -> None:
    for dtype in (np.float32, np.float16):
        pool = make_pool(n=70, dim=12, dtype=dtype)
        d = pool.save(tmp_path / f"p-{layout}-{np.dtype(dtype).name}", layout=layout)
        entry = manifest(d)["files"]["norms"]
        assert entry["embeddings"] == manifest(d)["files"]["embeddings"]["name"]
        lazy = DemoPool.open(d, verify=True)
        stored = lazy.snapshot().norms
        assert isinstance(stored, np.memmap) and lazy.embedding_norms() is stored
        # equal bit for bit to what a selector computes from the embeddings at fit
        expected = np.linalg.norm(np.asarray(pool.embeddings).astype(np.float32), axis=1)
        np.testing.assert_array_equal(stored, expected)
        np.testing.assert_array_equal(pool.embedding_norms(), expected)
        fitted = Selector(k=3).fit(lazy)
        np.testing.assert_array_equal(fitted.inv_norms_, (1.0 / np.maximum(stored, 1e-12)).astype(np.float32))
    # adding demos keeps the stored norms and computes the new rows' only; a subset slices them
    lazy.add(Demo(input="new", output="0"), embeddings=np.full((1, 12), 2.0))
    assert lazy.snapshot().norms is not None and lazy.embedding_norms()[-1] == pytest.approx(np.sqrt(48.0))
    np.testing.assert_array_equal(lazy.embedding_norms()[:70], stored)
    np.testing.assert_array_equal(lazy.subset([70, 3]).snapshot().norms, lazy.embedding_norms()[[70, 3]])
    plain = DemoPool([{"input": "a", "output": "x"}], embeddings=np.ones((1, 4)))
    plain.add({"input": "b", "output": "x"}, embeddings=np.ones((1, 4)))
    assert plain.snapshot().norms is None and plain.embedding_norms() is plain.embedding_norms()
    # a re-save writes new norms and removes the old file
    old = entry["name"]
    lazy.save(d, layout=layout)
    assert manifest(d)["files"]["norms"]["name"] != old and not (d / old).exists()
    assert len(DemoPool.open(d).embedding_norms()) == 71


def test_damaged_or_foreign_norms_are_reported_or_ignored(tmp_path: Path) -> None:
    pool = make_pool(n=50, dim=8)
    d = pool.save(tmp_path / "p", layout="arrow")
    m = manifest(d)
    norms_file = d / m["files"]["norms"]["name"]
    good = np.load(norms_file)
    np.save(norms_file, good * 2)  # right shape, wrong values
    assert DemoPool.open(d).snapshot().norms is not None  # structure only: not read
    with pytest.raises(PoolFormatError, match="checksum"):
        DemoPool.open(d, verify=True)
    from promptkd.pool.persistence import sha256_file

    m["files"]["norms"]["sha256"] = sha256_file(norms_file)  # consistent checksum, wrong values
    (d / MANIFEST).write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(PoolFormatError, match="differ from the embeddings"):
        DemoPool.open(d, verify=True)
    np.save(norms_file, good[:10])
    with pytest.raises(PoolFormatError, match="row norms"):
        DemoPool.open(d)
    m["files"]["norms"]["embeddings"] = "embeddings-other.npy"  # written for other embeddings: not used
    (d / MANIFEST).write_text(json.dumps(m), encoding="utf-8")
    assert DemoPool.open(d).snapshot().norms is None
    np.testing.assert_array_equal(DemoPool.open(d).embedding_norms(), good)
    del m["files"]["norms"]  # a pool saved before norms were stored
    (d / MANIFEST).write_text(json.dumps(m), encoding="utf-8")
    np.testing.assert_array_equal(DemoPool.open(d, verify=True).embedding_norms(), good)


def test_norms_added_to_an_older_pool_keep_its_index(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    from promptkd.pool.norms import write_pool_norms

    pool = make_pool(n=200, dim=8)
    d = pool.save(tmp_path / "p", layout="arrow")
    old = manifest(d)
    (d / old["files"].pop("norms")["name"]).unlink()  # as saved before norms were stored
    (d / MANIFEST).write_text(json.dumps(old), encoding="utf-8")
    build_pool_index(d)
    index_name = manifest(d)["files"]["index"]["name"]
    assert DemoPool.open(d).snapshot().norms is None
    write_pool_norms(d)
    after = manifest(d)["files"]
    assert after["index"]["name"] == index_name and (d / index_name).exists()
    opened = DemoPool.open(d, verify=True)
    np.testing.assert_array_equal(opened.snapshot().norms, np.linalg.norm(pool.embeddings, axis=1))
    assert find_saved_index(np.asarray(opened.embeddings)) is not None
    with pytest.raises(PoolFormatError, match="no embeddings"):
        write_pool_norms(DemoPool([{"input": "a", "output": "x"}]).save(tmp_path / "bare", layout="arrow"))


@pytest.mark.parametrize("advise", [True, False])
def test_warming_reads_what_is_asked_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, advise: bool
) -> None:
    from promptkd.pool import prefetch

    if not advise:  # no posix_fadvise (as on macOS): the bytes are read with os.pread instead
        monkeypatch.setattr(prefetch, "_ADVISE", None)
    pool = make_pool(n=3000, dim=64)
    d = pool.save(tmp_path / "p", layout="arrow")
    E = DemoPool.open(d).embeddings
    file, offset = prefetch.mapped_source(E)
    assert file.parent == d and offset == 128 and prefetch.mapped_source(E[10:])[1] == 128 + 10 * 64 * 4
    assert prefetch.mapped_source(np.asarray(pool.embeddings)) is None
    rows = np.array([2999, 5, 6, 5, 1500])
    got = prefetch.warm_rows(E, rows)
    assert 4096 < got <= 3 * 2 * 4096  # the pages of three spans (rows 5 and 6 share theirs), the last cut at the end
    assert prefetch.warm_rows(np.asarray(pool.embeddings), rows) == 0
    size = file.stat().st_size
    assert prefetch.warm_range(file) == size and prefetch.warm_range(file, 100, 5000, threads=3) == 4900
    assert prefetch.warm_range(tmp_path / "missing") == 0
    np.testing.assert_array_equal(E[rows], pool.embeddings[rows])


def test_graph_bytes_end_where_the_stored_vectors_begin(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    from promptkd.pool.ann import CandidateIndex, _graph_bytes

    X = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    for storage, code in (("fp16", b"IxSQ"), ("flat", b"IxFI")):
        f = CandidateIndex(X, "hnsw", storage=storage).save(tmp_path / f"{storage}.faiss")
        end = _graph_bytes(f)
        # after the neighbour lists: entry point, max level, efConstruction, efSearch, one unused int; then storage
        assert f.read_bytes()[end + 20 : end + 24] == code
        assert 300 * 4 < end < f.stat().st_size
    assert _graph_bytes(CandidateIndex(X, "exact").save(tmp_path / "exact.faiss")) == 0
    (tmp_path / "short.faiss").write_bytes(b"IHNs" + bytes(10))
    assert _graph_bytes(tmp_path / "short.faiss") == 0


def test_fit_on_an_opened_pool_imports_neither_pandas_nor_torch_without_a_gpu(tmp_path: Path) -> None:
    import subprocess
    import sys

    n = 20_000  # from this size device="auto" would load torch to look for a GPU
    rows = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
    d = DemoPool([{"input": f"t{i}", "output": str(i % 3)} for i in range(n)], embeddings=rows).save(
        tmp_path / "p", layout="arrow"
    )
    code = (
        "import sys; import pyarrow, pyarrow.compute; import promptkd._device as dev; "
        "dev.accelerator_possible = lambda: False; from promptkd import DemoPool, Selector; "
        f"s = Selector(k=2, kernel='rbf', order='label_prior').fit(DemoPool.open({str(d)!r})); "
        "print('pandas' in sys.modules, 'torch' in sys.modules, s.device_); "
        f"s = Selector(k=2).fit(DemoPool.open({str(d)!r})); "
        "print('pandas' in sys.modules, 'torch' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # pandas takes half a second to import and label codes do not need it; torch takes seconds and, with no GPU
    # device on the machine, would only answer "cpu". The default's word features need neither nor scikit-learn.
    assert out.stdout.split() == ["False", "False", "numpy", "False", "False", "False"]


def test_accelerator_possible_is_true_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from promptkd._device import accelerator_possible

    monkeypatch.setattr(sys, "platform", "darwin")  # MPS may be there: torch is asked
    assert accelerator_possible() is True
