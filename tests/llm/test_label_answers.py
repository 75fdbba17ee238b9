"""One-token label answers: the pure arithmetic (labels -> tokens, the choice
and its confidence, llama-server's probabilities, dealing candidates), then
the real thing in process and against a real llama-server (skipped with the
reason when the extras are missing)."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util

import numpy as np
import pytest

from swarm_engine.llm import prompts
from swarm_engine.llm.backends.llama_cpp.sampling import label_choice, label_tokens
from swarm_engine.llm.backends.llama_server import CHATML, LlamaServerInvoker, label_grammar, label_probs
from swarm_engine.llm.manager import deal
from swarm_engine.llm.models import server_unavailable
from swarm_engine.llm.protocol import Choice, DecisionRequest, Sampling

ACTIONS = [("CheckStatus", "Check the status of every service"), ("ReadLogs", "Read the recent logs of a service"),
           ("Restart", "Restart a diagnosed service")]
SHARED = prompts.label_shared_prompt("One service is failing. Find it and restart it.", "", ACTIONS)
CHOICES = tuple(Choice(a, s, node=i) for i, (a, s) in enumerate(
    [("ReadLogs", "db"), ("ReadLogs", "api"), ("Restart", "db"), ("CheckStatus", "web"), ("Restart", "api")]))
GREEDY = Sampling(temperature=0.0)


def requests(n: int = 4) -> list[DecisionRequest]:
    hist = ["CheckStatus -> ok: db Degraded, api Running", "ReadLogs api -> ok: no errors"]
    return [DecisionRequest(w, SHARED, prompts.label_worker_prompt(w, hist[: w % 3], CHOICES[: 2 + w % 4]),
                            CHOICES[: 2 + w % 4], slot=w, answer="label") for w in range(n)]


# ---------------------------------------------------------------- arithmetic

def test_labels_are_digits_then_letters():
    assert prompts.label_of(0) == "1" and prompts.label_of(8) == "9" and prompts.label_of(9) == "A"
    assert prompts.answer_text(CHOICES, 2, "label") == "3"
    assert prompts.answer_text(CHOICES, 2, "json") == prompts.answer_json(CHOICES[2])
    with pytest.raises(IndexError):
        prompts.label_of(len(prompts.LABELS))


def test_label_prompt_shared_part_is_first_and_worker_part_short():
    r = requests(2)
    assert r[0].shared_prompt == r[1].shared_prompt == SHARED and r[0].prompt.startswith(SHARED)
    assert r[0].worker_prompt.endswith("Answer:")
    assert "1 ReadLogs db\n2 ReadLogs api" in r[0].worker_prompt


def test_label_tokens_one_token_each():
    by_piece = {b"1": [5], b"2": [6], b"A": [7], b"AB": [8]}
    assert label_tokens(["1", "2", "A"], by_piece).tolist() == [5, 6, 7]
    with pytest.raises(ValueError):
        label_tokens(["3"], by_piece)
    with pytest.raises(ValueError):
        label_tokens(["1", "2"], {b"1": [5], b"2": [5]})


def test_label_choice_greedy_is_argmax_and_confidence_is_its_mass():
    lg = np.array([0.5, 2.0, -1.0, 2.0])
    j, conf, p = label_choice(lg, GREEDY, None)
    assert j == 1                                         # first of the tie
    assert abs(p.sum() - 1) < 1e-12 and conf == pytest.approx(np.exp(2) / np.exp(lg).sum())
    rng = np.random.default_rng(1)
    picks = {label_choice(lg, Sampling(temperature=1.0, top_k=0, top_p=1.0), rng)[0] for _ in range(200)}
    assert picks == {0, 1, 2, 3}


def test_label_probs_from_server_entries_renormalised():
    entry = [{"token": "1", "prob": 0.5, "top_probs": [{"token": "1", "prob": 0.5}, {"token": "3", "prob": 0.25},
                                                      {"token": "x", "prob": 0.2}]}]
    assert label_probs(entry, 3) == pytest.approx([2 / 3, 0.0, 1 / 3])
    assert label_probs([], 3) is None
    assert label_grammar(3) == 'root ::= "1" | "2" | "3"\n'


def test_deal_gives_disjoint_best_first_lists():
    hands = deal(CHOICES, 2)
    assert [c.node for c in hands[0]] == [0, 2, 4] and [c.node for c in hands[1]] == [1, 3]
    assert not set(hands[0]) & set(hands[1])
    assert deal(CHOICES, 0) == [] and [len(h) for h in deal(CHOICES[:2], 3)] == [1, 1, 0]


# ---------------------------------------------------------------- in process

needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                     reason="llama-cpp-python is not installed (pip install 'swarm-engine[llm]')")


@pytest.fixture(scope="module")
def inv():
    from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker
    from swarm_engine.llm.models import default_model_path

    try:
        path = default_model_path()
    except Exception as e:                     # no model wheel
        pytest.skip(f"no default model: {e}")
    i = LlamaCppInvoker(path, n_ctx=4096, n_seq_max=4, n_threads=1)
    yield i
    i.close()


def _check_label(d, r):
    assert d.ok and d.error is None and d.raw == prompts.label_of(d.choice)
    assert d.probs is not None and len(d.probs) == len(r.choices)
    assert abs(sum(d.probs) - 1.0) < 1e-6
    assert d.confidence == pytest.approx(d.probs[d.choice], abs=1e-12)
    assert d.choice == int(np.argmax(d.probs)) and d.completion_tokens == 1


@needs_llama_cpp
def test_in_process_one_token_answer(inv):
    reqs = requests(4)
    batched = inv.decide_sync(reqs)
    for d, r in zip(batched, reqs):
        _check_label(d, r)
    one = [inv.decide_sync([r])[0] for r in reqs]
    for a, b in zip(batched, one):
        assert a.choice == b.choice and a.probs == pytest.approx(b.probs, abs=0.05)
    assert batched[1].cached_tokens > 0                    # the shared prefix is decoded once


class Recording:
    """Passes decisions through and keeps each tick's batch (one decide call)."""

    def __init__(self, inner):
        self.inner, self.name, self.answer, self.batches = inner, inner.name, inner.answer, []

    async def decide(self, reqs):
        out = await self.inner.decide(reqs)
        self.batches.append((list(reqs), out))
        return out

    async def complete_json(self, prompt, schema, sampling):
        return await self.inner.complete_json(prompt, schema, sampling)

    async def aclose(self):
        pass


@needs_llama_cpp
@pytest.mark.parametrize("distinct", [None, True], ids=["shared", "dealt"])
def test_in_process_swarm_distinct_choices(inv, distinct):
    from swarm_engine import load_scenario
    from swarm_engine.eval.runner import LlmRunHooks
    from swarm_engine.llm.runner import InvokerRunner
    from tests.paths import ROOT

    sc = load_scenario(ROOT / "scenarios" / "llm" / "troubleshooting_llm.toml",
                       overrides={"agents": {"workers": 4}, "environment": {"params": {"services": 6}}})
    rec = Recording(inv)
    runner = InvokerRunner(rec)
    try:
        asked = 0
        for seed in (1, 2):
            swarm = sc.swarm(seed)
            hooks = LlmRunHooks(sc, runner)
            hooks.policy = dataclasses.replace(hooks.policy, distinct=distinct)
            hooks.attach(swarm)
            swarm.run()
            hooks.finish(swarm)
            assert hooks.manager.answer == "label"
            asked += hooks.manager.asked
    finally:
        runner.close()
    # shared (the label default): a first choice another worker took falls through to
    # the answer's next open candidate; dealt: the model's choices of a tick are disjoint
    # (checked below). A worker left one candidate takes it at once. None is thrown away
    taken = runner.stats.summary()["taken"]
    assert asked > 0 and taken == 0, (asked, taken)
    several = 0
    for reqs, out in rec.batches:
        nodes = [r.choices[d.choice].node for r, d in zip(reqs, out) if d.ok]
        if distinct:
            assert len(nodes) == len(set(nodes)), "two workers of one tick got the same node from the model"
        else:
            assert all(r.choices == reqs[0].choices for r in reqs), "label workers of a tick see one list"
        several += len(nodes) > 1
        for d, r in zip(out, reqs):
            _check_label(d, r)
    assert several > 0                                   # ticks where several workers asked at once


# ---------------------------------------------------------------- llama-server

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    reason = server_unavailable()
    if reason:
        pytest.skip(reason)
    from swarm_engine.llm.process import free_port
    from swarm_engine.llm.server import LlamaServer

    srv = LlamaServer("labels", home=tmp_path_factory.mktemp("swarm-home"))
    srv.start(port=free_port(), parallel=4, kvu=False, threads=1, ctx_size=4096, timeout=60)
    yield srv
    srv.stop()


def test_server_one_token_answer(server):
    """A valid label every time, its confidence the constrained mass, greedy =
    argmax, on a first wave and a second one served from each worker's cached slot."""
    async def go(template):
        inv = LlamaServerInvoker(server.url, concurrency=4, template=template)
        try:
            return await inv.decide(requests(4)), await inv.decide(requests(4))
        finally:
            await inv.aclose()

    without = 0
    for template in (CHATML, None):
        first, again = asyncio.run(go(template))
        for d, r in zip(first + again, requests(4) * 2):
            if d.ok and d.probs is None:
                # the server's top_probs came back unconstrained: the label is taken
                # without a confidence (seen about once in ten waves on this build)
                assert d.repaired and d.confidence is None and d.raw == prompts.label_of(d.choice)
                without += 1
                continue
            _check_label(d, r)
        # not asserted: the same choice on both waves. A cached prefix is prefilled in
        # other batch shapes than a fresh one, and the quantized model's logits differ
        # in the last digits: a near tie between two labels flipped here once
        assert sum(d.cached_tokens for d in again) > 0          # one slot per worker: its prefix stays
    assert without <= 2, f"{without} of 16 answers came without a label distribution"
