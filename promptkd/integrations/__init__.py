"""Adapters for the frameworks applications already use (LangChain, DSPy) and pipeline hooks.

The framework adapters are imported from their own modules, so ``import
promptkd.integrations`` needs no optional dependency:
``from promptkd.integrations.langchain import PromptKDExampleSelector`` (extra
``langchain``) and ``from promptkd.integrations.dspy import MMDFewShot`` (extra
``dspy``).
"""

from promptkd.integrations.hooks import Hook, LoggingHook, RecordingHook, emit, register_hook, unregister_hook
from promptkd.integrations.registry import make_selector, selector_names

__all__ = [
    "Hook",
    "LoggingHook",
    "RecordingHook",
    "emit",
    "make_selector",
    "register_hook",
    "selector_names",
    "unregister_hook",
]
