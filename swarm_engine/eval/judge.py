"""A run's success and its reason, from the kernel's verdict and the scenario's conditions.

One rule keeps the two in step: a run succeeds exactly when its reason is
``"success"``. Reasons:

==============================  =================================================
``success``                     the run succeeded (after every condition)
``exhausted``                   no open node was left (and the conditions, if any, did not hold)
``timeout``                     ``max_ticks`` ran out (``on_timeout`` = fail / partial, or the
                                conditions did not hold under ``on_timeout = "success"``)
``max_consecutive_errors``      the termination judge's error limit ended the run
``incomplete``                  ``all_succeed``: the task ended before every worker succeeded
``stopped``                     stopped from outside (``Swarm.stop()``, Ctrl-C)
``success_conditions_unmet``    the kernel's verdict was success, a success condition did not hold
``failure_condition:<name>``    a failure condition held in a run that would have succeeded
==============================  =================================================

Which runs the success conditions judge: those that ended on their own course
(verdict success or exhausted) and, with ``on_timeout = "success"``, those that
timed out. A run ended by a failing rule of the termination judge
(``max_consecutive_errors``, ``all_succeed``'s incomplete) or stopped fails
whatever the conditions say. ``on_timeout = "partial"`` fails a timed-out run
as ``"fail"`` does; its milestones give the partial credit, as for every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarm_engine.core.state import VERDICT_REASONS, Verdict
from swarm_engine.eval import schema
from swarm_engine.eval.conditions import evaluate

__all__ = ["Judgement", "judge", "reason_codes", "SUCCESS_REASON", "UNMET_REASON"]

SUCCESS_REASON = "success"
UNMET_REASON = "success_conditions_unmet"
_JUDGED = (int(Verdict.SUCCESS), int(Verdict.EXHAUSTED))   # ended on their own course


@dataclass(frozen=True)
class Judgement:
    """Per-run outcome of the conditions (arrays of shape (R,))."""

    success: np.ndarray                  # bool
    reason: list[str]
    conditions: dict[str, np.ndarray]    # each named condition: did it hold
    milestones: dict[str, np.ndarray]    # weight x credit


def judge(spec: schema.ScenarioFile, verdict: np.ndarray, metrics: dict[str, np.ndarray]) -> Judgement:
    """Success, reason, conditions and milestone credit for runs with these kernel verdicts."""
    v = verdict.astype(np.int64)
    timeout_judged = (v == Verdict.TIMEOUT) & (spec.conditions.on_timeout == "success")
    conds: dict[str, np.ndarray] = {}
    if spec.conditions.success:
        held = np.ones(v.shape[0], bool)
        for i, c in enumerate(spec.conditions.success):
            ok = evaluate(c, metrics)
            conds[c.name or f"success[{i}]"] = ok
            held &= ok
        success = (np.isin(v, _JUDGED) | timeout_judged) & held
    else:
        success = (v == Verdict.SUCCESS) | timeout_judged
    # reasons as codes into ``names``, vectorised (a list comprehension over the runs was
    # 0.17 s at 10^6 runs), then one list of the strings
    names = [SUCCESS_REASON, UNMET_REASON]
    code = np.zeros(v.shape[0], np.intp)
    present = np.flatnonzero(np.bincount(v - v.min())) + v.min() if v.size else v
    for u in present.tolist():
        names.append(VERDICT_REASONS[Verdict(u)])
        code[v == u] = len(names) - 1
    code[success] = 0
    code[~success & (v == Verdict.SUCCESS)] = 1
    for i, c in enumerate(spec.conditions.failure):
        hit = evaluate(c, metrics)
        label = c.name or f"failure[{i}]"
        conds[label] = hit
        names.append(f"failure_condition:{label}")
        code[hit & success] = len(names) - 1
        success = success & ~hit
    reason = np.array(names, dtype=object)[code].tolist()
    return Judgement(success, reason, conds, _milestones(spec, metrics))


def reason_codes(reason: list[str]) -> tuple[list[str], np.ndarray]:
    """The distinct reasons, sorted, and each run's index among them (uint32): the
    reasons as columns, for the trip to a cluster's driver and for the report's rows."""
    names = sorted(set(reason))
    lookup = {name: i for i, name in enumerate(names)}
    return names, np.fromiter(map(lookup.__getitem__, reason), dtype=np.uint32, count=len(reason))


def _milestones(spec: schema.ScenarioFile, metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    miles: dict[str, np.ndarray] = {}
    for m in spec.milestones:
        c = m.condition
        holds = evaluate(c, metrics).astype(np.float64)
        if m.partial and c.op in ("gt", "gte", "lt", "lte") and float(c.value) > 0:
            actual = metrics[c.metric].astype(np.float64)
            ratio = actual / float(c.value) if c.op in ("gt", "gte") else float(c.value) / np.maximum(actual, 1e-12)
            holds = np.maximum(holds, np.clip(ratio, 0.0, 1.0))
        miles[m.name] = holds * m.weight
    return miles
