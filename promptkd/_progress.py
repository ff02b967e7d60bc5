"""One switch for every progress bar promptkd shows (no promptkd imports: the bottom layer)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

__all__ = ["default_show_progress_bar", "model_loading_bars"]

logger = logging.getLogger("promptkd")


def default_show_progress_bar(show_progress_bar: bool | None) -> bool:
    """Resolve ``show_progress_bar=None`` with one switch for every progress bar promptkd shows.

    An explicit True/False wins; else ``PROMPTKD_PROGRESS`` (``1``/``on`` or ``0``/``off``, which the
    CLI's ``--progress/--no-progress`` sets); else bars are on when promptkd logs at INFO or below.

    Examples
    --------
    >>> default_show_progress_bar(False)
    False
    """
    if show_progress_bar is not None:
        return bool(show_progress_bar)
    env = os.environ.get("PROMPTKD_PROGRESS", "").strip().lower()
    if env in ("1", "on", "true", "yes"):
        return True
    if env in ("0", "off", "false", "no"):
        return False
    return logger.getEffectiveLevel() <= logging.INFO


@contextlib.contextmanager
def model_loading_bars(show_progress_bar: bool | None = None) -> Iterator[None]:
    """Within the block, transformers' own bars (e.g. "Loading weights") follow promptkd's progress switch.

    The previous global setting of transformers is restored on exit.
    """
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a core dependency
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    if default_show_progress_bar(show_progress_bar):
        hf_logging.enable_progress_bar()
    else:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        (hf_logging.enable_progress_bar if was else hf_logging.disable_progress_bar)()
