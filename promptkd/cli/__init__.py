"""The ``promptkd`` command line.

Commands: ``pool build``, ``pool info``, ``select``, ``bound``, and (when their
modules are installed) ``probe`` and ``eval``. Every command prints
human-readable output by default and JSON with ``--json``. Errors are one line
on stderr that says how to fix the input, with exit code 2 for bad input and 1
for other failures.
"""

from __future__ import annotations

import logging
import sys

import typer

# the command modules register their commands on the apps when imported
from promptkd.cli import bound_cmd, lm_cmds, pool_cmds, select_cmd  # noqa: F401
from promptkd.cli._core import app, cli_words, fail, pool_app
from promptkd.exceptions import PromptKDError

__all__ = ["app", "cli_words", "fail", "main", "pool_app"]


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning library errors into one line."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except PromptKDError as err:
        code = 2 if isinstance(err, (ValueError, TypeError)) else 1
        typer.echo(f"error: {cli_words(str(err))}", err=True)
        sys.exit(code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except OSError as err:
        typer.echo(f"error: {err}; check the path and permissions.", err=True)
        sys.exit(1)
    except Exception as err:
        # usage errors from typer's bundled click: report them in one line too
        if type(err).__name__ == "NoArgsIsHelpError":
            typer.echo(err.format_message(), err=True)  # type: ignore[attr-defined]
            sys.exit(2)
        if hasattr(err, "format_message") and hasattr(err, "exit_code"):
            typer.echo(f"error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        raise
    # with standalone_mode=False click returns the code of a typer.Exit instead of raising it
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
