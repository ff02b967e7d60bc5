"""Distributed batch selection (Ray Data); needs the ``ray`` extra only when called."""

from promptkd.distributed.ray import select_with_ray

__all__ = ["select_with_ray"]
