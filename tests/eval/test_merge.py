"""An eval split into contiguous chunks of seeds, merged, is the whole eval run for run."""

from __future__ import annotations

import numpy as np
import pytest

from swarm_engine.errors import ConfigError
from swarm_engine.eval.builtin import builtin_scenario
from swarm_engine.eval.loader import load_scenario
from swarm_engine.eval.merge import ARRAY_FIELDS, concat_results, from_payload, to_payload
from swarm_engine.eval.runner import run_eval


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(builtin_scenario("troubleshooting"))


def _same(a, b) -> None:
    for f in ARRAY_FIELDS:
        if f != "wall":
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    assert a.reason == b.reason
    assert a.conditions.keys() == b.conditions.keys()
    for k in a.conditions:
        np.testing.assert_array_equal(a.conditions[k], b.conditions[k])
    for k in a.milestones:
        np.testing.assert_array_equal(a.milestones[k], b.milestones[k])


def test_chunks_merge_into_the_whole_eval(scenario):
    whole = run_eval(scenario, 300, seed=7)
    parts = [run_eval(scenario, n, seed=s) for s, n in ((7, 100), (107, 37), (144, 163))]
    merged = concat_results(parts)
    assert merged.requested == 300 and merged.base_seed == 7 and not merged.stopped
    _same(merged, whole)


def test_payload_round_trip_checks_the_scenario(scenario):
    part = run_eval(scenario, 20, seed=1)
    back = from_payload(scenario, to_payload(part))
    _same(back, part)
    other = load_scenario(builtin_scenario("search"))
    with pytest.raises(ConfigError, match="cannot be merged"):
        from_payload(other, to_payload(part))


def test_parts_must_follow_each_other(scenario):
    a, b = run_eval(scenario, 10, seed=0), run_eval(scenario, 10, seed=11)
    with pytest.raises(ConfigError, match="do not follow"):
        concat_results([a, b])
