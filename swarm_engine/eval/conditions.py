"""Success / failure conditions and milestones, evaluated over arrays of runs.

Metrics (one value per run):

=========================  ==========================================
``environment.done``       the task was completed (bool)
``task.completed``         same as environment.done
``task.completion_rate``   1.0 when completed, else 0.0
``task.success_rate``      successful actions / actions
``tick`` / ``ticks``       ticks the run took
``actions.total``          actions executed
``actions.failed``         failed actions (failures and transient errors)
``actions.successful``     successful actions
``actions.<Name>``         actions of that kind (e.g. ``actions.Restart``)
``llm.errors``             failed LLM calls (0 without an LLM)
``llm.invocations``        LLM calls
=========================  ==========================================

Conditions are judged when the run ends: success needs every success
condition, any failure condition fails the run. Metrics only grow during a
run, so a failure threshold crossed mid-run still holds at the end.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

from swarm_engine.errors import ScenarioError
from swarm_engine.eval import schema

__all__ = ["METRICS", "run_metrics", "evaluate", "check_metrics"]

METRICS = ("environment.done", "task.completed", "task.completion_rate", "task.success_rate",
           "tick", "ticks", "actions.total", "actions.failed", "actions.successful",
           "llm.errors", "llm.invocations")

_OPS = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge,
        "lt": operator.lt, "lte": operator.le}


def run_metrics(done: np.ndarray, ticks: np.ndarray, actions: np.ndarray, failed: np.ndarray,
                by_action: np.ndarray, action_names: Sequence[str],
                llm_errors: np.ndarray | None = None, llm_calls: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The metric table for R runs (arrays of shape (R,))."""
    done = done.astype(bool)
    actions = actions.astype(np.float64)
    ok = actions - failed
    zeros = np.zeros_like(actions)
    m = {
        "environment.done": done, "task.completed": done,
        "task.completion_rate": done.astype(np.float64),
        "task.success_rate": np.divide(ok, actions, out=np.zeros_like(actions), where=actions > 0),
        "tick": ticks.astype(np.float64), "ticks": ticks.astype(np.float64),
        "actions.total": actions, "actions.failed": failed.astype(np.float64), "actions.successful": ok,
        "llm.errors": zeros if llm_errors is None else llm_errors.astype(np.float64),
        "llm.invocations": zeros if llm_calls is None else llm_calls.astype(np.float64),
    }
    for i, name in enumerate(action_names):
        m.setdefault(f"actions.{name}", by_action[:, i].astype(np.float64))
    return m


def check_metrics(spec: schema.ScenarioFile, source: str | None) -> None:
    """Unknown metric names are a load-time error, not a silent False."""
    known = set(METRICS) | {f"actions.{a.name}" for a in spec.actions.actions}
    groups = [("conditions.success", spec.conditions.success), ("conditions.failure", spec.conditions.failure),
              ("milestones", [m.condition for m in spec.milestones])]
    for where, conds in groups:
        for i, c in enumerate(conds):
            if isinstance(c.value, str):
                raise ScenarioError(f"condition value {c.value!r} must be a number or a boolean",
                                    path=source, field=f"{where}[{i}].value")
            if c.metric not in known:
                raise ScenarioError(f"unknown metric '{c.metric}' (known: {', '.join(sorted(known))})",
                                    path=source, field=f"{where}[{i}].metric")


def _value(v: object) -> float:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    raise ScenarioError(f"condition value {v!r} must be a number or a boolean")


def evaluate(cond: schema.Condition, metrics: dict[str, np.ndarray]) -> np.ndarray:
    """Boolean array: does the condition hold for each run."""
    values = metrics[cond.metric].astype(np.float64)
    return _OPS[cond.op](values, _value(cond.value))
