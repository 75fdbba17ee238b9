"""Environments by name: the native built-ins and Python ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from swarm_engine.core.env_protocol import one_line
from swarm_engine.core.environment import EnvironmentBinding
from swarm_engine.errors import ScenarioError
from swarm_engine.eval.environments.base import EnvironmentFace, normalize
from swarm_engine.eval.environments.cascade import CASCADE
from swarm_engine.eval.environments.code_exploration import CODE_EXPLORATION
from swarm_engine.eval.environments.grid import GRID
from swarm_engine.eval.environments.internal_diagnosis import INTERNAL_DIAGNOSIS
from swarm_engine.eval.environments.python_env import entry_point_names, load_python_environment
from swarm_engine.eval.environments.search import SEARCH
from swarm_engine.eval.environments.troubleshooting import TROUBLESHOOTING
from swarm_engine.exploration.rules import DependencyGraph

__all__ = ["BUILTIN", "bind_environment", "default_graph", "EnvironmentFace"]

BUILTIN: dict[str, EnvironmentFace] = {
    face.name: face for face in (TROUBLESHOOTING, CODE_EXPLORATION, SEARCH, INTERNAL_DIAGNOSIS, GRID, CASCADE)}


def bind_environment(env_type: str, params: dict[str, Any], actions: Sequence[str],
                     source: str | None) -> EnvironmentBinding:
    """The binding for ``env_type``: a built-in name, ``python:mod:Class`` or an entry point."""
    face = BUILTIN.get(env_type)
    if face is not None:
        return face.bind(params, actions, source)
    try:
        return load_python_environment(env_type, params, actions, source)
    except KeyError:
        known = list(BUILTIN) + entry_point_names()
        raise ScenarioError(f"unknown env_type '{env_type}' (expected one of: {', '.join(known)}, "
                            "or python:package.module:Class)", path=source,
                            field="environment.env_type") from None


def _own_graph(binding: EnvironmentBinding, own_graph: Callable[[], object], source: str | None) -> DependencyGraph:
    """A Python environment's ``default_graph()``, guarded: a raise or a wrong type is one line."""
    cls = type(binding.python).__name__
    try:
        graph = own_graph()
    except Exception as exc:
        raise ScenarioError(f"{cls}.default_graph() raised {one_line(exc)}", path=source,
                            field="dependency_graph.type") from exc
    if not isinstance(graph, DependencyGraph):
        raise ScenarioError(f"{cls}.default_graph() returned {type(graph).__name__}, expected a DependencyGraph",
                            path=source, field="dependency_graph.type")
    return graph


def default_graph(binding: EnvironmentBinding, actions: Sequence[str], source: str | None) -> DependencyGraph:
    """The environment's own graph, renamed to the scenario's action names."""
    face = BUILTIN.get(binding.name)
    own_graph = getattr(binding.python, "default_graph", None)    # optional on a Python environment
    ops: Sequence[str]
    if face is not None:
        graph = face.default_graph(actions, binding.extra["params"])
        ops = face.ops
    elif binding.python is not None and callable(own_graph):
        graph = _own_graph(binding, own_graph, source)
        ops = list(binding.python.action_names)
    else:
        raise ScenarioError(f"environment '{binding.name}' has no built-in graph: "
                            "give [dependency_graph] type = \"custom\"", path=source,
                            field="dependency_graph.type")
    by_op: dict[int, str] = {}
    for i, name in enumerate(actions):
        by_op.setdefault(int(binding.ops[i]), name)
    op_ids = {normalize(op): i for i, op in enumerate(ops)}

    def rename(op_name: str) -> str:
        op = op_ids.get(normalize(str(op_name)))
        if op is None:
            raise ScenarioError(f"the graph of '{binding.name}' names '{op_name}', which is not one of its "
                                f"operations ({', '.join(ops)})", path=source, field="dependency_graph.type")
        if op not in by_op:
            raise ScenarioError(f"the built-in graph of '{binding.name}' needs an action for "
                                f"'{op_name}'; add it to [[actions.actions]]", path=source, field="actions")
        return by_op[op]

    return DependencyGraph(
        actions=list(actions),
        edges=[(rename(a), rename(b), c) for a, b, c in graph.edges],
        start=[rename(a) for a in graph.start], terminal=[rename(a) for a in graph.terminal],
        param_variants={rename(a): v for a, v in graph.param_variants.items()},
        start_target=graph.start_target)
