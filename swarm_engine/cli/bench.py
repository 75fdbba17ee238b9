"""``swarm-bench``: native kernel vs the pure-Python reference, side by side.

Thin on purpose: workloads, measurement and tables live in
:mod:`swarm_engine.bench`; this module parses options, prints, writes JSON.
``main()`` follows ``swarm``: a SwarmError is one line and exit 1 (traceback
with SWARM_DEBUG=1); a native/reference mismatch is exit 2, like a usage
error, since it is a bug and never a user mistake.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from swarm_engine.bench import MismatchError, Settings, run_suites, tables
from swarm_engine.errors import SwarmError
from swarm_engine.eval.report import write_json_atomic

__all__ = ["app_factory", "main", "Suite"]

# Piped output gets 120 columns, not rich's 80: the tables are ~110 wide.
console = Console() if sys.stdout.isatty() else Console(width=120)
err_console = Console(stderr=True)


class Suite(str, Enum):
    """Which suites to run."""

    exploration = "exploration"
    troubleshooting = "troubleshooting"
    swarm = "swarm"
    all = "all"


def bench_command(
    suite: Suite = typer.Option(Suite.all, "--suite", help="Suite to run."),
    runs: Optional[int] = typer.Option(None, "--runs", min=1, help="Troubleshooting runs (default 100000)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Swarm workers (default 10000)."),
    grid: Optional[int] = typer.Option(None, "--grid", min=1, help="Swarm grid side N: N x N nodes (default 1000)."),
    repeat: Optional[int] = typer.Option(None, "--repeat", min=1, help="Measured repeats per case (default 3)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write every result to this JSON file."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes: the whole bench in seconds."),
    scenario: Optional[Path] = typer.Option(None, "--scenario", help="Troubleshooting scenario file."),
) -> None:
    """Measure the native kernel against the pure-Python reference on the same inputs."""
    base = Settings.quick_settings() if quick else Settings()
    settings = base.with_(runs=runs, workers=workers, grid=grid, repeat=repeat,
                          scenario=str(scenario) if scenario else None)
    names = None if suite is Suite.all else [suite.value]
    with console.status("warming up") as status:
        report = run_suites(settings, names, say=lambda msg: status.update(escape(msg)))
    console.print(tables.machine_line(report["machine"]), highlight=False)
    res = report["suites"]
    if "troubleshooting" in res:
        console.print(tables.troubleshooting_table(res["troubleshooting"]))
    if "exploration" in res:
        console.print(tables.exploration_table(res["exploration"]))
    if "swarm" in res:
        for t in tables.swarm_tables(res["swarm"]):
            console.print(t)
    console.print(f"{report['seconds']:.1f} s; peak RSS {tables.nbytes(report['peak_rss_bytes'])}",
                  highlight=False)
    if json_path is not None:
        write_json_atomic(json_path, report)
        console.print(f"results: {json_path}", highlight=False)


def app_factory() -> typer.Typer:
    """The ``swarm-bench`` app: one command."""
    app = typer.Typer(name="swarm-bench", add_completion=False, pretty_exceptions_enable=False,
                      help="Benchmark the native kernel against the pure-Python reference.")
    app.command()(bench_command)
    return app


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    Click runs in standalone mode, so usage errors print and exit 2 the
    same way whichever click typer brings (0.29 vendors its own, whose
    exception classes are not ``click``'s)."""
    try:
        typer.main.get_command(app_factory()).main(args=argv, prog_name="swarm-bench", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except SwarmError as exc:
        if os.environ.get("SWARM_DEBUG") == "1":
            raise
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 1
    except MismatchError as exc:
        err_console.print(f"native and reference disagree: {exc}", markup=False, highlight=False,
                          soft_wrap=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
