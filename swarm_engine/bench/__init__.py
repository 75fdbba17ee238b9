"""Workloads and measurement helpers behind ``swarm-bench`` and ``benchmarks/``.

Every suite runs the native kernel and the pure-Python reference
(:mod:`swarm_engine._reference`) on the same inputs in one process, checks
that they agree run for run, and reports rates with their spread. Gates
compare ratios measured in one run, never absolute times, so they hold on a
laptop and on a CI box alike.
"""

from swarm_engine.bench.equivalence import MismatchError
from swarm_engine.bench.machine import machine_info
from swarm_engine.bench.runner import PARTS, SUITES, run_suites
from swarm_engine.bench.settings import Settings
from swarm_engine.bench import tables

__all__ = ["MismatchError", "PARTS", "SUITES", "Settings", "machine_info", "run_suites", "tables"]
