"""Rendering demonstrations into prompt text."""

from promptkd.rendering.template import PromptTemplate, RenderedPrompt, as_template

__all__ = ["PromptTemplate", "RenderedPrompt", "as_template"]
