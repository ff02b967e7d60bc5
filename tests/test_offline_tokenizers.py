"""Token budgets work offline: named tokenizers come from installed packages and never open a socket."""

from __future__ import annotations

import socket

import pytest

from promptkd.exceptions import ModelLoadError
from promptkd.probes.loading import GEMMA3_270M, model_cache_dir
from promptkd.selection.tokens import approx_tokens, as_token_counter


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to connect fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_approximate_and_minilm_tokenizers_are_offline(no_network) -> None:
    assert as_token_counter("chars/4").count(["abcdefgh", "abc"]).tolist() == [2, 1]
    assert approx_tokens("x" * 9) == 3
    minilm = as_token_counter("minilm")
    assert minilm.count(["a great movie"]).tolist() == [3]


def test_a_hub_name_that_is_not_cached_fails_at_once_when_offline(no_network, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"smollm2.*gemma-3-270m.*minilm.*chars/4"):
        as_token_counter("some-org/a-tokenizer-nobody-cached")


@pytest.mark.slow
def test_smollm2_tokenizer_from_its_package(no_network, smollm2) -> None:
    counter = as_token_counter("smollm2")
    text = "Review: a gripping thriller\nSentiment: positive"
    expected = len(smollm2.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert counter.count([text]).tolist() == [expected]


@pytest.mark.slow
@pytest.mark.skipif(not (model_cache_dir() / GEMMA3_270M).is_dir(), reason="Gemma-3-270m has not been loaded here")
def test_gemma_tokenizer_from_its_package(no_network) -> None:
    assert as_token_counter("gemma-3-270m").count(["hello world"]).tolist()[0] >= 2
