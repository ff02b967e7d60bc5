"""Attention probes on real causal LMs (``probe`` extra).

The loader is importable without torch; the probe classes import torch lazily.
"""

from __future__ import annotations

from promptkd.probes.loading import GEMMA3_270M, SMOLLM2, LoadedLM, load_lm, model_cache_dir

__all__ = ["GEMMA3_270M", "SMOLLM2", "LoadedLM", "load_lm", "model_cache_dir"]
