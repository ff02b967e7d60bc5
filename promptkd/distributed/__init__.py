"""Distributed selection and embedding on Ray Data; needs the ``ray`` extra only when called."""

from promptkd.distributed.data import select_dataset
from promptkd.distributed.embed import embed_dataset, save_dataset_pool
from promptkd.distributed.ray import select_with_ray

__all__ = ["embed_dataset", "save_dataset_pool", "select_dataset", "select_with_ray"]
