"""The node's side without Ray: a chunk rebuilds the driver's scenario or says why it cannot."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from swarm_engine.cluster.chunk_task import chunk_of, rebuild, run_chunk
from swarm_engine.errors import ConfigError
from swarm_engine.eval.builtin import builtin_scenario
from swarm_engine.eval.loader import load_scenario
from swarm_engine.eval.merge import from_payload
from swarm_engine.eval.runner import run_eval
from tests.cluster.conftest import assert_same_runs
from tests.paths import DATA


@pytest.fixture
def scenario():
    return load_scenario(builtin_scenario("troubleshooting"))


def test_a_chunk_is_those_seeds_of_the_local_eval(scenario):
    payload = run_chunk(chunk_of(scenario, 3, 100, 40))
    assert payload["node"]["node_id"] == "local"           # no Ray here, and none started by asking
    assert_same_runs(from_payload(scenario, payload), run_eval(scenario, 40, 100))


def test_the_variant_overrides_and_learned_selector_travel():
    sc = load_scenario(DATA / "variants.toml", "maze", {"app_config": {"max_ticks": 40}})
    learned = dataclasses.replace(sc, config=dataclasses.replace(
        sc.config, selector=dataclasses.replace(sc.config.selector, ucb1_c=0.25)))
    built = rebuild(chunk_of(learned, 0, 0, 1))
    assert built.config.selector.ucb1_c == 0.25 and built.config.max_ticks == 40 and built.variant == "maze"
    assert_same_runs(from_payload(learned, run_chunk(chunk_of(learned, 0, 5, 30))), run_eval(learned, 30, 5))


@pytest.mark.parametrize(("change", "message"), [
    ({"version": "0.0.0"}, "this node runs swarm-engine .*, the driver 0.0.0"),
    ({"sha256": "0" * 64}, "the scenario arrived with sha256 .*, the driver sent 000000000000"),
    ({"spec": "0" * 64}, "the scenario built here differs from the driver's"),
])
def test_a_different_scenario_is_refused(scenario, change, message):
    with pytest.raises(ConfigError, match=message):
        rebuild(dataclasses.replace(chunk_of(scenario, 0, 0, 1), **change))


def test_a_scenario_changed_after_loading_is_refused(scenario):
    changed = dataclasses.replace(scenario, spec=msgspec.structs.replace(
        scenario.spec, task=msgspec.structs.replace(scenario.spec.task, goal="another goal")))
    with pytest.raises(ConfigError, match="differs from the driver's"):
        rebuild(chunk_of(changed, 0, 0, 1))
