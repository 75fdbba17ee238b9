"""Where the tests find the repository's files (the tests mirror the package, so
``Path(__file__)`` arithmetic would differ per folder)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT", "DATA", "SCENARIOS", "EXAMPLES", "TROUBLESHOOTING"]

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SCENARIOS = ROOT / "scenarios"
EXAMPLES = ROOT / "docs" / "examples"
TROUBLESHOOTING = SCENARIOS / "troubleshooting.toml"
