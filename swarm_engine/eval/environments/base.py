"""What every environment face provides to the scenario loader."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from swarm_engine._native import _envs
from swarm_engine.core.environment import EnvironmentBinding
from swarm_engine.errors import ScenarioError
from swarm_engine.exploration.rules import DependencyGraph

__all__ = ["EnvironmentFace", "ParamSpec", "normalize", "map_ops", "always_completes"]


def normalize(name: str) -> str:
    """Action names match loosely: 'ReadLogs', 'read_logs' and 'read-logs' are one."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def map_ops(env_name: str, ops: Sequence[str], actions: Sequence[str], source: str | None) -> np.ndarray:
    """Scenario action id -> environment op id; unknown actions are an error."""
    table = {normalize(op): i for i, op in enumerate(ops)}
    out = np.empty(len(actions), np.int32)
    for i, name in enumerate(actions):
        op = table.get(normalize(name))
        if op is None:
            raise ScenarioError(f"action '{name}' is not supported by environment '{env_name}' "
                                f"(it supports: {', '.join(ops)})", path=source,
                                field=f"actions.actions[{i}].name")
        out[i] = op
    return out


@dataclass(frozen=True)
class ParamSpec:
    """One environment parameter: type, default and bounds."""

    default: Any
    kind: type = float
    lo: float | None = None
    hi: float | None = None
    help: str = ""

    def convert(self, env: str, key: str, value: Any, source: str | None) -> Any:
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or (
            self.kind is int and isinstance(value, float) and not value.is_integer())
        if bad:
            raise ScenarioError(f"expected {self.kind.__name__}, got {value!r}", path=source,
                                field=f"environment.params.{key}")
        value = self.kind(value)
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise ScenarioError(f"{value} is outside {self.lo}..{self.hi} for environment '{env}'",
                                path=source, field=f"environment.params.{key}")
        return value


def always_completes(params: dict[str, Any]) -> bool:
    """A built-in environment that always reports its own completion."""
    return True


def _call_with_params(fn: Callable[..., str], params: dict[str, Any], *args: Any) -> str:
    """``fn(*args, params)``: a face's target_name / render bound to one scenario's parameters."""
    return fn(*args, params)


@dataclass(frozen=True)
class EnvironmentFace:
    """A built-in environment: its operations, parameters, default graph and renderer."""

    name: str
    kind: int
    ops: tuple[str, ...]
    params: dict[str, ParamSpec]
    default_graph: Callable[[Sequence[str], dict], DependencyGraph]
    target_name: Callable[[int, dict], str]
    render: Callable[[dict, int, dict], str]
    description: str = ""
    op_kinds: tuple[int, ...] = ()      # target kind each op takes (0 = any); () = all any
    arg_names: tuple[str, ...] = ()     # the environment's own argument names
    check: Callable[[dict, str | None], None] | None = None   # cross-parameter validation
    # whether, with these parameters, the environment reports its own completion (then only
    # that completes the task; a terminal action's success does not: see docs/scenarios.md)
    completes: Callable[[dict], bool] = always_completes
    start_targets: tuple[int, ...] = ()  # per op: the target of a start node that names none; () = all -1

    def param_vector(self, params: dict[str, Any]) -> np.ndarray:
        """Parameters in the order the native kernel reads them (defaults fill gaps)."""
        return np.array([float(params.get(k, spec.default)) for k, spec in self.params.items()], np.float64)

    def hidden_state(self, seed: int, params: dict[str, Any]) -> np.ndarray:
        """The int32 hidden state a run with this seed starts from (for rendering)."""
        return _envs.hidden_state(self.kind, self.param_vector(params), seed)

    def resolve_params(self, raw: dict[str, Any], source: str | None) -> dict[str, Any]:
        out = {}
        for key in raw:
            if key not in self.params:
                raise ScenarioError(f"unknown parameter '{key}' for environment '{self.name}' "
                                    f"(known: {', '.join(self.params)})", path=source,
                                    field=f"environment.params.{key}")
        for key, spec in self.params.items():
            out[key] = spec.convert(self.name, key, raw.get(key, spec.default), source)
        return out

    def bind(self, raw_params: dict[str, Any], actions: Sequence[str], source: str | None) -> EnvironmentBinding:
        params = self.resolve_params(raw_params, source)
        if self.check is not None:
            self.check(params, source)
        vector = self.param_vector(params)
        ops = map_ops(self.name, self.ops, actions, source)
        kinds = np.array([self.op_kinds[o] for o in ops], np.int8) if self.op_kinds else None
        starts = np.array([self.start_targets[o] for o in ops], np.int32) if self.start_targets else None
        return EnvironmentBinding(
            name=self.name, kind=self.kind, params=vector, ops=ops,
            max_discoveries=int(_envs.max_discoveries(self.kind, vector)),
            target_names=partial(_call_with_params, self.target_name, params),
            renderer=partial(_call_with_params, self.render, params),
            act_kind=kinds, arg_names=self.arg_names, extra={"params": params},
            completes=bool(self.completes(params)), start_targets=starts, source=source)
