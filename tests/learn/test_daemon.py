"""The learning daemon: it notices sessions, learns when its trigger fires,
records everything in daemon.json, serves the active adapter, and stops
cleanly on a signal.

Most tests run the daemon in a thread with a stand-in learner (the daemon's
job is the when and the bookkeeping; offline learning has its own tests);
the end-to-end test runs ``swarm learn daemon`` as a subprocess on a
temporary SWARM_HOME with the real learner and real eval sessions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from swarm_engine.errors import ConfigError, LlmPermanentError, StoreError
from swarm_engine.eval.report import write_json_atomic
from swarm_engine.learn import LearningStore, LearnStats
from swarm_engine.learn.daemon import DaemonConfig, LearningDaemon, read_status, resolve_target, trigger_from_settings
from tests.conftest import signal_and_wait, stop_process, wait_for

KEY = "demo"


class FakeLearner:
    """Stands in for learn_once: counts calls, applies a new version each time (or fails)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.fail = fail

    def __call__(self, target, *, store, apply=True):
        self.calls.append(target)
        if self.fail:
            raise StoreError("validation runs failed: no scenario for this key")
        return SimpleNamespace(applied=True, version=len(self.calls), lines=[f"v{len(self.calls)}: better"],
                               validation={"current": 0.5, "new": 0.75})


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path) -> LearningStore:
    s = LearningStore(tmp_path / "learning")
    s.scenario_dir(KEY).mkdir(parents=True)
    return s


def session(store: LearningStore, episodes: int, successes: int) -> Path:
    return store.write_session(KEY, {"episodes": episodes, "successes": successes, "learning_key": KEY},
                               LearnStats())


class Running:
    """A daemon in a thread; stopped (and joined) on exit."""

    def __init__(self, daemon: LearningDaemon) -> None:
        self.daemon = daemon
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.daemon.run()
        except BaseException as exc:          # handed to the test
            self.error = exc

    def __enter__(self) -> LearningDaemon:
        self.thread.start()
        wait_for(lambda: self.error or (read_status(self.daemon.store, self.daemon.key) or {}).get("state")
                 == "watching", "the daemon to start")
        if self.error:
            raise self.error
        return self.daemon

    def __exit__(self, *exc) -> None:
        self.daemon.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error and not exc[0]:
            raise self.error


def status(store: LearningStore) -> dict:
    return json.loads((store.scenario_dir(KEY) / "daemon.json").read_text())


@pytest.mark.parametrize("watcher", ["watchfiles", "polling"])
def test_learns_when_the_trigger_fires_and_records_it(store, watcher):
    learner = FakeLearner()
    session(store, 4, 2)                         # before the daemon: not learned yet, so it counts
    daemon = LearningDaemon(KEY, store=store, learn=learner,
                            config=DaemonConfig(trigger="10 episodes", check_seconds=0.1, watcher=watcher))
    with Running(daemon):
        st = status(store)
        assert st["state"] == "watching" and st["pid"] == os.getpid() and st["watcher"] == watcher
        assert st["episodes_since_learn"] == 4 and st["next"]["parts"][0] == {
            "kind": "episodes", "have": 4, "need": 10, "fires": False}
        session(store, 5, 1)
        wait_for(lambda: status(store)["episodes_since_learn"] == 9, "the second session to count")
        assert learner.calls == []
        last = session(store, 1, 1)
        wait_for(lambda: status(store)["learns"] == 1, "a learn")
        st = status(store)
        assert learner.calls == [KEY]
        assert st["last_trigger"]["reason"] == "10 new episodes (>= 10)"
        assert st["last_result"]["applied"] is True and st["last_result"]["version"] == 1
        assert st["last_result"]["lines"] == ["v1: better"] and st["last_result"]["error"] is None
        assert st["last_result"]["validation"] == {"current": 0.5, "new": 0.75}
        assert st["learned_through"] == last.name and st["episodes_since_learn"] == 0
        assert st["episodes_seen"] == 10 and st["sessions_seen"] == 3
    st = status(store)
    assert st["state"] == "stopped" and st["exit"] == "stopped" and st["stopped"]


def test_watchfiles_wakes_it_without_waiting_for_a_check(store):
    learner = FakeLearner()
    # checks every 10 minutes: only a file event can make it learn within the test
    with Running(LearningDaemon(KEY, store=store, learn=learner,
                                config=DaemonConfig(trigger="1 episode", check_seconds=600,
                                                    watcher="watchfiles"))):
        # a session written in the instant before the watch starts waits for the next check
        # (600 s here), so write until one lands after it: any learn now came from an event
        for _ in range(10):
            session(store, 1, 1)
            with contextlib.suppress(AssertionError):
                wait_for(lambda: learner.calls, "a learn woken by the new session", timeout=3)
                break
        assert learner.calls


def test_without_watchfiles_it_polls(store, monkeypatch):
    monkeypatch.setitem(sys.modules, "watchfiles", None)        # import watchfiles -> ImportError
    learner = FakeLearner()
    with Running(LearningDaemon(KEY, store=store, learn=learner,
                                config=DaemonConfig(trigger="1 episode", check_seconds=0.1))):
        assert status(store)["watcher"] == "polling"
        session(store, 1, 1)
        wait_for(lambda: learner.calls, "a learn")
    with pytest.raises(ConfigError, match="watchfiles package is not installed"):
        LearningDaemon(KEY, store=store, learn=learner, config=DaemonConfig(watcher="watchfiles")).run()


def test_a_restart_does_not_learn_the_same_sessions_again(store):
    learner = FakeLearner()
    session(store, 10, 5)
    config = DaemonConfig(trigger="10 episodes", check_seconds=0.1)
    with Running(LearningDaemon(KEY, store=store, learn=learner, config=config)):
        wait_for(lambda: learner.calls, "the first learn")
    with Running(LearningDaemon(KEY, store=store, learn=learner, config=config)) as d:
        assert d.tracker.new_episodes == 0 and d.episodes_seen == 10
        session(store, 10, 5)
        wait_for(lambda: len(learner.calls) == 2, "a learn of the new session only")


def test_sessions_older_than_the_model_count_as_learned(store):
    written = session(store, 50, 5)
    model = store.offline_model_path(KEY)
    model.write_text("{}")
    # the model must be newer than the session's name (its UTC write time): say so instead of sleeping
    t = datetime.strptime(written.name.split("-")[0], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC).timestamp() + 1
    os.utime(model, (t, t))
    daemon = LearningDaemon(KEY, store=store, learn=FakeLearner(),
                            config=DaemonConfig(trigger="10 episodes", check_seconds=0.1))
    with Running(daemon):
        assert daemon.tracker.new_episodes == 0 and daemon.episodes_seen == 50


def test_a_session_counts_once_its_stats_are_written(store):
    d = store.scenario_dir(KEY) / "sessions" / "20990101T000000.000000Z-1"
    d.mkdir(parents=True)
    (d / "meta.json").write_text(json.dumps({"episodes": 7, "successes": 1}))
    daemon = LearningDaemon(KEY, store=store, learn=FakeLearner(), config=DaemonConfig(trigger="manual"))
    assert daemon.scan() == 0 and daemon.pending_sessions == {d.name}
    write_json_atomic(d / "stats.json", LearnStats())
    assert daemon.scan() == 7 and daemon.scan() == 0


def test_one_daemon_per_key(store):
    config = DaemonConfig(trigger="manual", check_seconds=0.1)
    with Running(LearningDaemon(KEY, store=store, learn=FakeLearner(), config=config)):
        with pytest.raises(StoreError, match=f"a learning daemon already runs for '{KEY}' \\(pid {os.getpid()}\\)"):
            LearningDaemon(KEY, store=store, learn=FakeLearner(), config=config).run()
        assert status(store)["state"] == "watching"     # the loser did not touch the winner's status


def test_a_failed_learn_is_recorded_and_watching_goes_on(store):
    learner = FakeLearner(fail=True)
    config = DaemonConfig(trigger="5 episodes", check_seconds=0.1)
    with Running(LearningDaemon(KEY, store=store, learn=learner, config=config)) as d:
        session(store, 5, 0)
        wait_for(lambda: status(store)["learns"] == 1, "the failed learn")
        st = status(store)
        assert st["state"] == "watching" and st["last_result"]["applied"] is False
        assert st["last_result"]["error"] == "validation runs failed: no scenario for this key"
        assert d.tracker.new_episodes == 0                # no retry loop on the same data
        learner.fail = False
        session(store, 5, 5)
        wait_for(lambda: status(store)["learns"] == 2, "the next learn")
        assert status(store)["last_result"]["applied"] is True


class FakeTrainer:
    """Stands in for learn_lora: activated, then held back (worse than the base), then no decisions."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, key, *, store):
        self.calls.append(key)
        n = len(self.calls)
        if n == 3:
            raise ConfigError(f"no recorded LLM decisions for '{key}'")
        base, adapter = (0.25, 0.75) if n == 1 else (0.5, 0.25)
        problems = [] if n == 1 else [f"adapter v{n} is not activated: held-out accuracy 25% is below 50%"]
        return SimpleNamespace(version=n, activated=n == 1, problems=problems,
                               accuracy={"base": {"accuracy": base}, "adapter": {"accuracy": adapter}})


def test_lora_is_trained_after_each_learn_when_asked(store):
    learner, trainer, lines = FakeLearner(), FakeTrainer(), []
    config = DaemonConfig(trigger="5 episodes", check_seconds=0.1, lora=True)
    with Running(LearningDaemon(KEY, store=store, learn=learner, config=config, train_lora=trainer,
                                on_event=lines.append)):
        for n in (1, 2, 3):
            session(store, 5, 5)
            wait_for(lambda: status(store)["learns"] == n and "lora" in status(store)["last_result"],
                     f"learn {n} and its adapter")
            st = status(store)["last_result"]
            assert learner.calls == [KEY] * n and trainer.calls == [KEY] * n     # after the offline learn
            assert st["applied"] is True and st["error"] is None                  # the model's result stands
            if n == 1:
                assert st["lora"]["version"] == 1 and st["lora"]["activated"] is True
                assert st["lora"]["accuracy"] == {"base": 0.25, "adapter": 0.75}
            elif n == 2:
                assert st["lora"]["version"] == 2 and st["lora"]["activated"] is False
                assert "not activated" in st["lora"]["problems"][0]
            else:
                assert st["lora"]["error"] == f"no recorded LLM decisions for '{KEY}'"
        assert status(store)["state"] == "watching"
    assert "LoRA adapter v1 activated; held-out accuracy base 25% -> adapter 75%" in lines
    assert any(x.startswith("LoRA adapter v2 kept inactive") for x in lines)
    assert f"LoRA adapter not trained: no recorded LLM decisions for '{KEY}'" in lines


def test_without_lora_no_adapter_is_trained(store):
    trainer = FakeTrainer()
    config = DaemonConfig(trigger="5 episodes", check_seconds=0.1)
    with Running(LearningDaemon(KEY, store=store, learn=FakeLearner(), config=config, train_lora=trainer)):
        session(store, 5, 5)
        wait_for(lambda: status(store)["learns"] == 1, "a learn")
        assert trainer.calls == [] and "lora" not in status(store)["last_result"]


def test_manual_learns_only_on_request(store):
    learner = FakeLearner()
    config = DaemonConfig(trigger="manual", check_seconds=0.1)
    with Running(LearningDaemon(KEY, store=store, learn=learner, config=config)) as d:
        session(store, 500, 0)
        wait_for(lambda: status(store)["episodes_since_learn"] == 500, "the session")
        assert learner.calls == []
        assert d.request_learn()
        wait_for(lambda: learner.calls, "the requested learn")
        assert status(store)["last_trigger"]["reason"] == "manual request"


def test_never_refuses_requests(store):
    daemon = LearningDaemon(KEY, store=store, learn=FakeLearner(), config=DaemonConfig(trigger="never"))
    assert daemon.request_learn() is False


def test_learn_now_at_start(store):
    learner = FakeLearner()
    session(store, 1, 1)
    config = DaemonConfig(trigger="manual", check_seconds=0.1, learn_now=True)
    with Running(LearningDaemon(KEY, store=store, learn=learner, config=config)):
        wait_for(lambda: learner.calls, "the --now learn")


def test_interval_trigger_runs_on_the_injected_clock(store):
    learner, clock = FakeLearner(), FakeClock()
    config = DaemonConfig(trigger="1h", check_seconds=0.05)
    with Running(LearningDaemon(KEY, store=store, learn=learner, config=config, clock=clock)) as d:
        session(store, 3, 1)
        wait_for(lambda: d.tracker.new_episodes == 3, "the session")
        clock.t = 3599.0
        wait_for(lambda: status(store)["next"]["due_in_s"] == 1.0, "a check at the new time")
        assert learner.calls == []
        clock.t = 3600.0
        wait_for(lambda: learner.calls, "the hourly learn")
        assert "1h since the last learn" in status(store)["last_trigger"]["reason"]


class FakePair:
    """Stands in for BlueGreen: records starts and switches."""

    def __init__(self, fail_versions=()) -> None:
        self.version = self.adapter = None
        self.log: list[tuple] = []
        self.fail_versions = set(fail_versions)
        self.endpoint = "http://127.0.0.1:1"

    def start(self, adapter, *, version=None):
        self.log.append(("start", version))
        self.version, self.adapter = version, adapter

    def switch(self, adapter, *, version=None):
        if version in self.fail_versions:
            raise LlmPermanentError(f"blue-green: green (v{version}) failed its sanity check: HTTP 500")
        self.log.append(("switch", version))
        self.version, self.adapter = version, adapter
        return SimpleNamespace(from_color="blue", to_color="green", drain_seconds=0.0)

    def stop(self):
        self.log.append(("stop",))

    def status(self):
        return {"endpoint": self.endpoint, "state": "active", "active_color": "blue",
                "adapter_version": self.version, "adapter": self.adapter}


def point(store: LearningStore, version: int) -> None:
    path = store.scenario_dir(KEY) / "lora" / f"v{version}" / "adapter.gguf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF")
    write_json_atomic(store.scenario_dir(KEY) / "lora" / "active.json", {"version": version, "path": str(path)})


@pytest.mark.parametrize("watcher", ["watchfiles", "polling"])
def test_serving_follows_the_active_adapter_pointer(store, watcher):
    pair = FakePair(fail_versions={3})
    point(store, 1)
    config = DaemonConfig(trigger="manual", check_seconds=0.1, serve=True, watcher=watcher)
    with Running(LearningDaemon(KEY, store=store, learn=FakeLearner(), config=config,
                                bluegreen=lambda cfg, on_event: pair)):
        assert pair.log == [("start", 1)]
        assert status(store)["serving"]["adapter_version"] == 1
        point(store, 2)
        wait_for(lambda: status(store)["serving"]["adapter_version"] == 2, "the switch to v2")
        point(store, 3)                                   # a bad adapter: v2 keeps serving
        wait_for(lambda: (status(store)["serving"]["last_error"] or "").endswith("HTTP 500"), "the failure")
        assert pair.version == 2
        point(store, 4)
        wait_for(lambda: status(store)["serving"]["adapter_version"] == 4, "the switch to v4")
        assert status(store)["serving"]["last_error"] is None
    assert pair.log == [("start", 1), ("switch", 2), ("switch", 4), ("stop",)]


def test_resolve_target(store, tmp_path, troubleshooting_path):
    assert resolve_target(KEY, store) == (KEY, KEY)
    key, target = resolve_target(str(troubleshooting_path), store)
    assert key == "user_troubleshooting" and target == str(troubleshooting_path.resolve())
    with pytest.raises(ConfigError, match=f"neither a scenario file nor a learning key.*known: {KEY}"):
        resolve_target("nosuch", store)
    with pytest.raises(ConfigError, match="scenario file not found"):
        resolve_target(str(tmp_path / "missing.toml"), store)
    assert resolve_target(str(troubleshooting_path), store, "mine")[0] == "mine"
    with pytest.raises(ConfigError, match="--learning-key other: goes with a scenario file"):
        resolve_target(KEY, store, "other")


@pytest.mark.parametrize("values, flags, spec", [
    ({}, {}, "100 episodes or 60m"),
    ({"daemon_episodes": 20, "daemon_minutes": 0}, {}, "20 episodes"),
    ({"daemon_trigger": "quality_drop 0.1 and 50 episodes"}, {}, "quality_drop 0.1 and 50 episodes"),
    ({"daemon_trigger": "always"}, {"episodes": 5}, "5 episodes or 60m"),
    ({}, {"episodes": 0, "minutes": 0}, "manual"),
    ({"daemon_trigger": "always"}, {"spec": "never"}, "never"),
])
def test_trigger_from_settings(values, flags, spec):
    assert trigger_from_settings(values, **flags) == spec


# --- end to end: the CLI as a subprocess, real eval sessions, the real learner --------------------

def _swarm(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "swarm_engine.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=300, **kw)


def test_cli_bad_target_is_one_line(tmp_path, subprocess_env):
    env = dict(subprocess_env, SWARM_HOME=str(tmp_path))
    r = _swarm(["learn", "daemon", "nosuchkey"], env)
    assert r.returncode == 1
    assert r.stderr.strip().startswith("error: nosuchkey: neither a scenario file nor a learning key")
    assert "Traceback" not in r.stderr
    r = _swarm(["learn", "daemon", "x", "--trigger", "sometimes"], env)
    assert r.returncode == 1 and 'cannot read "sometimes"' in r.stderr and "Traceback" not in r.stderr
    r = _swarm(["learn", "daemon", "x", "--port", "9000"], env)
    assert r.returncode == 1 and "need --serve" in r.stderr and "Traceback" not in r.stderr
    r = _swarm(["learn", "daemon", "x", "--lora-steps", "9"], env)
    assert r.returncode == 1 and "need --lora" in r.stderr and "Traceback" not in r.stderr


def test_sigint_stops_cleanly_and_sigusr1_learns(tmp_path, subprocess_env):
    env = dict(subprocess_env, SWARM_HOME=str(tmp_path))
    store = LearningStore(tmp_path / ".swarm-engine" / "learning")
    store.scenario_dir(KEY).mkdir(parents=True)
    daemon = subprocess.Popen([sys.executable, "-m", "swarm_engine.cli.main", "learn", "daemon", KEY,
                               "--trigger", "manual", "--check-seconds", "0.2", "--polling"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (read_status(store, KEY) or {}).get("state") == "watching", "watching")
        daemon.send_signal(signal.SIGUSR1)
        # no episodes and no scenario: the learn fails, is recorded, and the daemon goes on
        st = wait_for(lambda: (s := read_status(store, KEY)) and s["learns"] == 1 and s, "the requested learn")
        assert st["last_trigger"]["reason"] == "manual request" and "no recorded episodes" in st["last_result"]["error"]
        assert st["watcher"] == "polling"
        out, err = signal_and_wait(daemon, signal.SIGINT)
    finally:
        stop_process(daemon)
    assert daemon.returncode == 0 and "Traceback" not in err, err
    assert read_status(store, KEY)["state"] == "stopped"


def test_daemon_end_to_end_learns_swaps_and_stops_on_sigterm(tmp_path, subprocess_env, troubleshooting_path):
    env = dict(subprocess_env, SWARM_HOME=str(tmp_path))
    home_store = LearningStore(tmp_path / ".swarm-engine" / "learning")
    key = "user_troubleshooting"

    def record(runs: int, seed: int) -> None:             # sessions as swarm eval --learning writes them
        r = _swarm(["eval", str(troubleshooting_path), "-n", str(runs), "-s", str(seed), "-q", "--learning"], env)
        assert r.returncode == 0, r.stderr

    def learned(n: int) -> dict:
        return wait_for(lambda: (s := read_status(home_store, key)) and s["learns"] == n and
                        s["state"] == "watching" and s, f"learn {n}", timeout=240)

    record(40, 42)
    daemon = subprocess.Popen([sys.executable, "-m", "swarm_engine.cli.main", "learn", "daemon",
                               str(troubleshooting_path), "--trigger", "60 episodes", "--check-seconds", "0.2",
                               "--train-runs", "200", "--heldout-runs", "400"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (read_status(home_store, key) or {}).get("state") == "watching", "watching")
        st = read_status(home_store, key)
        assert st["pid"] == daemon.pid and st["alive"] and st["episodes_since_learn"] == 40
        assert st["learns"] == 0 and st["trigger"] == "60 episodes"
        assert home_store.load_model(key) is None
        record(20, 1000)
        st = learned(1)
        result = st["last_result"]
        assert "60 new episodes" in st["last_trigger"]["reason"]
        # validated against the scenario's own settings on held-out seeds, then swapped in
        assert result["error"] is None and result["applied"] is True and result["version"] == 1, result
        assert result["validation"]["accepted"] is True and result["validation"]["heldout_runs"] == 400
        assert home_store.load_model(key).version == 1 and any("applied as version 1" in x for x in result["lines"])
        record(60, 2000)
        st = learned(2)
        result = st["last_result"]
        assert result["error"] is None and st["episodes_seen"] == 120 and st["episodes_since_learn"] == 0
        # a second model is applied only when not worse; either way the first is kept for rollback
        versions = home_store.model_versions(key)
        assert versions == ([1, 2] if result["applied"] else [1]), (versions, result)
        out, err = signal_and_wait(daemon, signal.SIGTERM)
    finally:
        stop_process(daemon)
    assert daemon.returncode == 0, err
    assert "Traceback" not in err
    st = read_status(home_store, key)
    assert st["state"] == "stopped" and st["exit"] == "stopped" and not st["alive"]
    assert "SIGTERM: stopping" in out and "applied model v1" in out
