"""Hooks at four levels, each called once per tick with that tick's batch.

Subclass :class:`Hook` and override what you need; the engine never calls a
method you did not override, and a swarm with no hooks runs whole batches of
ticks in one native call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from swarm_engine.core.config import SwarmConfig
from swarm_engine.core.events import EventBatch
from swarm_engine.core.state import SharedState, Verdict, WorkerStates
from swarm_engine.exploration.kernel import Kernel

__all__ = ["Hook", "Assignments", "HookedSwarm"]


class HookedSwarm(Protocol):
    """What a hook may use of the swarm that calls it (a :class:`~swarm_engine.core.Swarm`
    is one; hooks sit below the orchestrator, so they name this instead)."""

    config: SwarmConfig
    action_names: list[str]
    seed: int
    shared: dict[str, Any]
    kernel: Kernel

    @property
    def tick(self) -> int: ...

    @property
    def verdict(self) -> Verdict: ...

    @property
    def done(self) -> bool: ...

    @property
    def workers(self) -> WorkerStates: ...

    @property
    def state(self) -> SharedState: ...

    def stop(self) -> None: ...

    def stats(self) -> dict[str, dict[str, int | float]]: ...

    def pair_stats(self) -> list[dict[str, Any]]: ...

    def graph(self) -> dict[str, np.ndarray]: ...

    def frontier_scores(self) -> Sequence[tuple[str, str | None, int, float]]: ...


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

    def on_tick(self, swarm: HookedSwarm, tick: int) -> None:
        """After the tick (advance phase)."""

    def on_manage(self, swarm: HookedSwarm, assignments: Assignments) -> None:
        """After the manage phase, before the environment acts."""

    def on_worker(self, swarm: HookedSwarm, results: np.ndarray) -> None:
        """After the merge phase: one WorkResult code per worker."""

    def on_action(self, swarm: HookedSwarm, events: EventBatch | None) -> None:
        """After the merge phase: the tick's action events (None when no worker acted and
        nothing subscribes to events)."""

    @classmethod
    def overrides(cls, name: str) -> bool:
        return getattr(cls, name) is not getattr(Hook, name)
