"""Action events: the kernel logs them into preallocated arrays; subscribers
get them once per tick (or per batch of runs) as an :class:`EventBatch`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["EventBatch", "EventSubscriber", "event_id", "OUTCOME_NAMES", "SOURCE_NAMES"]

OUTCOME_NAMES = {0: "fail", 1: "ok", 2: "error"}
SOURCE_NAMES = {0: "selector", 1: "llm", 2: "fallback"}


def event_id(tick: int, worker: int, seq: int = 0) -> int:
    """The original's ActionEvent id: (tick << 24) | (worker << 8) | seq.

    Unique while worker < 65536 and seq < 256 (one action per worker per tick).
    """
    return (int(tick) << 24) | (int(worker) << 8) | int(seq)


@dataclass(frozen=True)
class EventBatch:
    """Columns of the events of one tick or one batch of runs.

    ``run`` is the run's index in its batch; ``outcome`` 0 fail, 1 ok, 2 error.
    """

    run: np.ndarray
    tick: np.ndarray
    worker: np.ndarray
    node: np.ndarray
    action: np.ndarray
    target: np.ndarray
    arg: np.ndarray
    outcome: np.ndarray
    n_discoveries: np.ndarray
    duration_ms: np.ndarray
    source: np.ndarray          # 0 selector, 1 LLM decision, 2 selector after a failed LLM call

    @classmethod
    def from_columns(cls, cols: dict[str, np.ndarray]) -> EventBatch:
        return cls(**cols)

    def __len__(self) -> int:
        return int(self.tick.shape[0])

    @property
    def ids(self) -> np.ndarray:
        return (self.tick.astype(np.int64) << 24) | (self.worker.astype(np.int64) << 8)

    def rows(self) -> Iterator[dict]:
        """One dict per event (for traces; not for hot paths)."""
        for i in range(len(self)):
            yield {
                "id": int(self.ids[i]), "run": int(self.run[i]), "tick": int(self.tick[i]),
                "worker": int(self.worker[i]), "node": int(self.node[i]),
                "action": int(self.action[i]), "target": int(self.target[i]), "arg": int(self.arg[i]),
                "outcome": OUTCOME_NAMES[int(self.outcome[i])], "success": bool(self.outcome[i] == 1),
                "discoveries": int(self.n_discoveries[i]), "duration_ms": float(self.duration_ms[i]),
                "decided_by": SOURCE_NAMES[int(self.source[i])],
            }


@runtime_checkable
class EventSubscriber(Protocol):
    """Receives every tick's events as one batch (learning, traces, dashboards)."""

    def on_events(self, events: EventBatch) -> None: ...
