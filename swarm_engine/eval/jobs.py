"""How many cores an eval runs on, and how its seeds are cut into chunks.

``jobs`` is a count of threads (native environments: the kernel releases the
GIL, one Kernel per thread) or processes (Python environments, which hold
it); 0 means every core this process may use (``os.sched_getaffinity``, so a
``taskset`` or a container's CPU set is honoured). Some evals run on one
core whatever ``jobs`` says, and :func:`plan` says why: an LLM-managed eval
(the model is the bottleneck and the runs share its runner), a paced one
(``tick_duration_ms`` > 0 sleeps to the wall clock), a Python environment
with a learning recorder (its tables change after every run) or without the
text it was parsed from (another process cannot rebuild it).

Chunks are contiguous seeds, several per job (load balance: runs differ in
length) but each big enough that handing one out costs little next to
running it; every chunk's results land at its seeds' indices, so the eval is
the same, run for run, as on one core (:mod:`swarm_engine.eval.merge`).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass

from swarm_engine.errors import ConfigError
from swarm_engine.eval.loader import Scenario
from swarm_engine.inputs import limits

__all__ = ["JobPlan", "available_cores", "resolve_jobs", "plan", "chunks", "CHUNKS_PER_JOB", "GUIDED", "MIN_CHUNK",
           "MIN_PROCESS_RUNS"]

# Chunks are guided: each takes 1/GUIDED of a job's share of the seeds still
# unassigned, so the first are long (few hand-offs) and the last short (a job
# finishing early waits on at most a short chunk, not 1/8 of its share: the
# tail was what cost -j 2 most of its lost efficiency). CHUNKS_PER_JOB bounds
# the shortest chunk from below (n / (jobs * CHUNKS_PER_JOB) runs).
GUIDED = 2
CHUNKS_PER_JOB = 32
# The smallest chunk worth a thread hand-off (~30 us of Python per chunk vs
# ~2 us per troubleshooting run); a smaller eval gets one chunk per job.
MIN_CHUNK = 64
# Below this many runs per process a Python environment stays on one core
# without trying (swarm_engine.eval.processes times a run and decides for longer evals).
MIN_PROCESS_RUNS = 32


@dataclass(frozen=True)
class JobPlan:
    """How an eval runs: ``mode`` "serial", "threads" or "processes" on
    ``jobs`` of them; ``reason`` says why a request for more ran on one."""

    requested: int
    jobs: int
    mode: str
    reason: str | None = None

    def to_dict(self) -> dict:
        return {"requested": self.requested, "used": self.jobs, "mode": self.mode, "reason": self.reason}


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):          # macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: int | None) -> int:
    """``jobs`` as a count: None or 0 = :func:`available_cores`; a ConfigError
    naming --jobs outside 0..MAX_JOBS."""
    if jobs is None or jobs == 0:
        return available_cores()
    if not 1 <= jobs <= limits.MAX_JOBS:
        raise ConfigError(f"got {jobs}, expected 0 (every core) or 1..{limits.MAX_JOBS}", path="--jobs")
    return int(jobs)


def plan(scenario: Scenario, jobs: int, runs: int, *, llm: bool, recorder: bool) -> JobPlan:
    """How ``runs`` runs of ``scenario`` use ``jobs`` (already resolved) when
    ``llm`` (an LLM manages them) and ``recorder`` (a learning session records
    them) say so: see the module docstring."""
    def serial(reason: str | None = None) -> JobPlan:
        return JobPlan(jobs, 1, "serial", reason if jobs > 1 else None)

    if jobs <= 1 or runs <= 1:
        return serial()
    if llm:
        return serial("LLM-managed runs share one model runner, and the model is the bottleneck")
    if scenario.config.tick_duration_ms > 0:
        return serial("paced runs (tick_duration_ms > 0) wait on the wall clock, not on a core")
    if scenario.binding.native:
        return JobPlan(jobs, min(jobs, runs), "threads")
    if recorder:
        return serial("the learning recorder updates its tables after every run of a Python environment")
    why = _not_rebuildable(scenario) or _main_not_importable()
    if why:
        return serial(why)
    used = min(jobs, runs // MIN_PROCESS_RUNS)
    if used <= 1:
        return serial(f"{runs} runs of a Python environment are too few to pay for starting processes "
                      f"(at least {2 * MIN_PROCESS_RUNS})")
    return JobPlan(jobs, used, "processes")


def _not_rebuildable(scenario: Scenario) -> str | None:
    """Why another process cannot rebuild this Python environment from the
    scenario's text (None: it can)."""
    if not scenario.text:
        return "the scenario has no source text (built in Python), so another process cannot rebuild it"
    env = scenario.spec.environment
    if scenario.binding.name != env.env_type or scenario.binding.extra.get("params") != dict(env.params):
        return (f"its environment object is not the one its text names ({env.env_type}), so another process "
                f"cannot rebuild it")
    return None


def _main_not_importable() -> str | None:
    """Why a ``spawn`` worker process could not import this program's main
    module again (``python - < script``: its ``__file__`` is ``<stdin>``)."""
    main = sys.modules.get("__main__")
    if main is None or getattr(getattr(main, "__spec__", None), "name", None):
        return None
    path = getattr(main, "__file__", None)
    if path is None or os.path.isfile(path):
        return None
    return f"the main program ({path}) is not a file a worker process can import again"


def chunks(lo: int, hi: int, jobs: int) -> list[tuple[int, int]]:
    """Seeds ``lo .. hi - 1`` as contiguous ``(start, end)`` chunks for ``jobs`` workers."""
    n = hi - lo
    if n <= 0:
        return []
    floor = max(min(MIN_CHUNK, math.ceil(n / jobs)), math.ceil(n / (jobs * CHUNKS_PER_JOB)))
    parts, s = [], lo
    while s < hi:
        size = max(floor, math.ceil((hi - s) / (GUIDED * jobs)))
        parts.append((s, min(hi, s + size)))
        s += size
    return parts
