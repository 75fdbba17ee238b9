"""User environments written in Python.

``env_type = "python:package.module:Class"`` imports the class; a name
registered in the entry point group ``swarm_engine.environments`` works too.
The class is instantiated with ``[environment.params]`` as keyword arguments
and must implement :class:`swarm_engine.core.environment.BatchedEnvironment`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

import numpy as np

from swarm_engine._native import _envs
from swarm_engine.core.environment import BatchedEnvironment, EnvironmentBinding
from swarm_engine.errors import ScenarioError
from swarm_engine.eval.environments.base import map_ops

__all__ = ["load_python_environment", "entry_point_names", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "swarm_engine.environments"


def entry_point_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def _import(spec: str, source: str | None) -> type:
    if spec.startswith("python:"):
        target = spec[len("python:"):]
        module_name, _, attr = target.partition(":")
        if not module_name or not attr:
            raise ScenarioError(f"expected 'python:package.module:Class', got '{spec}'",
                                path=source, field="environment.env_type")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ScenarioError(f"cannot import module '{module_name}': {exc}", path=source,
                                field="environment.env_type") from exc
        try:
            return getattr(module, attr)
        except AttributeError as exc:
            raise ScenarioError(f"module '{module_name}' has no attribute '{attr}'", path=source,
                                field="environment.env_type") from exc
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == spec:
            return ep.load()
    raise KeyError(spec)


def load_python_environment(spec: str, params: dict[str, Any], actions: Sequence[str],
                            source: str | None) -> EnvironmentBinding:
    """Instantiate a Python environment and bind the scenario's actions to it."""
    cls = _import(spec, source)
    try:
        env = cls(**params)
    except TypeError as exc:
        raise ScenarioError(f"cannot create {spec} with params {params}: {exc}", path=source,
                            field="environment.params") from exc
    missing = [m for m in ("action_names", "max_discoveries", "reset", "step") if not hasattr(env, m)]
    if missing or not isinstance(env, BatchedEnvironment):
        raise ScenarioError(f"{spec} does not implement the batched environment protocol "
                            f"(missing: {', '.join(missing) or 'target_name'})", path=source,
                            field="environment.env_type")
    ops = map_ops(spec, list(env.action_names), actions, source)
    return EnvironmentBinding(name=spec, kind=_envs.ENV_PYTHON, params=np.zeros(0), ops=ops, python=env,
                              max_discoveries=int(env.max_discoveries), target_names=env.target_name,
                              renderer=getattr(env, "render", None), extra={"params": params})
