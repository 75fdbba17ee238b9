"""Numeric flags have documented ranges; a flag out of range, an unknown
option or a missing argument is one line (exit 2), never a usage box or a
traceback; seeds past 2^64 are refused before anything runs."""

from __future__ import annotations

import pytest

from swarm_engine.cli.main import app_factory
from swarm_engine.inputs import limits
from tests.inprocess import assert_one_error_line, isolate, run_swarm
from tests.paths import TROUBLESHOOTING


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path / "home")


USAGE = [
    (("eval", TROUBLESHOOTING, "-n", "0"), "'-n' / '--runs'"),
    (("eval", TROUBLESHOOTING, "-n", str(10**12)), "'-n' / '--runs'"),
    (("eval", TROUBLESHOOTING, "-n", "abc"), "'-n' / '--runs'"),
    (("eval", TROUBLESHOOTING, "--seed", "-1"), "'--seed'"),
    (("eval", TROUBLESHOOTING, "--seed", str(2**64)), "'--seed'"),
    (("eval", TROUBLESHOOTING, "--fail-under", "1.5"), "'--fail-under'"),
    (("eval", TROUBLESHOOTING, "-j", "-1"), "'-j' / '--jobs'"),
    (("eval", TROUBLESHOOTING, "--jobs", "1025"), "'-j' / '--jobs'"),
    (("eval", TROUBLESHOOTING, "--bogus"), "No such option"),
    (("eval",), "Missing argument"),
    (("no-such-command",), "No such command"),
    (("llama", "start", "--port", "70000"), "'--port'"),
    (("learn", "daemon", TROUBLESHOOTING, "--check-seconds", "1e300"), "'--check-seconds'"),
]


@pytest.mark.parametrize(("args", "fragment"), USAGE, ids=[" ".join(map(str, a[-2:])) for a, _ in USAGE])
def test_usage_errors_are_one_line(capsys, args, fragment):
    line = assert_one_error_line(run_swarm(capsys, *args), fragment, code=2)
    assert "--help" in line


def test_seeds_past_2_64(capsys):
    out = run_swarm(capsys, "eval", TROUBLESHOOTING, "--seed", str(2**64 - 2), "-n", "5", "-q")
    line = assert_one_error_line(out, "--seed: 5 runs from seed 18446744073709551614", code=1)
    assert f"use a seed <= {2**64 - 5}" in line


def test_the_last_seed_that_fits_runs(capsys):
    out = run_swarm(capsys, "eval", TROUBLESHOOTING, "--seed", str(2**64 - 3), "-n", "3", "-q")
    assert out.code == 0, out.err


def test_seeds_error_wording():
    assert limits.seeds_error(0, 1) is None
    assert limits.seeds_error(2**64 - 1, 1) is None
    assert "past the largest seed" in (limits.seeds_error(2**64 - 1, 2) or "")
    assert "expected an int in 0..18446744073709551615" in (limits.seeds_error(-1) or "")


def _bounds(param) -> tuple[bool, object, object]:
    """(numeric?, min, max) of a command-line option, in the typer in use (vendored or click-based)."""
    runtime = getattr(param, "get_runtime_param", None)
    annotation = getattr(runtime(), "annotation", None) if callable(runtime) else None
    kind = getattr(param, "type", None)
    numeric = annotation in (int, float) or type(kind).__name__ in ("IntRange", "FloatRange", "IntParamType",
                                                                    "FloatParamType")
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        numeric = False
    lo = getattr(param, "min", None) if hasattr(param, "min") else getattr(kind, "min", None)
    hi = getattr(param, "max", None) if hasattr(param, "max") else getattr(kind, "max", None)
    return numeric, lo, hi


def _numeric_options():
    import typer.main

    from swarm_engine.cli.bench import app_factory as bench_app

    stack = [("swarm", typer.main.get_command(app_factory())), ("swarm-bench", typer.main.get_command(bench_app()))]
    while stack:
        name, c = stack.pop()
        for sub_name, sub in (getattr(c, "commands", None) or {}).items():
            stack.append((f"{name} {sub_name}", sub))
        for p in getattr(c, "params", []):
            if not getattr(p, "opts", None) or not p.opts[0].startswith("-"):
                continue
            numeric, lo, hi = _bounds(p)
            if numeric:
                yield f"{name} {p.opts[-1]}", lo, hi


def test_every_numeric_flag_has_a_range():
    """Each int / float flag of every command (swarm and swarm-bench) is bounded on both sides."""
    found = list(_numeric_options())
    assert found, "no numeric flags found: the walk over the commands is broken"
    unbounded = [name for name, lo, hi in found if lo is None or hi is None]
    assert not unbounded, unbounded
