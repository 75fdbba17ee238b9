"""Invariants of every built-in environment, checked on real traces.

No run may succeed without the evidence its task demands, the same seed must
give the same hidden state, and variants must keep those promises.
"""

from __future__ import annotations

import numpy as np
import pytest

from swarm_engine import load_scenario
from swarm_engine.eval.environments import code_exploration, internal_diagnosis, search, troubleshooting
from tests.paths import SCENARIOS

SEEDS = range(40)


def trace(scenario, seed):
    """(action name, target, arg name, ok) per event of one run, and the result."""
    sw = scenario.swarm(seed, record_events=True)
    res = sw.run()
    ev = sw.events()
    args = scenario.rules.args
    rows = [(scenario.actions[int(a)], int(t), args.name(int(x)) if x >= 0 else None, int(o) == 1)
            for a, t, x, o in zip(ev.action, ev.target, ev.arg, ev.outcome)]
    return rows, res


def first(rows, pred):
    return next((i for i, r in enumerate(rows) if pred(r)), None)


class TestTroubleshooting:
    @pytest.mark.parametrize("variant", [None, "complex", "flaky", "swarm"])
    def test_no_restore_without_evidence_and_diagnosis(self, variant):
        sc = load_scenario(SCENARIOS / "troubleshooting.toml", variant)
        params = sc.binding.extra["params"]
        for seed in SEEDS:
            rows, res = trace(sc, seed)
            h = troubleshooting.hidden(seed, params)
            for i, (act, t, _, ok) in enumerate(rows):
                if act == "Diagnose" and ok:
                    assert h["problem"][t] >= 0, "diagnosed a healthy service"
                    assert first(rows[:i], lambda r: r[1] == t and r[3] and r[0] in ("ReadLogs", "AnalyzeMetrics")
                                 ) is not None, "diagnosis without evidence"
                if act == "Restart" and ok:
                    assert first(rows[:i], lambda r: r == ("Diagnose", t, None, True)) is not None
            if res.success:
                restored = {t for act, t, _, ok in rows if act == "Restart" and ok}
                assert restored == {s for s, p in enumerate(h["problem"]) if p >= 0}

    def test_hidden_state_is_a_function_of_the_seed(self):
        params = {"services": 9, "error_rate": 0.0, "noise": 0.4, "faults": 3, "log_noise": 0.5}
        a = [troubleshooting.hidden(s, params) for s in range(50)]
        b = [troubleshooting.hidden(s, params) for s in range(50)]
        assert a == b
        assert all(sum(p >= 0 for p in h["problem"]) == 3 for h in a)
        assert all(h["status"][s] != 0 for h in a for s, p in enumerate(h["problem"]) if p >= 0)
        assert len({tuple(h["problem"]) for h in a}) > 10

    def test_noisy_logs_never_count_as_evidence(self):
        sc = load_scenario(SCENARIOS / "troubleshooting.toml", "complex")
        params = sc.binding.extra["params"]
        seen_noise = 0
        for seed in range(60):
            rows, _ = trace(sc, seed)
            h = troubleshooting.hidden(seed, params)
            for act, t, _, ok in rows:
                if act == "ReadLogs" and ok and h["problem"][t] < 0:
                    seen_noise += 1
                    assert h["noisy"][t]
                if act == "Diagnose" and ok:
                    assert h["problem"][t] >= 0
        assert seen_noise > 0, "the complex variant should show misleading logs"


class TestCodeExploration:
    @pytest.mark.parametrize("variant", [None, "fifo"])
    def test_success_means_the_definition_was_read(self, variant):
        sc = load_scenario(SCENARIOS / "code_exploration.toml", variant)
        params = sc.binding.extra["params"]
        for seed in range(15):
            rows, res = trace(sc, seed)
            h = code_exploration.hidden(seed, params)
            goal_target = h["dirs"] + h["goal"]
            reads = [t for act, t, _, ok in rows if act == "Read" and ok]
            assert res.success == (goal_target in reads)
            for act, t, _, ok in rows:
                if act == "Read" and ok:
                    assert t - h["dirs"] in [h["goal"], *h["refs"]]

    def test_grep_of_a_large_tree_fails(self):
        sc = load_scenario(SCENARIOS / "code_exploration.toml")
        rows, _ = trace(sc, 1)
        root_grep = first(rows, lambda r: r[0] == "Grep" and r[1] in (0, -1))
        assert root_grep is not None and rows[root_grep][3] is False  # 2000 files > grep_limit 100

    def test_million_file_tree_costs_no_memory_until_explored(self):
        sc = load_scenario(SCENARIOS / "code_exploration.toml", "large")
        sw = sc.swarm(3)
        sw.step(20)
        assert sw.kernel.n_nodes < 20_000          # nodes exist only where listed
        assert sc.binding.extra["params"]["files"] == 1_000_000


class TestSearch:
    def test_only_the_read_target_is_accepted(self):
        sc = load_scenario(SCENARIOS / "search.toml")
        params = sc.binding.extra["params"]
        for seed in SEEDS:
            rows, res = trace(sc, seed)
            h = search.hidden(seed, params)
            assert h["target"] in h["results"]
            submit = first(rows, lambda r: r[0] == "Submit" and r[3])
            if res.success:
                assert rows[submit][1] == h["target"]
                assert first(rows[:submit], lambda r: r == ("Read", h["target"], None, True)) is not None
            for act, t, _, ok in rows:
                if act == "Preview" and ok:
                    assert t == h["target"] or t in h["decoys"]


class TestInternalDiagnosis:
    @pytest.mark.parametrize("variant", [None, "small"])
    def test_fix_needs_the_trace_and_the_right_fix(self, variant):
        sc = load_scenario(SCENARIOS / "internal_diagnosis.toml", variant)
        params = sc.binding.extra["params"]
        for seed in SEEDS:
            rows, res = trace(sc, seed)
            h = internal_diagnosis.hidden(seed, params)
            f = h["faulty"]
            fix = first(rows, lambda r: r[0] == "ApplyFix" and r[3])
            assert res.success == (fix is not None)
            if fix is not None:
                assert rows[fix][1] == f and rows[fix][2] == internal_diagnosis.FIXES[f]
                assert first(rows[:fix], lambda r: r == ("TraceError", f, None, True)) is not None
            wrong = [r for r in rows if r[0] == "ApplyFix" and r[2] != internal_diagnosis.FIXES[f]]
            assert not any(r[3] for r in wrong)


class TestGrid:
    def test_flood_fill_visits_exactly_the_open_component(self):
        from swarm_engine import Swarm
        from swarm_engine._native import _envs
        from swarm_engine.core.config import SwarmConfig
        from swarm_engine.eval.environments.grid import GRID
        from swarm_engine.exploration import DependencyGraph, SelectorConfig

        w = h = 30
        params = {"width": w, "height": h, "block_rate": 0.3, "goal": -1}
        b = GRID.bind(params, ["Explore"], None)
        g = DependencyGraph(["Explore"], [("Explore", "Explore", 1.0)], ["Explore"], [], start_target=0)
        sw = Swarm(g, b, SwarmConfig(workers=7, max_ticks=0, selector=SelectorConfig("fifo", granularity="action")),
                   seed=5)
        sw.run()
        vec = np.array([w, h, 0.3, -1], np.float64)
        blocked = {c for c in range(w * h) if _envs.grid_blocked(vec, 5, c)}
        seen, todo = {0}, [0]
        while todo:                                 # the oracle: BFS over open cells
            c = todo.pop()
            x, y = c % w, c // w
            for n, ok in ((c + 1, x + 1 < w), (c - 1, x > 0), (c + w, y + 1 < h), (c - w, y > 0)):
                if ok and n not in seen:
                    seen.add(n)
                    if n not in blocked:
                        todo.append(n)
        nodes = sw.graph()
        assert set(nodes["target"].tolist()) == seen
        ok = nodes["state"] == 2
        assert set(nodes["target"][ok].tolist()) == seen - blocked
