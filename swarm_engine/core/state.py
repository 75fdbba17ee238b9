"""Read-only views of a swarm's state, as the original's SharedState and
WorkerStates, backed by the kernel's arrays (copied on access).

Worker results, one per worker per tick::

    idle ──assign──> acted ──(k failures)──> escalate
      │                 │
      └─(no work)─> needs_guidance        continuing (waiting on async work)
                        │
                        └──(verdict)──> done(success)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from swarm_engine._native import _kernel

__all__ = ["WorkResult", "Verdict", "SharedState", "WorkerStates", "VERDICT_REASONS"]


class WorkResult(IntEnum):
    """What a worker did in the last tick."""

    IDLE = _kernel.W_IDLE
    ACTED = _kernel.W_ACTED
    CONTINUING = _kernel.W_CONTINUING
    NEEDS_GUIDANCE = _kernel.W_NEEDS_GUIDANCE
    ESCALATE = _kernel.W_ESCALATE
    DONE = _kernel.W_DONE


class Verdict(IntEnum):
    """Why a run ended (RUNNING while it has not)."""

    RUNNING = _kernel.V_RUNNING
    SUCCESS = _kernel.V_SUCCESS
    EXHAUSTED = _kernel.V_EXHAUSTED
    TIMEOUT = _kernel.V_TIMEOUT
    MAX_ERRORS = _kernel.V_MAX_ERRORS
    INCOMPLETE = _kernel.V_INCOMPLETE
    STOPPED = _kernel.V_STOPPED
    FAILED = 7          # a failure condition held, or a success condition did not

    @property
    def reason(self) -> str:
        return VERDICT_REASONS[self]


VERDICT_REASONS = {
    Verdict.RUNNING: "running",
    Verdict.SUCCESS: "success",
    Verdict.EXHAUSTED: "exhausted",
    Verdict.TIMEOUT: "timeout",
    Verdict.MAX_ERRORS: "max_consecutive_errors",
    Verdict.INCOMPLETE: "incomplete",
    Verdict.STOPPED: "stopped",
    Verdict.FAILED: "failure_condition",
}


@dataclass(frozen=True)
class WorkerStates:
    """Per-worker arrays (index = worker id)."""

    node: np.ndarray                  # int32: assigned node, -1 = none
    result: np.ndarray                # uint8: WorkResult of the last tick
    done: np.ndarray                  # bool
    waiting: np.ndarray               # bool: waiting for an asynchronous (LLM) decision
    succeeded: np.ndarray             # bool: completed a terminal action
    consecutive_failures: np.ndarray  # uint16
    actions: np.ndarray               # uint32

    def results(self) -> list[WorkResult]:
        return [WorkResult(int(r)) for r in self.result]


@dataclass
class SharedState:
    """What every worker may read: tick, statistics, completion, timing, and
    payloads of completed asynchronous work (``shared``)."""

    tick: int
    verdict: Verdict
    environment_done: bool
    done_workers: int
    total_actions: int
    failed_actions: int
    ema_tick_ms: float
    stats: dict[str, Any]
    shared: dict[str, Any] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)
