"""Attention probes on real causal LMs (``probe`` extra).

Importing this package does not import torch; loading a model or probing does.
"""

from __future__ import annotations

from promptkd.probes._model import head_to_kv, resolve_layers
from promptkd.probes.loading import GEMMA3_270M, SMOLLM2, LoadedLM, load_lm, model_cache_dir
from promptkd.probes.probe import AttentionProbe
from promptkd.probes.report import ProbeReport

__all__ = [
    "GEMMA3_270M",
    "SMOLLM2",
    "AttentionProbe",
    "LoadedLM",
    "ProbeReport",
    "head_to_kv",
    "load_lm",
    "model_cache_dir",
    "resolve_layers",
]
