"""Options shared by several commands."""

from __future__ import annotations

import typer

__all__ = ["RUNS", "SEED", "VERBOSE", "QUIET", "VARIANT"]

RUNS = typer.Option(None, "-n", "--runs", min=1, help="Number of seeded runs [config eval.runs, 1].")
SEED = typer.Option(None, "-s", "--seed", min=0,
                    help="Seed of the first run; run i uses seed + i [config eval.seed, 42].")
VERBOSE = typer.Option(False, "-v", "--verbose", help="Print tick snapshots of the first run.")
QUIET = typer.Option(False, "-q", "--quiet", help="No progress bar and no table.")
VARIANT = typer.Option(None, "--variant", help="Apply the named [[variants]] overrides.")
