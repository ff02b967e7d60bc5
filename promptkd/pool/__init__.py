"""Demonstrations and pools of demonstrations."""

from promptkd.pool.demo import Demo, content_id
from promptkd.pool.pool import DemoPool, PoolSnapshot, read_jsonl

__all__ = ["Demo", "DemoPool", "PoolSnapshot", "content_id", "read_jsonl"]
