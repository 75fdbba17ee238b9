"""The Swarm: stepping, hooks, subscribers, async sources, state, pacing, determinism."""

from __future__ import annotations

import time

import numpy as np
import pytest

from swarm_engine import (
    Assignments,
    ConfigError,
    EventBatch,
    Hook,
    RunResult,
    SharedState,
    Swarm,
    SwarmConfig,
    Verdict,
    WorkerStates,
    load_scenario,
)
from swarm_engine._native import _kernel
from swarm_engine.core import ManagementStrategy, TerminationConfig
from swarm_engine.core.state import WorkResult
from swarm_engine.exploration import SelectorConfig
from tests.conftest import assert_same_columns, event_columns
from tests.paths import DATA


def assert_same_events(a: EventBatch, b: EventBatch) -> None:
    assert_same_columns(event_columns(a), event_columns(b))


@pytest.fixture
def busy(troubleshooting):
    """Troubleshooting with several workers, errors and red herrings: many events per tick."""
    return load_scenario(troubleshooting.path, overrides={
        "agents": {"workers": 3}, "environment": {"params": {"services": 8, "error_rate": 0.2, "noise": 0.6}},
        "app_config": {"termination": {"strategy": "all_complete"}}})


@pytest.fixture
def grid():
    """A grid that does not finish within a few ticks."""
    return load_scenario(DATA / "variants.toml", overrides={"environment": {"params": {"goal": -1,
                                                                                      "width": 60}}})


class Recorder(Hook):
    """Overrides all four levels and records what it saw."""

    def __init__(self) -> None:
        self.ticks: list[int] = []
        self.manage: list[tuple[int, Assignments, np.ndarray]] = []
        self.worker: list[np.ndarray] = []
        self.action: list[EventBatch] = []

    def on_tick(self, swarm, tick):
        self.ticks.append(tick)

    def on_manage(self, swarm, assignments):
        nodes = swarm.workers.node
        self.manage.append((swarm.tick, assignments, swarm.graph()["state"][nodes[nodes >= 0]]))

    def on_worker(self, swarm, results):
        self.worker.append(results)

    def on_action(self, swarm, events):
        self.action.append(events)


class TickOnly(Hook):
    def __init__(self) -> None:
        self.n = 0

    def on_tick(self, swarm, tick):
        self.n += 1


# ----------------------------------------------------------------------------- stepping


class TestStepping:
    def test_step_by_step_equals_run(self, busy):
        a = busy.swarm(seed=3, record_events=True)
        ra = a.run()
        b = busy.swarm(seed=3, record_events=True)
        while not b.done:
            assert b.step(1) == 1
        rb = b.result()
        assert (ra.verdict, ra.ticks, ra.actions, ra.failed_actions) == (rb.verdict, rb.ticks, rb.actions,
                                                                         rb.failed_actions)
        assert_same_events(a.events(), b.events())

    def test_per_tick_path_equals_fused_path(self, busy):
        # a hook forces the Python tick loop; without it many ticks run per native call
        fused = busy.swarm(seed=9, record_events=True)
        fused.run()
        per_tick = busy.swarm(seed=9, record_events=True)
        per_tick.add_hook(TickOnly())
        per_tick.run()
        assert per_tick.tick == fused.tick
        assert_same_events(fused.events(), per_tick.events())

    def test_step_returns_ticks_run(self, grid):
        sw = grid.swarm(seed=1)
        assert sw.step(5) == 5 and sw.tick == 5
        assert sw.step(0) == 0
        sw.run()
        assert sw.done
        assert sw.step(10) == 0

    def test_run_result(self, troubleshooting):
        sw = troubleshooting.swarm(seed=7)
        res = sw.run()
        assert isinstance(res, RunResult)
        assert res.seed == 7 and res.success and res.verdict == Verdict.SUCCESS
        assert res.ticks == sw.tick and res.actions == sw.state.total_actions
        assert res.wall_seconds >= 0.0
        assert res == sw.result()

    def test_reset_starts_over(self, busy):
        sw = busy.swarm(seed=4, record_events=True)
        sw.run()
        first = sw.events()
        sw.shared["note"] = 1
        sw.reset(4)
        assert (sw.tick, sw.verdict, sw.shared) == (0, Verdict.RUNNING, {})
        sw.run()
        assert_same_events(first, sw.events())

    @pytest.mark.parametrize("seed", [-1, 2 ** 64])
    def test_seed_range(self, troubleshooting, seed):
        with pytest.raises(ConfigError, match=r"seed must be in \[0, 2\^64\), got "):
            troubleshooting.swarm(seed=seed)

    def test_large_seed(self, troubleshooting):
        assert troubleshooting.swarm(seed=2 ** 64 - 1).run().verdict != Verdict.RUNNING

    def test_events_need_recording(self, troubleshooting):
        sw = troubleshooting.swarm(seed=1)
        sw.run()
        with pytest.raises(ValueError, match="record_events=True"):
            sw.events()

    def test_swarm_from_compiled_rules(self, troubleshooting):
        rules = troubleshooting.graph.compile()
        sw = Swarm(rules, troubleshooting.binding, troubleshooting.config, seed=7,
                   action_names=troubleshooting.actions)
        assert sw.action_names == troubleshooting.actions
        other = Swarm(troubleshooting.graph, troubleshooting.binding, troubleshooting.config, seed=7)
        a, b = sw.run(), other.run()
        assert (a.verdict, a.ticks, a.actions) == (b.verdict, b.ticks, b.actions)
        assert sw.stats() == other.stats()


# ----------------------------------------------------------------------------- hooks, subscribers, sources


class TestHooks:
    def test_four_levels_once_per_tick(self, busy):
        sw = busy.swarm(seed=2, record_events=True)
        rec = Recorder()
        sw.add_hook(rec)
        res = sw.run()
        T = res.ticks
        assert rec.ticks == list(range(T))
        assert len(rec.manage) == len(rec.worker) == len(rec.action) == T
        assert sum(len(a) for _, a, _ in rec.manage) == res.actions
        for tick, (manage_tick, assignments, _), results, events in zip(range(T), rec.manage, rec.worker,
                                                                      rec.action):
            assert manage_tick == tick
            assert isinstance(assignments, Assignments) and isinstance(events, EventBatch)
            assert len(assignments) == len(events)
            assert (events.tick == tick).all()
            np.testing.assert_array_equal(assignments.workers, events.worker)
            np.testing.assert_array_equal(assignments.actions, events.action)
            np.testing.assert_array_equal(assignments.targets, events.target)
            assert results.shape == (3,)
        assert_same_events(sw.events(), EventBatch.from_columns(
            {k: np.concatenate([event_columns(e)[k] for e in rec.action]) for k in event_columns(rec.action[0])}))

    def test_on_manage_sees_the_plan_before_the_environment(self, busy):
        sw = busy.swarm(seed=2)
        rec = Recorder()
        sw.add_hook(rec)
        sw.run()
        assert sum(len(states) for _, _, states in rec.manage) > 0
        for _, _, states in rec.manage:
            assert (states == _kernel.NODE_ASSIGNED).all()

    def test_worker_results_are_work_results(self, busy):
        sw = busy.swarm(seed=2)
        rec = Recorder()
        sw.add_hook(rec)
        sw.run()
        codes = {int(c) for r in rec.worker for c in r}
        assert codes <= {int(w) for w in WorkResult}
        assert WorkResult.ACTED in codes

    def test_only_overridden_levels(self):
        assert TickOnly.overrides("on_tick")
        assert not TickOnly.overrides("on_manage")
        assert not TickOnly.overrides("on_action")
        assert all(Recorder.overrides(m) for m in ("on_tick", "on_manage", "on_worker", "on_action"))

    def test_several_hooks_in_order(self, troubleshooting):
        calls = []

        class Named(Hook):
            def __init__(self, name):
                self.name = name

            def on_tick(self, swarm, tick):
                calls.append((tick, self.name))

        sw = troubleshooting.swarm(seed=1)
        sw.add_hook(Named("a"))
        sw.add_hook(Named("b"))
        sw.step(2)
        assert calls == [(0, "a"), (0, "b"), (1, "a"), (1, "b")]

    @pytest.mark.parametrize("at_tick", [0, 2])
    def test_stop_from_a_hook(self, grid, at_tick):
        class Stopper(Hook):
            def on_tick(self, swarm, tick):
                if tick == at_tick:
                    swarm.stop()

        sw = grid.swarm(seed=1)
        sw.add_hook(Stopper())
        res = sw.run()
        assert res.verdict == Verdict.STOPPED and not res.success
        assert res.ticks == at_tick + 1
        assert sw.state.verdict.reason == "stopped"

    def test_stop_from_outside(self, grid):
        sw = grid.swarm(seed=1)
        sw.step(3)
        sw.stop()
        assert sw.done and sw.verdict == Verdict.STOPPED
        assert sw.step(5) == 0


class TestSubscribers:
    def test_one_batch_per_tick(self, busy):
        batches: list[EventBatch] = []

        class Sub:
            def on_events(self, events):
                batches.append(events)

        sw = busy.swarm(seed=6, record_events=True)
        sw.subscribe(Sub())
        res = sw.run()
        assert len(batches) == res.ticks
        for tick, b in enumerate(batches):
            assert isinstance(b, EventBatch)
            assert (b.tick == tick).all()
        assert sum(len(b) for b in batches) == res.actions
        np.testing.assert_array_equal(np.concatenate([b.node for b in batches]), sw.events().node)

    def test_event_rows_and_ids(self, troubleshooting):
        batches = []

        class Sub:
            def on_events(self, events):
                batches.append(events)

        sw = troubleshooting.swarm(seed=1)
        sw.subscribe(Sub())
        sw.run()
        rows = [r for b in batches for r in b.rows()]
        assert rows[0]["tick"] == 0 and rows[0]["action"] == 0 and rows[0]["outcome"] in ("ok", "error")
        ids = [r["id"] for r in rows]
        assert len(set(ids)) == len(ids)
        assert all(r["id"] == (r["tick"] << 24) | (r["worker"] << 8) for r in rows)


class TestAsyncSources:
    def test_collect_once_per_tick_before_manage(self, troubleshooting):
        seen = []

        class Source:
            def collect(self, swarm):
                seen.append((swarm.tick, swarm.kernel.n_assigned))
                swarm.shared["last"] = swarm.tick

        sw = troubleshooting.swarm(seed=1)
        sw.add_source(Source())
        res = sw.run()
        assert [t for t, _ in seen] == list(range(res.ticks))
        assert all(n == 0 for _, n in seen)                  # nothing planned yet
        assert sw.state.shared == {"last": res.ticks - 1}


# ----------------------------------------------------------------------------- state


class TestState:
    def test_state(self, busy):
        sw = busy.swarm(seed=5)
        res = sw.run()
        st = sw.state
        assert isinstance(st, SharedState)
        assert st.tick == res.ticks and st.verdict == res.verdict
        assert st.total_actions == res.actions and st.failed_actions == res.failed_actions
        assert st.environment_done == bool(sw.kernel.task_done)
        assert sum(s["visits"] for s in st.stats.values()) == res.actions
        assert st.ema_tick_ms > 0.0

    def test_workers(self, busy):
        sw = busy.swarm(seed=5)
        res = sw.run()
        w = sw.workers
        assert isinstance(w, WorkerStates)
        assert w.node.shape == (3,) and (w.node == -1).all()
        assert int(w.actions.sum()) == res.actions
        assert w.done.all()
        assert len(w.results()) == 3 and all(isinstance(r, WorkResult) for r in w.results())

    def test_stats(self, troubleshooting):
        sw = troubleshooting.swarm(seed=5)
        sw.run()
        stats = sw.stats()
        assert list(stats) == troubleshooting.actions
        for s in stats.values():
            assert set(s) == {"visits", "successes", "failures", "discoveries", "duration_ms"}
            assert s["visits"] == s["successes"] + s["failures"]
        assert stats["CheckStatus"]["visits"] >= 1
        assert stats["Restart"]["successes"] == 1
        assert stats["Restart"]["duration_ms"] == pytest.approx(50.0 * stats["Restart"]["visits"])

    def test_graph(self, troubleshooting):
        sw = troubleshooting.swarm(seed=5)
        sw.run()
        g = sw.graph()
        assert set(g) == {"action", "target", "arg", "parent", "state", "tick", "retries"}
        assert g["parent"][0] == -1 and g["action"][0] == 0
        assert (g["parent"][1:] >= 0).all() and (g["parent"][1:] < np.arange(1, len(g["parent"]))).all()
        keys = list(zip(g["action"].tolist(), g["target"].tolist(), g["arg"].tolist()))
        assert len(keys) == len(set(keys))

    def test_pair_stats_and_frontier_scores(self, busy):
        sw = busy.swarm(seed=5)
        sw.step(2)
        pairs = sw.pair_stats()
        assert pairs and {"action", "target", "visits", "successes", "discoveries", "open"} <= set(pairs[0])
        assert {p["action"] for p in pairs} <= set(busy.actions)
        scores = sw.frontier_scores()
        assert scores
        assert [s for *_, s in scores] == sorted((s for *_, s in scores), reverse=True)
        assert all(isinstance(t, str) for _, t, _, _ in scores if t is not None)
        assert sum(n for _, _, n, _ in scores) == sw.kernel.n_open


# ----------------------------------------------------------------------------- pacing


class TestPacing:
    BUDGET_MS = 25.0

    def test_ticks_take_at_least_the_budget(self, grid):
        cfg = SwarmConfig(workers=2, max_ticks=1000, tick_duration_ms=self.BUDGET_MS)
        sw = grid.swarm(seed=1, config=cfg)
        t0 = time.monotonic()
        assert sw.step(4) == 4
        elapsed = time.monotonic() - t0
        budget = 4 * self.BUDGET_MS / 1000.0
        assert elapsed >= 0.9 * budget
        assert sw.result().wall_seconds >= 0.9 * budget      # the Swarm's own accounting includes the sleep

    def test_free_running_by_default(self, grid):
        sw = grid.swarm(seed=1)
        assert sw.config.tick_duration_ms == 0.0
        sw.step(50)
        assert sw.result().wall_seconds >= 0.0 and sw.ema_tick_ms >= 0.0


# ----------------------------------------------------------------------------- determinism, config


class TestDeterminism:
    @pytest.mark.parametrize("strategy", ["ucb1", "thompson_sampled"])
    def test_same_seed_same_events(self, busy, strategy):
        sc = load_scenario(busy.path, overrides={"agents": {"workers": 3},
                                                 "environment": {"params": {"services": 8, "error_rate": 0.2}},
                                                 "app_config": {"selection": {"strategy": strategy}}})
        runs = []
        for _ in range(2):
            sw = sc.swarm(seed=123, record_events=True)
            sw.run()
            runs.append(sw.events())
        assert_same_events(*runs)

    def test_seeds_differ(self, busy):
        traces = set()
        for seed in range(8):
            sw = busy.swarm(seed=seed, record_events=True)
            sw.run()
            ev = sw.events()
            traces.add((tuple(ev.target.tolist()), tuple(ev.outcome.tolist())))
        assert len(traces) > 1


@pytest.mark.parametrize("make", [
    lambda: SwarmConfig(workers=0),
    lambda: SwarmConfig(max_ticks=-1),
    lambda: SwarmConfig(tick_duration_ms=-1.0),
    lambda: ManagementStrategy("sometimes"),
    lambda: TerminationConfig(strategy="never"),
    lambda: TerminationConfig(on_exhausted="panic"),
    lambda: TerminationConfig(max_retries=256),
    lambda: SelectorConfig("random"),
    lambda: SelectorConfig(granularity="target"),
], ids=["workers", "max_ticks", "tick_duration", "management", "termination", "on_exhausted", "max_retries",
        "selector", "granularity"])
def test_config_errors(make):
    with pytest.raises(ConfigError):
        make()
