"""The batched environment protocol's types: arrays in, arrays out, once per tick.

Native environments are stepped inside the kernel; a Python environment
implements :class:`BatchedEnvironment` and is stepped once per tick with the
whole tick's actions (:class:`ActionBatch` in, :class:`StepResult` out), so
its cost is paid per tick, not per action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["ActionBatch", "StepResult", "BatchedEnvironment", "OUTCOME_FAIL", "OUTCOME_OK", "OUTCOME_ERROR"]

OUTCOME_FAIL = 0    # the action ran and found nothing: close the node, no expansion
OUTCOME_OK = 1      # success: close the node and expand its successors
OUTCOME_ERROR = 2   # transient error: the engine may retry the node


@dataclass(frozen=True)
class ActionBatch:
    """One tick's actions, index i = one worker's action.

    ``ops`` are the environment's own operation ids (the position of the name in
    ``action_names``); ``targets`` and ``args`` are ids, -1 when absent.
    """

    workers: np.ndarray   # int32 (n,)
    ops: np.ndarray       # int32 (n,)
    targets: np.ndarray   # int32 (n,)
    args: np.ndarray      # int32 (n,)

    def __len__(self) -> int:
        return int(self.workers.shape[0])


@dataclass(frozen=True)
class StepResult:
    """Results of one ActionBatch.

    ``discoveries[disc_ptr[i]:disc_ptr[i + 1]]`` are the target ids action i
    discovered; successors of a successful node get those targets (or inherit
    the node's target when it discovered none).
    """

    outcome: np.ndarray        # int8 (n,): OUTCOME_*
    disc_ptr: np.ndarray       # int32 (n + 1,)
    discoveries: np.ndarray    # int32
    duration_ms: np.ndarray    # float32 (n,)
    done: bool = False         # the task is complete
    disc_kind: np.ndarray | None = None   # int8 per discovery: its target kind (0 = any)

    @classmethod
    def build(cls, outcome: Sequence[int], discoveries: Sequence[Sequence[int]] | None = None,
              duration_ms: Sequence[float] | None = None, done: bool = False) -> StepResult:
        """Convenience constructor from per-action lists."""
        n = len(outcome)
        lists = list(discoveries) if discoveries is not None else [[] for _ in range(n)]
        ptr = np.zeros(n + 1, dtype=np.int32)
        ptr[1:] = np.cumsum([len(d) for d in lists]) if n else []
        flat = np.fromiter((t for d in lists for t in d), dtype=np.int32, count=int(ptr[-1]))
        dur = np.zeros(n, np.float32) if duration_ms is None else np.asarray(duration_ms, np.float32)
        return cls(np.asarray(outcome, np.int8), ptr, flat, dur, done)


@runtime_checkable
class BatchedEnvironment(Protocol):
    """What a Python environment implements.

    ``action_names`` lists the operations it understands (scenario actions map
    to them by name); ``max_discoveries`` bounds the discoveries of one action.
    """

    @property
    def action_names(self) -> Sequence[str]:
        """The operations, in op-id order (a class attribute tuple will do)."""

    @property
    def max_discoveries(self) -> int:
        """The most targets one action may discover."""

    def reset(self, seed: int) -> None:
        """Draw the hidden state of a new run from its seed."""

    def step(self, batch: ActionBatch) -> StepResult:
        """Execute one tick's actions."""

    def target_name(self, target: int) -> str:
        """A readable name for a target id."""
