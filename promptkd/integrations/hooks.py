"""Pipeline hooks: a small callback interface for logging and tracing promptkd events.

A hook is any object with some of the methods of :class:`Hook` (``on_select``,
``on_bound``, ``on_budget``, ``on_probe``, ``on_error``). Register it globally
with :func:`register_hook` (every promptkd integration and the CLI emit to the
global hooks) or pass it to one integration object (``hooks=[...]``).

A hook that raises does not break the pipeline: the error is logged and the
other hooks still run (pass ``raise_errors=True`` to :func:`emit` to propagate).

Examples
--------
>>> from promptkd.integrations.hooks import RecordingHook, emit, registered
>>> rec = RecordingHook()
>>> with registered(rec):
...     emit("on_bound", {"k": 4})
>>> rec.events
[('on_bound', {'k': 4})]
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from promptkd.exceptions import InvalidInputError, InvalidTypeError

__all__ = [
    "EVENTS",
    "Hook",
    "LoggingHook",
    "RecordingHook",
    "clear_hooks",
    "emit",
    "get_hooks",
    "register_hook",
    "registered",
    "unregister_hook",
]

logger = logging.getLogger("promptkd.hooks")

EVENTS = ("on_select", "on_bound", "on_budget", "on_probe", "on_eval", "on_error")

_lock = threading.Lock()
_global_hooks: list[Any] = []


class Hook:
    """Base class for hooks: every method is a no-op; override the ones you need.

    Each method receives the result object promptkd just produced plus keyword
    context: ``source`` (which component emitted it, e.g. ``"langchain"``,
    ``"dspy"``, ``"cli"``) and event-specific fields.

    Examples
    --------
    >>> class CountSelections(Hook):
    ...     def __init__(self):
    ...         self.n = 0
    ...     def on_select(self, selection, **context):
    ...         self.n += 1
    >>> h = CountSelections(); h.on_select(None, source="test"); h.n
    1
    """

    def on_select(self, selection: Any, **context: Any) -> None:
        """Called with each :class:`~promptkd.selection.Selection`."""

    def on_bound(self, bound: Any, **context: Any) -> None:
        """Called with each bound estimate."""

    def on_budget(self, budget: Any, **context: Any) -> None:
        """Called with each budget (``k="auto"``)."""

    def on_probe(self, report: Any, **context: Any) -> None:
        """Called with each attention-probe report."""

    def on_eval(self, result: Any, **context: Any) -> None:
        """Called with each evaluation result."""

    def on_error(self, error: BaseException, **context: Any) -> None:
        """Called when a pipeline step failed (before the error propagates)."""


def _summary(obj: Any) -> str:
    """One-line description of an event payload for the log."""
    if obj is None:
        return "None"
    if hasattr(obj, "indices") and hasattr(obj, "mmd2"):
        ids = ",".join(getattr(obj, "ids", ())[:8])
        return f"{getattr(obj, 'method', 'selection')} k={len(obj.indices)} mmd2={float(obj.mmd2):.6f} ids=[{ids}]"
    if hasattr(obj, "to_dict"):
        try:
            data = obj.to_dict()
        except Exception:  # a payload's to_dict failing must not break logging
            return type(obj).__name__
        keys = list(data)[:6] if isinstance(data, dict) else []
        parts = [f"{k}={data[k]!r:.40}" for k in keys if not isinstance(data[k], (list, dict))]
        return f"{type(obj).__name__}(" + ", ".join(parts) + ")"
    return f"{obj!r:.200}"


class LoggingHook(Hook):
    """Write one log line per event to the ``promptkd.hooks`` logger (or ``logger``).

    Parameters
    ----------
    level
        Logging level for events (default ``logging.INFO``); errors log at WARNING.
    logger
        A :class:`logging.Logger` or logger name to write to.

    Examples
    --------
    >>> import logging
    >>> hook = LoggingHook(level=logging.DEBUG)
    >>> hook.on_bound({"k": 3}, source="doc")
    """

    def __init__(self, level: int = logging.INFO, logger: logging.Logger | str | None = None) -> None:
        if not isinstance(level, int) or isinstance(level, bool):
            raise InvalidTypeError(f"level must be a logging level int (e.g. logging.INFO), got {level!r}.")
        self.level = level
        if logger is None:
            self.logger = logging.getLogger("promptkd.hooks")
        elif isinstance(logger, str):
            self.logger = logging.getLogger(logger)
        elif isinstance(logger, logging.Logger):
            self.logger = logger
        else:
            raise InvalidTypeError(f"logger must be a logging.Logger or a name, got {type(logger).__name__}.")

    def _log(self, event: str, payload: Any, context: dict[str, Any]) -> None:
        ctx = " ".join(f"{k}={v!r:.60}" for k, v in sorted(context.items()))
        self.logger.log(self.level, "%s %s%s", event, _summary(payload), f" [{ctx}]" if ctx else "")

    def on_select(self, selection: Any, **context: Any) -> None:
        """Log the selection's method, size, MMD2 and demo ids."""
        self._log("select", selection, context)

    def on_bound(self, bound: Any, **context: Any) -> None:
        """Log a bound estimate."""
        self._log("bound", bound, context)

    def on_budget(self, budget: Any, **context: Any) -> None:
        """Log a budget."""
        self._log("budget", budget, context)

    def on_probe(self, report: Any, **context: Any) -> None:
        """Log a probe report."""
        self._log("probe", report, context)

    def on_eval(self, result: Any, **context: Any) -> None:
        """Log an evaluation result."""
        self._log("eval", result, context)

    def on_error(self, error: BaseException, **context: Any) -> None:
        """Log a pipeline error at WARNING."""
        self.logger.warning("error %s: %s [%s]", type(error).__name__, error, context)

    def __repr__(self) -> str:
        return f"LoggingHook(level={logging.getLevelName(self.level)!r}, logger={self.logger.name!r})"


class RecordingHook(Hook):
    """Keep every event as ``(event, payload)`` in :attr:`events` (tests, tracing UIs).

    Examples
    --------
    >>> rec = RecordingHook(); rec.on_select("s", source="x"); rec.events, rec.contexts
    ([('on_select', 's')], [{'source': 'x'}])
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.contexts: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _record(self, event: str, payload: Any, context: dict[str, Any]) -> None:
        with self._lock:
            self.events.append((event, payload))
            self.contexts.append(dict(context))

    def on_select(self, selection: Any, **context: Any) -> None:
        """Record a selection."""
        self._record("on_select", selection, context)

    def on_bound(self, bound: Any, **context: Any) -> None:
        """Record a bound."""
        self._record("on_bound", bound, context)

    def on_budget(self, budget: Any, **context: Any) -> None:
        """Record a budget."""
        self._record("on_budget", budget, context)

    def on_probe(self, report: Any, **context: Any) -> None:
        """Record a probe report."""
        self._record("on_probe", report, context)

    def on_eval(self, result: Any, **context: Any) -> None:
        """Record an evaluation result."""
        self._record("on_eval", result, context)

    def on_error(self, error: BaseException, **context: Any) -> None:
        """Record an error."""
        self._record("on_error", error, context)

    def payloads(self, event: str) -> list[Any]:
        """Payloads of one event kind, in order."""
        return [p for e, p in self.events if e == event]


def _check_hook(hook: Any) -> Any:
    if hook is None or not any(callable(getattr(hook, name, None)) for name in EVENTS):
        raise InvalidTypeError(
            f"a hook must define at least one of {', '.join(EVENTS)}; got {type(hook).__name__}. "
            "Subclass promptkd.integrations.hooks.Hook."
        )
    return hook


def check_hooks(hooks: Iterable[Any] | None) -> list[Any]:
    """Validate a list of hooks (``None`` means no hooks).

    Examples
    --------
    >>> len(check_hooks([LoggingHook()]))
    1
    """
    if hooks is None:
        return []
    if isinstance(hooks, (str, bytes)) or not isinstance(hooks, Iterable) or isinstance(hooks, Hook):
        hooks = [hooks]
    return [_check_hook(h) for h in hooks]


def register_hook(hook: Any) -> Any:
    """Register ``hook`` globally (idempotent) and return it.

    Examples
    --------
    >>> h = register_hook(RecordingHook()); h in get_hooks()
    True
    >>> unregister_hook(h)
    """
    _check_hook(hook)
    with _lock:
        if not any(h is hook for h in _global_hooks):
            _global_hooks.append(hook)
    return hook


def unregister_hook(hook: Any) -> None:
    """Remove a globally registered hook (no error if it is not registered)."""
    with _lock:
        _global_hooks[:] = [h for h in _global_hooks if h is not hook]


def clear_hooks() -> None:
    """Remove every globally registered hook."""
    with _lock:
        _global_hooks.clear()


def get_hooks() -> list[Any]:
    """A copy of the globally registered hooks, in registration order."""
    with _lock:
        return list(_global_hooks)


@contextlib.contextmanager
def registered(*hooks: Any) -> Iterator[None]:
    """Register hooks for the duration of a ``with`` block.

    Examples
    --------
    >>> rec = RecordingHook()
    >>> with registered(rec):
    ...     rec in get_hooks()
    True
    >>> rec in get_hooks()
    False
    """
    for h in hooks:
        register_hook(h)
    try:
        yield
    finally:
        for h in hooks:
            unregister_hook(h)


def emit(
    event: str, payload: Any, *, hooks: Iterable[Any] | None = None, raise_errors: bool = False, **context: Any
) -> None:
    """Send ``payload`` to ``event`` on the global hooks and then on ``hooks``.

    Parameters
    ----------
    event
        One of :data:`EVENTS`.
    payload
        The object produced (a Selection, a bound, ...).
    hooks
        Extra hooks for this call only (an integration's own hooks).
    raise_errors
        Re-raise the first exception a hook raises instead of logging it.
    **context
        Keyword context passed to every hook (``source=...``, ``query=...``).

    Examples
    --------
    >>> rec = RecordingHook()
    >>> emit("on_select", "sel", hooks=[rec], source="doc")
    >>> rec.events
    [('on_select', 'sel')]
    """
    if event not in EVENTS:
        raise InvalidInputError(f"event={event!r} is not a hook event; use one of {', '.join(EVENTS)}.")
    targets = get_hooks()
    for h in check_hooks(hooks):
        if not any(h is t for t in targets):
            targets.append(h)
    for hook in targets:
        method = getattr(hook, event, None)
        if not callable(method):
            continue
        try:
            method(payload, **context)
        except Exception as err:
            if raise_errors:
                raise
            logger.warning("hook %r failed on %s: %s: %s", hook, event, type(err).__name__, err)
