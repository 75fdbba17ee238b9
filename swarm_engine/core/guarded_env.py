"""Every call the engine makes into a Python environment, guarded and named.

A user's ``reset``, ``step``, ``target_name`` and ``render`` run inside the
engine's loop; when one raises or breaks the protocol, the traceback would
point into the engine. :class:`GuardedEnvironment` turns that into one
:class:`~swarm_engine.errors.EnvironmentError_` line naming the scenario
file, the environment, ``Class.method()`` and the tick (or seed)::

    vault.toml: environment 'python:envs:Vault': Vault.step() at tick 3 raised ZeroDivisionError: ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarm_engine.core.batch import ActionBatch
from swarm_engine.core.env_protocol import ProtocolViolation, StepArrays, check_step_result, one_line
from swarm_engine.errors import EnvironmentError_

__all__ = ["GuardedEnvironment"]


@dataclass(frozen=True)
class GuardedEnvironment:
    """A Python environment object with each protocol call checked.

    ``name`` is how the scenario names it (``python:mod:Class``), ``source``
    the scenario file (None when built by hand).
    """

    env: Any
    name: str
    source: str | None = None
    max_discoveries: int = 0

    def where(self, method: str, at: str = "") -> str:
        """``FILE: environment 'NAME': Class.method()[ at]``: the start of every message."""
        prefix = f"{self.source}: " if self.source else ""
        return f"{prefix}environment '{self.name}': {type(self.env).__name__}.{method}(){at}"

    def _fail(self, method: str, at: str, exc: BaseException) -> EnvironmentError_:
        return EnvironmentError_(f"{self.where(method, at)} raised {one_line(exc)}")

    def reset(self, seed: int) -> None:
        try:
            self.env.reset(seed)
        except Exception as exc:
            raise self._fail("reset", f" with seed {seed}", exc) from exc

    def step(self, batch: ActionBatch, tick: int) -> StepArrays:
        """The checked arrays of one tick's ``step()`` (see ``check_step_result``)."""
        at = f" at tick {tick}"
        try:
            res = self.env.step(batch)
        except Exception as exc:     # an environment bug must not look like an engine bug
            raise self._fail("step", at, exc) from exc
        try:
            return check_step_result(res, len(batch), self.max_discoveries)
        except ProtocolViolation as exc:
            what = str(exc)
            if not what.startswith("returned "):
                what = f"returned a malformed StepResult: {what}"
            raise EnvironmentError_(f"{self.where('step', at)} {what}") from None

    def target_name(self, target: int) -> str:
        try:
            name = self.env.target_name(target)
        except Exception as exc:
            raise self._fail("target_name", f" of target {target}", exc) from exc
        if not isinstance(name, str):
            raise EnvironmentError_(f"{self.where('target_name', f' of target {target}')} returned "
                                    f"{type(name).__name__}, expected str")
        return name

    def render(self, event: dict[str, Any], seed: int) -> str:
        at = f" of seed {seed}" + (f", tick {event['tick']}" if "tick" in event else "")
        try:
            text = self.env.render(event, seed)
        except Exception as exc:
            raise self._fail("render", at, exc) from exc
        if not isinstance(text, str):
            raise EnvironmentError_(f"{self.where('render', at)} returned {type(text).__name__}, expected str")
        return text

