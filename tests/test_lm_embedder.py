"""LMEmbedder on the real SmolLM2 (session fixture ``smollm2``) and the product kernel k_att."""

from __future__ import annotations

import numpy as np
import pytest

from promptkd import Demo, DemoPool
from promptkd.embeddings import Embedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.kernels import mmd2
from promptkd.kernels.attention import AttentionKernel
from promptkd.probes import LMEmbedder

pytestmark = pytest.mark.usefixtures("single_torch_thread")


TEXTS = ["a great movie", "an awful movie that dragged on", "stocks fell sharply today", "", "the team won"]


@pytest.mark.parametrize(("output", "width"), [("hidden", 576), ("keys", 192), ("values", 192), ("kv", 384)])
def test_shapes_dtype_and_determinism(smollm2, output, width):
    emb = LMEmbedder(smollm2, layer=1, output=output)
    assert isinstance(emb, Embedder)
    X = emb.encode(TEXTS)
    assert X.shape == (5, width) and X.dtype == np.float32 and np.all(np.isfinite(X))
    again = emb.encode(TEXTS[::-1], batch_size=2)[::-1]  # other batches and padding: same vectors
    np.testing.assert_allclose(X, again, atol=1e-5)
    if output == "kv":
        np.testing.assert_allclose(np.linalg.norm(X[:, :192], axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(X[:, 192:], axis=1), 1.0, atol=1e-5)
    else:
        np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert emb.id == f"lm:SmolLM2-135M-Instruct:layer1:{output}:mean"


def test_hidden_matches_transformers_hidden_states(smollm2):
    import torch

    emb = LMEmbedder(smollm2, layer=2, output="hidden")
    X = emb.encode(["a great movie"], normalize=False)
    ids = smollm2.tokenizer("a great movie", return_tensors="pt")
    with torch.no_grad():
        hs = smollm2.model(**ids, output_hidden_states=True).hidden_states[3]  # [0] is the embedding layer
    np.testing.assert_allclose(X[0], hs[0].mean(0).numpy(), rtol=1e-4, atol=1e-5)
    assert emb.layer_index == 2 and LMEmbedder(smollm2, layer=-1).layer_index == 29


def test_pool_and_mmd_in_lm_space(smollm2):
    emb = LMEmbedder(smollm2, layer=3, output="kv")
    demos = [Demo(input=t, output="x") for t in ["good film", "bad film", "fine acting", "rates rose", "bank shares"]]
    pool = DemoPool(demos, embedder=emb)
    E = pool.embeddings
    assert E.shape == (5, 384)
    kern = emb.attention_kernel()
    K = kern(E)
    assert np.allclose(K, K.T) and np.linalg.eigvalsh(K).min() > -1e-8
    movies, finance = E[:3], E[3:]
    value = mmd2(movies, finance, kernel=kern)
    expect = kern(movies).mean() + kern(finance).mean() - 2 * kern(movies, finance).mean()
    assert value == pytest.approx(expect, rel=1e-6) and value > 0
    assert mmd2(movies, movies, kernel=kern) == pytest.approx(0.0, abs=1e-9)


def test_attention_kernel_is_product_of_value_and_key_kernels():
    rng = np.random.default_rng(0)
    V, Kx = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    X = np.hstack([V, Kx])
    kern = AttentionKernel(value_dim=4, n_heads=2, key_kernel="softmax")
    G = kern(X[:3], X[3:])
    expect = sum(
        (V[:3, s] @ V[3:, s].T) * np.exp(Kx[:3, s] @ Kx[3:, s].T / np.sqrt(2)) for s in (slice(0, 2), slice(2, 4))
    )
    np.testing.assert_allclose(G, expect)
    fixed = AttentionKernel(value_dim=4, key_kernel="rbf")
    first = fixed(X)
    fixed(X[:2])  # the median bandwidth is frozen at the first call
    np.testing.assert_allclose(fixed(X), first)
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(fixed(torch.as_tensor(X)).numpy(), first, rtol=1e-6)


def test_errors():
    with pytest.raises(InvalidInputError, match="output"):
        LMEmbedder(output="logits")
    with pytest.raises(InvalidTypeError):
        LMEmbedder(layer=1.5)
    with pytest.raises(InvalidInputError, match="columns"):
        AttentionKernel(value_dim=3)(np.ones((2, 5)))
    with pytest.raises(InvalidInputError, match="key_kernel"):
        AttentionKernel(value_dim=2, key_kernel="poly")
    with pytest.raises(InvalidInputError, match="output='kv'"):
        LMEmbedder(output="hidden").attention_kernel()
