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


def test_the_payload_is_packed_and_unpacks_to_the_same_arrays(scenario):
    import dataclasses

    part = run_eval(scenario, 50, seed=2**40)
    payload = to_payload(part)
    assert payload["seeds"] is None and payload["packed"]["seeds"] == {"range": [2**40, 50]}
    assert payload["ticks"].dtype == np.int32 and payload["by_action"].dtype == np.int32
    shipped = sum(a.nbytes for f in ARRAY_FIELDS if (a := payload[f]) is not None)
    assert shipped < 0.6 * sum(getattr(part, f).nbytes for f in ARRAY_FIELDS)
    back = from_payload(scenario, payload)
    for f in ARRAY_FIELDS:
        assert getattr(back, f).dtype == getattr(part, f).dtype and np.array_equal(getattr(back, f), getattr(part, f))
    # values past int32 and seeds that are not a range travel as they are
    odd = dataclasses.replace(part, ticks=part.ticks + 2**40, seeds=part.seeds[::-1].copy())
    payload = to_payload(odd)
    assert payload["ticks"].dtype == np.int64 and payload["seeds"].dtype == np.uint64
    back = from_payload(scenario, payload)
    assert np.array_equal(back.ticks, odd.ticks) and np.array_equal(back.seeds, odd.seeds)
    empty = from_payload(scenario, to_payload(run_eval(scenario, 1, seed=0)))
    assert empty.seeds.tolist() == [0]
