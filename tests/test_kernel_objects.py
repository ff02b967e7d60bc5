"""Kernel objects: composition, capabilities, the column providers greedy selection uses, and the joint kernel."""

from __future__ import annotations

import numpy as np
import pytest

from promptkd import DemoPool, Selector
from promptkd.embeddings import HashingEmbedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.kernels import (
    IMQ,
    RBF,
    Cosine,
    LabelKernel,
    Laplacian,
    LexicalKernel,
    Linear,
    ProductKernel,
    SumKernel,
    Views,
    as_kernel,
    imq,
    laplacian,
    mmd2,
    rbf,
)
from promptkd.selection.herding import herd
from promptkd.selection.labels import neighbour_label_vote


@pytest.fixture
def samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(20, 5)), rng.normal(size=(15, 5)) + 0.4


@pytest.mark.parametrize("median", [False, True])
def test_mmd2_of_a_sum_kernel_is_the_sum_of_the_parts(samples, median) -> None:
    X, Y = samples
    k1 = RBF() if median else RBF(bandwidth=1.3)
    k2 = Laplacian(bandwidth=2.0)
    total = mmd2(X, Y, kernel=k1 + k2)
    assert total == pytest.approx(mmd2(X, Y, kernel=k1) + mmd2(X, Y, kernel=k2), rel=1e-12)
    assert total > mmd2(X, Y, kernel=k1) > 0


def test_a_weight_scales_mmd2_and_objects_match_the_functions(samples) -> None:
    X, Y = samples
    assert mmd2(X, Y, kernel=3.0 * RBF(bandwidth=1.1)) == pytest.approx(3.0 * mmd2(X, Y, bandwidth=1.1), rel=1e-12)
    assert mmd2(X, Y, kernel=RBF()) == pytest.approx(mmd2(X, Y, kernel="rbf", bandwidth="median"), rel=1e-12)
    for obj, fn in ((RBF(bandwidth=0.9), rbf), (Laplacian(bandwidth=0.9), laplacian), (IMQ(bandwidth=0.9), imq)):
        np.testing.assert_allclose(obj(X, Y), fn(X, Y, bandwidth=0.9), rtol=1e-12)
    np.testing.assert_allclose((Linear() * Cosine())(X, Y), (X @ Y.T) * Cosine()(X, Y), rtol=1e-12)


def test_capabilities_are_attributes_of_the_composition() -> None:
    assert RBF().unit_diagonal and RBF().shift_invariant and RBF().distance_based and RBF().gemm
    assert not Linear().unit_diagonal and not Cosine().shift_invariant
    assert (RBF() * Laplacian()).unit_diagonal and not (RBF() + Laplacian()).unit_diagonal
    assert (RBF() + Laplacian()).shift_invariant and not (RBF() + Cosine()).shift_invariant
    assert (RBF() * LabelKernel()).views == {"embedding", "label"}
    assert not RBF().resolved and RBF(bandwidth=1.0).resolved
    assert (RBF() + RBF(bandwidth=2.0) + Cosine()).parts == (RBF(), RBF(bandwidth=2.0), Cosine())  # flattened
    assert sum([RBF(), Cosine()]) == SumKernel(RBF(), Cosine())
    assert as_kernel("rbf", bandwidth=0.5) == RBF(bandwidth=0.5) and as_kernel("cosine") == Cosine()


def test_the_composite_columns_agree_with_the_gram_matrix() -> None:
    rng = np.random.default_rng(1)
    C = rng.normal(size=(12, 4)).astype(np.float64)
    T = rng.normal(size=(3, 4))
    labels = np.eye(3)[rng.integers(0, 3, size=12)]
    P = rng.dirichlet(np.ones(3), size=3)
    kernel = (RBF(bandwidth=1.5) + 0.5 * Cosine()) * LabelKernel(beta=0.3)
    rows, goal = Views(C, label=labels), Views(T, label=P)
    cols = kernel.columns(rows)
    np.testing.assert_allclose(cols.cross(goal), kernel(rows, goal), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cols.target_gram(goal), kernel(goal), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cols.diag(), np.diag(kernel(rows)), rtol=1e-10)
    np.testing.assert_allclose(cols.column(4), kernel(rows)[:, 4], rtol=1e-10, atol=1e-12)
    w = np.array([0.5, 0.3, 0.2])
    assert cols.target_constant(goal, w) == pytest.approx(w @ kernel(goal) @ w, rel=1e-10)


def test_a_sum_kernel_adds_its_parts_target_constants() -> None:
    """Sums and scalings answer v'K_YY v from their parts (no Gram); the values are the Gram's."""
    from scipy.sparse import csr_matrix

    rng = np.random.default_rng(3)
    C, T = rng.normal(size=(10, 4)), rng.normal(size=(3, 4))
    lex_c = csr_matrix(rng.random((10, 6)) * (rng.random((10, 6)) < 0.5))
    lex_t = csr_matrix(np.vstack([rng.random(6), np.zeros(6), rng.random(6) * (rng.random(6) < 0.5)]))
    kernel = RBF(bandwidth=1.5) + 0.5 * LexicalKernel() + 2.0 * Cosine()
    cols = kernel.columns(Views(C, lexical=lex_c))
    for rows in ([0], [1], [0, 1, 2]):  # one query, one query without words, a three-row target
        goal = Views(T[rows], lexical=lex_t[rows])
        w = np.full(len(rows), 1.0 / len(rows)) * (0.7 if len(rows) == 1 else 1.0)
        assert cols.target_constant(goal, w) == pytest.approx(w @ kernel(goal) @ w, rel=1e-12)


def test_herding_with_an_object_matches_herding_with_the_function() -> None:
    rng = np.random.default_rng(2)
    C = rng.normal(size=(60, 6)).astype(np.float32)
    T = rng.normal(size=(4, 6)).astype(np.float32)
    w = np.full(4, 0.25)
    by_name = herd(C, T, w, 5, kernel="rbf", bandwidth=1.7)
    by_object = herd(C, T, w, 5, kernel=RBF(bandwidth=1.7))
    assert by_name.order == by_object.order
    np.testing.assert_allclose(by_name.mmd2_path, by_object.mmd2_path, rtol=1e-9)


def test_a_label_kernel_with_beta_one_ignores_labels() -> None:
    rng = np.random.default_rng(3)
    C = rng.normal(size=(40, 5))
    T = rng.normal(size=(1, 5))
    rows = Views(C, label=np.eye(2)[rng.integers(0, 2, size=40)])
    goal = Views(T, label=np.array([[1.0, 0.0]]))
    joint = herd(rows, goal, np.ones(1), 6, kernel=RBF(bandwidth=2.0) * LabelKernel(beta=1.0))
    plain = herd(C, T, np.ones(1), 6, kernel=RBF(bandwidth=2.0))
    assert joint.order == plain.order


def _two_label_pool(n: int = 80) -> DemoPool:
    rng = np.random.default_rng(4)
    words = ["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "yam"]
    records = []
    for i in range(n):
        label = "fruit" if i % 4 else "other"
        text = " ".join(rng.choice(words, size=3)) + f" item{i % 7} n{i}"
        records.append({"input": text, "output": label})
    return DemoPool(records, embedder=HashingEmbedder(dim=64))


def test_the_joint_kernel_follows_the_neighbourhood_vote() -> None:
    pool = _two_label_pool()
    query = "apple pear plum item3"
    plain = Selector(k=6).fit(pool)
    joint = Selector(k=6, kernel=RBF() * LabelKernel(beta=0.0), label_neighbours=16).fit(pool)
    vote = neighbour_label_vote(plain.similarities(plain.make_target(query)), plain.label_codes_, 2, 16)
    likely = plain.label_names_[int(np.argmax(vote))]
    share_plain = np.mean([d.output == likely for d in plain.select(query).demos])
    out = joint.select(query)
    assert np.mean([d.output == likely for d in out.demos]) >= share_plain
    # the reported MMD2 is measured on the inputs with the selector's RBF, like any other selector's
    assert out.mmd2 == pytest.approx(joint.target_mmd2(out.indices, joint.make_target(query)), rel=1e-6)
    assert out.kernel == "ProductKernel(RBF(), LabelKernel(beta=0))"


def test_a_multi_row_target_gets_a_label_distribution_per_row() -> None:
    pool = _two_label_pool()
    sel = Selector(k=4, kernel=RBF() * LabelKernel(beta=0.25), swaps=2).fit(pool)
    out = sel.select(["apple fig item1", "kiwi lime item2"])
    assert len(out.demos) == 4 and set(out.phases) == {"greedy", "swap"}
    assert out.phases["swap"] <= out.phases["greedy"] + 1e-12


def test_the_label_prior_order_puts_the_voted_label_last() -> None:
    pool = _two_label_pool()
    sel = Selector(k=6, order="label_prior").fit(pool)
    query = "plum date item5"
    vote = neighbour_label_vote(sel.similarities(sel.make_target(query)), sel.label_codes_, 2, 16)
    out = sel.select(query)
    assert out.demos[-1].output == sel.label_names_[int(np.argmax(vote))]
    labels = [d.output for d in out.demos]
    # demos of one label form one block: the order is by the label's vote first
    assert labels == sorted(labels, key=lambda y: vote[sel.label_names_.index(y)])


def test_bad_kernel_objects_fail_with_the_argument_named() -> None:
    X = np.zeros((3, 2))
    with pytest.raises(InvalidInputError, match="beta"):
        LabelKernel(beta=1.5)
    with pytest.raises(InvalidInputError, match="bandwidth"):
        RBF(bandwidth=-1.0)
    with pytest.raises(InvalidInputError, match="Views"):
        mmd2(X, X, kernel=RBF() * LabelKernel())
    with pytest.raises(InvalidInputError, match="same number of rows"):
        Views(np.zeros((3, 2)), label=np.zeros((2, 2)))
    with pytest.raises(InvalidTypeError, match="combined"):
        RBF() + [1, 2]  # noqa: RUF005
    with pytest.raises(InvalidInputError, match="weight"):
        -1.0 * RBF()
    with pytest.raises(InvalidInputError, match="label_neighbours"):
        Selector(k=2, label_neighbours=0).fit(_two_label_pool())
    assert isinstance(RBF() * LabelKernel(), ProductKernel)


def test_the_lexical_kernel_on_sparse_rows_matches_its_columns() -> None:
    from scipy import sparse

    rng = np.random.default_rng(5)
    C = rng.normal(size=(9, 3))
    lex = sparse.random(9, 40, density=0.2, format="csr", random_state=1)
    T = Views(rng.normal(size=(2, 3)), lexical=sparse.random(2, 40, density=0.3, format="csr", random_state=2))
    rows = Views(C, lexical=lex)
    kernel = RBF(bandwidth=1.0) + 0.5 * LexicalKernel()
    cols = kernel.columns(rows)
    np.testing.assert_allclose(cols.cross(T), kernel(rows, T), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cols.column(2), kernel(rows)[:, 2], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cols.diag(), np.diag(kernel(rows)), rtol=1e-10)
    assert mmd2(rows, T, kernel=kernel) == pytest.approx(
        mmd2(C, T["embedding"], kernel=RBF(bandwidth=1.0)) + 0.5 * mmd2(rows, T, kernel=LexicalKernel()), rel=1e-10
    )


def test_a_lexical_selector_prefers_shared_words_and_needs_query_texts() -> None:
    records = [{"input": f"common words here number{i}", "output": "x"} for i in range(30)]
    records += [{"input": "zebra giraffe savanna", "output": "y"}, {"input": "zebra stripes", "output": "y"}]
    pool = DemoPool(records, embedder=HashingEmbedder(dim=32))
    sel = Selector(k=2, kernel=LexicalKernel(), order="herding").fit(pool)
    out = sel.select("a zebra in the savanna")
    assert {d.input for d in out.demos} == {"zebra giraffe savanna", "zebra stripes"}
    with pytest.raises(InvalidInputError, match="text"):
        sel.select(np.ones(32, dtype=np.float32))


def test_the_lexical_columns_match_the_gram_for_one_and_many_target_rows() -> None:
    from scipy import sparse

    from promptkd.kernels import feature_kernels

    lex = sparse.random(30, 50, density=0.15, format="csr", random_state=3)
    rows = Views(np.zeros((30, 1)), lexical=lex)
    cols = LexicalKernel().columns(rows)
    K = LexicalKernel()(rows)
    np.testing.assert_allclose([cols.column(j) for j in range(30)], K.T, rtol=1e-12, atol=1e-15)
    for n in (1, feature_kernels._DENSE_ROWS + 1):  # dense vectors below the threshold, sparse products above
        T = Views(np.zeros((n, 1)), lexical=sparse.random(n, 50, density=0.2, format="csr", random_state=n))
        np.testing.assert_allclose(cols.cross(T), LexicalKernel()(rows, T), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(cols.target_gram(T), LexicalKernel()(T), rtol=1e-12, atol=1e-15)
    dense = LexicalKernel().columns(Views(np.zeros((30, 1)), lexical=lex.toarray()))
    np.testing.assert_allclose(dense.column(4), K[:, 4], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dense.diag(), np.diag(K), rtol=1e-12)


def test_take_rows_matches_scipy_indexing() -> None:
    from scipy import sparse

    from promptkd.kernels.views import take_rows

    A = sparse.random(20, 30, density=0.1, format="csr", random_state=4)  # some rows are empty
    for idx in ([3, 3, 0, 19], [], list(range(20))[::-1]):
        got, want = take_rows(A, idx), A[idx]
        assert got.shape == want.shape and (got != want).nnz == 0


def test_without_leaves_out_the_parts_that_read_a_view() -> None:
    rbf_, lex = RBF(bandwidth=1.0), LexicalKernel()
    assert (rbf_ + lex).without("lexical") == rbf_
    assert (rbf_ + 0.5 * lex).without("lexical") == rbf_
    assert (0.5 * rbf_ + lex).without("lexical") == 0.5 * rbf_
    assert (rbf_ * LabelKernel(0.2) + lex).without("lexical") == rbf_ * LabelKernel(0.2)
    assert (rbf_ * lex).without("lexical") == rbf_  # a product keeps its other factors
    assert (rbf_ + Cosine()).without("lexical") == rbf_ + Cosine()  # nothing to leave out: the same kernel
    assert lex.without("lexical") is None and (2.0 * lex).without("lexical") is None
    assert (rbf_ + lex).without("embedding") == lex


def test_kernel_names_joined_by_plus_are_their_sum() -> None:
    assert as_kernel("rbf+lexical") == RBF() + LexicalKernel()
    assert as_kernel("rbf + cosine", bandwidth=0.5) == RBF(bandwidth=0.5) + Cosine()
    assert as_kernel("lexical") == LexicalKernel()
    with pytest.raises(InvalidInputError, match="joined by '\\+'"):
        as_kernel("rbf+nope")


def test_embedding_queries_fall_back_to_the_text_free_part(caplog: pytest.LogCaptureFixture) -> None:
    records = [{"input": f"common words here number{i}", "output": "xy"[i % 2]} for i in range(30)]
    pool = DemoPool(records, embedder=HashingEmbedder(dim=32))
    q = pool.encode_texts(["common words number7"])[0]
    default = Selector(k=4).fit(pool)
    with caplog.at_level("WARNING", logger="promptkd"):
        first, second = default.select(q), default.select(q)
    warned = [r for r in caplog.records if "without texts" in r.getMessage()]
    assert len(warned) == 1 and "RBF(bandwidth=" in warned[0].getMessage()  # once per selector
    plain = Selector(k=4, kernel="rbf", order="label_prior").fit(pool).select(q)
    assert first.indices == second.indices == plain.indices
    # with the text, the lexical part counts: the same words as one demo pull it in
    with_text = default.select("common words number7")
    assert 7 in with_text.indices


def test_get_kernel_returns_objects_with_capabilities() -> None:
    from promptkd.kernels import CallableKernel, get_kernel, laplacian, rbf

    assert get_kernel("rbf", bandwidth=0.5) == RBF(bandwidth=0.5)
    assert get_kernel(rbf) == RBF() and get_kernel(laplacian).float64_distances
    assert get_kernel("cosine", bandwidth=2.0).inner_product and get_kernel("cosine").unit_diagonal
    assert not get_kernel("linear").unit_diagonal and get_kernel("linear").inner_product
    assert get_kernel("imq").nonnegative and not get_kernel("cosine").nonnegative
    assert (RBF() * RBF()).nonnegative and (0.5 * RBF()).nonnegative

    def poly(X, Y, *, bandwidth=None):
        return (1.0 + X @ Y.T) ** 2

    k = get_kernel(poly)
    assert isinstance(k, CallableKernel) and not (k.gemm or k.unit_diagonal or k.distance_based)
    with pytest.raises(InvalidInputError, match="kernel"):
        get_kernel("poly")


def test_a_custom_callable_takes_the_generic_path_with_the_same_result() -> None:
    from promptkd.kernels import mmd2, rbf
    from promptkd.kernels.columns import KernelColumns
    from promptkd.kernels.lookup import kernel_at, kernel_diag

    def my_rbf(X, Y, *, bandwidth):
        return rbf(X, Y, bandwidth=bandwidth)

    rng = np.random.default_rng(0)
    C, T = rng.normal(size=(6, 3)), rng.normal(size=(2, 3))
    fast, slow = KernelColumns(C, kernel_at("rbf", 1.3)), KernelColumns(C, kernel_at(my_rbf, 1.3))
    assert fast.distance and not slow.distance and not slow.inner
    np.testing.assert_allclose(fast.cross(T), slow.cross(T), atol=1e-12)
    np.testing.assert_allclose(fast.column(2), slow.column(2), atol=1e-12)
    np.testing.assert_allclose(fast.diag(), slow.diag(), atol=1e-12)
    assert fast.target_constant(T, np.array([0.3, 0.7])) == pytest.approx(
        slow.target_constant(T, np.array([0.3, 0.7])), abs=1e-12
    )
    assert mmd2(C, T, kernel=my_rbf, bandwidth=1.3) == pytest.approx(mmd2(C, T, kernel="rbf", bandwidth=1.3), abs=1e-12)
    np.testing.assert_allclose(kernel_diag(C, kernel=my_rbf, bandwidth=1.3), 1.0)
    lin = KernelColumns(C, kernel_at("linear", None))
    np.testing.assert_allclose(lin.diag(), (C * C).sum(1))
    np.testing.assert_allclose(lin.column(1), C @ C[1])
