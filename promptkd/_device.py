"""Device resolution shared by embedders and language models."""

from __future__ import annotations

import glob
import os
import sys

from promptkd.exceptions import InvalidInputError, InvalidTypeError

_KNOWN_PREFIXES = ("cpu", "cuda", "mps")


def resolve_device(device: str | None) -> str:
    """Return the torch device string to use.

    ``None`` or ``"auto"`` picks CUDA when available, then Apple MPS, then CPU.
    Explicit strings must name a known device type (``cpu``, ``cuda``, ``cuda:N``,
    ``mps``); anything else raises instead of silently falling back.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    if device is None or device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if not isinstance(device, str):
        raise InvalidTypeError(
            f"device must be a string such as 'auto', 'cpu' or 'cuda', got {type(device).__name__} ({device!r})."
        )
    kind, _, index = device.partition(":")
    if kind not in _KNOWN_PREFIXES or (index and not index.isdigit()):
        raise InvalidInputError(
            f"device={device!r} is not a known device; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        )
    if kind == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(
            f"device={device!r} was requested but CUDA is not available; use device='cpu' or 'auto'."
        )
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise InvalidInputError(
            f"device={device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) are visible; "
            "use 'cuda' or a smaller index."
        )
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InvalidInputError("device='mps' was requested but MPS is not available; use device='cpu' or 'auto'.")
    return device


def accelerator_possible() -> bool:
    """Whether torch might find a GPU here, judged without importing torch (which takes seconds).

    False only on Linux with no GPU device node: NVIDIA (``/dev/nvidiactl``,
    ``/dev/nvidia0``...), AMD ROCm (``/dev/kfd``) or a WSL GPU (``/dev/dxg``);
    there ``resolve_device("auto")`` would answer ``"cpu"``. True elsewhere
    (macOS may have MPS; other systems are not inspected).

    Examples
    --------
    >>> isinstance(accelerator_possible(), bool)
    True
    """
    if not sys.platform.startswith("linux"):
        return True
    nodes = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")
    return any(os.path.exists(p) for p in nodes) or bool(glob.glob("/dev/nvidia[0-9]*"))


def _cpu_flags() -> set[str]:
    """Instruction-set flags of this CPU as Linux reports them (empty where /proc/cpuinfo is absent)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def has_native_bfloat16(device: str) -> bool:
    """Whether ``device`` runs bfloat16 matrix products natively (so they are faster than float32).

    CUDA devices answer through torch; a CPU counts when it has AVX512-BF16 or AMX-BF16 (x86) or the
    BF16 extension (Arm). Elsewhere bfloat16 is emulated and several times slower than float32.

    Examples
    --------
    >>> isinstance(has_native_bfloat16("cpu"), bool)
    True
    """
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device == "cpu":
        return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})
    return False
