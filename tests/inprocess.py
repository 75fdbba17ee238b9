"""Run ``swarm`` in this process (``cli.main.main``) with a clean home, and
check the project's rule for bad input: exit != 0, exactly one ``error:``
line on stderr, no traceback."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from swarm_engine.cli.main import main

__all__ = ["Outcome", "isolate", "run_swarm", "assert_one_error_line", "toml_text"]


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """No SWARM_* variable of the caller leaks in; ``home`` is SWARM_HOME. Returns the config path."""
    for key in list(os.environ):
        if key.startswith("SWARM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SWARM_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    (home / ".swarm-engine").mkdir(parents=True, exist_ok=True)
    return home / ".swarm-engine" / "config.toml"


def run_swarm(capsys: pytest.CaptureFixture[str], *args: object) -> Outcome:
    """``swarm ARGS...`` in process: its exit code and what it printed."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def assert_one_error_line(outcome: Outcome, *fragments: str, code: int | None = None) -> str:
    """Bad input: a non-zero exit, one ``error:`` line holding every fragment, no traceback."""
    assert outcome.code != 0, outcome
    if code is not None:
        assert outcome.code == code, outcome
    assert "Traceback" not in outcome.err + outcome.out
    assert len(outcome.err_lines) == 1, outcome.err
    line = outcome.err_lines[0]
    assert line.startswith("error: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def _value(v: object) -> str:
    import json
    import math

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):           # JSON escapes are TOML basic-string escapes (DEL aside)
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_value(str(k))} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_text(doc: dict) -> str:
    """A dict as TOML (top-level keys, everything below inline): enough for tests."""
    return "".join(f"{_value(str(k))} = {_value(v)}\n" for k, v in doc.items())
