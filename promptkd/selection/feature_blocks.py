"""The feature blocks a Selector gives a kernel object beyond the embeddings: labels and lexical rows.

With ``RBF() * LabelKernel(...)`` the demos carry one-hot labels and each target
row the label distribution voted by its nearest pool demos; with
``LexicalKernel()`` both carry TF-IDF rows from one vocabulary fitted on the
pool's inputs.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError
from promptkd.kernels.objects import Kernel, as_kernel
from promptkd.kernels.views import take_rows
from promptkd.selection.labels import neighbour_label_vote
from promptkd.selection.lexical import LexicalIndex, demo_texts
from promptkd.selection.target import Target, normalise_rows

__all__ = ["FeatureBlocksMixin", "kernel_object"]

logger = logging.getLogger("promptkd")


def kernel_object(kernel: Any, bandwidth: Any = None) -> Kernel | None:
    """The kernel object a :class:`~promptkd.Selector` herds with, or None for a plain kernel.

    A kernel object is returned as it is; a sum of names such as ``"rbf+lexical"``
    becomes one, with ``bandwidth`` (when given) for its distance-based parts; a
    single name (``"rbf"``) or a kernel function stays on the function path (None).

    Examples
    --------
    >>> kernel_object("rbf+lexical", 0.5), kernel_object("rbf")
    (SumKernel(RBF(bandwidth=0.5), LexicalKernel()), None)
    """
    if isinstance(kernel, Kernel):
        return kernel
    if isinstance(kernel, str) and ("+" in kernel or kernel == "lexical"):
        return as_kernel(kernel) if bandwidth is None else as_kernel(kernel, bandwidth=bandwidth)
    return None


class FeatureBlocksMixin:
    """Fit-time and select-time feature blocks for a kernel object (mixed into :class:`Selector`)."""

    kernel: Any
    demos_: Any
    eligible_: Any
    label_names_: tuple[str, ...]
    label_codes_: np.ndarray
    label_neighbours: int
    kernel_: Kernel | None
    text_free_kernel_: Kernel | None

    def _fit_feature_blocks(self) -> None:
        self.lexical_ = None
        self._warned_text_free = False
        if "lexical" in self._views:
            # one vocabulary from the pool's texts (read as columns: a lazily opened pool builds no Demo here);
            # queries are encoded with it, unknown words dropped. A lexical label vote already built it at fit.
            index = getattr(self, "vote_lexical_", None) or LexicalIndex(demo_texts(self.demos_))
            self.lexical_rows_ = index.rows
            self.lexical_ = index

    @property
    def _views(self) -> frozenset[str]:
        """The feature blocks the fitted kernel reads."""
        return self.kernel_.views if self.kernel_ is not None else frozenset({"embedding"})

    def _target_blocks(self, target: Target, sims: np.ndarray) -> dict[str, Any]:
        """The target's feature blocks beyond its embeddings that the kernel reads.

        A target without texts gets no lexical block: the selector then herds with
        the kernel's text-free part (:meth:`_herding_kernel`), or raises when there is none.
        """
        blocks: dict[str, Any] = {}
        views = self._views
        if "label" in views:
            blocks["label"] = self._target_labels(target, sims)
        if "lexical" in views:
            if target.texts is not None and len(target.texts) == target.size:
                blocks["lexical"] = self.lexical_.transform(list(target.texts))  # type: ignore[union-attr]
            elif self.text_free_kernel_ is None:
                raise InvalidInputError(
                    f"kernel={self.kernel!r} compares words only, so every target row needs its text: pass the "
                    "query (and any context) as strings, not embeddings."
                )
            elif not self._warned_text_free:
                self._warned_text_free = True
                logger.warning(
                    "kernel=%r compares words, but the target came without texts (embeddings as queries); "
                    "herding with its text-free part %r instead. Pass the queries as strings to use the words, or "
                    "set kernel='rbf' to make this the setting.",
                    self.kernel,
                    self.text_free_kernel_,
                )
        return blocks

    def _herding_kernel(self, blocks: dict[str, Any]) -> Any:
        """The kernel object for a target with these blocks (its text-free part when the texts are missing)."""
        if "lexical" in self._views and "lexical" not in blocks:
            return self.text_free_kernel_
        return self.kernel_

    def _candidate_blocks(self, cand: np.ndarray, views: frozenset[str]) -> dict[str, Any]:
        blocks: dict[str, Any] = {}
        if "label" in views:
            blocks["label"] = np.eye(len(self.label_names_))[self.label_codes_[cand]]
        if "lexical" in views:
            blocks["lexical"] = take_rows(self.lexical_rows_, cand)
        return blocks

    def _target_labels(self, target: Target, sims: np.ndarray) -> np.ndarray:
        """(n, L) label distribution of every target row, voted by its nearest eligible pool demos."""
        if target.size == 1:
            rows = sims[None, :]
        else:
            rows = self._similarity_rows(  # type: ignore[attr-defined]
                normalise_rows(target.embeddings)
            )
            if self.eligible_ is not None:
                rows = np.where(self.eligible_[None, :], rows, -np.inf)
        L = len(self.label_names_)
        return np.stack([neighbour_label_vote(r, self.label_codes_, L, self.label_neighbours) for r in rows])
