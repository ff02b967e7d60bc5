"""select_dataset, embed_dataset and select_with_ray on a real local Ray runtime (two CPUs, no dashboard).

Every result is compared with the single-process ``select_batch`` (or ``encode``) on the same inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ray

from promptkd import DemoPool, Selector
from promptkd.distributed import embed_dataset, save_dataset_pool, select_dataset, select_with_ray
from promptkd.embeddings import HashingEmbedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError

QUERIES = [
    "the goal of the team in the league match",
    "the bank and the stock market profit",
    "the protein in the cell and its energy",
    "the coach of the season",
    "rates and shares",
]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def test_matches_local_select_batch_in_query_order(local_ray, hashing_pool):
    local = Selector(k=3, candidates=16).fit(hashing_pool).select_batch(QUERIES)
    remote = select_with_ray(hashing_pool, QUERIES, Selector(k=3, candidates=16), batch_size=2)
    assert [s.query for s in remote] == QUERIES
    assert [s.indices for s in remote] == [s.indices for s in local]
    assert [s.mmd2 for s in remote] == pytest.approx([s.mmd2 for s in local])
    assert all(s.method == "promptkd" for s in remote)


def test_driver_embedding_baseline_by_name_and_select_kwargs(local_ray):
    # embed_on="driver": queries are embedded once here and shipped to the workers as vectors
    base = DemoPool(
        [{"input": q + f" {i}", "output": str(i % 2)} for i, q in enumerate(QUERIES * 2)],
        embedder=HashingEmbedder(dim=64),
    )
    remote = select_with_ray(base, QUERIES[:3], "topk", k=2, embed_on="driver", batch_size=8)
    from promptkd.selection.baselines import TopKSelector

    expected = TopKSelector(k=2).fit(base).select_batch(QUERIES[:3])
    assert [s.indices for s in remote] == [s.indices for s in expected]
    assert all(s.method == expected[0].method for s in remote)
    ctx = select_with_ray(base, QUERIES[:2], "promptkd", k=2, context=["rates and shares"], batch_size=1)
    assert all(s.target_size == 2 for s in ctx)


def test_bad_arguments_fail_before_ray_runs(hashing_pool):
    with pytest.raises(InvalidTypeError):
        select_with_ray(hashing_pool, "one string", k=2)
    with pytest.raises(InvalidInputError, match="queries\\[1\\]"):
        select_with_ray(hashing_pool, ["ok", " "], k=2)
    with pytest.raises(InvalidInputError, match="larger than the pool"):
        select_with_ray(hashing_pool, ["ok"], k=999)
    with pytest.raises(InvalidInputError, match="embed_on"):
        select_with_ray(hashing_pool, ["ok"], k=2, embed_on="gpu")
    assert select_with_ray(hashing_pool, [], k=2) == []


def by_qid(rows: list[dict]) -> list[dict]:
    return [r["selection"] for r in sorted(rows, key=lambda r: r["qid"])]


def test_select_dataset_equals_select_batch_for_texts_and_vectors(local_ray, hashing_pool, tmp_path: Path):
    import ray.data

    selector = Selector(k=3, candidates=16)
    local = Selector(k=3, candidates=16).fit(hashing_pool).select_batch(QUERIES)
    texts = ray.data.from_items([{"qid": i, "text": q} for i, q in enumerate(QUERIES)])
    # the pool through the object store, two workers
    rows = select_dataset(texts, selector, pool=hashing_pool, batch_size=2, concurrency=2).take_all()
    got = by_qid(rows)
    assert [g["indices"] for g in got] == [list(s.indices) for s in local]
    assert [g["ids"] for g in got] == [[d.id for d in s.demos] for s in local]
    assert [g["mmd2"] for g in got] == pytest.approx([s.mmd2 for s in local])
    assert {r["text"] for r in rows} == set(QUERIES)  # input columns are kept
    # the pool from a saved directory (opened lazily on each worker), queries as embedding vectors
    path = hashing_pool.save(tmp_path / "pool", layout="arrow")
    Q = hashing_pool.encode_texts(QUERIES)
    vectors = ray.data.from_items([{"qid": i, "vec": Q[i]} for i in range(len(QUERIES))])
    fitted = Selector(k=3, candidates=16).fit(hashing_pool)
    rows = select_dataset(vectors, fitted, pool=str(path), query_column="vec", output_column="sel", batch_size=3)
    got = [r["sel"] for r in sorted(rows.take_all(), key=lambda r: r["qid"])]
    expected = fitted.select_batch(Q)
    assert [g["indices"] for g in got] == [list(s.indices) for s in expected]
    np.testing.assert_allclose([g["scores"] for g in got], [list(s.scores) for s in expected], rtol=1e-6)


def test_embed_dataset_saves_as_a_pool_equal_to_one_process(local_ray, tmp_path: Path):
    import ray.data

    rows = [{"input": f"{q} {i}", "output": str(i % 2), "src": f"s{i}"} for i, q in enumerate(QUERIES * 3)]
    ds = ray.data.from_items(rows)
    embedded = embed_dataset(ds, HashingEmbedder(dim=64), text_column="input", batch_size=4, concurrency=2)
    path = save_dataset_pool(embedded, tmp_path / "pool", metadata_columns=["src"], embedder_id="hashing-v1:dim=64")
    pool = DemoPool.open(path, verify=True)
    local = DemoPool.from_records(rows, embedder=HashingEmbedder(dim=64))
    local.embed()
    order = [local.index_of(i) for i in pool.ids]  # Ray may reorder rows; compare by id
    assert sorted(order) == list(range(len(rows)))
    np.testing.assert_allclose(np.asarray(pool.embeddings), local.embeddings[order], atol=1e-6)
    assert [d.model_dump() for d in pool] == [local[i].model_dump() for i in order]
    assert pool.embedder_id == "hashing-v1:dim=64"
    queries = QUERIES[:3]
    a = Selector(k=2).fit(pool).select_batch(queries)
    b = Selector(k=2).fit(local).select_batch(queries)
    assert [[d.id for d in s.demos] for s in a] == [[d.id for d in s.demos] for s in b]


def test_select_dataset_rejects_bad_arguments(local_ray, hashing_pool):
    import ray.data

    ds = ray.data.from_items([{"text": "q"}])
    with pytest.raises(InvalidTypeError, match=r"ray\.data\.Dataset"):
        select_dataset([{"text": "q"}], "promptkd", pool=hashing_pool)
    with pytest.raises(InvalidInputError, match="pool="):
        select_dataset(ds, Selector(k=2))
    with pytest.raises(InvalidInputError, match="larger than the pool"):
        select_dataset(ds, "promptkd", pool=hashing_pool, k=999)
    with pytest.raises(InvalidInputError, match="no column 'query'"):
        select_dataset(ds.materialize(), "promptkd", pool=hashing_pool, k=2, query_column="query")
    with pytest.raises(InvalidInputError, match="concurrency"):
        select_dataset(ds, "promptkd", pool=hashing_pool, k=2, concurrency=(3, 1))
    with pytest.raises(InvalidInputError, match=r"not one promptkd"):
        embed_dataset(ds, "no-such-embedder")
