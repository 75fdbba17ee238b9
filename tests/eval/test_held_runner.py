"""``run_eval(..., held_runner=)``: a model loaded once serves several evals (a cluster's model
host does this, cluster/model_host.py). The real SmolLM2 on a small cascade scenario."""

from __future__ import annotations

import pytest

from swarm_engine.eval.loader import parse_scenario
from swarm_engine.eval.runner import llm_runner, run_eval
from swarm_engine.llm.stats import LlmStats
from tests.llm.tiny_cascade import needs_model, tiny_cascade_text


@pytest.fixture(scope="module")
def scenario():
    return parse_scenario(tiny_cascade_text(), None)


@needs_model
def test_evals_on_a_held_runner_are_the_evals_on_their_own(scenario):
    alone = run_eval(scenario, 2, 42)
    runner = llm_runner(scenario)
    try:
        stats = LlmStats()
        first = run_eval(scenario, 1, 42, held_runner=runner, llm_stats=stats)
        second = run_eval(scenario, 1, 43, held_runner=runner)
        assert runner.stats is not stats and runner.run(_one()) == 1     # still open after both
    finally:
        runner.close()
    assert first.llm["invocations"] == stats.invocations == int(alone.per_run_llm["llm_calls"][:1].sum())
    assert second.llm["invocations"] == int(alone.per_run_llm["llm_calls"][1:].sum())   # its own calls alone
    for part, lo in ((first, 0), (second, 1)):
        assert part.actions.tolist() == alone.actions[lo:lo + 1].tolist()
        assert part.success.tolist() == alone.success[lo:lo + 1].tolist()


def test_a_held_runner_is_not_used_without_the_llm(scenario):
    class Untouchable:
        stats = None

        def __getattr__(self, name):
            raise AssertionError(f"the runner was used: {name}")

    held = run_eval(scenario, 3, 7, llm=False, held_runner=Untouchable())    # type: ignore[arg-type]
    alone = run_eval(scenario, 3, 7, llm=False)
    for name in ("success", "ticks", "actions", "by_action"):
        assert getattr(held, name).tolist() == getattr(alone, name).tolist(), name
    assert held.llm == alone.llm == {}


async def _one() -> int:
    return 1
