"""Workloads and measurement helpers behind ``swarm-bench`` and ``benchmarks/``.

Suites (:data:`SUITES`): ``exploration`` (the kernel at scale, in the parts
:data:`PARTS`), ``peers`` (native vs the pure-Python reference vs a Mesa
model), ``python-env`` (a numpy environment vs the native one), ``learn``
(``learn once`` vs stored sessions) and ``llm`` (decisions/s). Every suite
runs the native kernel beside a slower implementation of the same work on
the same inputs in one process, checks that they agree run for run, and
reports medians with their spread. Gates (:mod:`swarm_engine.bench.gates`)
compare ratios measured in one run, never absolute times, so they hold on a
laptop and on a CI box alike.
"""

from swarm_engine.bench import tables
from swarm_engine.bench.equivalence import MismatchError
from swarm_engine.bench.machine import machine_info
from swarm_engine.bench.runner import PARTS, SUITES, run_suites
from swarm_engine.bench.settings import Settings

__all__ = ["MismatchError", "PARTS", "SUITES", "Settings", "machine_info", "run_suites", "tables"]
