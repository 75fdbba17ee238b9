"""A variant replaces the tables it lists in ``replace`` instead of merging
into them: the only way to switch ``dependency_graph.type`` (a merge keeps the
custom graph's ``start``, which a static graph does not take)."""

from __future__ import annotations

import pytest

from swarm_engine import ScenarioError, load_scenario
from swarm_engine.eval.loader import deep_merge, list_variants
from tests.paths import TROUBLESHOOTING

VARIANTS = '''
[[variants]]
name = "merged"
[variants.overrides.dependency_graph]
type = "static"

[[variants]]
name = "replaced"
replace = ["dependency_graph"]
[variants.overrides.dependency_graph]
type = "static"

[[variants]]
name = "params_replaced"
replace = ["environment.params"]
[variants.overrides.environment.params]
services = 6

[[variants]]
name = "not_a_table"
replace = ["app_config"]
[variants.overrides.environment.params]
services = 6
'''


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "variants.toml"
    text = TROUBLESHOOTING.read_text(encoding="utf-8")
    text = text[:text.index("[[variants]]")] if "[[variants]]" in text else text
    p.write_text(text + VARIANTS, encoding="utf-8")
    return p


def test_merge_cannot_switch_the_graph_type(path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, variant="merged")
    assert "start" in str(info.value) or "unknown field" in str(info.value)


def test_replace_switches_the_graph_type(path):
    custom = load_scenario(path)
    static = load_scenario(path, variant="replaced")
    assert type(custom.spec.dependency_graph).__name__ == "CustomGraph"
    assert type(static.spec.dependency_graph).__name__ == "StaticGraph"
    assert static.rules is not None


def test_replace_of_a_nested_table_drops_its_other_keys(path):
    base = load_scenario(path).spec.environment.params
    sc = load_scenario(path, variant="params_replaced")
    assert "noise" in base and dict(sc.spec.environment.params) == {"services": 6}


def test_replace_must_name_a_table_of_the_overrides(path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, variant="not_a_table")
    assert info.value.field == "variants[3].replace[0]"
    assert "'app_config' is not a table of this variant's overrides" in str(info.value)


def test_unchosen_variants_are_listed():
    names = [n for n, _ in list_variants({"variants": [{"name": "a", "replace": ["x"]}]})]
    assert names == ["a"]


def test_deep_merge_replace():
    base = {"g": {"type": "custom", "start": ["A"]}, "e": {"p": {"x": 1, "y": 2}}}
    assert deep_merge(base, {"g": {"type": "static"}}, ["g"]) == {"g": {"type": "static"}, "e": base["e"]}
    assert deep_merge(base, {"e": {"p": {"x": 5}}}, ["e.p"])["e"]["p"] == {"x": 5}
    assert deep_merge(base, {"e": {"p": {"x": 5}}})["e"]["p"] == {"x": 5, "y": 2}
