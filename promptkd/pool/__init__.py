"""Demonstrations and pools of demonstrations."""

from promptkd.pool.demo import Demo, content_id, join_pair
from promptkd.pool.pool import DemoPool, PoolSnapshot, read_jsonl

__all__ = ["Demo", "DemoPool", "PoolSnapshot", "content_id", "join_pair", "read_jsonl"]
