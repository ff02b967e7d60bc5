"""The LM-aware mode: rerank a selector's candidates by how well the scoring LM predicts the query.

:class:`LMReranker` asks a promptkd selector for about 30 candidates, scores each with the LM
(the query's mean token log-probability after that one demo, as in ConE, Peng et al. 2024) and
keeps the best ``k``. It costs one LM sequence per candidate per query, and every
:class:`~promptkd.selection.Selection` it returns says what it spent (``phases["lm_passes"]``).

Importing this package does not import torch; scoring does.
"""

from __future__ import annotations

from promptkd.rerank.reranker import LMReranker
from promptkd.rerank.scoring import QueryScores, query_logprobs, split_prompt

__all__ = ["LMReranker", "QueryScores", "query_logprobs", "split_prompt"]
