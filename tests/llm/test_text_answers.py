"""Text answers: each candidate's line scored by its log-probability after a
prompt that shows what the worker read. The arithmetic first, then the real
model in process (skipped with the reason when llama-cpp-python is missing)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from swarm_engine.llm import prompts
from swarm_engine.llm.backends.llama_cpp.sampling import line_choice, token_logprob
from swarm_engine.llm.protocol import Choice, DecisionRequest, Sampling

ACTIONS = [("CheckStatus", "Check the status of every service"), ("ReadLogs", "Read the recent logs of a service"),
           ("ApplyFix", "Apply a named fix to a service")]
SHARED = prompts.text_shared_prompt("One upstream fails. Read the logs, apply the fix they name.", "", ACTIONS)
CHOICES = tuple(Choice(a, t, x, node=i) for i, (a, t, x) in enumerate(
    [("ReadLogs", "ledger-db", None), ("ApplyFix", "payments", "purge_disk"),
     ("ApplyFix", "payments", "raise_memory_limit"), ("ApplyFix", "ledger-db", "raise_memory_limit"),
     ("ReadLogs", "payments", None)]))
READ = ("ReadLogs ledger-db -> ok: ledger-db logs: ERROR call to payments failed: OutOfMemoryError: heap "
        "limit reached. Fix: ApplyFix payments raise_memory_limit")


def test_token_logprob_is_the_log_softmax():
    logits = np.array([1.0, 2.0, 0.5, -3.0], dtype=np.float32)
    ref = np.log(np.exp(logits) / np.exp(logits).sum())
    for t in range(4):
        assert token_logprob(logits, t) == pytest.approx(float(ref[t]), abs=1e-6)
    assert token_logprob(np.array([1000.0, 0.0]), 1) == pytest.approx(-1000.0)     # no overflow


def test_line_choice_is_the_softmax_over_lines():
    j, conf, p = line_choice([-12.0, -3.0, -3.5], Sampling(temperature=0.0), None)
    assert j == 1 and conf == pytest.approx(p[1]) and p.sum() == pytest.approx(1.0)
    assert p[1] / p[2] == pytest.approx(np.exp(0.5))


def test_text_prompt_shows_what_was_read_not_a_list():
    body = prompts.text_worker_prompt(3, ["CheckStatus -> ok: 4 degraded", READ])
    assert body.startswith("Worker 3. Last steps: ") and body.endswith("\nAnswer:")
    assert "Fix: ApplyFix payments raise_memory_limit" in body
    assert "Candidates" not in body and "Candidates" not in SHARED
    assert prompts.answer_text(CHOICES, 2, "text") == "ApplyFix payments raise_memory_limit"


def test_what_was_learned_stays_whole_after_a_failed_step():
    failed = "ApplyFix ledger-db purge_disk -> fail: purge_disk applied to ledger-db: no effect, the outage goes on"
    body = prompts.text_worker_prompt(0, [READ, failed])
    assert "Fix: ApplyFix payments raise_memory_limit" in body        # older, but what the worker learned
    assert "no effect, the outage goes on" in body
    old = prompts.text_worker_prompt(0, ["CheckStatus -> ok: " + "x" * 300, READ, failed], max_history=3)
    assert "x" * 100 not in old                                        # other steps are cut short


# ---------------------------------------------------------------- in process

needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                     reason="llama-cpp-python is not installed (pip install -e '.[llm]')")


@pytest.fixture(scope="module")
def inv():
    from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker
    from swarm_engine.llm.models import resolve_model

    try:
        path = resolve_model(None)
    except Exception as e:                     # no model wheel
        pytest.skip(f"no default model: {e}")
    i = LlamaCppInvoker(path, n_ctx=4096, n_seq_max=2, n_threads=1)
    yield i
    i.close()


def _request(worker: int, history: list[str], choices=CHOICES) -> DecisionRequest:
    return DecisionRequest(worker, SHARED, prompts.text_worker_prompt(worker, history), choices,
                           sampling=Sampling(temperature=0.0, max_tokens=48), slot=worker, answer="text")


@needs_llama_cpp
def test_in_process_text_answer_copies_the_named_step(inv):
    reqs = [_request(0, ["CheckStatus -> ok: ledger-db Degraded, payments Degraded", READ]),
            _request(1, ["CheckStatus -> ok: ledger-db Degraded, payments Degraded"])]
    out = inv.decide_sync(reqs)
    for d, r in zip(out, reqs):
        assert d.ok and d.error is None, d.message
        assert d.raw == prompts.choice_text(r.choices[d.choice])
        assert d.probs is not None and len(d.probs) == len(r.choices) and sum(d.probs) == pytest.approx(1.0)
        assert d.choice == int(np.argmax(d.probs)) and d.confidence == pytest.approx(d.probs[d.choice])
    assert out[0].raw == "ApplyFix payments raise_memory_limit", out[0].probs
    assert out[0].confidence > 0.5
    # one request at a time gives the same scores (the prefix cache and the line batches change nothing)
    for d, r in zip(out, reqs):
        alone = inv.decide_sync([r])[0]
        assert alone.choice == d.choice and alone.probs == pytest.approx(d.probs, abs=0.02)
    assert out[1].cached_tokens > 0                        # the shared part is decoded once


@needs_llama_cpp
def test_in_process_text_answer_lines_that_prefix_each_other(inv):
    # "ReadLogs db" is a prefix of "ReadLogs db-primary": each is scored as a whole answer
    choices = (Choice("ReadLogs", "db", node=0), Choice("ReadLogs", "db-primary", node=1))
    d = inv.decide_sync([_request(0, ["CheckStatus -> ok: db-primary Degraded; read db-primary's logs next"],
                                  choices)])[0]
    assert d.ok and d.raw in ("ReadLogs db", "ReadLogs db-primary") and 0 < d.confidence <= 1
    assert d.probs is not None and min(d.probs) > 0


def _fake_model(seed: int, vocab: int = 7):
    """Logits that depend on the whole path (node), like a model's."""
    rng = np.random.default_rng(seed)
    table: dict[int, np.ndarray] = {}

    def decode(nodes):
        return {v: table.setdefault(v, rng.normal(0, 3, vocab)) for v in nodes}
    return decode, rng.normal(0, 3, vocab)


@pytest.mark.parametrize("seed", range(20))
def test_best_first_search_finds_the_exact_argmax(seed):
    from swarm_engine.llm.backends.llama_cpp.sampling import line_scores, line_trie

    rng = np.random.default_rng(1000 + seed)
    lines = {tuple(int(t) for t in rng.integers(0, 6, rng.integers(1, 5))) + (6,) for _ in range(12)}
    lines = sorted(lines)
    trie = line_trie(lines)
    decode, first = _fake_model(seed)
    asked: list[int] = []

    def counting(nodes):
        asked.extend(nodes)
        return decode(nodes)
    scores, exact = line_scores(trie, first, counting, batch=2)
    # brute force: every line's log-probability through the same logits
    everything = decode(range(len(trie.token)))
    full = []
    for p in trie.path:
        lp = token_logprob(first, trie.token[p[0]])
        for v in p[1:]:
            lp += token_logprob(everything[trie.parent[v]], trie.token[v])
        full.append(lp)
    best = int(np.argmax(full))
    assert int(np.argmax(scores)) == best and exact[best]
    assert scores[best] == pytest.approx(full[best])
    for s, f, e in zip(scores, full, exact):
        assert s == pytest.approx(f) if e else s >= f - 1e-9             # a bound never undercuts
    assert len(set(asked)) == len(asked) <= len(trie.decode)            # no node decoded twice


def test_line_trie_shares_prefixes():
    from swarm_engine.llm.backends.llama_cpp.sampling import line_trie

    trie = line_trie([[1, 2, 9], [1, 3, 9], [4, 9]])
    assert len(trie.token) == 7 and trie.token[:2] == [1, 4]            # breadth first: 1, 4, then 2, 3, 9 ...
    assert trie.lines[0] == [0, 1]
    assert all(trie.parent[v] < v for v in range(len(trie.token)))
    assert sorted(trie.decode) == sorted({trie.parent[v] for v in range(7)} - {-1})
