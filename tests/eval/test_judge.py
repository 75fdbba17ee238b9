"""A run's success and its reason agree, for every verdict and condition mode.

``judge`` is given one run per kernel verdict; each mode (no success
conditions, success conditions that hold or not, each ``on_timeout``,
failure conditions) must give the table below, and in every eval a run
succeeds exactly when its reason is ``"success"``.
"""

from __future__ import annotations

import numpy as np
import pytest

from swarm_engine import Verdict, load_scenario, run_eval
from swarm_engine.eval.conditions import run_metrics
from swarm_engine.eval.judge import judge
from tests.paths import TROUBLESHOOTING

V = Verdict
ORDER = [V.SUCCESS, V.EXHAUSTED, V.TIMEOUT, V.MAX_ERRORS, V.INCOMPLETE, V.STOPPED]
HOLDS = {"metric": "actions.total", "op": "gte", "value": 0, "name": "any"}       # holds in every run
FAILS = {"metric": "actions.total", "op": "gt", "value": 10 ** 6, "name": "never"}


def spec(success=None, failure=None, on_timeout="fail"):
    conds: dict = {"on_timeout": on_timeout}
    if success is not None:
        conds["success"] = success
    if failure is not None:
        conds["failure"] = failure
    return load_scenario(TROUBLESHOOTING, overrides={"conditions": conds}).spec


def run(sp):
    n = len(ORDER)
    metrics = run_metrics(np.zeros(n, bool), np.ones(n, np.int64), np.full(n, 3, np.int64),
                          np.zeros(n, np.int64), np.zeros((n, 5), np.int64),
                          ["CheckStatus", "ReadLogs", "AnalyzeMetrics", "Diagnose", "Restart"])
    j = judge(sp, np.array([int(v) for v in ORDER], np.int8), metrics)
    assert [bool(s) for s in j.success] == [r == "success" for r in j.reason]
    return dict(zip([v.name for v in ORDER], j.reason))


FAILING = {"MAX_ERRORS": "max_consecutive_errors", "INCOMPLETE": "incomplete", "STOPPED": "stopped"}


@pytest.mark.parametrize(("mode", "kwargs", "expected"), [
    ("no conditions", dict(success=[]),
     {"SUCCESS": "success", "EXHAUSTED": "exhausted", "TIMEOUT": "timeout", **FAILING}),
    ("no conditions, timeout counts", dict(success=[], on_timeout="success"),
     {"SUCCESS": "success", "EXHAUSTED": "exhausted", "TIMEOUT": "success", **FAILING}),
    ("conditions hold", dict(success=[HOLDS]),
     {"SUCCESS": "success", "EXHAUSTED": "success", "TIMEOUT": "timeout", **FAILING}),
    ("conditions hold, on_timeout success", dict(success=[HOLDS], on_timeout="success"),
     {"SUCCESS": "success", "EXHAUSTED": "success", "TIMEOUT": "success", **FAILING}),
    ("conditions hold, on_timeout partial", dict(success=[HOLDS], on_timeout="partial"),
     {"SUCCESS": "success", "EXHAUSTED": "success", "TIMEOUT": "timeout", **FAILING}),
    ("conditions unmet", dict(success=[FAILS], on_timeout="success"),
     {"SUCCESS": "success_conditions_unmet", "EXHAUSTED": "exhausted", "TIMEOUT": "timeout", **FAILING}),
    ("failure condition", dict(success=[HOLDS], failure=[HOLDS | {"name": "boom"}]),
     {"SUCCESS": "failure_condition:boom", "EXHAUSTED": "failure_condition:boom", "TIMEOUT": "timeout",
      **FAILING}),
    ("failure condition unnamed", dict(success=[], failure=[HOLDS | {"name": ""}]),
     {"SUCCESS": "failure_condition:failure[0]", "EXHAUSTED": "exhausted", "TIMEOUT": "timeout", **FAILING}),
])
def test_reason_table(mode, kwargs, expected):
    assert run(spec(**kwargs)) == expected, mode


@pytest.mark.parametrize("strategy", ["first_success", "all_complete", "all_succeed"])
@pytest.mark.parametrize("conditions", [True, False])
@pytest.mark.parametrize("max_ticks", [0, 6])
def test_every_eval_agrees(strategy, conditions, max_ticks):
    overrides: dict = {"agents": {"workers": 2}, "environment": {"params": {"noise": 0.6}},
                       "app_config": {"max_ticks": max_ticks, "termination": {"strategy": strategy}}}
    if not conditions:
        overrides["conditions"] = {"success": []}
    sc = load_scenario(TROUBLESHOOTING, overrides=overrides)
    if not conditions:
        assert not sc.spec.conditions.success
    res = run_eval(sc, 200, seed=1)
    assert [bool(s) for s in res.success] == [r == "success" for r in res.reason]
    if strategy == "all_succeed":
        # with one fault only one worker can Restart: incomplete, and a failure, not a success
        incomplete = np.array([r == "incomplete" for r in res.reason])
        assert incomplete.any() and not res.success[incomplete].any()
        assert res.done[incomplete].all()


def test_partial_fails_a_timeout_and_keeps_the_milestones():
    base = {"app_config": {"max_ticks": 3}, "environment": {"params": {"services": 8, "noise": 1.0}},
            "milestones": [{"name": "tried", "weight": 1.0, "partial": True,
                            "condition": {"metric": "actions.total", "op": "gte", "value": 6}}]}
    results = {}
    for mode in ("fail", "partial", "success"):
        sc = load_scenario(TROUBLESHOOTING, overrides={**base, "conditions": {"on_timeout": mode}})
        results[mode] = run_eval(sc, 50, seed=2)
    timed_out = results["fail"].verdict == Verdict.TIMEOUT
    assert timed_out.all()
    np.testing.assert_array_equal(results["partial"].success, results["fail"].success)
    assert not results["partial"].success.any()
    assert set(results["partial"].reason) == {"timeout"}
    credit = results["partial"].milestones["tried"]
    assert (credit > 0).all() and (credit <= 1.0).all()
    # "success" judges a timed-out run by its conditions (environment.done: never within 3 ticks here)
    assert not results["success"].success.any() and set(results["success"].reason) == {"timeout"}
