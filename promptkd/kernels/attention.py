"""The attention product kernel k_att on [values | keys] embeddings.

For one head, softmax attention compares tokens through

    k_att(x, x') = <W^V x, W^V x'> * <phi(W^K x), phi(W^K x')>,

a value inner product times a kernel on key features; under this kernel the bias of
the distilled weights is bounded by C * MMD exactly. With several heads the kernel is
the sum of the per-head kernels. Rows are ``[values | keys]`` as produced by
:class:`~promptkd.probes.LMEmbedder` with ``output="kv"``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from promptkd._validation import check_int
from promptkd.exceptions import InvalidInputError
from promptkd.kernels.functions import PROFILES, Array, Bandwidth, median_bandwidth, sq_distances
from promptkd.kernels.lookup import get_kernel

__all__ = ["KEY_KERNELS", "AttentionKernel"]

KEY_KERNELS = ("rbf", "laplacian", "imq", "cosine", "linear", "softmax")


class AttentionKernel:
    """Product kernel ``sum_h <v_h, v'_h> * kappa(k_h, k'_h)`` on rows ``[values | keys]``.

    A callable ``k(X, Y=None, *, bandwidth=...)`` usable wherever promptkd takes a kernel
    (``Selector(kernel=AttentionKernel(...))``, :func:`~promptkd.kernels.mmd2`). It is
    positive definite: a sum over heads of products of positive-definite kernels.

    Parameters
    ----------
    value_dim
        Width of the value part (the key part has the same width).
    n_heads
        Number of KV heads the parts split into (equal slices of ``value_dim``).
    key_kernel
        Kernel on key features: ``"softmax"`` is ``exp(<k, k'> / tau)``, whose feature map is
        the ``phi`` of softmax attention (``tau = sqrt(head_dim)`` for ``key_bandwidth="median"``);
        ``"rbf"``, ``"laplacian"``, ``"imq"``, ``"cosine"``, ``"linear"`` use promptkd's kernels.
    key_bandwidth
        Bandwidth of the key kernel: a positive float, or ``"median"``, fixed on the first call
        (or by :meth:`fit`) so every Gram block of one MMD uses the same kernel. The
        ``bandwidth`` argument of calls is ignored: the key bandwidth belongs to the kernel.

    Examples
    --------
    >>> v = np.array([[1.0, 0.0], [0.0, 1.0]]); k = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> kern = AttentionKernel(value_dim=2, key_kernel="rbf", key_bandwidth=1.0)
    >>> np.round(kern(np.hstack([v, k])), 4).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> X = np.hstack([np.ones((2, 2)), k])
    >>> np.round(kern(X), 4).tolist()
    [[2.0, 1.2131], [1.2131, 2.0]]
    """

    def __init__(
        self, value_dim: int, n_heads: int = 1, key_kernel: str = "rbf", key_bandwidth: Bandwidth = "median"
    ) -> None:
        self.value_dim = check_int(value_dim, "value_dim", minimum=1)
        self.n_heads = check_int(n_heads, "n_heads", minimum=1)
        if self.value_dim % self.n_heads:
            raise InvalidInputError(f"value_dim={value_dim} must be a multiple of n_heads={n_heads}.")
        if key_kernel not in KEY_KERNELS:
            raise InvalidInputError(f"key_kernel={key_kernel!r} is not known; use one of {', '.join(KEY_KERNELS)}.")
        self.key_kernel = key_kernel
        self.key_bandwidth = key_bandwidth
        self.bandwidth_: float | None = None if isinstance(key_bandwidth, str) else float(key_bandwidth)
        if self.bandwidth_ is not None and not (math.isfinite(self.bandwidth_) and self.bandwidth_ > 0):
            raise InvalidInputError(f"key_bandwidth must be 'median' or a positive float, got {key_bandwidth!r}.")
        if isinstance(key_bandwidth, str) and key_bandwidth != "median":
            raise InvalidInputError(f"key_bandwidth must be 'median' or a positive float, got {key_bandwidth!r}.")
        self.__name__ = "attention"

    def __repr__(self) -> str:
        return (
            f"AttentionKernel(value_dim={self.value_dim}, n_heads={self.n_heads}, "
            f"key_kernel={self.key_kernel!r}, key_bandwidth={self.bandwidth_ or self.key_bandwidth!r})"
        )

    @property
    def head_dim(self) -> int:
        """Width of one head's slice."""
        return self.value_dim // self.n_heads

    def _split(self, X: Any, name: str) -> tuple[Any, Any]:
        if X.ndim != 2 or X.shape[1] != 2 * self.value_dim:
            raise InvalidInputError(
                f"{name} must have 2 * value_dim = {2 * self.value_dim} columns ([values | keys]), "
                f"got shape {tuple(X.shape)}; embed with LMEmbedder(output='kv')."
            )
        return X[:, : self.value_dim], X[:, self.value_dim :]

    def fit(self, X: Array) -> AttentionKernel:
        """Fix the key bandwidth from data (median heuristic per head, averaged), and return self.

        Selectors call this in their ``fit``. An unfitted kernel called directly uses the
        bandwidth of the data it is given for that call only, and stays unfitted, so calls
        never change its state (and concurrent calls cannot race).
        """
        self.bandwidth_ = self._bandwidth_from(X)
        return self

    def _bandwidth_from(self, X: Array) -> float:
        X = _as_float(X)
        _, keys = self._split(X, "X")
        if self.key_kernel == "softmax":
            return math.sqrt(self.head_dim)
        if self.key_kernel in ("rbf", "laplacian", "imq"):
            hd = self.head_dim
            return float(
                np.mean([float(median_bandwidth(keys[:, h * hd : (h + 1) * hd])) for h in range(self.n_heads)])
            )
        return 1.0

    def __call__(self, X: Array, Y: Array | None = None, *, bandwidth: Bandwidth | None = None) -> Array:
        X = _as_float(X)
        Y = X if Y is None else _as_float(Y, like=X)
        vx, kx = self._split(X, "X")
        vy, ky = self._split(Y, "Y")
        bw = self.bandwidth_ if self.bandwidth_ is not None else self._bandwidth_from(X if Y is X else _concat(X, Y))
        hd = self.head_dim
        total = None
        for h in range(self.n_heads):
            sl = slice(h * hd, (h + 1) * hd)
            vals = vx[:, sl] @ vy[:, sl].T
            if self.key_kernel == "softmax":
                xp = np if isinstance(kx, np.ndarray) else _torch()
                keys = xp.exp((kx[:, sl] @ ky[:, sl].T) / bw)
            elif self.key_kernel in PROFILES:
                d2 = sq_distances(kx[:, sl], ky[:, sl])
                keys = PROFILES[self.key_kernel](np if isinstance(d2, np.ndarray) else _torch(), d2, bw)
            else:
                keys = get_kernel(self.key_kernel)(kx[:, sl], ky[:, sl])
            term = vals * keys
            total = term if total is None else total + term
        return total


def _torch() -> Any:
    import torch

    return torch


def _as_float(X: Any, like: Any = None) -> Any:
    if type(X).__module__.startswith("torch"):
        return X.float() if not X.is_floating_point() else X
    if like is not None and type(like).__module__.startswith("torch"):
        return _torch().as_tensor(np.asarray(X), dtype=like.dtype, device=like.device)
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"kernel inputs must be finite 2-D arrays, got shape {arr.shape}.")
    return arr


def _concat(X: Any, Y: Any) -> Any:
    if isinstance(X, np.ndarray):
        return np.concatenate([X, Y], 0)
    return _torch().cat([X, Y], 0)
