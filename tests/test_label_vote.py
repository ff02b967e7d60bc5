"""The label_prior order's vote: by embedding cosine, or by embedding cosine plus TF-IDF cosine."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from promptkd import DemoPool, Selector
from promptkd.exceptions import InvalidInputError
from promptkd.selection.baselines import TopKSelector
from promptkd.selection.lexical import LexicalIndex, demo_texts
from promptkd.selection.ordering import LabelPriorOrder


class TableEmbedder:
    """Vectors looked up by text: lets a test make embeddings and words disagree."""

    id = "test:table"

    def __init__(self, table: dict[str, Sequence[float]]) -> None:
        self.table = table

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        X = np.array([self.table[t] for t in texts], dtype=np.float32)
        return X / np.linalg.norm(X, axis=1, keepdims=True) if normalize else X


QUERY = "zebra quartz falcon"


def _pool() -> DemoPool:
    # four "no" demos sit next to the query in embedding space but share none of its words;
    # three "yes" demos share its rare words but sit a little further away
    records = [{"input": f"plain filler {i}", "output": "no"} for i in range(4)]
    records += [{"input": f"zebra quartz falcon {w}", "output": "yes"} for w in ("one", "two", "three")]
    records += [{"input": f"far away {i}", "output": "yes"} for i in range(3)]
    table: dict[str, Sequence[float]] = {QUERY: (1.0, 0.0, 0.0)}
    for i in range(4):
        table[f"plain filler {i}"] = (1.0, 0.05 * (i + 1), 0.0)
    for w in ("one", "two", "three"):
        table[f"zebra quartz falcon {w}"] = (1.0, 0.0, 0.6)
    for i in range(3):
        table[f"far away {i}"] = (0.0, 1.0, 0.2 * i)
    return DemoPool(records, embedder=TableEmbedder(table))


@pytest.mark.parametrize("make", [lambda o: Selector(k=6, order=o), lambda o: TopKSelector(k=6, order=o)])
def test_the_lexical_vote_follows_shared_words(make) -> None:
    pool = _pool()
    dense = make(LabelPriorOrder(label_neighbours=4)).fit(pool).select(QUERY)
    mixed = make(LabelPriorOrder(label_neighbours=4, vote="embedding+lexical")).fit(pool).select(QUERY)
    assert dense.indices and mixed.indices
    # the embedding vote names "no" (its 4 nearest are the fillers), so a "no" demo goes last
    assert dense.demos[-1].output == "no"
    # with the words counted, the three "yes" demos outvote the fillers and a "yes" demo goes last
    assert mixed.demos[-1].output == "yes"
    assert sorted(dense.indices) == sorted(mixed.indices)  # the vote changes the order, not the set


def test_the_vote_needs_the_tfidf_rows_only_when_asked() -> None:
    pool = _pool()
    assert Selector(k=2, order="label_prior").fit(pool).vote_lexical_ is None
    for order in (LabelPriorOrder(vote="embedding+lexical"), "label_prior_lexical"):  # the latter is the default
        fitted = Selector(k=2, order=order).fit(pool)
        assert fitted.vote_lexical_ is not None and fitted.vote_lexical_.rows.shape[0] == len(pool)
    assert Selector(k=2).fit(pool).vote_lexical_ is not None


def test_embedding_queries_fall_back_to_the_embedding_vote() -> None:
    pool = _pool()
    q = pool.encode_texts([QUERY])[0]
    dense = Selector(k=4, order=LabelPriorOrder(label_neighbours=4)).fit(pool).select(q)
    mixed = Selector(k=4, order=LabelPriorOrder(label_neighbours=4, vote="embedding+lexical")).fit(pool).select(q)
    assert dense.indices == mixed.indices


def test_a_bad_vote_is_named() -> None:
    with pytest.raises(InvalidInputError, match="vote must be one of"):
        LabelPriorOrder(vote="words")


def test_lexical_index_cosine_and_texts() -> None:
    index = LexicalIndex(["red apple", "blue sea", "apple tree"])
    cos = index.cosine(["apple"])[0]
    assert cos[1] == 0.0 and cos[0] > 0 and cos[2] > 0
    assert np.allclose(index.cosine(["red apple"])[0][0], 1.0)
    pool = DemoPool([{"input": "a", "input_pair": "b", "output": "x"}], embedder=TableEmbedder({"a\nb": (1.0,)}))
    assert demo_texts(pool.demos) == ["a\nb"]


def _same_csr(ours: Any, theirs: Any) -> bool:
    theirs = theirs.tocsr()
    return (
        ours.shape == theirs.shape
        and ours.indptr.tolist() == theirs.indptr.tolist()
        and ours.indices.tolist() == theirs.indices.tolist()
        and ours.data.tolist() == theirs.data.tolist()
    )


def test_the_pool_and_query_rows_are_sklearns_tfidf_rows_bit_for_bit() -> None:
    text = pytest.importorskip("sklearn.feature_extraction.text")
    rng = np.random.default_rng(0)
    words = ["cat", "Dog", "bird", "stocks", "fell", "3%", "on", "Monday", "naïve", "café", "x", "ab_cd", "42", "THE"]
    pool = [" ".join(rng.choice(words, size=rng.integers(0, 12))) + rng.choice([".", "!", ""]) for _ in range(300)]
    pool += ["The cat sat on the mat.", "A dog, a cat and a bird", "cat cat cat dog", "?"]
    index = LexicalIndex(pool)
    sk = text.TfidfVectorizer(sublinear_tf=True)
    assert _same_csr(index.rows, sk.fit_transform(pool))  # the same entries, in the same stored order
    assert index.vocabulary == sk.vocabulary_
    for query in ["the cat and the dog", "cat cat", "", "unknown words only", "Stocks: fell! fell?", "CAFÉ naïve"]:
        theirs = sk.transform([query])
        theirs.sort_indices()
        assert _same_csr(index.transform([query]), theirs)
    several = index.transform(["the cat", "a dog"])
    assert several.shape == (2, len(index.vocabulary))
    np.testing.assert_allclose(index.cosine(["the cat", "a dog"]), (several @ index.rows.T).toarray(), atol=1e-15)


def test_fitting_the_lexical_index_does_not_import_sklearn() -> None:
    code = (
        "import sys; from promptkd.selection.lexical import LexicalIndex; "
        "LexicalIndex(['a red apple', 'the blue sea']).cosine(['apple']); "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_pool_without_words_has_an_empty_vocabulary_and_zero_cosines() -> None:
    index = LexicalIndex(["1", "?", "a"])
    assert index.vocabulary == {} and index.rows.shape == (3, 0)
    assert index.cosine(["1 2 3"]).tolist() == [[0.0, 0.0, 0.0]]
