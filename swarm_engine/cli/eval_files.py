"""Which scenario files ``swarm eval`` runs, and the ones it could not.

A directory argument stands for its own ``*.toml`` files, sorted by name;
subdirectories are not searched (``scenarios/llm/`` needs a model server:
name it to run it). When any argument is a directory, a file that cannot be
loaded or run is reported in one ``error:`` line and the eval goes on with
the others; the command exits 1 at the end. Files named one by one are all
validated before the first run, and the first error ends the command (one
line, exit 1, no report): the caller asked for exactly those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from swarm_engine.errors import ScenarioError, SwarmError

__all__ = ["EvalFiles", "expand"]


@dataclass
class EvalFiles:
    """The files of one eval and the errors met so far (one line each)."""

    files: list[Path]
    many: bool                                   # a directory eval: go on past a bad file
    errors: list[tuple[str, str]] = field(default_factory=list)   # (file, message)

    def attempt(self, path: Path | str, say: Callable[[str], None], fn, *args, **kwargs):
        """``fn(*args, **kwargs)``; in a directory eval a SwarmError is reported
        (``say``) and recorded, and None returned; with one it propagates."""
        try:
            return fn(*args, **kwargs)
        except SwarmError as exc:
            if not self.many:
                raise
            self.record(path, str(exc), say)
            return None

    def record(self, path: Path | str, message: str, say: Callable[[str], None]) -> None:
        self.errors.append((str(path), message))
        say(message)

    def report(self) -> list[dict[str, str]]:
        """The errors as the JSON report lists them."""
        return [{"file": f, "error": m} for f, m in self.errors]


def expand(paths: list[Path]) -> EvalFiles:
    """The scenario files named by ``paths`` (a directory: its ``*.toml``, not recursive)."""
    out = EvalFiles(files=[], many=any(p.is_dir() for p in paths))
    for p in paths:
        if p.is_dir():
            # FIFOs and devices named *.toml are kept: the loader refuses them in one line
            found = sorted(f for f in p.glob("*.toml") if not f.is_dir())
            if not found:
                err = ScenarioError("no *.toml scenario files in this directory (subdirectories are not "
                                    "searched)", path=str(p))
                if len(paths) == 1:
                    raise err
                out.errors.append((str(p), str(err)))
            out.files.extend(found)
        else:
            out.files.append(p)
    return out
