"""Bad-input matrix: every public entry point, driven with bad inputs.

Each case must raise the promptkd exception family named in the table (never a
bare numpy/torch/pydantic error), with a message that names the argument or file
(the ``match`` pattern) and is long enough to say what to change. Cases that
mutate an object also check that the object is unchanged afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from promptkd import Demo, DemoPool, PromptTemplate, Selector
from promptkd._device import resolve_device
from promptkd.embeddings import CachedEmbedder, EmbeddingCache, HashingEmbedder, SentenceTransformerEmbedder
from promptkd.exceptions import (
    InvalidInputError,
    InvalidTypeError,
    NotFittedError,
    PersistenceError,
    PoolFormatError,
    PromptKDError,
)
from promptkd.kernels import (
    cosine,
    get_kernel,
    imq,
    kernel_diag,
    laplacian,
    linear,
    median_bandwidth,
    mmd2,
    mmd2_from_kernels,
    mmd2_linear,
    mmd_permutation_test,
    rbf,
)
from promptkd.pool import read_jsonl
from promptkd.rendering import as_template


def record_count(kind: str, n: int = 1) -> None:
    """Append to the reliability counts file when benchmarks/reliability_report.py asks for it."""
    path = os.environ.get("PROMPTKD_RELIABILITY_COUNTS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"kind": kind, "n": n}) + "\n")


def small_pool(embedded: bool = True) -> DemoPool:
    pool = DemoPool(
        [{"input": f"text number {i} about {t}", "output": t} for i, t in enumerate(["a", "b", "c", "a", "b", "c"])],
        embedder=HashingEmbedder(dim=16),
    )
    if embedded:
        pool.embed()
    return pool


def fitted() -> Selector:
    return Selector(k=2).fit(small_pool())


X3 = np.random.default_rng(0).normal(size=(4, 3))
X5 = np.random.default_rng(1).normal(size=(4, 5))
NAN = X3.copy()
NAN[1, 2] = np.nan
INF = X3.copy()
INF[0, 0] = np.inf
STRS = np.array([["a", "b", "c"]])
CPLX = X3 + 1j
RAGGED = [[1.0, 2.0], [3.0]]


def pool_state(pool: DemoPool) -> tuple[Any, ...]:
    snap = pool.snapshot()
    return (tuple(d.id for d in snap.demos), None if snap.embeddings is None else snap.embeddings.copy())


def same_state(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return a[0] == b[0] and ((a[1] is None and b[1] is None) or np.array_equal(a[1], b[1]))


Case = tuple[Callable[[], Any], type[Exception], str]

# ---------------------------------------------------------------------------- Demo and DemoPool
POOL_CASES: dict[str, Case] = {
    "Demo-input-None": (lambda: Demo(input=None, output="x"), InvalidTypeError, "input"),
    "Demo-input-list": (lambda: Demo(input=["a"], output="x"), InvalidTypeError, "input"),
    "Demo-missing-output": (lambda: Demo(input="a"), InvalidInputError, "output"),
    "Demo-unknown-field": (lambda: Demo(input="a", output="b", label="c"), InvalidInputError, "label"),
    "Demo-metadata-str": (lambda: Demo(input="a", output="b", metadata="m"), InvalidTypeError, "metadata"),
    "DemoPool-None": (lambda: DemoPool(None), InvalidTypeError, "demos"),
    "DemoPool-str": (lambda: DemoPool("abc"), InvalidTypeError, "demos"),
    "DemoPool-int": (lambda: DemoPool(5), InvalidTypeError, "demos"),
    "DemoPool-int-items": (lambda: DemoPool([1, 2]), InvalidTypeError, r"demos\[0\]"),
    "DemoPool-missing-output": (lambda: DemoPool([{"input": "a"}]), InvalidInputError, "output"),
    "DemoPool-None-input": (lambda: DemoPool([{"input": None, "output": "x"}]), InvalidTypeError, "input"),
    "DemoPool-extra-key": (
        lambda: DemoPool([{"input": "a", "output": "x", "label": 1}]),
        InvalidInputError,
        "label",
    ),
    "DemoPool-duplicate-ids": (
        lambda: DemoPool([{"input": "a", "output": "x"}, {"input": "a", "output": "x"}]),
        InvalidInputError,
        "duplicate",
    ),
    "DemoPool-duplicate-given-ids": (
        lambda: DemoPool([{"input": "a", "output": "x", "id": 1}, {"input": "b", "output": "y", "id": "1"}]),
        InvalidInputError,
        "duplicate",
    ),
    "DemoPool-embeddings-NaN": (
        lambda: DemoPool([{"input": str(i), "output": "x"} for i in range(4)], embeddings=NAN),
        InvalidInputError,
        "NaN",
    ),
    "DemoPool-embeddings-inf": (
        lambda: DemoPool([{"input": str(i), "output": "x"} for i in range(4)], embeddings=INF),
        InvalidInputError,
        "infinite",
    ),
    "DemoPool-embeddings-rows": (
        lambda: DemoPool([{"input": "a", "output": "x"}], embeddings=X3),
        InvalidInputError,
        "rows",
    ),
    "DemoPool-embeddings-3d": (
        lambda: DemoPool([{"input": "a", "output": "x"}], embeddings=np.zeros((1, 2, 2))),
        InvalidInputError,
        "2-D",
    ),
    "DemoPool-embeddings-strings": (
        lambda: DemoPool([{"input": "a", "output": "x"}], embeddings=STRS),
        InvalidTypeError,
        "embeddings",
    ),
    "DemoPool-embeddings-ragged": (
        lambda: DemoPool([{"input": "a", "output": "x"}] * 1, embeddings=RAGGED),
        InvalidTypeError,
        "embeddings",
    ),
    "DemoPool-embedder-str": (
        lambda: DemoPool([{"input": "a", "output": "x"}], embedder="hashing"),
        InvalidTypeError,
        "embedder",
    ),
    "from_records-None": (lambda: DemoPool.from_records(None), InvalidTypeError, "records"),
    "from_records-dict": (lambda: DemoPool.from_records({"input": "a"}), InvalidTypeError, "records"),
    "from_records-items": (lambda: DemoPool.from_records([1]), InvalidTypeError, r"records\[0\]"),
    "from_records-missing-key": (
        lambda: DemoPool.from_records([{"text": "a", "label": "b"}]),
        InvalidInputError,
        "input_key",
    ),
    "read_jsonl-int": (lambda: read_jsonl(3), InvalidTypeError, "path"),
    "read_jsonl-None": (lambda: read_jsonl(None), InvalidTypeError, "path"),
    "from_jsonl-missing": (lambda: DemoPool.from_jsonl("/no/such/file.jsonl"), InvalidInputError, "does not exist"),
    "embed-empty-pool": (lambda: DemoPool([], embedder=HashingEmbedder()).embed(), InvalidInputError, "empty"),
    "embed-batch-size-0": (lambda: small_pool(False).embed(batch_size=0), InvalidInputError, "batch_size"),
    "getitem-out-of-range": (lambda: small_pool()[99], InvalidInputError, "index"),
    "getitem-str": (lambda: small_pool()["a"], InvalidTypeError, "index"),
    "subset-out-of-range": (lambda: small_pool().subset([0, 99]), InvalidInputError, "99"),
    "filter-predicate-int": (lambda: small_pool().filter(5), InvalidTypeError, "predicate"),
    "filter-where-list": (lambda: small_pool().filter(where=["a"]), InvalidTypeError, "where"),
    "index_of-unknown": (lambda: small_pool().index_of("nope"), InvalidInputError, "nope"),
    "encode_texts-str": (lambda: small_pool().encode_texts("abc"), InvalidTypeError, "list of strings"),
    "precomputed-pool-text-query": (
        lambda: DemoPool([{"input": "a", "output": "x"}], embeddings=X3[:1]).encode_texts(["q"]),
        InvalidInputError,
        "embedder",
    ),
    "save-metadata-not-json": (
        lambda: DemoPool([{"input": "a", "output": "x", "metadata": {"s": {1, 2}}}]).save(_tmp() / "p"),
        InvalidInputError,
        "metadata",
    ),
    "save-onto-file": (lambda: small_pool().save(_tmp_file()), PersistenceError, "not a directory"),
    "load-missing-dir": (lambda: DemoPool.load("/no/such/pool"), PoolFormatError, "not a directory"),
    "load-int-path": (lambda: DemoPool.load(5), InvalidTypeError, "path"),
    "load-plain-dir": (lambda: DemoPool.load(_tmp()), PoolFormatError, "manifest.json"),
    "load-embedder-mismatch": (
        lambda: DemoPool.load(small_pool().save(_tmp() / "p"), embedder=HashingEmbedder(dim=8)),
        InvalidInputError,
        "embedder",
    ),
    "load-embedder-wrong-type": (
        lambda: DemoPool.load(small_pool().save(_tmp() / "p"), embedder="hashing"),
        InvalidTypeError,
        "embedder",
    ),
}


def _tmp() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="promptkd-bad-"))


def _tmp_file() -> Path:
    p = _tmp() / "file.txt"
    p.write_text("x")
    return p


# mutations on an existing pool: the pool must be unchanged afterwards
ADD_CASES: dict[str, tuple[Callable[[DemoPool], Any], type[Exception], str]] = {
    "add-None": (lambda p: p.add(None), InvalidTypeError, "demos"),
    "add-int": (lambda p: p.add(5), InvalidTypeError, "demos"),
    "add-missing-output": (lambda p: p.add([{"input": "new"}]), InvalidInputError, "output"),
    "add-existing-id": (lambda p: p.add(p[0]), InvalidInputError, "duplicate"),
    "add-duplicate-in-batch": (
        lambda p: p.add([{"input": "n", "output": "o"}, {"input": "n", "output": "o"}]),
        InvalidInputError,
        "duplicate",
    ),
    "add-second-item-bad": (lambda p: p.add([{"input": "ok", "output": "x"}, 7]), InvalidTypeError, r"demos\[1\]"),
    "add-embeddings-dim": (
        lambda p: p.add({"input": "n", "output": "o"}, embeddings=np.ones((1, 5))),
        InvalidInputError,
        "dimension",
    ),
    "add-embeddings-NaN": (
        lambda p: p.add({"input": "n", "output": "o"}, embeddings=np.full((1, 16), np.nan)),
        InvalidInputError,
        "NaN",
    ),
    "add-embeddings-rows": (
        lambda p: p.add({"input": "n", "output": "o"}, embeddings=np.ones((2, 16))),
        InvalidInputError,
        "rows",
    ),
}

# ---------------------------------------------------------------------------- Selector
SELECTOR_CASES: dict[str, Case] = {
    "fit-None": (lambda: Selector(k=2).fit(None), InvalidTypeError, "DemoPool"),
    "fit-list": (lambda: Selector(k=2).fit([{"input": "a", "output": "b"}]), InvalidTypeError, "DemoPool"),
    "fit-empty-pool": (lambda: Selector(k=2).fit(DemoPool([], embedder=HashingEmbedder())), InvalidInputError, "empty"),
    "k-zero": (lambda: Selector(k=0).fit(small_pool()), InvalidInputError, "k"),
    "k-negative": (lambda: Selector(k=-3).fit(small_pool()), InvalidInputError, "k"),
    "k-str": (lambda: Selector(k="3").fit(small_pool()), PromptKDError, "k"),
    "k-float": (lambda: Selector(k=2.5).fit(small_pool()), InvalidTypeError, "k"),
    "k-bool": (lambda: Selector(k=True).fit(small_pool()), InvalidTypeError, "k"),
    "candidates-zero": (lambda: Selector(candidates=0).fit(small_pool()), InvalidInputError, "candidates"),
    "seed-negative": (lambda: Selector(seed=-1).fit(small_pool()), InvalidInputError, "seed"),
    "bandwidth-word": (lambda: Selector(bandwidth="mean").fit(small_pool()), InvalidInputError, "bandwidth"),
    "bandwidth-negative": (lambda: Selector(bandwidth=-1.0).fit(small_pool()), InvalidInputError, "bandwidth"),
    "bandwidth-empty-list": (lambda: Selector(bandwidth=[]).fit(small_pool()), InvalidInputError, "bandwidth"),
    "bandwidth-nan": (lambda: Selector(bandwidth=float("nan")).fit(small_pool()), InvalidInputError, "bandwidth"),
    "kernel-unknown": (lambda: Selector(k=2, kernel="nope").fit(small_pool()).select("a"), InvalidInputError, "kernel"),
    "order-unknown": (lambda: Selector(k=2, order="bogus").fit(small_pool()).select("a"), InvalidInputError, "bogus"),
    "select-unfitted": (lambda: Selector(k=2).select("a"), NotFittedError, "fit"),
    "select-None": (lambda: fitted().select(None), InvalidTypeError, "query"),
    "select-empty-str": (lambda: fitted().select(""), InvalidInputError, "query"),
    "select-blank-str": (lambda: fitted().select("   "), InvalidInputError, "query"),
    "select-empty-list": (lambda: fitted().select([]), InvalidInputError, "query"),
    "select-list-with-blank": (lambda: fitted().select(["ok", ""]), InvalidInputError, r"query\[1\]"),
    "select-mixed-list": (lambda: fitted().select(["ok", 3]), InvalidTypeError, "query"),
    "select-bytes": (lambda: fitted().select(b"abc"), InvalidTypeError, "query"),
    "select-dict": (lambda: fitted().select({"q": 1}), InvalidTypeError, "query"),
    "select-array-NaN": (lambda: fitted().select(np.full(16, np.nan)), InvalidInputError, "NaN"),
    "select-array-inf": (lambda: fitted().select(np.full((2, 16), np.inf)), InvalidInputError, "infinite"),
    "select-array-dim": (lambda: fitted().select(np.ones(5)), InvalidInputError, "dimension"),
    "select-array-3d": (lambda: fitted().select(np.ones((2, 2, 16))), InvalidInputError, "2-D"),
    "select-torch-NaN": (lambda: fitted().select(torch.full((1, 16), float("nan"))), InvalidInputError, "NaN"),
    "select-k-zero": (lambda: fitted().select("a", k=0), InvalidInputError, "k"),
    "select-k-too-large": (lambda: fitted().select("a", k=7), InvalidInputError, "larger than the pool"),
    "select-k-str": (lambda: fitted().select("a", k="2"), InvalidTypeError, "k"),
    "select_batch-str": (lambda: fitted().select_batch("abc"), InvalidTypeError, "select_batch"),
    "select_batch-blank": (lambda: fitted().select_batch(["a", " "]), InvalidInputError, r"queries\[1\]"),
    "select_batch-unfitted": (lambda: Selector(k=2).select_batch(["a"]), NotFittedError, "fit"),
    "select_batch-3d": (lambda: fitted().select_batch(np.ones((2, 2, 16))), InvalidInputError, "2-D"),
    "select_batch-k-too-large": (lambda: fitted().select_batch(["a"], k=99), InvalidInputError, "larger"),
}

# ---------------------------------------------------------------------------- kernels and MMD
KERNEL_FNS = {"rbf": rbf, "laplacian": laplacian, "imq": imq, "cosine": cosine, "linear": linear}
KERNEL_CASES: dict[str, Case] = {}
for _name, _fn in KERNEL_FNS.items():
    KERNEL_CASES.update(
        {
            f"{_name}-None": (lambda f=_fn: f(None), InvalidTypeError, "X"),
            f"{_name}-dim-mismatch": (lambda f=_fn: f(X3, X5), InvalidInputError, "dimension"),
            f"{_name}-NaN": (lambda f=_fn: f(NAN), InvalidInputError, "NaN"),
            f"{_name}-inf-Y": (lambda f=_fn: f(X3, INF), InvalidInputError, "Y"),
            f"{_name}-strings": (lambda f=_fn: f(STRS), InvalidTypeError, "X"),
            f"{_name}-complex": (lambda f=_fn: f(CPLX), InvalidTypeError, "X"),
            f"{_name}-ragged": (lambda f=_fn: f(RAGGED), InvalidTypeError, "X"),
            f"{_name}-3d": (lambda f=_fn: f(np.ones((2, 2, 2))), InvalidInputError, "2-D"),
            f"{_name}-torch-NaN": (lambda f=_fn: f(torch.as_tensor(NAN)), InvalidInputError, "NaN"),
        }
    )
for _name in ("rbf", "laplacian", "imq"):
    KERNEL_CASES.update(
        {
            f"{_name}-bandwidth-zero": (
                lambda n=_name: KERNEL_FNS[n](X3, bandwidth=0.0),
                InvalidInputError,
                "bandwidth",
            ),
            f"{_name}-bandwidth-inf": (
                lambda n=_name: KERNEL_FNS[n](X3, bandwidth=float("inf")),
                InvalidInputError,
                "bandwidth",
            ),
            f"{_name}-bandwidth-word": (
                lambda n=_name: KERNEL_FNS[n](X3, bandwidth="auto"),
                InvalidInputError,
                "bandwidth",
            ),
            f"{_name}-bandwidth-bool": (
                lambda n=_name: KERNEL_FNS[n](X3, bandwidth=True),
                InvalidTypeError,
                "bandwidth",
            ),
            f"{_name}-bandwidth-list-bad": (
                lambda n=_name: KERNEL_FNS[n](X3, bandwidth=[1.0, -2.0]),
                InvalidInputError,
                "bandwidth",
            ),
        }
    )
KERNEL_CASES.update(
    {
        "get_kernel-unknown": (lambda: get_kernel("poly"), InvalidInputError, "kernel"),
        "get_kernel-int": (lambda: get_kernel(3), InvalidInputError, "kernel"),
        "kernel_diag-NaN": (lambda: kernel_diag(NAN), InvalidInputError, "NaN"),
        "kernel_diag-unknown": (lambda: kernel_diag(X3, kernel="poly"), InvalidInputError, "kernel"),
        "median_bandwidth-NaN": (lambda: median_bandwidth(NAN), InvalidInputError, "NaN"),
        "median_bandwidth-dims": (lambda: median_bandwidth(X3, X5), InvalidInputError, "dimension"),
        "median_bandwidth-max-samples": (lambda: median_bandwidth(X3, max_samples=1), InvalidInputError, "max_samples"),
        "median_bandwidth-strings": (lambda: median_bandwidth(STRS), InvalidTypeError, "X"),
        "mmd2-None": (lambda: mmd2(None, X3), InvalidTypeError, "None"),
        "mmd2-empty": (lambda: mmd2(np.zeros((0, 3)), X3), InvalidInputError, "non-empty"),
        "mmd2-dims": (lambda: mmd2(X3, X5), InvalidInputError, "dimension"),
        "mmd2-NaN": (lambda: mmd2(NAN, X3), InvalidInputError, "NaN"),
        "mmd2-inf-Y": (lambda: mmd2(X3, INF), InvalidInputError, "Y"),
        "mmd2-strings": (lambda: mmd2(STRS, STRS), InvalidTypeError, "X"),
        "mmd2-list-of-str": (lambda: mmd2(["a", "b"], ["c"]), InvalidTypeError, "X"),
        "mmd2-complex": (lambda: mmd2(CPLX, X3), InvalidTypeError, "X"),
        "mmd2-kernel-unknown": (lambda: mmd2(X3, X3, kernel="poly"), InvalidInputError, "kernel"),
        "mmd2-unbiased-one-row": (lambda: mmd2(X3[:1], X3, unbiased=True), InvalidInputError, "2 rows"),
        "mmd2-unbiased-weights": (
            lambda: mmd2(X3, X3, unbiased=True, weights_x=np.ones(4)),
            InvalidInputError,
            "weights",
        ),
        "mmd2-weights-length": (lambda: mmd2(X3, X3, weights_x=[1.0, 2.0]), InvalidInputError, "weights_x"),
        "mmd2-weights-negative": (lambda: mmd2(X3, X3, weights_y=[1, -1, 1, 1]), InvalidInputError, "weights_y"),
        "mmd2-weights-zero": (lambda: mmd2(X3, X3, weights_y=np.zeros(4)), InvalidInputError, "weights_y"),
        "mmd2-weights-NaN": (lambda: mmd2(X3, X3, weights_x=[np.nan, 1, 1, 1]), InvalidInputError, "weights_x"),
        "mmd2-weights-str": (lambda: mmd2(X3, X3, weights_x=["a"] * 4), InvalidTypeError, "weights_x"),
        "mmd2-torch-NaN": (lambda: mmd2(torch.as_tensor(NAN), X3), InvalidInputError, "NaN"),
        "mmd2-bandwidth-neg": (lambda: mmd2(X3, X3, bandwidth=-1), InvalidInputError, "bandwidth"),
        "mmd2_linear-one-row": (lambda: mmd2_linear(X3[:1], X3), InvalidInputError, "2 rows"),
        "mmd2_linear-NaN": (lambda: mmd2_linear(NAN, X3), InvalidInputError, "NaN"),
        "permutation-n-zero": (
            lambda: mmd_permutation_test(X3, X3, n_permutations=0),
            InvalidInputError,
            "n_permutations",
        ),
        "permutation-n-str": (
            lambda: mmd_permutation_test(X3, X3, n_permutations="9"),
            InvalidTypeError,
            "n_permutations",
        ),
        "permutation-seed-negative": (lambda: mmd_permutation_test(X3, X3, seed=-1), InvalidInputError, "seed"),
        "permutation-dims": (lambda: mmd_permutation_test(X3, X5), InvalidInputError, "dimension"),
        "from_kernels-shapes": (
            lambda: mmd2_from_kernels(np.eye(2), np.eye(3), np.ones((3, 3))),
            InvalidInputError,
            "K_xx",
        ),
        "from_kernels-NaN": (
            lambda: mmd2_from_kernels(np.full((2, 2), np.nan), np.eye(2), np.eye(2)),
            InvalidInputError,
            "K_xx",
        ),
        "from_kernels-1d": (lambda: mmd2_from_kernels(np.eye(2), np.eye(2), np.ones(2)), InvalidInputError, "K_xy"),
        "from_kernels-strings": (
            lambda: mmd2_from_kernels(np.eye(2), np.eye(2), [["a", "b"], ["c", "d"]]),
            InvalidTypeError,
            "array of numbers",
        ),
    }
)

# ---------------------------------------------------------------------------- embedders, device, templates
EMBEDDER_CASES: dict[str, Case] = {
    "Hashing-dim-zero": (lambda: HashingEmbedder(dim=0), InvalidInputError, "dim"),
    "Hashing-dim-float": (lambda: HashingEmbedder(dim=8.0), InvalidTypeError, "dim"),
    "Hashing-dim-str": (lambda: HashingEmbedder(dim="8"), InvalidTypeError, "dim"),
    "Hashing-encode-str": (lambda: HashingEmbedder().encode("abc"), InvalidTypeError, "texts"),
    "Hashing-encode-None": (lambda: HashingEmbedder().encode(None), InvalidTypeError, "texts"),
    "Hashing-encode-ints": (lambda: HashingEmbedder().encode([1, 2]), InvalidTypeError, r"texts\[0\]"),
    "Hashing-encode-None-item": (lambda: HashingEmbedder().encode(["a", None]), InvalidTypeError, r"texts\[1\]"),
    "ST-model-int": (lambda: SentenceTransformerEmbedder(5), InvalidTypeError, "model"),
    "ST-model-empty": (lambda: SentenceTransformerEmbedder(""), InvalidInputError, "model"),
    "ST-device-unknown": (lambda: SentenceTransformerEmbedder(device="tpu"), InvalidInputError, "device"),
    "ST-device-int": (lambda: SentenceTransformerEmbedder(device=0), InvalidTypeError, "device"),
    "ST-device-bad-index": (lambda: SentenceTransformerEmbedder(device="cuda:x"), InvalidInputError, "device"),
    "ST-batch-size-zero": (lambda: SentenceTransformerEmbedder(batch_size=0), InvalidInputError, "batch_size"),
    "ST-trust-remote-code-str": (
        lambda: SentenceTransformerEmbedder(trust_remote_code="yes"),
        InvalidTypeError,
        "trust_remote_code",
    ),
    "ST-encode-str": (lambda: SentenceTransformerEmbedder(device="cpu").encode("abc"), InvalidTypeError, "texts"),
    "ST-encode-batch-size": (
        lambda: SentenceTransformerEmbedder(device="cpu").encode(["a"], batch_size=-1),
        InvalidInputError,
        "batch_size",
    ),
    "Cached-embedder-object": (lambda: CachedEmbedder(object(), _tmp() / "c.sqlite"), InvalidTypeError, "embedder"),
    "Cached-cache-int": (lambda: CachedEmbedder(HashingEmbedder(), 5), InvalidTypeError, "cache"),
    "Cached-encode-str": (
        lambda: CachedEmbedder(HashingEmbedder(), _tmp() / "c.sqlite").encode("abc"),
        InvalidTypeError,
        "texts",
    ),
    "EmbeddingCache-directory": (lambda: EmbeddingCache(_tmp()), PersistenceError, "cache"),
    "resolve_device-gpu": (lambda: resolve_device("gpu"), InvalidInputError, "device"),
    "resolve_device-negative": (lambda: resolve_device("cuda:-1"), InvalidInputError, "device"),
    "resolve_device-list": (lambda: resolve_device(["cpu"]), InvalidTypeError, "device"),
    "Template-example-None": (lambda: PromptTemplate(example=None), InvalidTypeError, "example"),
    "Template-query-int": (lambda: PromptTemplate(query=5), InvalidTypeError, "query"),
    "Template-query-no-input": (lambda: PromptTemplate(query="Answer:"), InvalidInputError, "input"),
    "Template-from_string-None": (lambda: PromptTemplate.from_string(None), InvalidTypeError, "template"),
    "Template-from_string-no-input": (lambda: PromptTemplate.from_string("Q: {x}"), InvalidInputError, "input"),
    "Template-unknown-field": (
        lambda: PromptTemplate(example="{input} {nope}").render([Demo(input="a", output="b")], "q"),
        InvalidInputError,
        "nope",
    ),
    "Template-render-demos-None": (lambda: PromptTemplate().render(None, "q"), InvalidTypeError, "demos"),
    "Template-render-demos-dicts": (
        lambda: PromptTemplate().render([{"input": "a", "output": "b"}], "q"),
        InvalidTypeError,
        "Demo",
    ),
    "Template-render-query-None": (lambda: PromptTemplate().render([], None), InvalidTypeError, "query"),
    "as_template-int": (lambda: as_template(5), InvalidTypeError, "template"),
}
if torch.cuda.is_available():  # pragma: no cover - only meaningful without CUDA
    del EMBEDDER_CASES["ST-device-bad-index"]
else:
    EMBEDDER_CASES["resolve_device-cuda-missing"] = (lambda: resolve_device("cuda"), InvalidInputError, "CUDA")

ALL_CASES = {**POOL_CASES, **SELECTOR_CASES, **KERNEL_CASES, **EMBEDDER_CASES}


def check_error(err: BaseException, expected: type[Exception], match: str) -> None:
    assert isinstance(err, expected), f"expected {expected.__name__}, got {type(err).__name__}: {err}"
    assert isinstance(err, PromptKDError)
    message = str(err)
    assert len(message) >= 25, f"message too short to say what to change: {message!r}"
    import re

    assert re.search(match, message, flags=re.IGNORECASE), f"{match!r} not in {message!r}"
    assert "Traceback" not in message


@pytest.mark.parametrize("case", list(ALL_CASES), ids=list(ALL_CASES))
def test_bad_input_raises_the_right_family(case: str) -> None:
    fn, expected, match = ALL_CASES[case]
    with pytest.raises(PromptKDError) as info:
        fn()
    check_error(info.value, expected, match)
    record_count("bad_inputs")


@pytest.mark.parametrize("case", list(ADD_CASES), ids=list(ADD_CASES))
def test_failed_add_leaves_the_pool_unchanged(case: str) -> None:
    fn, expected, match = ADD_CASES[case]
    pool = small_pool()
    before = pool_state(pool)
    with pytest.raises(PromptKDError) as info:
        fn(pool)
    check_error(info.value, expected, match)
    assert same_state(before, pool_state(pool))
    # and the pool still works afterwards
    pool.add({"input": "a fresh valid demo", "output": "z"})
    assert len(pool) == len(before[0]) + 1 and pool.embeddings.shape[0] == len(pool)
    record_count("bad_inputs")


def test_failed_select_leaves_the_selector_usable() -> None:
    sel = fitted()
    good = sel.select("text number 1").indices
    for bad in (None, "", np.full(16, np.nan), np.ones(3)):
        with pytest.raises(PromptKDError):
            sel.select(bad)
    assert sel.select("text number 1").indices == good


def test_huge_and_odd_strings_are_accepted() -> None:
    huge = "word " * 40_000  # 200 kB of text
    pool = DemoPool(
        [
            {"input": huge, "output": "x"},
            {"input": "\u2028\x00 é 中文 🙂", "output": "y"},
            {"input": "", "output": "z"},
        ],
        embedder=HashingEmbedder(dim=16),
    )
    assert pool.embeddings.shape == (3, 16)
    assert len(Selector(k=2).fit(pool).select("中文 word").indices) == 2


# ---------------------------------------------------------------------------- files with bad content
@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "no records"),
        (b"\n\n  \n", "no records"),
        (b'{"input": "a", "output": "b"}\n\xc3\x28\n', "UTF-8"),
        (b'{"input": "a"', "invalid JSON"),
        (b"[1, 2]\n", "JSON object"),
        (b'"just a string"\n', "JSON object"),
        (b"1" * 5000 + b"\n", "JSON"),
        (b"[" * 100_000 + b"\n", "JSON"),
    ],
    ids=["empty", "blank", "bad-utf8", "truncated", "array", "string", "long-int", "deep-nesting"],
)
def test_bad_jsonl_files(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "pool.jsonl"
    p.write_bytes(content)
    for reader in (read_jsonl, DemoPool.from_jsonl):
        with pytest.raises(InvalidInputError) as info:
            reader(p)
        check_error(info.value, InvalidInputError, match)
        assert "pool.jsonl" in str(info.value)
        record_count("bad_inputs")


# ---------------------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def saved_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_pool().save(tmp_path_factory.mktemp("cli") / "pool")


def cli_cases(saved: Path, tmp: Path) -> dict[str, list[str]]:
    bad_utf8 = tmp / "bad.jsonl"
    bad_utf8.write_bytes(b'{"input": "a", "output": "b"}\n\xff\xfe\n')
    return {
        "missing-pool": ["select", "--pool", str(tmp / "nope.jsonl"), "-q", "x"],
        "bad-utf8-pool": ["select", "--pool", str(bad_utf8), "-q", "x"],
        "k-too-large": ["select", "--pool", str(saved), "-q", "x", "--k", "99"],
        "unknown-kernel": ["select", "--pool", str(saved), "-q", "x", "--kernel", "poly"],
    }


def test_cli_select_bad_inputs_exit_nonzero_with_one_line(saved_pool: Path, tmp_path: Path) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    cases = cli_cases(saved_pool, tmp_path)
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "promptkd", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name, args in cases.items()
    }
    failures = []
    for name, proc in procs.items():
        _out, err = proc.communicate(timeout=120)
        lines = [line for line in err.splitlines() if line.strip()]
        ok = proc.returncode not in (0, None) and len(lines) == 1 and "Traceback" not in err
        ok = ok and lines[0].lower().startswith(("error", "usage"))
        if not ok:
            failures.append((name, proc.returncode, err[-500:]))
        record_count("bad_inputs")
        record_count("cli_subprocess_runs")
    assert not failures, failures


# ---------------------------------------------------------------------------- modules built on the foundation
def _baselines() -> list[type]:
    from promptkd.selection import BaseSelector, baselines

    return [
        obj
        for name, obj in sorted(vars(baselines).items())
        if isinstance(obj, type)
        and issubclass(obj, BaseSelector)
        and obj.__module__ == baselines.__name__
        and not name.startswith("_")
    ]


def _baseline_cases() -> dict[str, Case]:
    try:
        classes = _baselines()
    except ImportError:  # pragma: no cover - not landed
        return {}
    cases: dict[str, Case] = {}
    for cls in classes:
        n = cls.__name__
        cases.update(
            {
                f"{n}-k-zero": (lambda c=cls: c(k=0).fit(small_pool()), InvalidInputError, "k"),
                f"{n}-k-str": (lambda c=cls: c(k="two").fit(small_pool()), PromptKDError, "k"),
                f"{n}-fit-None": (lambda c=cls: c(k=2).fit(None), InvalidTypeError, "DemoPool"),
                f"{n}-fit-empty": (
                    lambda c=cls: c(k=2).fit(DemoPool([], embedder=HashingEmbedder())),
                    InvalidInputError,
                    "empty",
                ),
                f"{n}-unfitted": (lambda c=cls: c(k=2).select("a"), NotFittedError, "fit"),
                f"{n}-query-None": (lambda c=cls: c(k=2).fit(small_pool()).select(None), InvalidTypeError, "query"),
                f"{n}-query-empty": (lambda c=cls: c(k=2).fit(small_pool()).select(""), InvalidInputError, "query"),
                f"{n}-query-NaN": (
                    lambda c=cls: c(k=2).fit(small_pool()).select(np.full(16, np.nan)),
                    InvalidInputError,
                    "NaN",
                ),
                f"{n}-query-dim": (
                    lambda c=cls: c(k=2).fit(small_pool()).select(np.ones(3)),
                    InvalidInputError,
                    "dimension",
                ),
                f"{n}-k-too-large": (
                    lambda c=cls: c(k=2).fit(small_pool()).select("a", k=50),
                    InvalidInputError,
                    "larger",
                ),
                f"{n}-batch-str": (
                    lambda c=cls: c(k=2).fit(small_pool()).select_batch("abc"),
                    InvalidTypeError,
                    "select_batch",
                ),
            }
        )
    return cases


def _bounds_cases() -> dict[str, Case]:
    try:
        from promptkd.bounds import BoundEstimator
    except ImportError:  # pragma: no cover
        return {}
    return {
        "Bound-delta-zero": (lambda: BoundEstimator(delta=0.0).fit(small_pool()), InvalidInputError, "delta"),
        "Bound-delta-one": (lambda: BoundEstimator(delta=1.0).fit(small_pool()), InvalidInputError, "delta"),
        "Bound-C-negative": (lambda: BoundEstimator(C=-1.0).fit(small_pool()), InvalidInputError, "C"),
        "Bound-kernel-unknown": (lambda: BoundEstimator(kernel="poly").fit(small_pool()), InvalidInputError, "kernel"),
        "Bound-fit-None": (lambda: BoundEstimator().fit(None), InvalidTypeError, "pool"),
        "Bound-fit-empty": (
            lambda: BoundEstimator().fit(DemoPool([], embedder=HashingEmbedder())),
            InvalidInputError,
            "empty",
        ),
        "Bound-unfitted-budget": (lambda: BoundEstimator().budget("a"), NotFittedError, "fit"),
        "Bound-target-NaN": (
            lambda: BoundEstimator().fit(small_pool(), np.full(16, np.nan)),
            InvalidInputError,
            "NaN",
        ),
        "Bound-target-dim": (lambda: BoundEstimator().fit(small_pool(), np.ones(3)), InvalidInputError, "dimension"),
        "Bound-budget-k_max-zero": (
            lambda: BoundEstimator().fit(small_pool()).budget("a", k_max=0),
            InvalidInputError,
            "k_max",
        ),
    }


def _integration_cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    try:
        from promptkd.integrations import make_selector

        cases.update(
            {
                "make_selector-unknown": (lambda: make_selector("nope"), InvalidInputError, "nope"),
                "make_selector-int": (lambda: make_selector(5), PromptKDError, "selector"),
            }
        )
    except ImportError:  # pragma: no cover
        pass
    try:
        from promptkd.integrations.langchain import PromptKDExampleSelector as LC

        cases.update(
            {
                "langchain-selector-None": (lambda: LC(None, small_pool()), InvalidTypeError, "selector"),
                "langchain-pool-list": (lambda: LC(Selector(k=2), [1]), InvalidTypeError, "pool"),
                "langchain-from_examples-empty": (
                    lambda: LC.from_examples([], HashingEmbedder()),
                    InvalidInputError,
                    "examples",
                ),
                "langchain-from_examples-str": (
                    lambda: LC.from_examples("abc", HashingEmbedder()),
                    InvalidTypeError,
                    "examples",
                ),
                "langchain-add_example-None": (
                    lambda: LC.from_examples([{"input": "a", "output": "b"}] * 1, HashingEmbedder(), k=1).add_example(
                        None
                    ),
                    InvalidTypeError,
                    "example",
                ),
                "langchain-select-None": (
                    lambda: LC.from_examples(
                        [{"input": "a", "output": "b"}, {"input": "c", "output": "d"}], HashingEmbedder(), k=1
                    ).select_examples(None),
                    InvalidTypeError,
                    "input_variables",
                ),
                "langchain-select-empty": (
                    lambda: LC.from_examples(
                        [{"input": "a", "output": "b"}, {"input": "c", "output": "d"}], HashingEmbedder(), k=1
                    ).select_examples({}),
                    InvalidInputError,
                    "input_variables",
                ),
            }
        )
    except ImportError:  # pragma: no cover
        pass
    try:
        from promptkd.integrations.dspy import MMDFewShot

        cases.update(
            {
                "dspy-mode-unknown": (lambda: MMDFewShot(mode="bogus"), InvalidInputError, "mode"),
                "dspy-target-unknown": (lambda: MMDFewShot(target="testset"), InvalidInputError, "target"),
            }
        )
    except ImportError:  # pragma: no cover
        pass
    try:
        from promptkd.evaluation import load_task

        cases.update(
            {
                "load_task-unknown": (lambda: load_task("no-such-task-xyz"), PromptKDError, "no-such-task-xyz"),
                "load_task-None": (lambda: load_task(None), InvalidTypeError, "name"),
            }
        )
    except ImportError:  # pragma: no cover
        pass
    try:
        from promptkd.probes import AttentionProbe, resolve_layers

        cases.update(
            {
                "AttentionProbe-lm-int": (lambda: AttentionProbe(lm=5), InvalidTypeError, "lm"),
                "AttentionProbe-device": (lambda: AttentionProbe(device="tpu"), InvalidInputError, "device"),
                "resolve_layers-bogus": (lambda: resolve_layers("bogus", 12), InvalidInputError, "layers"),
                "resolve_layers-out-of-range": (lambda: resolve_layers([99], 12), InvalidInputError, "99"),
            }
        )
    except ImportError:  # pragma: no cover
        pass
    return cases


LANDED_CASES = {**_baseline_cases(), **_bounds_cases(), **_integration_cases()}


@pytest.mark.parametrize("case", list(LANDED_CASES), ids=list(LANDED_CASES))
def test_bad_input_in_modules_built_on_the_foundation(case: str) -> None:
    fn, expected, match = LANDED_CASES[case]
    with pytest.raises(PromptKDError) as info:
        fn()
    check_error(info.value, expected, match)
    record_count("bad_inputs")


# ---------------------------------------------------------------------------- every CLI command, in process
def cli_command_cases(saved: Path, tmp: Path) -> dict[str, list[str]]:
    bad_utf8 = tmp / "bad.jsonl"
    bad_utf8.write_bytes(b'{"input": "a", "output": "b"}\n\xff\xfe\n')
    missing = str(tmp / "nope.jsonl")
    damaged = tmp / "damaged"
    damaged.mkdir()
    (damaged / "manifest.json").write_text("{not json")
    return {
        "select-missing-pool": ["select", "--pool", missing, "-q", "x"],
        "select-k-too-large": ["select", "--pool", str(saved), "-q", "x", "--k", "99"],
        "select-k-not-int": ["select", "--pool", str(saved), "-q", "x", "--k", "two"],
        "select-missing-query": ["select", "--pool", str(saved)],
        "select-k-zero": ["select", "--pool", str(saved), "-q", "x", "--k", "0"],
        "select-empty-query": ["select", "--pool", str(saved), "-q", ""],
        "select-damaged-pool-dir": ["select", "--pool", str(damaged), "-q", "x"],
        "select-unknown-option": ["select", "--pool", str(saved), "-q", "x", "--frobnicate"],
        "bound-missing-pool": ["bound", "--pool", missing, "-q", "x"],
        "bound-k-max-zero": ["bound", "--pool", str(saved), "-q", "x", "--k-max", "0"],
        "bound-delta-two": ["bound", "--pool", str(saved), "-q", "x", "--delta", "2"],
        "bound-bad-bandwidth": ["bound", "--pool", str(saved), "-q", "x", "--bandwidth", "wide"],
        "bound-unknown-kernel": ["bound", "--pool", str(saved), "-q", "x", "--kernel", "poly"],
        "probe-missing-pool": ["probe", "--pool", missing, "-q", "x"],
        "probe-bad-utf8-pool": ["probe", "--pool", str(bad_utf8), "-q", "x"],
        "probe-k-zero": ["probe", "--pool", str(saved), "-q", "x", "--k", "0"],
        # eval validates its task and k only after loading the LM (reported), so only parse errors here
        "eval-k-not-int": ["eval", "--task", "no-such-task-xyz", "--k", "two", "--data-root", str(tmp)],
        "eval-missing-task": ["eval", "--data-root", str(tmp), "--bogus-flag"],
        "pool-info-missing": ["pool", "info", missing],
        "pool-info-bad-utf8": ["pool", "info", str(bad_utf8)],
        "pool-build-missing-source": ["pool", "build", missing, str(tmp / "out")],
        "pool-build-bad-utf8": ["pool", "build", str(bad_utf8), str(tmp / "out2")],
        "pool-unknown-subcommand": ["pool", "frobnicate"],
    }


def test_every_cli_command_reports_bad_input_in_one_line(
    saved_pool: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from promptkd.cli import main

    failures = []
    for name, argv in cli_command_cases(saved_pool, tmp_path).items():
        capsys.readouterr()
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
        else:
            code = 0
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        ok = code not in (0, None) and len(lines) == 1 and "Traceback" not in err
        if not ok:
            failures.append((name, code, err[-400:]))
        record_count("bad_inputs")
        record_count("cli_in_process_runs")
    assert not failures, failures
