"""Every error the engine raises on purpose.

::

    SwarmError                      anything the user can fix; the CLI prints one line
    ├── InputError                  a located problem: FILE:LINE: FIELD: message
    │   ├── ScenarioError           a scenario file: syntax, schema, graph, variant
    │   └── ConfigError             config.toml, SWARM_* variables, CLI flags, API arguments
    ├── EnvironmentError_           an environment failed or was misused
    ├── LlmError                    an LLM backend
    │   ├── LlmTransientError       retry with backoff (timeouts, 5xx, refused)
    │   └── LlmPermanentError       do not retry (4xx, bad model)
    ├── StoreError                  learning store, reports, files on disk
    └── ClusterError                a Ray cluster: unreachable, a node that cannot run a chunk

Library exceptions (msgspec, tomllib, httpx, llama_cpp) are mapped to these at
the boundary with ``raise ... from``; anything else escaping is a bug and keeps
its traceback.
"""

from __future__ import annotations

import functools

__all__ = [
    "SwarmError",
    "InputError",
    "ScenarioError",
    "ConfigError",
    "EnvironmentError_",
    "LlmError",
    "LlmTransientError",
    "LlmPermanentError",
    "StoreError",
    "ClusterError",
    "one_line",
]


def one_line(text: str) -> str:
    """``text`` with every unprintable character escaped (``\\r``, ``\\x1b``, ``\\u202e``):
    what an error echoes from a file or a variable can neither break the one
    line nor drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class SwarmError(Exception):
    """Base of the engine's deliberate errors: one line that names what and where."""


class InputError(SwarmError):
    """Bad input, located as precisely as the reader can tell.

    Parameters
    ----------
    message:
        What was expected (and what was found).
    path:
        The file (or ``$VARIABLE``, or ``--flag``).
    line:
        1-based line in the file, when TOML or the locator can tell.
    field:
        Dotted field path, e.g. ``app_config.max_ticks``.
    """

    #: what ``__str__`` prints for a missing path ("" prints the message alone)
    unnamed: str = ""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __reduce__(self):
        # pickled with its parts (a worker process's error reaches the parent
        # as it was raised), not with the formatted line as its message
        return (functools.partial(type(self), path=self.path, line=self.line, field=self.field), (self.message,))

    def __str__(self) -> str:
        where = one_line(self.path or self.unnamed)
        if where and self.line:
            where += f":{self.line}"
        field = f" {one_line(self.field)}:" if self.field else ""
        message = one_line(self.message)
        if not where:
            return f"{field.strip()} {message}" if field else message
        return f"{where}:{field} {message}"


class ScenarioError(InputError):
    """A scenario file is malformed (see :class:`InputError` for the parameters)."""

    unnamed = "<scenario>"


class ConfigError(InputError):
    """Bad configuration: config.toml, a ``SWARM_*`` variable, a CLI flag or an
    API argument. Raised with a message alone by API checks; the settings
    reader adds the file, line and key."""


class EnvironmentError_(SwarmError):
    """An environment failed or was given something it cannot run.

    The trailing underscore keeps clear of the builtin ``EnvironmentError``.
    """


class LlmError(SwarmError):
    """An LLM backend failed."""

    #: how many times the call was retried before it failed (a Decision's ``retries``)
    retries: int = 0


class LlmTransientError(LlmError):
    """Worth retrying: timeouts, 5xx answers, refused connections."""


class LlmPermanentError(LlmError):
    """Not worth retrying: 4xx answers, a missing or broken model."""


class StoreError(SwarmError):
    """Reading or writing the engine's files (reports, learning store) failed."""


class ClusterError(SwarmError):
    """A cluster eval (``swarm eval --cluster``) could not be run: the cluster
    does not answer, or a chunk failed on every node it was tried on."""
