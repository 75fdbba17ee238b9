"""What each field alone allows but the scenario as a whole cannot mean:
impossible environment params, duplicates that would collapse silently,
invisible characters in names, settings the kernel would refuse at run time."""

from __future__ import annotations

import pytest

from swarm_engine import ScenarioError, load_scenario
from swarm_engine.eval.env_params import RULES
from swarm_engine.eval.environments import BUILTIN
from tests.paths import SCENARIOS, TROUBLESHOOTING


def load_error(path=TROUBLESHOOTING, **overrides) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides=overrides)
    assert "\n" not in str(info.value)
    return info.value


COMBINATIONS = [
    # scenario, params, field, fragment
    ("troubleshooting.toml", {"services": 4, "faults": 9}, "faults", "expected faults <= services"),
    ("search.toml", {"files": 3, "results": 5, "decoys": 1}, "results", "expected results <= files"),
    ("search.toml", {"files": 10, "results": 3, "decoys": 3}, "decoys", "expected decoys < results"),
    ("cascade.toml", {"services": 3, "degraded": 5}, "degraded", "expected degraded <= services"),
    ("code_exploration.toml", {"files": 2, "refs": 2}, "refs", "expected refs < files"),
]


@pytest.mark.parametrize(("name", "params", "field", "fragment"), COMBINATIONS,
                         ids=[f"{c[0]}-{c[2]}" for c in COMBINATIONS])
def test_impossible_param_combinations(name, params, field, fragment):
    err = load_error(SCENARIOS / name, environment={"params": params})
    assert err.field == f"environment.params.{field}"
    assert fragment in str(err) and err.line is not None


def test_every_rule_names_a_real_parameter():
    for env, rules in RULES.items():
        for key, _, expected in rules:
            assert key in BUILTIN[env].params and key in expected


@pytest.mark.parametrize(("name", "params"), [("troubleshooting.toml", {"services": 4, "faults": 4}),
                                              ("search.toml", {"files": 5, "results": 5, "decoys": 4}),
                                              ("cascade.toml", {"services": 3, "degraded": 3})])
def test_edge_of_each_rule_loads(name, params):
    load_scenario(SCENARIOS / name, overrides={"environment": {"params": params}})


@pytest.mark.parametrize(("char", "label"), [("\u200b", "U+200B ZERO WIDTH SPACE"),
                                             ("\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
                                             ("\u2066", "U+2066 LEFT-TO-RIGHT ISOLATE"),
                                             ("\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
                                             ("\x07", "U+0007 control character")])
def test_invisible_and_bidi_characters_in_names(char, label):
    err = load_error(meta={"name": f"Service{char}Troubleshooting"})
    assert err.field == "meta.name"
    assert f"contains {label}" in str(err)


@pytest.mark.parametrize("overrides, field", [
    ({"actions": {"actions": [{"name": "Check\u200dStatus"}]}}, "actions.actions[0].name"),
    ({"milestones": [{"name": "a\u202eb", "condition": {"metric": "ticks", "op": "gt", "value": 1}}]},
     "milestones[0].name"),
    ({"agents": {"workers": [{"count": 1, "id_prefix": "w\u2060"}]}}, "agents.workers[0].id_prefix"),
    ({"conditions": {"success": [{"name": "ok\u200e", "metric": "ticks", "op": "gt", "value": 1}]}},
     "conditions.success[0].name"),
], ids=["action", "milestone", "worker-prefix", "condition"])
def test_each_kind_of_name_is_checked(overrides, field):
    assert load_error(**overrides).field == field


def test_prose_may_hold_any_character():
    sc = load_scenario(TROUBLESHOOTING, overrides={"task": {"goal": "Fix it \u200d\U0001f468\u200d\U0001f4bb"},
                                                  "meta": {"description": "\u202eRTL"}})
    assert "\u200d" in sc.spec.task.goal


def test_duplicate_variant_names(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text(TROUBLESHOOTING.read_text(encoding="utf-8")
                    + '\n[[variants]]\nname = "twin"\n[[variants]]\nname = "twin"\n', encoding="utf-8")
    err = load_error(path)
    assert "variant 'twin' is defined twice" in str(err) and err.field.endswith("].name")
    with pytest.raises(ScenarioError, match="defined twice"):
        load_scenario(path, variant="twin")


def test_duplicate_milestones_and_conditions():
    cond = {"metric": "ticks", "op": "gt", "value": 1}
    err = load_error(milestones=[{"name": "m", "condition": cond}, {"name": "m", "condition": cond}])
    assert err.field == "milestones[1].name"
    err = load_error(conditions={"success": [dict(cond, name="x")], "failure": [dict(cond, name="x")]})
    assert err.field == "conditions.failure[0].name" and "condition 'x' is defined twice" in str(err)


def test_wait_without_a_tick_limit_is_a_load_error():
    err = load_error(app_config={"max_ticks": 0, "termination": {"on_exhausted": "wait"}})
    assert err.field == "app_config.termination.on_exhausted" and "needs max_ticks > 0" in str(err)


def test_workers_times_discoveries_fit_int32():
    err = load_error(environment={"params": {"services": 2**20}}, agents={"workers": 2**12},
                     dependency_graph={"edges": []})
    assert err.field == "agents.workers" and "int32 discovery buffer" in str(err)


def test_too_many_actions():
    err = load_error(actions={"actions": [{"name": f"a{i}"} for i in range(4096)]})
    assert err.field == "actions.actions" and "at most 4095" in str(err)
