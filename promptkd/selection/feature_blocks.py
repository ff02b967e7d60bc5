"""The feature blocks a Selector gives a kernel object beyond the embeddings: labels and lexical rows.

With ``RBF() * LabelKernel(...)`` the demos carry one-hot labels and each target
row the label distribution voted by its nearest pool demos; with
``LexicalKernel()`` both carry TF-IDF rows from one vocabulary fitted on the
pool's inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from promptkd.exceptions import InvalidInputError
from promptkd.kernels.objects import Kernel
from promptkd.selection.labels import neighbour_label_vote
from promptkd.selection.lexical import LexicalIndex, demo_texts
from promptkd.selection.target import Target, normalise_rows

__all__ = ["FeatureBlocksMixin"]


class FeatureBlocksMixin:
    """Fit-time and select-time feature blocks for a kernel object (mixed into :class:`Selector`)."""

    kernel: Any
    demos_: Any
    eligible_: Any
    label_names_: tuple[str, ...]
    label_codes_: np.ndarray
    label_neighbours: int

    def _fit_feature_blocks(self) -> None:
        self.lexical_ = None
        if "lexical" in self._views:
            # one vocabulary from the pool's texts (read as columns: a lazily opened pool builds no Demo here);
            # queries are encoded with it, unknown words dropped. A lexical label vote already built it at fit.
            index = getattr(self, "vote_lexical_", None) or LexicalIndex(demo_texts(self.demos_))
            self.lexical_rows_ = index.rows
            self.lexical_ = index.vectorizer

    @property
    def _views(self) -> frozenset[str]:
        return self.kernel.views if isinstance(self.kernel, Kernel) else frozenset({"embedding"})

    def _target_blocks(self, target: Target, sims: np.ndarray) -> dict[str, Any]:
        """The target's feature blocks beyond its embeddings that the kernel reads."""
        blocks: dict[str, Any] = {}
        views = self._views
        if "label" in views:
            blocks["label"] = self._target_labels(target, sims)
        if "lexical" in views:
            if target.texts is None or len(target.texts) != target.size:
                raise InvalidInputError(
                    f"kernel={self.kernel!r} compares words, so every target row needs its text: pass the query "
                    "(and any context) as strings, not embeddings."
                )
            blocks["lexical"] = self.lexical_.transform(list(target.texts))  # type: ignore[union-attr]
        return blocks

    def _candidate_blocks(self, cand: np.ndarray) -> dict[str, Any]:
        blocks: dict[str, Any] = {}
        if "label" in self._views:
            blocks["label"] = np.eye(len(self.label_names_))[self.label_codes_[cand]]
        if "lexical" in self._views:
            blocks["lexical"] = self.lexical_rows_[cand]
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
