"""The similarity stage every selector shares: one GEMM of target directions against the pool.

:class:`SimilarityStageMixin` keeps the pool's embeddings (float32, or float16
with products in float32), their inverse norms, and optionally a torch copy on
a GPU; :meth:`SimilarityStageMixin._similarity_rows` answers the cosine
similarity of every pool item to each of a block of directions. It is mixed
into :class:`~promptkd.selection.BaseSelector`, which calls
:meth:`SimilarityStageMixin._fit_similarity_stage` from ``fit``.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["SimilarityStageMixin"]

_POOL_BLOCK = 65536  # rows of a float16 pool converted to float32 at a time
_AUTO_DEVICE_MIN_POOL = 20_000  # device="auto" loads torch from this pool size (if a GPU may be present) or if loaded


class SimilarityStageMixin:
    """Pool storage and the batched cosine-similarity GEMM (mixed into :class:`BaseSelector`)."""

    #: Where the similarity GEMM runs: None = numpy on the CPU; "auto" = CUDA (or MPS)
    #: when available, else numpy; "cpu", "cuda", "cuda:N", "mps" = torch on that device.
    device: str | None = None
    embeddings_: Any
    n_demos_: int

    def _store_embeddings(self, emb: np.ndarray) -> np.ndarray:
        """How the pool embeddings are kept (float32, or float16 as given)."""
        if emb.dtype in (np.float32, np.float16):
            return emb
        return emb.astype(np.float32)

    def _fit_similarity_stage(self, norms: np.ndarray | None = None) -> None:
        """Learn the inverse norms of the pool rows and put the pool on the device (``embeddings_`` is set).

        ``norms`` are the pool's row norms when known (``PoolSnapshot.row_norms``: stored with a saved pool).
        """
        if norms is None:
            norms = np.concatenate(
                [
                    np.linalg.norm(self.embeddings_[s : s + _POOL_BLOCK].astype(np.float32), axis=1)
                    for s in range(0, self.n_demos_, _POOL_BLOCK)
                ]
            )
        self.inv_norms_ = (1.0 / np.maximum(norms, 1e-12)).astype(np.float32)
        # unit-norm pools (sentence-transformers normalises) skip a full pass over every similarity block
        self.unit_rows_ = bool(np.all(np.abs(norms - 1.0) < 1e-5))
        self._fit_device()

    def _fit_device(self) -> None:
        """Put the pool on the GPU when ``device`` asks for torch (see the ``device`` attribute)."""
        self.device_ = "numpy"
        self.torch_embeddings_ = None
        device = self.device
        if device is None:
            return
        from promptkd._device import accelerator_possible, resolve_device

        small = self.n_demos_ < _AUTO_DEVICE_MIN_POOL
        if device == "auto" and "torch" not in sys.modules and (small or not accelerator_possible()):
            return  # a small pool (numpy is as fast), or no GPU torch could find: numpy, without importing torch
        resolved = resolve_device(device)
        if device == "auto" and resolved == "cpu":
            return
        import torch

        dtype = torch.float16 if self.embeddings_.dtype == np.float16 else torch.float32
        E = torch.as_tensor(np.ascontiguousarray(self.embeddings_), device=resolved, dtype=dtype)
        self.torch_embeddings_ = E
        self.torch_inv_norms_ = torch.as_tensor(self.inv_norms_, device=resolved)
        self.device_ = resolved

    def _similarity_rows(self, directions: np.ndarray) -> np.ndarray:
        """(b, N) cosine similarity of every pool item to each direction: one GEMM."""
        D = np.asarray(directions, dtype=np.float32)
        if self.torch_embeddings_ is not None:
            return self._similarity_rows_torch(D)
        E = self.embeddings_
        if E.dtype == np.float32:
            S = D @ E.T
        else:
            S = np.empty((D.shape[0], self.n_demos_), dtype=np.float32)
            for s in range(0, self.n_demos_, _POOL_BLOCK):
                S[:, s : s + _POOL_BLOCK] = D @ E[s : s + _POOL_BLOCK].astype(np.float32).T
        if not self.unit_rows_:
            S *= self.inv_norms_[None, :]
        return S

    def _similarity_rows_torch(self, D: np.ndarray) -> np.ndarray:
        import torch

        E = self.torch_embeddings_
        with torch.no_grad():
            Dt = torch.as_tensor(D, device=E.device)
            if E.dtype == torch.float32:
                S = Dt @ E.T
            else:  # float16 pool: products in float32, one block of rows at a time
                S = torch.empty((D.shape[0], E.shape[0]), dtype=torch.float32, device=E.device)
                for s in range(0, E.shape[0], _POOL_BLOCK):
                    S[:, s : s + _POOL_BLOCK] = Dt @ E[s : s + _POOL_BLOCK].float().T
            if not self.unit_rows_:
                S *= self.torch_inv_norms_[None, :]
            return S.cpu().numpy()

    def _candidate_similarities(self, directions: np.ndarray) -> np.ndarray:
        """Similarities the candidate stage uses; subclasses may answer from an index."""
        return self._similarity_rows(directions)
