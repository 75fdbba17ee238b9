"""Hooks at four levels, each called once per tick with that tick's batch.

Subclass :class:`Hook` and override what you need; the engine never calls a
method you did not override, and a swarm with no hooks runs whole batches of
ticks in one native call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from swarm_engine.core.events import EventBatch

if TYPE_CHECKING:
    from swarm_engine.core.orchestrator import Swarm

__all__ = ["Hook", "Assignments"]


@dataclass(frozen=True)
class Assignments:
    """The manager's decisions of one tick: worker i got (action, target, arg)."""

    workers: np.ndarray
    actions: np.ndarray
    targets: np.ndarray
    args: np.ndarray

    def __len__(self) -> int:
        return int(self.workers.shape[0])


class Hook:
    """Base class; override any of the four levels. Call ``swarm.stop()`` to end the run."""

    def on_tick(self, swarm: Swarm, tick: int) -> None:
        """After the tick (advance phase)."""

    def on_manage(self, swarm: Swarm, assignments: Assignments) -> None:
        """After the manage phase, before the environment acts."""

    def on_worker(self, swarm: Swarm, results: np.ndarray) -> None:
        """After the merge phase: one WorkResult code per worker."""

    def on_action(self, swarm: Swarm, events: EventBatch) -> None:
        """After the merge phase: the tick's action events."""

    @classmethod
    def overrides(cls, name: str) -> bool:
        return getattr(cls, name) is not getattr(Hook, name)
