"""The decision counters of LlmStats (applied / unsure / taken / failed /
single), the failure record and the circuit breaker, with scripted invokers
(our own protocol, not a backend): these pin the counting rules."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest

from swarm_engine import load_scenario
from swarm_engine.eval.runner import LlmRunHooks, run_eval
from swarm_engine.llm.health import Breaker, LlmUnavailableError, describe_failure, probe
from swarm_engine.llm.protocol import ERROR_PARSE, ERROR_TRANSIENT, Decision
from swarm_engine.llm.runner import InvokerRunner
from swarm_engine.llm.stats import LlmStats, failure_cause
from tests.paths import ROOT

LLM_SCENARIO = ROOT / "scenarios" / "llm" / "troubleshooting_llm.toml"


class Fake:
    """Answers choice 0 of every request with a fixed confidence, or fails
    with ``error``/``message``; ``fail_after`` calls succeed first."""

    name = "fake"

    def __init__(self, confidence=0.9, error=None, message="scripted", fail_after=0):
        self.confidence = confidence
        self.error = error
        self.message = message
        self.fail_after = fail_after
        self.calls = 0

    async def decide(self, requests):
        out = []
        for r in requests:
            self.calls += 1
            if self.error and self.calls > self.fail_after:
                out.append(Decision(worker=r.worker, choice=None, error=self.error, message=self.message))
            else:
                out.append(Decision(worker=r.worker, choice=0, confidence=self.confidence))
        return out

    async def complete_json(self, prompt, schema, sampling):
        return "{}"

    async def aclose(self):
        pass


def runs(invoker, n=2, seed=3, distinct=True):
    """``n`` managed runs on one runner; (per-run extras, summary). ``distinct=False``
    shows every worker of a tick the same candidates (the manager's default deals
    them disjoint)."""
    sc = load_scenario(LLM_SCENARIO)
    runner = InvokerRunner(invoker)
    extras = []
    try:
        hooks = LlmRunHooks(sc, runner)
        hooks.policy = dataclasses.replace(hooks.policy, distinct=distinct)
        runner.stats.start_clock()
        for i in range(n):
            swarm = sc.swarm(seed + i)
            hooks.attach(swarm)
            assert swarm.run().success
            extras.append(hooks.finish(swarm))
        runner.stats.stop_clock()
        return extras, runner.stats.summary()
    finally:
        runner.close()


def collected(s):
    return s["applied"] + s["unsure"] + s["taken"] + s["failed"]


def test_confident_answers_are_applied_or_taken():
    extras, s = runs(Fake(confidence=0.9), distinct=False)
    # every worker asked in one tick gets the same candidates and picks the first:
    # one gets it, the others find it taken and go to the bandit (the fake gives no
    # distribution to fall back on)
    assert s["applied"] == sum(e["llm_decisions"] for e in extras) > 0
    assert s["taken"] > 0 and s["unsure"] == s["failed"] == 0
    assert s["fallbacks"] == s["taken"]
    assert s["invocations"] >= collected(s)
    assert s["decisions_per_sec"] == pytest.approx(s["applied"] / s["wall_seconds"])
    assert s["errors"] == 0 and s["first_failure"] is None


def test_dealt_candidates_are_never_taken():
    # the default deal: disjoint candidates per tick, nodes in flight are not dealt
    # again, a worker dealt one candidate takes it at once
    extras, s = runs(Fake(confidence=0.9))
    assert s["applied"] > 0 and s["taken"] == 0 and s["single"] >= 0
    assert s["fallbacks"] == s["unsure"] + s["taken"] + s["failed"] == 0


def test_unsure_answers_count_as_unsure():
    extras, s = runs(Fake(confidence=0.1))          # threshold 0.3
    assert s["applied"] == 0 and s["decisions_per_sec"] == 0
    assert s["unsure"] == s["low_confidence"] == s["fallbacks"] > 0
    assert sum(e["llm_unsure"] for e in extras) == s["unsure"]


def test_failed_calls_count_as_failed_with_the_first_failure():
    extras, s = runs(Fake(error=ERROR_TRANSIENT, message="POST http://x/completion: ConnectError: refused",
                          fail_after=2), n=3)
    assert s["failed"] > 0 and s["applied"] > 0
    assert s["fallbacks"] == s["unsure"] + s["taken"] + s["failed"]
    assert s["failed_by_cause"] == {"refused": s["failed"]}
    assert s["errors_by_kind"][ERROR_TRANSIENT] == s["errors"] >= s["failed"]
    first = s["first_failure"]
    assert first["kind"] == ERROR_TRANSIENT and first["cause"] == "refused" and "refused" in first["message"]
    run = next(i for i, e in enumerate(extras) if e["llm_failed"])
    assert first["run"] == run and first["seed"] == 3 + run and first["tick"] >= 0
    assert sum(e["llm_failed"] for e in extras) == s["failed"]


def test_one_candidate_is_counted_single_not_asked():
    extras, s = runs(Fake(confidence=0.9), n=1)
    # the first tick's only candidate (the scenario's start action) is taken without a model call
    assert s["single"] > 0 and extras[0]["llm_single"] == s["single"]


def test_eval_summary_and_per_run_columns(monkeypatch):
    import swarm_engine.llm.factory as factory

    monkeypatch.setattr(factory, "make_invoker", lambda llm: Fake(confidence=0.9))
    res = run_eval(load_scenario(LLM_SCENARIO), 2, seed=1)
    assert res.llm["available"] is True
    for key in ("llm_decisions", "llm_unsure", "llm_taken", "llm_failed", "llm_single"):
        assert res.per_run_llm[key].shape == (2,)
    assert res.per_run_llm["llm_decisions"].sum() == res.llm["applied"]


@pytest.mark.parametrize("decision, cause", [
    (Decision(0, None, error=ERROR_PARSE, message="could not map"), "parse"),
    (Decision(0, None, error=ERROR_TRANSIENT, message="POST u: ConnectError: connection refused"), "refused"),
    (Decision(0, None, error=ERROR_TRANSIENT, message="POST u: RemoteProtocolError: Server disconnected"),
     "closed"),
    (Decision(0, None, error=ERROR_TRANSIENT, message="POST u: read timeout after 30.0 s"), "timeout"),
    (Decision(0, None, error=ERROR_TRANSIENT, message="x: circuit open since a call failed"), "unavailable"),
    (Decision(0, None, error=ERROR_TRANSIENT, message="POST u: HTTP 500 Internal"), "http"),
])
def test_failure_cause(decision, cause):
    assert failure_cause(decision) == cause


def test_stats_partition():
    st = LlmStats()
    st.count_unsure()
    st.count_taken()
    st.count_failed(Decision(1, None, error=ERROR_PARSE), seed=5, tick=2)
    s = st.summary()
    assert (s["unsure"], s["taken"], s["failed"], s["fallbacks"]) == (1, 1, 1, 3)
    assert s["first_failure"]["seed"] == 5 and s["first_failure"]["worker"] == 1


def test_breaker_fails_fast_then_probes(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("swarm_engine.llm.health.time.monotonic", lambda: clock[0])
    b = Breaker("srv", probe_every=2.0)
    b.check()                                      # closed: passes
    err = LlmUnavailableError("POST u: refused")
    err.__cause__ = httpx.ConnectError("refused")
    b.failure(err)
    assert b.open
    with pytest.raises(LlmUnavailableError, match="circuit open"):
        b.check()
    clock[0] += 2.5
    b.check()                                      # the probe goes through
    with pytest.raises(LlmUnavailableError):
        b.check()                                  # only one probe per interval
    b.success()
    b.check()
    b.failure(LlmUnavailableError("HTTP 500"))     # not a connection loss: stays closed
    assert not b.open


def test_probe_reports_status_and_refusal():
    def handler(request):
        return httpx.Response(503 if request.url.path == "/health" else 200)

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c:
            with pytest.raises(LlmUnavailableError, match=r"HTTP 503.*still loading"):
                await probe(c, "http://h/health", loading=(503,), wait=0.3)
            assert (await probe(c, "http://h/other")).status_code == 200

    asyncio.run(go())
    assert describe_failure(httpx.ConnectError("[Errno 111] Connection refused")) == "connection refused"
    assert describe_failure(httpx.ReadTimeout("x"), 5.0) == "timed out after 5 s"
