"""The dequantised-model cache is written in float32 whatever dtype the first load asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import promptkd._packaged as packaged


class _FakeModel:
    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype

    def to(self, dtype: Any) -> _FakeModel:
        return _FakeModel(dtype)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, Any]]:
    """Record (source, dtype) of every from_pretrained call; the cache write is a marker file."""
    seen: list[tuple[str, Any]] = []
    monkeypatch.setattr(packaged, "model_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(packaged, "require", lambda *a, **k: torch)

    def fake_from_pretrained(path: Any, dtype: Any, **kwargs: Any) -> tuple[Any, Any]:
        seen.append(("gguf" if "gguf_file" in kwargs else "cache", dtype))
        return _FakeModel(dtype), object()

    def fake_write_cache(model: Any, tokenizer: Any, folder: Path, source_id: str) -> None:
        seen.append(("write", model.dtype))
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"")
        (folder / packaged._MARKER).write_text(
            f'{{"format": {packaged._CACHE_FORMAT}, "source": "{source_id}"}}', encoding="utf-8"
        )

    monkeypatch.setattr(packaged, "from_pretrained", fake_from_pretrained)
    monkeypatch.setattr(packaged, "_write_cache", fake_write_cache)
    return seen


def test_first_bfloat16_load_writes_a_float32_copy_and_reads_it_back(calls: list[tuple[str, Any]]) -> None:
    model, _ = packaged._load_gguf("m", Path("/nowhere"), "m.gguf", "src", torch.bfloat16, use_cache=True)
    assert calls == [("gguf", torch.float32), ("write", torch.float32), ("cache", torch.bfloat16)]
    assert model.dtype == torch.bfloat16


def test_later_loads_read_the_copy_in_the_asked_dtype(calls: list[tuple[str, Any]]) -> None:
    packaged._load_gguf("m", Path("/nowhere"), "m.gguf", "src", torch.bfloat16, use_cache=True)
    calls.clear()
    model, _ = packaged._load_gguf("m", Path("/nowhere"), "m.gguf", "src", torch.float32, use_cache=True)
    assert calls == [("cache", torch.float32)]
    assert model.dtype == torch.float32


def test_without_a_cache_the_gguf_loads_in_the_asked_dtype(calls: list[tuple[str, Any]]) -> None:
    model, _ = packaged._load_gguf("m", Path("/nowhere"), "m.gguf", "src", torch.bfloat16, use_cache=False)
    assert calls == [("gguf", torch.bfloat16)]
    assert model.dtype == torch.bfloat16
