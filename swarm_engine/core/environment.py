"""How the kernel reaches an environment: :class:`EnvironmentBinding`.

Native environments are stepped inside the kernel; a Python environment
implements the batched protocol (:mod:`swarm_engine.core.batch`, re-exported
here) and is bound with :meth:`EnvironmentBinding.from_python`, its members
checked (:mod:`swarm_engine.core.env_protocol`) and its calls guarded
(:mod:`swarm_engine.core.guarded_env`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarm_engine.core.batch import OUTCOME_ERROR, OUTCOME_FAIL, OUTCOME_OK, ActionBatch, BatchedEnvironment, StepResult
from swarm_engine.core.env_protocol import Members, ProtocolViolation, check_members
from swarm_engine.core.guarded_env import GuardedEnvironment
from swarm_engine.errors import ConfigError, EnvironmentError_

__all__ = ["ActionBatch", "StepResult", "BatchedEnvironment", "EnvironmentBinding",
           "OUTCOME_FAIL", "OUTCOME_OK", "OUTCOME_ERROR"]


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
    completes: bool = False              # the environment reports its own completion: only it ends the task
    start_targets: np.ndarray | None = None   # int32 (A,): target of a start node that names none (-1 = none)
    source: str | None = None            # the scenario file, for error messages

    @classmethod
    def from_python(cls, env: BatchedEnvironment, actions: Sequence[str], name: str | None = None
                    ) -> EnvironmentBinding:
        """Bind a Python environment object to a scenario's action names (which
        must match ``env.action_names``, loosely: case and underscores aside).

        A member of the wrong type is an ``EnvironmentError_``; actions the
        environment lacks are a ``ConfigError``."""
        label = name or type(env).__name__
        try:
            members = check_members(env)
        except ProtocolViolation as exc:
            raise EnvironmentError_(f"environment '{label}': {exc}") from None
        table = {_norm(op): i for i, op in enumerate(members.action_names)}
        missing = [a for a in actions if _norm(a) not in table]
        if missing:
            raise ConfigError(f"actions {missing} are not among the environment's {list(members.action_names)}")
        return cls.checked_python(env, members, np.array([table[_norm(a)] for a in actions], np.int32), label)

    @classmethod
    def checked_python(cls, env: Any, members: Members, ops: np.ndarray, name: str, source: str | None = None,
                       params: dict[str, Any] | None = None) -> EnvironmentBinding:
        """The binding of a Python environment whose members passed
        ``check_members``: its names and texts go through a
        :class:`GuardedEnvironment`, so a raising ``target_name`` is one line."""
        from swarm_engine._native import _envs

        guard = GuardedEnvironment(env, name, source, members.max_discoveries)
        return cls(name=name, kind=_envs.ENV_PYTHON, params=np.zeros(0), ops=ops, python=env,
                   max_discoveries=members.max_discoveries, target_names=guard.target_name,
                   renderer=guard.render if callable(getattr(env, "render", None)) else None,
                   extra={"params": dict(params or {})}, completes=members.reports_done, source=source)

    def arg_ops(self, args: Sequence[str]) -> np.ndarray:
        """Interned argument strings -> the environment's argument ids (-1 unknown)."""
        table = {_norm(a): i for i, a in enumerate(self.arg_names)}
        return np.array([table.get(_norm(a), -1) for a in args], np.int32)

    @property
    def native(self) -> bool:
        return self.python is None
