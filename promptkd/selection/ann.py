"""The candidate index, re-exported for selection: it lives in :mod:`promptkd.pool.ann` beside the saved pool."""

from promptkd.pool.ann import INDEX_KINDS, CandidateIndex

__all__ = ["INDEX_KINDS", "CandidateIndex"]
