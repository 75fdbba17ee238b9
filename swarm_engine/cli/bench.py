"""``swarm-bench``: the native kernel vs the pure-Python reference and its peers.

Thin on purpose: workloads, measurement and tables live in
:mod:`swarm_engine.bench`; this module parses options, prints, writes JSON.
``main()`` follows ``swarm``: a SwarmError is one line and exit 1 (traceback
with SWARM_DEBUG=1); a native/reference mismatch is exit 2, like a usage
error, since it is a bug and never a user mistake.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from swarm_engine.bench import PARTS, SUITES, MismatchError, Settings, llm_suite, plots, run_suites, tables
from swarm_engine.bench.runner import resolve
from swarm_engine.cli.usage import usage_errors, usage_line
from swarm_engine.errors import SwarmError, one_line
from swarm_engine.fsio import write_json

__all__ = ["app_factory", "main"]


def _gui_suite() -> Callable[[dict], Table] | None:
    """Register the dashboard's suite (``gui``: what watching costs an eval) when the
    gui extra is installed; it lives in swarm_engine.gui, above the bench layer, so it
    is added from here. Returns its table function."""
    try:
        from swarm_engine.gui import overhead
    except ImportError:
        return None
    SUITES.setdefault("gui", overhead.run)
    return overhead.table


GUI_TABLE = _gui_suite()

# Piped output gets 150 columns, not rich's 80: the widest tables are ~140.
console = Console() if sys.stdout.isatty() else Console(width=150)
err_console = Console(stderr=True)


def _sizes(text: str | None, name: str) -> tuple[int, ...] | None:
    """``"1000,10000"`` -> (1000, 10000); None passes through."""
    if text is None:
        return None
    try:
        values = tuple(int(x.replace("_", "")) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"{name} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise typer.BadParameter(f"{name} takes positive integers, got {text!r}")
    return values


def _job_counts(text: str | None) -> tuple[int, ...] | None:
    """``"4"`` -> (1, 2, 3, 4); ``"1,2,8"`` -> (1, 2, 8); None passes through."""
    counts = _sizes(text, "--jobs")
    if counts is not None and len(counts) == 1:
        return tuple(range(1, counts[0] + 1))
    return counts


def bench_command(
    suite: list[str] | None = typer.Option(
        None, "--suite", help="Suite to run (repeatable): all, " + ", ".join(SUITES)
        + "; or a part of exploration: " + ", ".join(PARTS) + ". Default all."),
    runs: int | None = typer.Option(None, "--runs", min=1, max=10**9,
                                    help="Troubleshooting runs of the main row (default 100000)."),
    workers: int | None = typer.Option(None, "--workers", min=1, max=2**24, help="Swarm workers (default 10000)."),
    grid: int | None = typer.Option(None, "--grid", min=1, max=16_383,
                                    help="Swarm grid side N: N x N nodes (default 1000)."),
    eval_runs: str | None = typer.Option(None, "--eval-runs",
                                         help="Eval sizes of the scaling curve, e.g. 1000,1000000."),
    jobs: str | None = typer.Option(None, "--jobs",
                                    help="Job counts of the speed-up curve (part jobs): N for 1..N, or a list "
                                         "such as 1,2,4 (default 1..every usable core)."),
    jobs_runs: int | None = typer.Option(None, "--jobs-runs", min=1, max=10**9,
                                         help="Runs of the speed-up curve's eval (default 1000000)."),
    scale_workers: str | None = typer.Option(None, "--scale-workers", help="Worker counts of the scaling curve."),
    scale_grids: str | None = typer.Option(None, "--scale-grids",
                                           help="Grid sides of the graph-size curve (3163: 10^7 nodes)."),
    sessions: str | None = typer.Option(None, "--sessions", help="Stored-session counts of the learn suite."),
    repeat: int | None = typer.Option(None, "--repeat", min=1, max=1000, help="Measured repeats per case (default 3)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write every result to this JSON file."),
    plot_dir: Path | None = typer.Option(None, "--plot", help="Write PNG plots into this folder (needs matplotlib)."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes: every suite in seconds (llm: a minute)."),
    scenario: Path | None = typer.Option(None, "--scenario", help="Troubleshooting scenario file."),
) -> None:
    """Measure the native kernel against the pure-Python reference, Mesa, Python environments, LLM backends
    and the learner."""
    base = Settings.quick_settings() if quick else Settings()
    settings = base.with_(runs=runs, workers=workers, grid=grid, repeat=repeat,
                          eval_runs=_sizes(eval_runs, "--eval-runs"), jobs=_job_counts(jobs),
                          jobs_runs=jobs_runs,
                          scale_workers=_sizes(scale_workers, "--scale-workers"),
                          scale_grids=_sizes(scale_grids, "--scale-grids"),
                          learn_sessions=_sizes(sessions, "--sessions"),
                          scenario=str(scenario) if scenario else None)
    settings.validate()
    resolve(suite)                      # unknown names fail before anything runs
    if plot_dir is not None:
        plots.require()
    with console.status("warming up") as status:
        report = run_suites(settings, suite, say=lambda msg: status.update(escape(msg)))
    console.print(tables.machine_line(report["machine"]), highlight=False)
    for t in tables.suite_tables(report):
        console.print(t, highlight=False)
    if "gui" in report["suites"] and GUI_TABLE is not None:
        console.print(GUI_TABLE(report["suites"]["gui"]), highlight=False)
    per_suite = ", ".join(f"{k} {v:.1f} s" for k, v in report["suite_seconds"].items())
    console.print(f"{report['seconds']:.1f} s ({per_suite}); peak RSS {tables.nbytes(report['peak_rss_bytes'])}",
                  highlight=False)
    if json_path is not None:
        write_json(json_path, report)
        console.print(f"results: {json_path}", highlight=False)
    if plot_dir is not None:
        for path in plots.write_plots(report, plot_dir):
            console.print(f"plot: {path}", highlight=False)
    failed = llm_suite.failures(report["suites"].get("llm", {}))
    for line in failed:
        err_console.print(f"error: llm: {line}", markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


def app_factory() -> typer.Typer:
    """The ``swarm-bench`` app: one command."""
    app = typer.Typer(name="swarm-bench", add_completion=False, pretty_exceptions_enable=False,
                      help="Benchmark the native kernel against the pure-Python reference and its peers.")
    app.command()(bench_command)
    return app


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    Usage errors (a bad flag) are one line and exit 2, as for ``swarm``."""
    try:
        code = typer.main.get_command(app_factory()).main(args=argv, prog_name="swarm-bench",
                                                          standalone_mode=False)
    except usage_errors() as exc:
        err_console.print(f"error: {one_line(usage_line(exc))}", markup=False, highlight=False, soft_wrap=True)
        return int(getattr(exc, "exit_code", 2))
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
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
