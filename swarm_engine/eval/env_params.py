"""Checks of the built-in environments' ``[environment.params]`` that their
faces leave out: non-finite and unbounded numbers before binding, and
combinations no run can have after it.

The native environments clamp what they cannot use (``faults`` to
``services``, ``decoys`` to ``results - 1``...), so an impossible
combination would run silently as another scenario; and a parameter reaches
C as ``<int>`` of a double, where NaN or 10^30 is undefined behaviour.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from swarm_engine.errors import ScenarioError
from swarm_engine.eval.environments import BUILTIN
from swarm_engine.inputs import limits

__all__ = ["check_raw_params", "check_param_combinations", "RULES"]

Rule = tuple[str, Callable[[dict[str, Any]], bool], str]

# env_type -> (param the error names, holds(params), what is expected)
RULES: dict[str, list[Rule]] = {
    "troubleshooting": [("faults", lambda p: p["faults"] <= p["services"], "faults <= services")],
    "search": [("results", lambda p: p["results"] <= p["files"], "results <= files"),
               ("decoys", lambda p: p["decoys"] < p["results"], "decoys < results (one result is the target)")],
    "cascade": [("degraded", lambda p: p["degraded"] <= p["services"], "degraded <= services")],
    "code_exploration": [("refs", lambda p: p["refs"] < p["files"],
                          "refs < files (the references are files besides the definition)")],
}


def check_raw_params(env_type: str, params: dict[str, Any], source: str | None) -> None:
    """A built-in environment's numbers are finite and fit a C int (its face checks the rest)."""
    face = BUILTIN.get(env_type)
    if face is None:
        return
    for key, value in params.items():
        spec = face.params.get(key)
        if spec is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue                                  # unknown names and wrong types: the face says so
        lo = spec.lo if spec.lo is not None else -limits.INT32_MAX
        hi = spec.hi if spec.hi is not None else limits.INT32_MAX
        if not (isinstance(value, int) or math.isfinite(value)) or (spec.hi is None and not lo <= value <= hi) \
                or abs(value) > 2**53:
            kind = "an int" if spec.kind is int else "a number"
            raise ScenarioError(f"got {value!r:.40}, expected {kind} in {lo}..{hi} for environment '{env_type}'",
                                path=source, field=f"environment.params.{key}")


def check_param_combinations(env_type: str, params: dict[str, Any], source: str | None) -> None:
    """Parameters that are each in range but impossible together."""
    for key, holds, expected in RULES.get(env_type, []):
        if not holds(params):
            shown = ", ".join(f"{k} = {params[k]}" for k in params if k in expected.split(" (")[0].split())
            raise ScenarioError(f"{shown}: expected {expected} for environment '{env_type}'", path=source,
                                field=f"environment.params.{key}")
