"""The offline learning loop end to end: eval --learning -> learn once -> the
next eval loads the model; priors and model files by hand; concurrent evals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from swarm_engine.cli.main import main
from swarm_engine.eval.loader import load_scenario
from swarm_engine.learn import Episode, LearnStats
from swarm_engine.learn.model import OfflineModel, PriorCounts, model_from_stats, prior_tables, selector_from_model
from swarm_engine.learn.offline import HELDOUT_SEED, LearnError, learn_once
from swarm_engine.learn.simulate import simulate
from swarm_engine.learn.store import LearningStore
from tests.paths import SCENARIOS


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SWARM_HOME", str(tmp_path))
    return tmp_path


def _store(home) -> LearningStore:
    return LearningStore(home / ".swarm-engine" / "learning")


# ----------------------------------------------------------------------------- by hand


def test_prior_tables_by_hand():
    counts = PriorCounts(targets={"Read": {"a": [3, 1], "b": [0, 2]}, "Gone": {"a": [1, 0]}},
                         args={"Fix": {"x": [1, 0]}}, target_ids={"a": 2, "b": 0})
    t, v = prior_tables(counts, ["Read", "Fix"], ["y", "x"])
    assert t.shape == (2, 3) and v.shape == (2, 2)
    assert t[0, 2] == pytest.approx((3 + 1) / (4 + 2) - 0.5)      # rate(3, 1) - 0.5
    assert t[0, 0] == pytest.approx(1 / 4 - 0.5)                   # rate(0, 2) - 0.5
    assert t[0, 1] == 0.0 and not t[1].any()                       # unseen: neutral
    assert v[1, 1] == pytest.approx(2 / 3 - 0.5) and v[1, 0] == 0.0
    assert prior_tables(counts, ["Read"], [], weight=0.0) is None


def test_model_file_round_trips_and_rebuilds_the_selector():
    sc = load_scenario(SCENARIOS / "troubleshooting.toml")
    eps = [Episode(["CheckStatus", "ReadLogs"], [1, 1], [None, "db"], True, "ucb1", None, None, [None, 3])]
    m = model_from_stats(LearnStats.from_episodes(eps), sc.config.selector, key="k")
    again = OfflineModel.from_json(m.to_json())
    assert again == m
    sel = selector_from_model(sc.config.selector, again, sc.actions, [])
    assert sel.bonus.shape == ((len(sc.actions) + 1) ** 2 * len(sc.actions),)
    target, arg = sel.prior
    assert target[sc.actions.index("ReadLogs"), 3] > 0 and arg is None


def test_corrupt_model_is_reported_and_not_used(home, capsys):
    store = _store(home)
    path = store.offline_model_path("user_troubleshooting")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert main(["eval", str(SCENARIOS / "troubleshooting.toml"), "-n", "5", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupt offline model" in err and str(path) in err


# ----------------------------------------------------------------------------- the loop


@pytest.mark.parametrize("name", ["troubleshooting", "internal_diagnosis"])
def test_learning_then_learn_once_lowers_actions_on_held_out_seeds(home, capsys, name, tmp_path):
    scenario = SCENARIOS / f"{name}.toml"
    assert main(["eval", str(scenario), "-n", "30", "--learning", "-q"]) == 0
    store = _store(home)
    key = f"user_{name}"
    (session,) = store.sessions(key)
    meta = json.loads((session / "meta.json").read_text())
    assert meta["episodes"] == 30 and meta["learning_key"] == key and (session / "stats.json").is_file()
    assert store.load_stats(key).episodes == 30 and store.load_global().episodes == 30

    out = learn_once(str(scenario), store=store, train_runs=500, heldout_runs=1000)
    assert out.applied and out.version == 1
    h = out.validation["heldout"]
    assert h["new"]["mean_actions_to_success"] < h["in_use"]["mean_actions_to_success"]
    assert h["new"]["success_rate"] >= h["in_use"]["success_rate"] - 0.005

    # the next eval loads the model, says so, and the report names its version
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    seed = str(HELDOUT_SEED + 10_000)
    capsys.readouterr()
    assert main(["eval", str(scenario), "-n", "1000", "-s", seed, "--no-learned-model", "-o", str(before)]) == 0
    assert "Offline model loaded" not in capsys.readouterr().out
    assert main(["eval", str(scenario), "-n", "1000", "-s", seed, "-o", str(after)]) == 0
    assert "Offline model loaded: v1" in capsys.readouterr().out
    b, a = json.loads(before.read_text()), json.loads(after.read_text())
    assert a["learning"]["model_version"] == 1 and b["learning"]["model_version"] is None
    ok_b = [r["actions"] for r in b["runs"] if r["success"]]
    ok_a = [r["actions"] for r in a["runs"] if r["success"]]
    assert np.mean(ok_a) < np.mean(ok_b)
    assert a["summary"]["success_rate"] >= b["summary"]["success_rate"] - 0.01


def test_rollback_and_show(home, capsys):
    scenario = str(SCENARIOS / "internal_diagnosis.toml")
    assert main(["eval", scenario, "-n", "30", "--learning", "-q"]) == 0
    assert main(["learn", "once", scenario, "--train-runs", "100", "--heldout-runs", "100"]) == 0
    assert main(["eval", scenario, "-n", "30", "--learning", "-q"]) == 0
    assert main(["learn", "once", "user_internal_diagnosis", "--train-runs", "100", "--heldout-runs", "100"]) == 0
    store = _store(home)
    assert store.model_versions("user_internal_diagnosis") == [1, 2]
    capsys.readouterr()
    assert main(["learn", "show", "user_internal_diagnosis"]) == 0
    shown = capsys.readouterr().out
    assert "Recommended paths" in shown and "ParseConfig" in shown and "Learned priors" in shown
    assert main(["learn", "rollback", "user_internal_diagnosis"]) == 0
    assert store.load_model("user_internal_diagnosis").version == 1
    assert main(["learn", "rollback", "user_internal_diagnosis"]) == 0     # v1 -> the scenario's settings
    assert store.load_model("user_internal_diagnosis") is None
    assert "no model (the scenario's own settings)" in capsys.readouterr().out.replace("\n", " ")
    assert main(["learn", "rollback", "user_internal_diagnosis"]) == 1     # nothing in use
    assert "no offline model in use" in capsys.readouterr().err.replace("\n", " ")
    assert main(["learn", "rollback", "user_internal_diagnosis", "--to", "7"]) == 1
    assert "no model version 7 kept (kept: v1, v2)" in capsys.readouterr().err.replace("\n", " ")
    assert main(["learn", "rollback", "user_internal_diagnosis", "--to", "2"]) == 0
    assert store.load_model("user_internal_diagnosis").version == 2
    assert main(["learn", "status", "user_internal_diagnosis"]) == 0
    assert "60 (60 successful) in 2 sessions" in capsys.readouterr().out


def test_learn_once_without_episodes_is_one_clear_error(home, capsys):
    assert main(["learn", "once", str(SCENARIOS / "search.toml")]) == 1
    err = capsys.readouterr().err
    assert "no recorded episodes" in err and "Traceback" not in err


def test_online_updates_between_blocks_change_the_tables(home):
    from swarm_engine.eval.runner import run_eval
    from swarm_engine.learn.eval_session import LearningSession

    sc = load_scenario(SCENARIOS / "troubleshooting.toml")
    s = LearningSession.open(sc, learning=True)
    s.recorder.block = 100
    res = run_eval(s.scenario, 450, 7, recorder=s.recorder)
    assert s.recorder.updates == 5                 # before each of the 5 blocks
    info = s.close(res, 7)
    assert info["episodes"] == 450 and info["recorded"]
    # a run's result depends on the block boundaries and the store, not on wall time
    s2 = LearningSession.open(sc, learning=True, store=LearningStore(Path(os.environ["SWARM_HOME"]) / "other"))
    s2.recorder.block = 100
    res2 = run_eval(s2.scenario, 450, 7, recorder=s2.recorder, chunk_seconds=1e-6)
    assert (res2.actions == res.actions).all()


def test_concurrent_evals_lose_no_episode(home):
    env = dict(os.environ, SWARM_HOME=str(home))
    scenario = str(SCENARIOS / "troubleshooting.toml")
    procs = [subprocess.Popen([sys.executable, "-m", "swarm_engine.cli.main", "eval", scenario, "-n", str(50 + i),
                               "-s", str(1000 * i), "--learning", "-q"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    store = _store(home)
    assert len(store.sessions("user_troubleshooting")) == 4
    assert store.load_stats("user_troubleshooting").episodes == 50 + 51 + 52 + 53
    assert store.load_global().episodes == 206


def test_simulate_is_deterministic_and_bandit_only():
    sc = load_scenario(SCENARIOS / "troubleshooting.toml")
    a = simulate(sc, sc.config.selector, 5, 200)
    b = simulate(sc, sc.config.selector, 5, 200)
    assert a.success_rate == b.success_rate and a.mean_actions == b.mean_actions and a.runs == 200


def test_learn_once_on_unknown_key_names_it(home, capsys):
    with pytest.raises(LearnError, match="no recorded episodes"):
        learn_once("nobody_here", store=_store(home))


def test_optimal_params_analysis_by_hand():
    from swarm_engine.exploration.selectors import SelectorConfig
    from swarm_engine.learn.model import OptimalParamsModel

    eps = ([Episode(["A", "B"], [1, 0], [None, None], True, "greedy")] * 6
           + [Episode(["A", "B", "B", "B"], [1, 1, 1, 1], [None] * 4, False, "ucb1")] * 6)
    p = OptimalParamsModel.from_stats(LearnStats.from_episodes(eps), SelectorConfig(ucb1_c=0.7))
    assert p.strategy_config.initial_strategy == "greedy"            # 6/6 successes beat 0/6
    assert p.strategy_config.maturity_threshold == 5                 # (12 + 24) / 12 = 3 -> at least 5
    assert p.strategy_config.error_rate_threshold == round(6 / 36 + 0.1, 4)       # 6 failed of 36
    assert p.parameters.ucb1_c == 0.7


def test_in_process_llm_eval_gets_the_active_lora_adapter(home, capsys):
    from swarm_engine.learn.eval_session import LearningSession
    from swarm_engine.learn.lora.active import set_active

    sc = load_scenario(SCENARIOS / "llm" / "internal_diagnosis_llm.toml")
    assert sc.spec.llm.provider == "llama-cpp" and not sc.spec.llm.lora
    store = _store(home)
    key = "user_internal_diagnosis_llm"
    assert LearningSession.open(sc, store=store).adapter is None            # none trained yet
    adapter = store.scenario_dir(key) / "lora" / "v3" / "adapter.gguf"
    adapter.parent.mkdir(parents=True)
    adapter.write_bytes(b"GGUF")               # the pointer is what is checked here, not the file
    set_active(store, key, 3)
    s = LearningSession.open(sc, store=store, say=print)
    assert s.adapter == 3 and s.scenario.spec.llm.lora == [str(adapter.resolve())]
    assert "LoRA adapter loaded: v3" in capsys.readouterr().out
    assert LearningSession.open(sc, store=store, use_model=False).adapter is None   # --no-learned-model
    assert s.close(None, 42)["lora_version"] == 3


def test_learn_once_on_two_jobs_learns_the_same(home, capsys):
    """The simulated evals of the search run on threads (-j): the same
    candidates, the same numbers, the same model."""
    scenario = str(SCENARIOS / "troubleshooting.toml")
    assert main(["eval", scenario, "-n", "30", "--learning", "-q"]) == 0
    store = _store(home)

    def learned(jobs: int):
        out = learn_once(scenario, store=store, apply=False, train_runs=300, heldout_runs=600, jobs=jobs)
        model = json.loads(out.model.to_json())
        for part in ("train", "heldout"):              # the clock: each simulated eval's seconds
            for side in model["validation"][part].values():
                side.pop("seconds")
        model.pop("created")
        return model

    assert learned(1) == learned(2)
    capsys.readouterr()
    assert main(["learn", "once", scenario, "--train-runs", "100", "--heldout-runs", "100", "-j", "2",
                 "--dry-run"]) == 0
    assert "held-out seeds" in capsys.readouterr().out
