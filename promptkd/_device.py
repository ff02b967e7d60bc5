"""Device resolution shared by embedders and language models."""

from __future__ import annotations

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
