"""Attention probes on real causal LMs (``probe`` extra).

Importing this package does not import torch; loading a model or probing does.
"""

from __future__ import annotations

from promptkd.probes._model import head_to_kv, resolve_layers
from promptkd.probes.distilled import DistilledWeights, distilled_weights, positive_random_features
from promptkd.probes.embedder import LMEmbedder
from promptkd.probes.loading import GEMMA3_270M, SMOLLM2, LoadedLM, load_lm, model_cache_dir
from promptkd.probes.ordering import ProbeGuidedOrder, mmd_weights
from promptkd.probes.probe import AttentionProbe
from promptkd.probes.report import ProbeReport

__all__ = [
    "GEMMA3_270M",
    "SMOLLM2",
    "AttentionProbe",
    "DistilledWeights",
    "LMEmbedder",
    "LoadedLM",
    "ProbeGuidedOrder",
    "ProbeReport",
    "distilled_weights",
    "head_to_kv",
    "load_lm",
    "mmd_weights",
    "model_cache_dir",
    "positive_random_features",
    "resolve_layers",
]
