"""Every number of the scenario schema has a documented range, checked at load
time with one line naming the field, the value and the range: nothing out of
range reaches the kernel (C ints, int32 ticks) or the OS (time.sleep)."""

from __future__ import annotations

import math

import pytest

from swarm_engine import ScenarioError, load_scenario
from swarm_engine.eval import schema
from swarm_engine.inputs import describe_range
from swarm_engine.inputs.convert import type_at
from tests.paths import TROUBLESHOOTING


def _nest(path: str, value: object) -> dict:
    out: dict = {}
    node = out
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return out


def load_error(overrides: dict) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(TROUBLESHOOTING, overrides=overrides)
    return info.value


OUT_OF_RANGE = [
    # field, value, the range the message gives
    ("app_config.max_ticks", 10**23, "an int in 0..2147483647"),
    ("app_config.max_ticks", -1, "an int in 0..2147483647"),
    ("app_config.tick_duration_ms", 1e300, "a number in 0.0..86400000.0"),
    ("app_config.tick_duration_ms", math.nan, "a number in 0.0..86400000.0"),
    ("app_config.management.interval", 2**40, "an int in 1..2147483647"),
    ("app_config.management.max_wait_ticks", 0, "an int in 1..2147483647"),
    ("app_config.selection.ucb1_c", math.inf, "a number in 0.0..1000000.0"),
    ("app_config.selection.learning_weight", -0.5, "a number in 0.0..1000000.0"),
    ("app_config.selection.greedy_weight", 1e7, "a number in 0.0..1000000.0"),
    ("app_config.selection.ngram_weight", math.nan, "a number in 0.0..1000000.0"),
    ("app_config.selection.maturity_threshold", 10**20, "an int in 0..2147483647"),
    ("app_config.selection.error_rate_threshold", 1.5, "a number in 0.0..1.0"),
    ("app_config.termination.max_consecutive_errors", 10**11, "an int in 0..65535"),
    ("app_config.termination.graceful_shutdown_ticks", 2**31, "an int in 0..2147483647"),
    ("app_config.termination.max_retries", 256, "an int in 0..255"),
    ("app_config.termination.escalate_after", 70_000, "an int in 0..65535"),
    ("agents.workers", 10**9, "an int in 1..16777216"),
    ("agents.workers", 0, "an int in 1..16777216"),
    ("agents.managers", 10**6, "an int in 0..65535"),
    ("manager.process_interval_ticks", 0, "an int in 1..2147483647"),
    ("manager.confidence_threshold", math.nan, "a number in 0.0..1.0"),
    ("llm.temperature", 1e308, "a number in 0.0..100.0"),
    ("llm.max_tokens", 0, "an int in 1..1048576"),
    ("llm.timeout", 0.0, "a number in 0.0 (exclusive)..86400.0"),
    ("llm.timeout", math.inf, "a number in 0.0 (exclusive)..86400.0"),
    ("llm.seed", -1, "an int in 0..2147483647"),
    ("llm.n_ctx", 2**40, "an int in 1..16777216"),
    ("llm.n_gpu_layers", -2, "an int in -1..65535"),
    ("llm.parallel", 10**6, "an int in 1..1024"),
]


@pytest.mark.parametrize(("field", "value", "expected"), OUT_OF_RANGE,
                         ids=[f"{f}={v!r}"[:60] for f, v, _ in OUT_OF_RANGE])
def test_out_of_range_is_one_line(field, value, expected):
    err = load_error(_nest(field, value))
    text = str(err)
    assert err.field == field
    assert f"got {value!r}"[:30] in text
    assert f"expected {expected}" in text
    assert text.startswith(f"{TROUBLESHOOTING}:") and "\n" not in text


@pytest.mark.parametrize("field", ["conditions.success"])
def test_condition_values_are_int64_or_finite(field):
    for value in (10**30, math.inf, math.nan):
        cond = {"metric": "ticks", "op": "gt", "value": value}
        err = load_error({"conditions": {"success": [cond]}})
        assert err.field == "conditions.success[0].value"
        assert "got" in str(err)


def test_milestone_weight_and_edge_confidence():
    err = load_error({"milestones": [{"name": "m", "weight": math.inf,
                                      "condition": {"metric": "ticks", "op": "gt", "value": 1}}]})
    assert err.field == "milestones[0].weight"
    err = load_error({"dependency_graph": {"edges": [{"from": "CheckStatus", "to": "ReadLogs", "confidence": 2.0}]}})
    assert err.field == "dependency_graph.edges[0].confidence"


def test_worker_templates_add_up_to_the_limit():
    err = load_error({"agents": {"workers": [{"count": 2**24}, {"count": 1}]}})
    assert err.field == "agents.workers"
    assert "16777217 workers" in str(err)


@pytest.mark.parametrize(("value", "expected"), [(math.nan, "got nan"), (math.inf, "got inf"), (1e30, "got 1e+30")])
def test_builtin_params_are_finite_and_fit_a_c_int(value, expected):
    err = load_error({"environment": {"params": {"noise": value}}})
    assert err.field == "environment.params.noise" and expected in str(err)


def test_open_ended_builtin_params_are_capped_at_int32():
    with pytest.raises(ScenarioError) as info:
        load_scenario(TROUBLESHOOTING, overrides={"environment": {"env_type": "code_exploration", "params": {
            "grep_limit": 2**40}}, "actions": {"actions": [{"name": "List"}, {"name": "Grep"}, {"name": "Read"}]},
            "dependency_graph": {"start": ["List"], "edges": [], "terminal": ["Read"]}})
    assert info.value.field == "environment.params.grep_limit"
    assert "expected an int in 1..2147483647" in str(info.value)


def _numbers(t, seen) -> list:
    """Every int / float type reachable from ``t`` (msgspec.inspect)."""
    import msgspec.inspect as mi

    if id(t) in seen:
        return []
    seen.add(id(t))
    if isinstance(t, (mi.IntType, mi.FloatType)):
        return [t]
    children = []
    if isinstance(t, mi.StructType):
        children = [f.type for f in t.fields]
    elif isinstance(t, mi.UnionType):
        children = list(t.types)
    elif isinstance(t, (mi.ListType, mi.DictType)):
        children = [t.item_type if isinstance(t, mi.ListType) else t.value_type]
    return [n for c in children for n in _numbers(c, seen)]


def test_every_schema_number_has_both_bounds():
    """What the struct of [llm] bounds below only is checked by eval.checks; everything else
    in the schema has both ends (seeds excepted: msgspec bounds stop at int64)."""
    import msgspec.inspect as mi

    info = mi.type_info(schema.ScenarioFile)
    assert isinstance(info, mi.StructType)
    for f in info.fields:
        if f.name == "llm":
            continue
        for t in _numbers(f.type, set()):
            lo = t.ge if t.ge is not None else t.gt
            hi = t.le if t.le is not None else t.lt
            assert lo is not None and hi is not None, (f.name, t)


def test_describe_range_reads_the_schema():
    raw = {"app_config": {"max_ticks": 5}}
    assert describe_range(type_at(schema.ScenarioFile, raw, ["app_config", "max_ticks"])) == "an int in 0..2147483647"
    assert describe_range(type_at(schema.ScenarioFile, {"agents": {"workers": 3}}, ["agents", "workers"])) \
        == "an int in 1..16777216"


def test_in_range_values_still_load():
    sc = load_scenario(TROUBLESHOOTING, overrides={"app_config": {"max_ticks": 2**31 - 1, "tick_duration_ms": 0.0},
                                                  "agents": {"workers": 3}})
    assert sc.config.max_ticks == 2**31 - 1 and sc.config.workers == 3
