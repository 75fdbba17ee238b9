"""The batched environment protocol: arrays in, arrays out, once per tick.

Native environments are stepped inside the kernel; a Python environment
implements :class:`BatchedEnvironment` and is stepped once per tick with the
whole tick's actions, so its cost is paid per tick, not per action.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["ActionBatch", "StepResult", "BatchedEnvironment", "EnvironmentBinding",
           "OUTCOME_FAIL", "OUTCOME_OK", "OUTCOME_ERROR"]

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


def _norm(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


@dataclass
class EnvironmentBinding:
    """How the kernel reaches an environment: a native kind with its
    parameters, or a Python object; plus the scenario action -> op map."""

    name: str
    kind: int                      # swarm_engine._native._envs.EnvKind
    params: np.ndarray             # float64 kind-specific parameters
    ops: np.ndarray                # int32 (A,): scenario action id -> env op
    python: BatchedEnvironment | None = None
    max_discoveries: int = 0
    target_names: Callable[[int], str] | None = None     # target id -> name, for reports and prompts
    renderer: Callable[[dict[str, Any], int], str] | None = None   # (event, seed) -> lazy observation text
    act_kind: np.ndarray | None = None   # int8 (A,): target kind each action takes, 0 = any
    arg_names: tuple[str, ...] = ()      # the environment's own argument names (param-variant values map to them)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_python(cls, env: BatchedEnvironment, actions: Sequence[str], name: str | None = None
                    ) -> EnvironmentBinding:
        """Bind a Python environment object to a scenario's action names (which
        must match ``env.action_names``, loosely: case and underscores aside)."""
        from swarm_engine._native import _envs
        from swarm_engine.errors import ConfigError

        table = {_norm(op): i for i, op in enumerate(env.action_names)}
        missing = [a for a in actions if _norm(a) not in table]
        if missing:
            raise ConfigError(f"actions {missing} are not among the environment's {list(env.action_names)}")
        return cls(name=name or type(env).__name__, kind=_envs.ENV_PYTHON, params=np.zeros(0),
                   ops=np.array([table[_norm(a)] for a in actions], np.int32), python=env,
                   max_discoveries=int(env.max_discoveries), target_names=env.target_name,
                   renderer=getattr(env, "render", None))

    def arg_ops(self, args: Sequence[str]) -> np.ndarray:
        """Interned argument strings -> the environment's argument ids (-1 unknown)."""
        table = {_norm(a): i for i, a in enumerate(self.arg_names)}
        return np.array([table.get(_norm(a), -1) for a in args], np.int32)

    @property
    def native(self) -> bool:
        return self.python is None
