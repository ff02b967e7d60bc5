"""Pipeline hooks: registration, dispatch, the logging hook, and isolation of failing hooks."""

from __future__ import annotations

import logging

import pytest

from promptkd import Selector
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.integrations.hooks import (
    Hook,
    LoggingHook,
    RecordingHook,
    clear_hooks,
    emit,
    get_hooks,
    register_hook,
    registered,
    unregister_hook,
)


@pytest.fixture(autouse=True)
def _no_global_hooks():
    clear_hooks()
    yield
    clear_hooks()


def test_register_is_idempotent_and_unregister_removes():
    rec = RecordingHook()
    register_hook(rec)
    register_hook(rec)
    assert get_hooks() == [rec]
    unregister_hook(rec)
    assert get_hooks() == []
    unregister_hook(rec)  # no error when absent


def test_global_and_local_hooks_receive_events_once_each():
    glob, local = RecordingHook(), RecordingHook()
    with registered(glob):
        emit("on_bound", "b", hooks=[local, glob], source="test", k=3)
    assert glob.events == [("on_bound", "b")] and local.events == [("on_bound", "b")]
    assert glob.contexts == [{"source": "test", "k": 3}]
    assert get_hooks() == []


def test_partial_hooks_only_get_events_they_define():
    class OnlySelect:
        def __init__(self):
            self.seen = []

        def on_select(self, selection, **context):
            self.seen.append(selection)

    hook = OnlySelect()
    emit("on_bound", 1, hooks=[hook])
    emit("on_select", 2, hooks=[hook])
    assert hook.seen == [2]


def test_failing_hook_is_logged_not_raised_and_others_still_run(caplog):
    class Boom(Hook):
        def on_select(self, selection, **context):
            raise RuntimeError("kaboom")

    rec = RecordingHook()
    with caplog.at_level(logging.WARNING, logger="promptkd.hooks"):
        emit("on_select", "s", hooks=[Boom(), rec])
    assert rec.events == [("on_select", "s")]
    assert "kaboom" in caplog.text
    with pytest.raises(RuntimeError, match="kaboom"):
        emit("on_select", "s", hooks=[Boom()], raise_errors=True)


def test_logging_hook_writes_selection_summary(hashing_pool, caplog):
    selection = Selector(k=3).fit(hashing_pool).select("the stock market and the bank")
    with caplog.at_level(logging.INFO, logger="promptkd.hooks"):
        emit("on_select", selection, hooks=[LoggingHook()], source="unit")
    record = caplog.records[-1]
    assert record.levelno == logging.INFO and record.name == "promptkd.hooks"
    assert "k=3" in record.getMessage() and f"mmd2={selection.mmd2:.6f}" in record.getMessage()
    assert selection.ids[0] in record.getMessage() and "source='unit'" in record.getMessage()


def test_logging_hook_custom_logger_and_level(caplog):
    hook = LoggingHook(level=logging.DEBUG, logger="myapp.icl")
    with caplog.at_level(logging.DEBUG, logger="myapp.icl"):
        hook.on_budget({"k_star": 5})
        hook.on_error(ValueError("bad"), stage="select")
    assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.WARNING]
    assert all(r.name == "myapp.icl" for r in caplog.records)


def test_invalid_hooks_and_events_raise():
    with pytest.raises(InvalidTypeError, match="on_select"):
        register_hook(object())
    with pytest.raises(InvalidInputError, match="on_selekt"):
        emit("on_selekt", None)
    with pytest.raises(InvalidTypeError):
        LoggingHook(level="INFO")
