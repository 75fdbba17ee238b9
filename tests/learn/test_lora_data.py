"""LoRA training data, adapter versions and GGUF conversion: the parts that need
no torch (the training itself is in test_lora.py)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from swarm_engine import load_scenario
from swarm_engine.errors import ConfigError, StoreError
from swarm_engine.eval.environments.internal_diagnosis import FIXES, SECTIONS, hidden
from swarm_engine.learn.lora import active
from swarm_engine.learn.lora.collect import collect_decisions, write_decisions_session
from swarm_engine.learn.lora.convert import gguf_tensors, rope_permute
from swarm_engine.learn.lora.data import (
    Example,
    build_examples,
    load_decisions,
    read_decisions,
    read_jsonl,
    split_by_seed,
    summarize,
    write_jsonl,
)
from swarm_engine.learn.store import LearningStore, learning_key
from swarm_engine.llm import prompts
from swarm_engine.llm.protocol import Decision
from tests.paths import ROOT

DIAG_LLM = ROOT / "scenarios" / "llm" / "internal_diagnosis_llm.toml"


class RandomPicker:
    """A stand-in model that picks a random candidate: recorded runs with
    plenty of failed decisions and, eventually, the right fix."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    async def decide(self, requests):
        out = []
        for r in requests:
            i = self.rng.randrange(len(r.choices))
            out.append(Decision(worker=r.worker, choice=i, confidence=0.9, raw=prompts.answer_json(r.choices[i])))
        return out

    async def complete_json(self, prompt, schema, sampling):
        return "{}"

    async def aclose(self):
        pass


@pytest.fixture(scope="module")
def recorded():
    sc = load_scenario(DIAG_LLM)
    records, runs = collect_decisions(sc, range(100, 112), invoker=RandomPicker())
    return sc, records, runs


@pytest.fixture
def store(tmp_path):
    return LearningStore(tmp_path / "learning")


def test_recorded_runs_carry_run_seed_and_success(recorded):
    sc, records, runs = recorded
    assert [r["seed"] for r in runs] == list(range(100, 112)) and all(r["success"] for r in runs)
    assert len(records) == sum(r["decisions"] for r in runs)
    assert {(r["run"], r["seed"]) for r in records} == {(i, 100 + i) for i in range(12)}
    assert all(r["run_success"] for r in records)
    json.dumps(records)


def test_examples_label_what_succeeded_and_correct_what_failed(recorded):
    sc, records, _ = recorded
    params = dict(sc.spec.environment.params)
    examples = build_examples(records)
    s = summarize(examples)
    assert s["by_kind"]["executed"] > 0 and s["by_kind"]["corrected"] > 0 and s["pairs"] > 0
    assert s["seeds"] == 12
    for e in examples:
        faulty = hidden(e.seed, params)["faulty"]
        assert len(e.choices) >= 2 and e.target in e.good
        assert not set(e.good) & set(e.bad)
        c = e.choices[e.target]
        # every label is right by the environment's hidden state
        if c["action"] != "ParseConfig":
            assert c["target"] == SECTIONS[faulty], e
        if c["action"] == "ApplyFix":
            assert c["arg"] == FIXES[faulty]
        if e.rejected is not None:
            assert e.rejected in e.bad and e.kind in ("corrected", "hindsight")
        if e.kind == "hindsight":
            # the worker had read the winning step's target when it decided (the fix is
            # never named in this scenario's text: knowledge, not an observation)
            assert c["target"] in prompts.observed_text(e.messages[1]["content"]), e
        # the chat example is the engine's prompt plus the canonical answer
        msgs = e.chat()
        assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
        assert msgs[-1]["content"] == e.answer and e.answer.startswith('{"tool": ')
        assert msgs[1]["content"].endswith(prompts.ANSWER_CUE)
    # the corrected and hindsight ApplyFix examples are the knowledge the base model lacks
    assert any(e.kind in ("corrected", "hindsight") and e.action == "ApplyFix" for e in examples)


def test_failed_runs_and_single_choices_give_no_examples(recorded):
    _, records, _ = recorded
    failed = [{**r, "run_success": False} for r in records]
    assert build_examples(failed) == []
    unflagged = [{k: v for k, v in r.items() if k != "run_success"} for r in records]
    assert build_examples(unflagged) == build_examples(records)
    single = [{**r, "choices": r["choices"][:1]} for r in records]
    assert build_examples(single) == []


def test_held_out_seeds_never_train(recorded):
    _, records, _ = recorded
    examples = build_examples(records)
    train, held = split_by_seed(examples, 0.25)
    seeds_t, seeds_h = {e.seed for e in train}, {e.seed for e in held}
    assert seeds_h == {109, 110, 111} and not seeds_t & seeds_h
    assert len(train) + len(held) == len(examples)
    assert split_by_seed(examples, 0.0) == (examples, [])


def test_examples_round_trip_through_jsonl(recorded, tmp_path):
    _, records, _ = recorded
    examples = build_examples(records)
    write_jsonl(tmp_path / "train.jsonl", (e.to_json() for e in examples))
    back = read_jsonl(tmp_path / "train.jsonl")
    assert [(e.messages, e.target, e.good, e.rejected, e.seed) for e in back] == \
        [(e.messages, e.target, e.good, e.rejected, e.seed) for e in examples]
    line = json.loads((tmp_path / "train.jsonl").read_text().splitlines()[0])
    assert line["messages"][-1]["role"] == "assistant"


def test_sessions_are_read_and_corrupt_lines_skipped(recorded, store, caplog):
    sc, records, _ = recorded
    key = learning_key(sc.id)
    first = write_decisions_session(store, key, records[:20])
    write_decisions_session(store, key, records[20:])
    f = first / "decisions.jsonl"
    lines = f.read_text().splitlines()
    lines.insert(3, '{"tick": 1, "messages": [')            # a line cut short
    lines.insert(5, '"just a string"')
    f.write_text("\n".join(lines) + "\n")
    problems: list[str] = []
    got = load_decisions(store, key, on_problem=problems.append)
    assert len(got) == len(records)
    assert len(problems) == 2
    assert problems[0].startswith(f"{f}:4: corrupt decision record")
    assert problems[1].startswith(f"{f}:6: ")
    assert all(r["session"] in (first.name, store.sessions(key)[1].name) for r in got)
    assert build_examples(got) == build_examples(
        [{**r, "session": s["session"]} for r, s in zip(records, got)])
    assert read_decisions(store.root / "nope.jsonl", on_problem=problems.append) == []
    assert "cannot read" in problems[-1]


def test_versions_and_the_active_pointer(store):
    key = "user_internal_diagnosis_llm"
    assert active.active_adapter(store, key) is None and active.versions(store, key) == []
    v1, d1 = active.reserve_version(store, key)
    v2, d2 = active.reserve_version(store, key)
    assert (v1, v2) == (1, 2) and d1.name == "v1" and d2.is_dir()
    with pytest.raises(StoreError, match="no such adapter"):
        active.set_active(store, key, 1)
    (d1 / active.ADAPTER_FILE).write_bytes(b"GGUF")
    (d2 / active.ADAPTER_FILE).write_bytes(b"GGUF")
    assert active.versions(store, key) == [1, 2]
    path = active.set_active(store, key, 2)
    assert active.active_adapter(store, key) == path == (d2 / active.ADAPTER_FILE).resolve()
    assert active.active_version(store, key) == 2
    pointer = json.loads((active.lora_root(store, key) / "active.json").read_text())
    assert pointer["version"] == 2 and pointer["path"] == str(path)
    # relative paths are read against lora/; a missing file or a corrupt pointer is no adapter
    (active.lora_root(store, key) / "active.json").write_text('{"version": 1, "path": "v1/adapter.gguf"}')
    assert active.active_adapter(store, key) == active.lora_root(store, key) / "v1" / "adapter.gguf"
    # an absolute path from where the learning root used to be: the same version here is used
    (active.lora_root(store, key) / "active.json").write_text(
        '{"version": 2, "path": "/elsewhere/learning/scenarios/k/lora/v2/adapter.gguf"}')
    assert active.active_adapter(store, key) == active.lora_root(store, key) / "v2" / "adapter.gguf"
    (active.lora_root(store, key) / "active.json").write_text('{"version": 1, "path": "v1/adapter.gguf"}')
    (d1 / active.ADAPTER_FILE).unlink()
    assert active.active_adapter(store, key) is None and "missing" in store.problems[-1]
    (active.lora_root(store, key) / "active.json").write_text("{not json")
    assert active.active_adapter(store, key) is None and "unreadable" in store.problems[-1]


def test_rope_permutation_interleaves_the_rotary_halves():
    # two heads of head_dim 4: rows (x0 x1 | y0 y1) per head -> x0 y0 x1 y1
    rows = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    out = rope_permute(rows, 2)
    assert out[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
    with pytest.raises(ConfigError):
        rope_permute(rows, 3)


def test_peft_names_map_to_gguf_with_q_and_k_permuted():
    r, d, kv = 2, 8, 4
    rng = np.random.default_rng(0)
    peft = {}
    for mod, out_dim in (("self_attn.q_proj", d), ("self_attn.k_proj", kv), ("self_attn.v_proj", kv),
                         ("mlp.down_proj", d)):
        peft[f"base_model.model.model.layers.3.{mod}.lora_A.weight"] = rng.normal(size=(r, d)).astype(np.float32)
        peft[f"base_model.model.model.layers.3.{mod}.lora_B.weight"] = rng.normal(size=(out_dim, r)).astype(np.float32)
    t = gguf_tensors(peft, n_head=2, n_head_kv=1)
    assert sorted(t) == sorted(f"blk.3.{n}.weight.lora_{x}" for n in ("attn_q", "attn_k", "attn_v", "ffn_down")
                               for x in "ab")
    pre = "base_model.model.model.layers.3"
    assert t["blk.3.attn_q.weight.lora_a"].dtype == np.float32
    np.testing.assert_array_equal(t["blk.3.attn_q.weight.lora_a"], peft[f"{pre}.self_attn.q_proj.lora_A.weight"])
    np.testing.assert_array_equal(t["blk.3.attn_q.weight.lora_b"],
                                  rope_permute(peft[f"{pre}.self_attn.q_proj.lora_B.weight"], 2))
    np.testing.assert_array_equal(t["blk.3.attn_k.weight.lora_b"],
                                  rope_permute(peft[f"{pre}.self_attn.k_proj.lora_B.weight"], 1))
    np.testing.assert_array_equal(t["blk.3.attn_v.weight.lora_b"], peft[f"{pre}.self_attn.v_proj.lora_B.weight"])
    with pytest.raises(ConfigError, match="needs both"):
        gguf_tensors({f"{pre}.self_attn.q_proj.lora_A.weight": np.zeros((r, d))}, n_head=2, n_head_kv=1)
    with pytest.raises(ConfigError, match="no GGUF counterpart"):
        gguf_tensors({f"{pre}.self_attn.rotary.lora_A.weight": np.zeros((r, d))}, n_head=2, n_head_kv=1)


def test_example_json_keeps_the_pair():
    e = Example(messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                choices=[{"action": "A", "target": "x", "arg": None}, {"action": "B", "target": None, "arg": None}],
                target=1, good=[1], bad=[0], rejected=0, kind="corrected", seed=3)
    d = e.to_json()
    assert d["rejected"] == '{"tool": "A", "target": "x"}' and d["messages"][-1]["content"] == '{"tool": "B"}'
    assert Example.from_json(d) == e


# ---------------------------------------------------------------- CLI errors: one line, exit 1


@pytest.fixture
def cli(monkeypatch, tmp_path, capsys):
    from swarm_engine.cli.main import main

    monkeypatch.setenv("SWARM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SWARM_DEBUG", raising=False)

    def run(*args: str) -> tuple[int, list[str]]:
        rc = main(["learn", "lora", *map(str, args)])
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        return rc, err

    return run


def test_cli_without_the_train_extra_says_how_to_install_it(cli, monkeypatch):
    import swarm_engine.learn.lora.config as config

    monkeypatch.setattr(config.importlib.util, "find_spec", lambda name: None)
    rc, err = cli(DIAG_LLM)
    assert rc == 1 and len(err) == 1
    assert "needs the 'train' extra" in err[0] and "pip install torch==2.13.0" in err[0]


def test_cli_without_recorded_decisions_is_one_line(cli, monkeypatch):
    import swarm_engine.learn.lora.config as config

    monkeypatch.setattr(config, "train_unavailable", lambda: None)
    rc, err = cli(DIAG_LLM)
    assert rc == 1 and len(err) == 1
    assert "no recorded LLM decisions for 'user_internal_diagnosis_llm'" in err[0]
    assert "swarm eval SCENARIO --learning" in err[0]
    rc, err = cli("no_such_key")
    assert rc == 1 and len(err) == 1 and "neither a scenario file nor a learning key" in err[0]


def test_cli_rejects_unknown_targets(cli, monkeypatch):
    import swarm_engine.learn.lora.config as config

    monkeypatch.setattr(config, "train_unavailable", lambda: None)
    rc, err = cli(DIAG_LLM, "--targets", "q,zz")
    assert rc == 1 and len(err) == 1 and "unknown LoRA target 'zz'" in err[0]


def _acc(correct: int, n: int) -> dict:
    return {"n": n, "correct": correct, "accuracy": correct / n if n else None}


def test_an_adapter_worse_than_the_one_in_use_is_held_back():
    from swarm_engine.learn.lora.pipeline import held_back

    assert held_back(None) is None                                           # not measured: not worse
    assert held_back({"base": _acc(6, 48), "adapter": _acc(36, 48)}) is None
    assert held_back({"base": _acc(6, 20), "adapter": _acc(6, 20)}) is None   # a tie is not worse
    assert held_back({"base": _acc(0, 0), "adapter": _acc(0, 0)}) is None
    why = held_back({"base": _acc(6, 20), "adapter": _acc(4, 20)})
    assert why == "held-out accuracy 20% (4/20) is below the base model's 30% (6/20)"
    # with an adapter active, that is the one to beat (not the base)
    current = {**_acc(36, 48), "version": 1}
    why = held_back({"base": _acc(6, 48), "current": current, "adapter": _acc(12, 48)})
    assert why == "held-out accuracy 25% (12/48) is below the active adapter v1's 75% (36/48)"
    assert held_back({"base": _acc(6, 48), "current": current, "adapter": _acc(37, 48)}) is None


def _cascade_record(tick, history, executed, outcome):
    from swarm_engine.llm.protocol import Choice

    choices = [Choice("ReadLogs", "checkout"), Choice("ApplyFix", "inventory", "purge_disk"),
               Choice("ApplyFix", "inventory", "rollback_deploy")]
    body = prompts.label_worker_prompt(0, history, choices)
    return {"tick": tick, "worker": 0, "run": 0, "seed": 7, "run_success": True, "answer_format": "label",
            "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": body}],
            "choices": [{"action": c.action, "target": c.target, "arg": c.arg} for c in choices],
            "executed": dict(zip(("action", "target", "arg"), executed)), "outcome": outcome}


def test_hindsight_labels_what_the_worker_had_read_and_never_a_guess():
    status = "CheckStatus -> ok: checkout: Degraded; inventory: Degraded"
    log = ("ReadLogs checkout -> ok: checkout logs: ERROR call to inventory failed: crash loop after deploy. "
           "Fix: ApplyFix inventory rollback_deploy")
    records = [
        # before any log: a wrong guess. The winning fix was on offer but unread: a guess, not a label
        _cascade_record(1, [status], ("ApplyFix", "inventory", "purge_disk"), "fail"),
        _cascade_record(2, [status, "ApplyFix inventory purge_disk -> fail: "], ("ReadLogs", "checkout", None), "ok"),
        # after the log: reading again worked, but the text named the fix: that is the label
        _cascade_record(3, [status, log], ("ReadLogs", "checkout", None), "ok"),
        _cascade_record(4, [status, log], ("ApplyFix", "inventory", "rollback_deploy"), "ok"),
    ]
    examples = {e.messages[1]["content"]: e for e in build_examples(records)}
    by_tick = [examples.get(r["messages"][1]["content"]) for r in records]
    # tick 1: the failed guess is corrected to what the worker could read (the log), not to the fix
    assert by_tick[0] is not None and by_tick[0].kind == "corrected" and by_tick[0].target == 0
    assert by_tick[1].kind == "executed" and by_tick[1].target == 0
    assert by_tick[2].kind == "hindsight" and by_tick[2].target == 2
    assert by_tick[3] is by_tick[2]           # ticks 3 and 4 share one prompt and one label: one example
