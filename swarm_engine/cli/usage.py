"""Usage errors (bad flags, missing arguments) as one line, for every console script."""

from __future__ import annotations

import typer

__all__ = ["usage_errors", "usage_line"]


def usage_errors() -> tuple[type[Exception], ...]:
    """Usage errors of the typer in use: its vendored click's (typer >= 0.29) or click's."""
    kinds: list[type[Exception]] = []
    vendored = getattr(typer, "TyperException", None)
    if isinstance(vendored, type):
        kinds.append(vendored)
    try:
        import click
    except ImportError:       # typer >= 0.29 vendors click and does not need it installed
        pass
    else:
        kinds.append(click.ClickException)
    return tuple(kinds)


def usage_line(exc: Exception) -> str:
    """A usage error as one line: what was wrong and where to read more."""
    path = getattr(getattr(exc, "ctx", None), "command_path", None)
    hint = f" (see '{path} --help')" if path else ""
    format_message = getattr(exc, "format_message", None)
    text = format_message() if callable(format_message) else str(exc)
    return " ".join(str(text).split()) + hint
