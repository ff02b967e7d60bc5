"""Demonstrations and pools of demonstrations."""

from promptkd.pool.demo import Demo, content_id, join_pair
from promptkd.pool.index_store import build_pool_index
from promptkd.pool.lazy import LazyDemos, demo_field, demo_field_codes
from promptkd.pool.pool import DemoPool, PoolSnapshot, read_jsonl

__all__ = [
    "Demo",
    "DemoPool",
    "LazyDemos",
    "PoolSnapshot",
    "build_pool_index",
    "content_id",
    "demo_field",
    "demo_field_codes",
    "join_pair",
    "read_jsonl",
]
