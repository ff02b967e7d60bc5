"""select_with_ray on a real local Ray runtime (one CPU, no dashboard)."""

from __future__ import annotations

import pytest
import ray

from promptkd import DemoPool, Selector
from promptkd.distributed import select_with_ray
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
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
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
