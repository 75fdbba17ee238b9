"""User environments written in Python.

``env_type = "python:package.module:Class"`` imports the class; a name
registered in the entry point group ``swarm_engine.environments`` works too.
The class is instantiated with ``[environment.params]`` as keyword arguments
and must implement :class:`swarm_engine.core.environment.BatchedEnvironment`.
The module is imported with the scenario file's folder first on ``sys.path``
(for that import only), so an ``envs.py`` beside the scenario is found.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from swarm_engine.core.env_protocol import ProtocolViolation, check_members, one_line
from swarm_engine.core.environment import EnvironmentBinding
from swarm_engine.errors import ScenarioError
from swarm_engine.eval.environments.base import map_ops

__all__ = ["load_python_environment", "entry_point_names", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "swarm_engine.environments"


def entry_point_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


@contextmanager
def _scenario_folder_first(source: str | None) -> Iterator[None]:
    """The scenario file's folder first on the import path while its module is imported."""
    folder = str(Path(source).resolve().parent) if source else None
    if folder is None or not Path(folder).is_dir():
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:         # the module took it off itself
            pass


def _import(spec: str, source: str | None) -> Any:
    if spec.startswith("python:"):
        target = spec[len("python:"):]
        module_name, _, attr = target.partition(":")
        if not module_name or not attr:
            raise ScenarioError(f"expected 'python:package.module:Class', got '{spec}'",
                                path=source, field="environment.env_type")
        try:
            with _scenario_folder_first(source):
                module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ScenarioError(f"cannot import module '{module_name}': {' '.join(str(exc).split())}", path=source,
                                field="environment.env_type") from exc
        except Exception as exc:       # a module that fails while it runs: its bug, named
            raise ScenarioError(f"cannot import module '{module_name}': {one_line(exc)}", path=source,
                                field="environment.env_type") from exc
        try:
            return getattr(module, attr)
        except AttributeError as exc:
            raise ScenarioError(f"module '{module_name}' has no attribute '{attr}'", path=source,
                                field="environment.env_type") from exc
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == spec:
            try:
                return ep.load()
            except Exception as exc:
                raise ScenarioError(f"cannot load entry point '{spec}' ({ep.value}): {one_line(exc)}",
                                    path=source, field="environment.env_type") from exc
    raise KeyError(spec)


def load_python_environment(spec: str, params: dict[str, Any], actions: Sequence[str],
                            source: str | None) -> EnvironmentBinding:
    """Instantiate a Python environment and bind the scenario's actions to it.

    Every failure is one ScenarioError line: the class cannot be created (its
    ``__init__`` raised; named with the exception), or a protocol member is
    missing or of the wrong type."""
    cls = _import(spec, source)
    if not callable(cls):
        raise ScenarioError(f"{spec} is a {type(cls).__name__}, not a class", path=source,
                            field="environment.env_type")
    label = getattr(cls, "__name__", spec)
    try:
        env = cls(**params)
    except TypeError as exc:
        raise ScenarioError(f"cannot create {spec} with params {params}: {exc}", path=source,
                            field="environment.params") from exc
    except Exception as exc:
        raise ScenarioError(f"cannot create {spec} with params {params}: {label}.__init__() raised "
                            f"{one_line(exc)}", path=source, field="environment.params") from exc
    try:
        members = check_members(env)
    except ProtocolViolation as exc:
        raise ScenarioError(f"{spec}: {exc}", path=source, field="environment.env_type") from None
    ops = map_ops(spec, list(members.action_names), actions, source)
    return EnvironmentBinding.checked_python(env, members, ops, spec, source, params)
