"""Hypothesis fuzzing: pool loading, JSONL readers, kernels and MMD.

* ``DemoPool.load`` on a saved pool whose manifest, demos or embeddings file holds
  arbitrary bytes (with and without matching checksums, so the parsers behind the
  checksum are reached too) or arbitrary JSON in the manifest fields: it either loads
  a consistent pool or raises ``PoolFormatError`` / ``PersistenceError``, nothing else.
* ``read_jsonl`` / ``DemoPool.from_jsonl`` on arbitrary bytes and arbitrary JSON records:
  a list of dicts / a pool, or ``InvalidInputError`` (or ``InvalidTypeError``).
* kernels and MMD on arbitrary finite arrays: finite, symmetric, PSD, unit diagonal
  where the kernel is normalised, biased MMD2 >= 0, MMD2(X, X) = 0, row-order invariance.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from promptkd import DemoPool
from promptkd.embeddings import HashingEmbedder
from promptkd.exceptions import InvalidInputError, PersistenceError, PoolFormatError
from promptkd.kernels import KERNELS, kernel_diag, median_bandwidth, mmd2
from promptkd.pool import read_jsonl
from promptkd.pool.persistence import MANIFEST

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False)


def record_count(kind: str, n: int = 1) -> None:
    """Append to the reliability counts file when benchmarks/reliability_report.py asks for it."""
    path = os.environ.get("PROMPTKD_RELIABILITY_COUNTS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"kind": kind, "n": n}) + "\n")


# ---------------------------------------------------------------------------- DemoPool.load
@pytest.fixture(scope="module")
def template_pool() -> Path:
    root = Path(tempfile.mkdtemp(prefix="promptkd-fuzz-"))
    pool = DemoPool(
        [{"input": f"demo {i} é", "output": str(i % 2), "metadata": {"i": i}} for i in range(5)],
        embedder=HashingEmbedder(dim=8),
    )
    pool.embed()
    pool.save(root / "pool")
    yield root / "pool"
    shutil.rmtree(root, ignore_errors=True)


def fresh_copy(template: Path) -> tuple[Path, dict[str, Any]]:
    target = Path(tempfile.mkdtemp(prefix="promptkd-fuzz-case-")) / "pool"
    shutil.copytree(template, target)
    return target, json.loads((target / MANIFEST).read_text(encoding="utf-8"))


def file_of(path: Path, manifest: dict[str, Any], which: str) -> Path:
    return path / MANIFEST if which == "manifest" else path / manifest["files"][which]["name"]


def check_load(path: Path, mmap: bool, verify: bool) -> None:
    try:
        pool = DemoPool.load(path, mmap=mmap, verify=verify)
    except (PoolFormatError, PersistenceError) as err:
        assert str(err)
        return
    finally:
        record_count("fuzz_examples")
    # if it loads, it is a consistent pool
    snap = pool.snapshot()
    assert len(set(pool.ids)) == len(pool)
    if snap.embeddings is not None:
        E = np.asarray(snap.embeddings)
        assert E.shape[0] == len(pool) and np.all(np.isfinite(E))


mutation = st.one_of(
    st.tuples(st.just("replace"), st.binary(max_size=600)),
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 7)), min_size=1, max_size=4)),
    st.tuples(st.just("insert"), st.tuples(st.floats(0.0, 1.0), st.binary(min_size=1, max_size=40))),
)


def mutate(data: bytes, how: tuple[str, Any]) -> bytes:
    kind, arg = how
    if kind == "replace":
        return arg
    if kind == "truncate":
        return data[: int(arg * len(data))]
    if kind == "flip":
        out = bytearray(data)
        for frac, bit in arg:
            if out:
                out[min(int(frac * len(out)), len(out) - 1)] ^= 1 << bit
        return bytes(out)
    pos, extra = arg
    cut = int(pos * len(data))
    return data[:cut] + extra + data[cut:]


@FUZZ
@given(
    which=st.sampled_from(["manifest", "demos", "embeddings"]),
    how=mutation,
    fix_checksum=st.booleans(),
    verify=st.booleans(),
    mmap=st.booleans(),
)
def test_load_survives_arbitrary_bytes_in_each_file(
    template_pool: Path, which: str, how: tuple[str, Any], fix_checksum: bool, verify: bool, mmap: bool
) -> None:
    path, manifest = fresh_copy(template_pool)
    try:
        target = file_of(path, manifest, which)
        target.write_bytes(mutate(target.read_bytes(), how))
        if fix_checksum and which != "manifest":
            manifest["files"][which]["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
            (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        check_load(path, mmap=mmap, verify=verify)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(
    path_in_manifest=st.sampled_from(
        [
            ("format",),
            ("schema_version",),
            ("count",),
            ("files",),
            ("embedder",),
            ("embedder", "dim"),
            ("embedder", "id"),
            ("files", "demos"),
            ("files", "demos", "name"),
            ("files", "embeddings"),
            ("files", "embeddings", "name"),
            ("files", "embeddings", "sha256"),
        ]
    ),
    value=json_values,
)
def test_load_survives_arbitrary_json_in_manifest_fields(
    template_pool: Path, path_in_manifest: tuple[str, ...], value: Any
) -> None:
    path, manifest = fresh_copy(template_pool)
    try:
        node = manifest
        for key in path_in_manifest[:-1]:
            node = node[key]
        node[path_in_manifest[-1]] = value
        (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        check_load(path, mmap=False, verify=True)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


@FUZZ
@given(
    records=st.lists(
        st.dictionaries(st.sampled_from(["input", "output", "id", "metadata", "x"]), json_values), max_size=4
    )
)
def test_load_survives_arbitrary_demo_records_with_valid_checksums(template_pool: Path, records: list) -> None:
    path, manifest = fresh_copy(template_pool)
    try:
        demos = path / manifest["files"]["demos"]["name"]
        demos.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        manifest["files"]["demos"]["sha256"] = hashlib.sha256(demos.read_bytes()).hexdigest()
        manifest["count"] = len(records)
        del manifest["files"]["embeddings"]
        (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        check_load(path, mmap=False, verify=True)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


# ---------------------------------------------------------------------------- JSONL readers
@FUZZ
@given(data=st.binary(max_size=800))
def test_read_jsonl_on_arbitrary_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "f.jsonl"
        p.write_bytes(data)
        try:
            records = read_jsonl(p)
        except InvalidInputError as err:
            assert "f.jsonl" in str(err)
        else:
            assert records and all(isinstance(r, dict) for r in records)
        try:
            DemoPool.from_jsonl(p, embedder=HashingEmbedder(dim=8))
        except InvalidInputError as err:  # InvalidTypeError is a subclass
            assert str(err)
        record_count("fuzz_examples", 2)


@FUZZ
@given(
    records=st.lists(
        st.dictionaries(st.sampled_from(["input", "output", "id", "metadata", "label"]), json_values, max_size=5),
        min_size=1,
        max_size=5,
    )
)
def test_from_jsonl_on_arbitrary_records(records: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "f.jsonl"
        p.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
        try:
            pool = DemoPool.from_jsonl(p, embedder=HashingEmbedder(dim=8))
        except InvalidInputError as err:
            assert str(err)
        else:
            assert len(pool) == len(records)
            assert pool.embeddings.shape == (len(records), 8)
        record_count("fuzz_examples")


# ---------------------------------------------------------------------------- kernels and MMD
finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=64)
small_floats = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)


def matrices(max_rows: int = 8, elements: st.SearchStrategy = finite) -> st.SearchStrategy:
    return st.integers(1, 5).flatmap(
        lambda d: st.tuples(
            arrays(np.float64, st.tuples(st.integers(1, max_rows), st.just(d)), elements=elements),
            arrays(np.float64, st.tuples(st.integers(1, max_rows), st.just(d)), elements=elements),
        )
    )


@FUZZ
@given(pair=matrices(), kernel=st.sampled_from(["rbf", "laplacian", "imq", "cosine", "linear"]))
def test_kernels_on_arbitrary_finite_arrays(pair: tuple[np.ndarray, np.ndarray], kernel: str) -> None:
    X, Y = pair
    fn = KERNELS[kernel]
    bw = median_bandwidth(X, Y)
    assert np.isfinite(bw) and bw > 0
    K = fn(X, bandwidth=bw)
    Kxy = fn(X, Y, bandwidth=bw)
    assert np.all(np.isfinite(K)) and np.all(np.isfinite(Kxy))
    scale = max(1.0, float(np.abs(K).max()))
    np.testing.assert_allclose(K, K.T, atol=1e-9 * scale)
    np.testing.assert_allclose(Kxy, fn(Y, X, bandwidth=bw).T, atol=1e-9 * scale)
    assert np.linalg.eigvalsh((K + K.T) / 2).min() >= -1e-7 * scale * len(X)
    if kernel in ("rbf", "laplacian", "imq"):
        assert np.all((K >= 0) & (K <= 1 + 1e-12))
        np.testing.assert_allclose(np.diag(K), 1.0)
        np.testing.assert_allclose(kernel_diag(X, kernel=kernel, bandwidth=bw), 1.0)
    if kernel == "cosine":
        assert np.all(np.abs(K) <= 1 + 1e-9)
    # torch inputs give a tensor with the same values
    Kt = fn(torch.as_tensor(X), torch.as_tensor(Y), bandwidth=bw)
    assert isinstance(Kt, torch.Tensor) and Kt.dtype == torch.float64
    np.testing.assert_allclose(Kt.numpy(), Kxy, rtol=1e-9, atol=1e-9 * scale)
    record_count("fuzz_examples")


@FUZZ
@given(
    pair=matrices(elements=small_floats),
    kernel=st.sampled_from(["rbf", "laplacian", "imq", "cosine", "linear"]),
    seed=st.integers(0, 2**16),
)
def test_mmd_on_arbitrary_finite_arrays(pair: tuple[np.ndarray, np.ndarray], kernel: str, seed: int) -> None:
    X, Y = pair
    value = mmd2(X, Y, kernel=kernel)
    assert np.isfinite(value) and value >= 0.0
    assert mmd2(X, X, kernel=kernel) == pytest.approx(0.0, abs=1e-9 * max(1.0, float(np.abs(X).max()) ** 2))
    rng = np.random.default_rng(seed)
    px, py = rng.permutation(len(X)), rng.permutation(len(Y))
    tol = 1e-9 * max(1.0, float(np.abs(np.vstack([X, Y])).max()) ** 2)
    assert mmd2(X[px], Y[py], kernel=kernel) == pytest.approx(value, abs=tol)
    assert mmd2(Y, X, kernel=kernel) == pytest.approx(value, abs=tol)
    w, v = rng.uniform(0.01, 1.0, size=len(X)), rng.uniform(0.01, 1.0, size=len(Y))
    weighted = mmd2(X, Y, kernel=kernel, weights_x=w, weights_y=v)
    assert np.isfinite(weighted) and weighted >= 0.0
    if len(X) >= 2 and len(Y) >= 2:
        assert np.isfinite(mmd2(X, Y, kernel=kernel, unbiased=True))
    record_count("fuzz_examples")
