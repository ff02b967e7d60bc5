"""Shared fixtures. Real models are session-scoped so each loads once per run."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# pools cache model embeddings by default: the suite uses a cache of its own, never the user's
os.environ.setdefault(
    "PROMPTKD_EMBEDDING_CACHE", os.path.join(tempfile.mkdtemp(prefix="promptkd-tests-"), "embeddings.sqlite")
)

from promptkd import Demo, DemoPool
from promptkd.embeddings import HashingEmbedder

# Property tests: CI replays a fixed set of examples (derandomized, no example database), so one
# commit always gives the same result; local runs keep exploring new random examples.
# HYPOTHESIS_PROFILE=ci reproduces CI locally.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

TOPICS = {
    "sports": ["match", "goal", "team", "coach", "league", "season"],
    "finance": ["stock", "market", "bank", "profit", "shares", "rates"],
    "science": ["cell", "atom", "energy", "galaxy", "protein", "theory"],
}


def make_demos(n_per_label: int = 10, seed: int = 0) -> list[Demo]:
    """Small labelled corpus with lexical topic structure (for the hashing embedder)."""
    rng = np.random.default_rng(seed)
    demos = []
    for label, words in TOPICS.items():
        for i in range(n_per_label):
            picked = rng.choice(words, size=3, replace=False)
            text = f"{label} news {i}: the {picked[0]} and the {picked[1]} near the {picked[2]}"
            demos.append(Demo(input=text, output=label, metadata={"topic": label, "i": i}))
    return demos


@pytest.fixture
def hashing_pool() -> DemoPool:
    """30 demos over three labels, embedded with the deterministic hashing embedder."""
    return DemoPool(make_demos(), embedder=HashingEmbedder(dim=128))


@pytest.fixture(scope="session")
def st_embedder():
    """The real default sentence-transformers embedder (all-MiniLM-L6-v2, offline, CPU)."""
    from promptkd.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(device="cpu")


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct causal LM, loaded once per test session."""
    from promptkd.probes import load_lm

    return load_lm(device="cpu")


@pytest.fixture(scope="module")
def single_torch_thread():
    """Run a module's small forward passes on one torch thread, restoring the setting after.

    On 2-core machines, two busy-waiting OpenMP threads made tiny passes 10-20x more
    expensive in CPU time than one thread.
    """
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# fixtures that load a real model or start a real Ray cluster (seconds to minutes each)
REAL_MODEL_FIXTURES = {"st_embedder", "smollm2", "local_ray"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that uses a real-model (or real-Ray) fixture is `slow`: `pytest -m "not slow"` starts none."""
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
