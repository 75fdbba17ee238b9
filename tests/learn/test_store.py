"""The learning store on disk: layout, atomic writes, concurrent writers in
several processes, corrupt files reported and skipped, the record_eval glue."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import swarm_engine
from swarm_engine.core.events import EventBatch
from swarm_engine.learn import Episode, LearningStore, LearnStats, ScoreModel, learning_key, record_eval

EP = Episode(["CheckStatus", "ReadLogs"], [1, 1], ["svc-0", None], True, "ucb1")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SWARM_HOME", str(tmp_path))
    return tmp_path


def _tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("sid, override, key", [
    ("user:troubleshooting:v2", None, "user_troubleshooting"),
    ("user:troubleshooting:V10", None, "user_troubleshooting"),
    ("troubleshooting", None, "troubleshooting"),
    ("v2", None, "v2"),
    ("a/b:../c:v1", None, "a_b_.._c"),
    ("user:troubleshooting:v2", "my key/x", "my_key_x"),
    ("", None, "default"),
])
def test_learning_key(sid, override, key):
    assert learning_key(sid, override) == key
    assert "/" not in learning_key(sid, override)


def test_layout_under_swarm_home(home):
    store = LearningStore()
    assert store.root == home / ".swarm-engine" / "learning"
    key = store.learning_key("user:troubleshooting:v2")
    stats = LearnStats.from_episodes([EP])
    s1 = store.write_session(key, {"runs": 1}, stats)
    s2 = store.write_session(key, {"runs": 2}, stats)
    store.merge_into_scenario(key, stats)
    store.merge_global(stats)
    d = home / ".swarm-engine" / "learning"
    assert (d / "global_stats.json").is_file()
    sd = d / "scenarios" / "user_troubleshooting"
    assert store.scenario_dir(key) == sd
    assert (sd / "stats.json").is_file()
    assert s1 != s2 and s1.parent == s2.parent == sd / "sessions"
    assert store.sessions(key) == sorted([s1, s2])
    assert str(os.getpid()) in s1.name
    for s in (s1, s2):
        assert sorted(p.name for p in s.iterdir()) == ["meta.json", "stats.json"]
    assert json.loads((s2 / "meta.json").read_text()) == {"runs": 2}
    assert store.load_session(s1) == ({"runs": 1}, stats)
    assert store.offline_model_path(key) == sd / "offline_model.json"
    assert store.lora_dir(key, 3) == sd / "lora" / "v3"
    assert store.load_stats(key) == stats == store.load_global()
    assert store.load_stats("nothing-here") == LearnStats()
    assert store.sessions("nothing-here") == []
    assert _tmp_files(d) == [] and store.problems == []
    # merging again adds
    assert store.merge_into_scenario(key, stats).success_episodes == 2
    assert store.load_stats(key) == stats.merge(stats)


_WORKER = textwrap.dedent("""
    import sys
    from swarm_engine.learn import Episode, LearningStore, LearnStats
    root, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = LearningStore(root)
    stats = LearnStats.from_episodes([Episode(["A", who], [1, 0], [None, who], who.endswith("0"), who)])
    for i in range(n):
        store.merge_into_scenario("shared", stats)
        store.merge_global(stats)
        if i % 5 == 0:
            store.write_session("shared", {"who": who, "i": i}, stats)
    assert not store.problems, store.problems
""")


def test_concurrent_processes_lose_nothing(tmp_path):
    root = tmp_path / "learning"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(swarm_engine.__file__).resolve().parent.parent)]
                                        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    P, N = 4, 25
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(root), f"w{i}", str(N)], env=env,
                              stderr=subprocess.PIPE, text=True) for i in range(P)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    store = LearningStore(root)
    for total in (store.load_stats("shared"), store.load_global()):
        assert total.episodes == P * N
        assert total.success_episodes == N                       # only w0's episodes succeed
        assert total.transitions["START->A"] == [N, (P - 1) * N]
        for i in range(P):
            assert total.strategies[f"w{i}"] == [N, N if i == 0 else 0, 2 * N]
            assert total.action_targets[f"w{i}"] == {f"w{i}": [0, N]}
    assert len(store.sessions("shared")) == P * N // 5
    assert _tmp_files(root) == []


def test_corrupt_files_are_reported_and_skipped(tmp_path, caplog):
    seen: list[str] = []
    store = LearningStore(tmp_path, on_problem=seen.append)
    stats = LearnStats.from_episodes([EP])
    path = store.stats_path("k")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="swarm_engine.learn"):
        assert store.load_stats("k") == LearnStats()
    assert len(store.problems) == 1 and seen == store.problems
    assert str(path) in store.problems[0] and "corrupt" in store.problems[0]
    assert "\n" not in store.problems[0]
    assert any("corrupt" in r.getMessage() for r in caplog.records)
    aside = list(path.parent.glob("stats.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{not json"
    assert not path.exists()
    # a well-formed document of the wrong shape is corrupt too; merging goes on from empty
    path.write_text(json.dumps({"transitions": {"A->B": "many"}}))
    assert store.merge_into_scenario("k", stats) == stats
    assert len(store.problems) == 2
    assert store.load_stats("k") == stats
    # global file and session files likewise
    store.global_path.write_text("[1, 2")
    assert store.merge_global(stats) == stats
    s = store.write_session("k", {"a": 1}, stats)
    (s / "meta.json").write_text("{")
    (s / "stats.json").write_bytes(b"\x00\xff")
    assert store.load_session(s) == ({}, LearnStats())
    assert len(store.problems) == 5


def test_record_eval_glue(home, troubleshooting):
    from swarm_engine.core import make_kernel

    sc = troubleshooting
    R = 6
    seeds = np.arange(R, dtype=np.uint64) + np.uint64(42)
    k = make_kernel(sc.rules, sc.binding, sc.config, record_events=True, event_capacity=1 << 16)
    A = len(sc.actions)
    out = dict(success=np.zeros(R, np.uint8), verdict=np.zeros(R, np.int8), ticks=np.zeros(R, np.int64),
               actions=np.zeros(R, np.int64), failed=np.zeros(R, np.int64), wall=np.zeros(R),
               by_action=np.zeros((R, A), np.int64), done=np.zeros(R, np.uint8))
    chunks, r, resume = [], 0, False
    from swarm_engine._native import _kernel
    while r < R:
        r, status = k.run_batch(seeds, r, resume, out["success"], out["verdict"], out["ticks"], out["actions"],
                                out["failed"], out["wall"], out["by_action"], 10.0, out["done"])
        if k.n_events:
            chunks.append(k.take_events())
        resume = status == _kernel.ST_NEED_ROOM
        if resume:
            k.make_room()
    ev = EventBatch.from_columns({c: np.concatenate([ch[c] for ch in chunks]) for c in chunks[0]})
    success = out["success"].astype(bool)
    store = LearningStore()
    session = record_eval(ev, sc, success, "ucb1", store, meta={"seed": 42})
    key = learning_key(sc.id)
    assert session.parent == store.scenario_dir(key) / "sessions"
    meta = json.loads((session / "meta.json").read_text())
    assert meta["episodes"] == R and meta["seed"] == 42 and meta["learning_key"] == key
    stats = store.load_stats(key)
    assert stats == store.load_global() == store.load_session(session)[1]
    assert stats.episodes == R and stats.success_episodes == int(success.sum())
    assert sum(v[0] + v[1] for v in stats.actions.values()) == len(ev) == int(out["actions"].sum())
    assert stats.strategies["ucb1"] == [R, int(success.sum()), len(ev)]
    # the learned model gives a kernel-shaped bonus table
    t = ScoreModel.from_stats(stats).bonus_table(sc.actions)
    assert t.shape == ((A + 1) ** 2 * A,)
    k.set_bonus(t)
