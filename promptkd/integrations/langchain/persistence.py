"""Saving and loading a :class:`~promptkd.integrations.langchain.PromptKDExampleSelector`: a pool folder plus a JSON config, no pickle."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptkd.embeddings.base import Embedder
from promptkd.exceptions import InvalidInputError, PersistenceError
from promptkd.integrations.registry import selector_config, selector_from_config
from promptkd.pool import DemoPool
from promptkd.pool.persistence import umask_file_mode

if TYPE_CHECKING:
    from promptkd.integrations.langchain.selector import PromptKDExampleSelector

__all__ = ["CONFIG_NAME", "SelectorPersistenceMixin"]

CONFIG_NAME = "promptkd_selector.json"
POOL_DIR = "pool"
FORMAT = "promptkd-langchain-selector"
FORMAT_VERSION = 1


class SelectorPersistenceMixin:
    """``save`` and ``load`` of the LangChain example selector."""

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to a directory: ``pool/`` (the DemoPool) and ``promptkd_selector.json``.

        No pickle is used. A selector with a non-JSON setting (a custom kernel
        function) raises :class:`~promptkd.exceptions.PersistenceError`.

        Examples
        --------
        >>> import tempfile
        >>> from promptkd.embeddings import HashingEmbedder
        >>> from promptkd.integrations.langchain import PromptKDExampleSelector
        >>> sel = PromptKDExampleSelector.from_examples(
        ...     [{"input": "a", "output": "b"}, {"input": "c", "output": "d"}], k=1, embedder=HashingEmbedder())
        >>> d = sel.save(tempfile.mkdtemp() + "/sel")
        >>> loaded = PromptKDExampleSelector.load(d)
        >>> loaded.select_examples({"input": "c"}) == sel.select_examples({"input": "c"})
        True
        """
        root = Path(path)
        config = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "selector": selector_config(self._template),
            "input_keys": self.input_keys,
            "output_key": self.output_key,
            "query_keys": self.query_keys,
            "example_keys": self.example_keys,
        }
        try:
            root.mkdir(parents=True, exist_ok=True)
            with self._lock:
                if not len(self.pool):
                    raise InvalidInputError("the selector has no examples; add examples before saving.")
                self.pool.embed()
                self.pool.save(root / POOL_DIR)
            fd, tmp = tempfile.mkstemp(prefix=".cfg-", suffix=".json", dir=root)
            if hasattr(os, "fchmod"):  # follow the umask, not mkstemp's 0600, so shared folders stay readable
                os.fchmod(fd, umask_file_mode())
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(config, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, root / CONFIG_NAME)
        except OSError as err:
            if isinstance(err, PersistenceError):
                raise
            raise PersistenceError(f"could not save the example selector to {root}: {err}.") from err
        return root

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        hooks: Iterable[Any] | None = None,
    ) -> PromptKDExampleSelector:
        """Load a directory written by :meth:`save` (``embedder`` as for :meth:`DemoPool.load`)."""
        root = Path(path)
        cfg_path = root / CONFIG_NAME
        if not cfg_path.is_file():
            raise PersistenceError(f"{root} is not a saved example selector (no {CONFIG_NAME}); check the path.")
        try:
            config = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise PersistenceError(f"{cfg_path} is unreadable or not JSON ({err}); save the selector again.") from err
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise PersistenceError(f"{cfg_path} is not a promptkd LangChain selector config.")
        if int(config.get("version", 0)) > FORMAT_VERSION:
            raise PersistenceError(
                f"{cfg_path} has format version {config.get('version')}, newer than this promptkd "
                f"understands ({FORMAT_VERSION}); upgrade promptkd."
            )
        pool = DemoPool.load(root / POOL_DIR, embedder=embedder)
        selector = selector_from_config(config["selector"])
        return cls(
            selector,
            pool,
            input_keys=config["input_keys"],
            output_key=config["output_key"],
            query_keys=config.get("query_keys"),
            example_keys=config.get("example_keys"),
            hooks=hooks,
        )
