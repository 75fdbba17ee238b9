"""The native exploration kernel through its Python face (core.make_kernel / exploration.Kernel).

Everything here runs the built-in native environments, whose behaviour is
known exactly: the grid (Explore(cell) discovers the 4-neighbours, blocked
cells fail) and troubleshooting (CheckStatus -> ReadLogs | AnalyzeMetrics ->
Diagnose -> Restart). Selectors share one contract class, subclassed per kind.
"""

from __future__ import annotations

import numpy as np
import pytest

from swarm_engine import DependencyGraph, SwarmConfig, Verdict
from swarm_engine._native import _envs, _kernel
from swarm_engine.core.config import ManagementStrategy, TerminationConfig, make_kernel
from swarm_engine.eval.environments.grid import GRID
from swarm_engine.eval.environments.troubleshooting import OPS, TROUBLESHOOTING
from swarm_engine.exploration import SELECTOR_KINDS, SelectorConfig
from tests.conftest import assert_same_columns

CHECK, LOGS, METRICS, DIAGNOSE, RESTART = range(5)

# ----------------------------------------------------------------------------- helpers


def grid_binding(width: int = 8, height: int = 8, block_rate: float = 0.0, goal: int = -1):
    return GRID.bind({"width": width, "height": height, "block_rate": block_rate, "goal": goal},
                     ["Explore"], None)


def grid_graph(terminal: bool = False) -> DependencyGraph:
    return DependencyGraph(actions=["Explore"], edges=[("Explore", "Explore", 1.0)], start=["Explore"],
                           terminal=["Explore"] if terminal else [], start_target=0)


def ts_binding(services: int = 4, error_rate: float = 0.0, noise: float = 0.25):
    return TROUBLESHOOTING.bind({"services": services, "error_rate": error_rate, "noise": noise},
                                list(OPS), None)


def ts_graph(param_variants: dict | None = None) -> DependencyGraph:
    g = TROUBLESHOOTING.default_graph(list(OPS), {})
    g.param_variants = dict(param_variants or {})
    return g


def config(*, workers: int = 1, max_ticks: int = 1000, strategy: str = "fifo",
           granularity: str = "action_target", term: str = "first_success", on_exhausted: str = "fail",
           max_consecutive_errors: int = 0, max_retries: int = 1, manage: str = "every_tick",
           interval: int = 10, max_wait_ticks: int = 10, bonus: np.ndarray | None = None) -> SwarmConfig:
    return SwarmConfig(
        workers=workers, max_ticks=max_ticks,
        management=ManagementStrategy(manage, interval, max_wait_ticks),
        termination=TerminationConfig(term, on_exhausted, max_consecutive_errors, 0, max_retries),
        selector=SelectorConfig(strategy, granularity=granularity, bonus=bonus))


def build(graph: DependencyGraph, binding, *, seed: int = 1, record: bool = True,
          node_capacity: int = 1024, event_capacity: int = 4096, **cfg) -> _kernel.Kernel:
    k = make_kernel(graph.compile(), binding, config(**cfg), record_events=record,
                    node_capacity=node_capacity, event_capacity=event_capacity)
    k.reset(seed)
    return k


def _concat(chunks: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def drive(k: _kernel.Kernel) -> dict[str, np.ndarray]:
    """Run to the verdict as the orchestrator does: drain, grow, call again."""
    chunks = []
    while k.verdict == _kernel.V_RUNNING:
        status = k.step(1 << 20)
        chunks.append(k.take_events())
        if status == _kernel.ST_NEED_ROOM:
            k.make_room()
    chunks.append(k.take_events())
    return _concat(chunks)


def run_batch(k: _kernel.Kernel, seeds) -> dict[str, np.ndarray]:
    """``run_batch`` over ``seeds`` with the runner's resume-after-growth loop."""
    seeds = np.ascontiguousarray(seeds, dtype=np.uint64)
    R = seeds.shape[0]
    out = dict(success=np.zeros(R, np.uint8), verdict=np.zeros(R, np.int8), ticks=np.zeros(R, np.int64),
               actions=np.zeros(R, np.int64), failed=np.zeros(R, np.int64), wall=np.zeros(R),
               by_action=np.zeros((R, k.n_actions), np.int64))
    done = np.zeros(R, np.uint8)
    r, resume = 0, False
    while r < R:
        r, status = k.run_batch(seeds, r, resume, out["success"], out["verdict"], out["ticks"],
                                out["actions"], out["failed"], out["wall"], out["by_action"], 0.0, done)
        k.take_events()
        resume = status == _kernel.ST_NEED_ROOM
        if resume:
            k.make_room()
    out["done"] = done
    del out["wall"]
    return out


def node_keys(k: _kernel.Kernel) -> list[tuple[int, int, int]]:
    n = k.nodes()
    return list(zip(n["action"].tolist(), n["target"].tolist(), n["arg"].tolist()))


# ----------------------------------------------------------------------------- graph map


class TestGraphMap:
    def test_each_key_appears_once(self):
        # every inner cell is discovered by up to four neighbours
        k = build(grid_graph(), grid_binding(12, 9))
        drive(k)
        keys = node_keys(k)
        assert len(keys) == len(set(keys)) == 12 * 9
        assert k.total_visits == 12 * 9

    def test_duplicate_discoveries_of_one_success_add_one_node(self):
        # CheckStatus discovers each non-Running service once; ReadLogs and
        # AnalyzeMetrics nodes exist once per service however many edges lead there
        k = build(ts_graph(), ts_binding(services=8, noise=1.0), term="all_complete")
        drive(k)
        keys = node_keys(k)
        assert len(keys) == len(set(keys))
        diag = [t for a, t, _ in keys if a == DIAGNOSE]
        assert sorted(diag) == sorted(set(diag))

    @pytest.mark.parametrize("workers", [1, 3])
    def test_frontier_is_fifo_within_a_group(self, workers):
        # one group (granularity "action"): nodes are taken in discovery order
        k = build(grid_graph(), grid_binding(9, 7), granularity="action", workers=workers)
        events = drive(k)
        np.testing.assert_array_equal(events["node"], np.arange(9 * 7))

    def test_success_expands_successors(self):
        k = build(grid_graph(), grid_binding(5, 5))
        k.step(1)
        nodes = k.nodes()
        np.testing.assert_array_equal(nodes["target"], [0, 1, 5])         # (0,0) -> (1,0), (0,1)
        np.testing.assert_array_equal(nodes["parent"], [-1, 0, 0])
        np.testing.assert_array_equal(nodes["state"], [_kernel.NODE_DONE_OK, _kernel.NODE_OPEN,
                                                       _kernel.NODE_OPEN])
        np.testing.assert_array_equal(nodes["tick"], [0, 0, 0])

    def test_failure_closes_without_expansion(self):
        params = np.array([10, 10, 0.35, -1], np.float64)
        k = build(grid_graph(), grid_binding(10, 10, block_rate=0.35), seed=3)
        drive(k)
        nodes = k.nodes()
        failed = np.flatnonzero(nodes["state"] == _kernel.NODE_DONE_FAIL)
        assert failed.size > 0
        assert not np.isin(failed, nodes["parent"]).any()
        for node in failed:
            assert _envs.grid_blocked(params, 3, int(nodes["target"][node]))
        assert np.all(nodes["state"] != _kernel.NODE_OPEN)

    def test_terminal_success_completes_the_task(self):
        k = build(ts_graph(), ts_binding())
        events = drive(k)
        assert k.verdict == Verdict.SUCCESS
        assert k.task_done
        assert events["action"][-1] == RESTART and events["outcome"][-1] == _envs.OUT_OK
        assert k.workers()["succeeded"].all()

    def test_reset_clears_the_run(self):
        k = build(grid_graph(), grid_binding(6, 6))
        first = drive(k)
        k.reset(1)
        assert (k.tick, k.n_nodes, k.total_visits, k.verdict) == (0, 1, 0, Verdict.RUNNING)
        assert_same_columns(first, drive(k))


# ----------------------------------------------------------------------------- termination


class TestTermination:
    def test_exhausted_frontier(self):
        k = build(grid_graph(), grid_binding(4, 4))
        drive(k)
        assert k.verdict == Verdict.EXHAUSTED
        assert k.n_open == 0 and k.total_visits == 16

    @pytest.mark.parametrize(("on_exhausted", "verdict"), [("fail", Verdict.EXHAUSTED),
                                                           ("success", Verdict.SUCCESS),
                                                           ("wait", Verdict.TIMEOUT)])
    def test_on_exhausted(self, on_exhausted, verdict):
        k = build(grid_graph(), grid_binding(3, 3), on_exhausted=on_exhausted, max_ticks=50)
        drive(k)
        assert k.verdict == verdict
        assert k.tick == (50 if on_exhausted == "wait" else 9)

    @pytest.mark.parametrize("workers", [1, 4])
    def test_max_ticks_times_out(self, workers):
        k = build(grid_graph(), grid_binding(100, 100), max_ticks=7, workers=workers)
        drive(k)
        assert k.verdict == Verdict.TIMEOUT
        assert k.tick == 7

    def test_max_ticks_zero_is_unlimited(self):
        k = build(grid_graph(), grid_binding(6, 6), max_ticks=0)
        drive(k)
        assert k.verdict == Verdict.EXHAUSTED

    def test_max_consecutive_errors(self):
        k = build(ts_graph(), ts_binding(error_rate=1.0), max_retries=10, max_consecutive_errors=3)
        events = drive(k)
        assert k.verdict == Verdict.MAX_ERRORS
        assert k.tick == 3 and k.consec_errors == 3
        assert (events["outcome"] == _envs.OUT_ERROR).all()

    @pytest.mark.parametrize("max_retries", [0, 1, 3])
    def test_transient_errors_are_retried(self, max_retries):
        # every action errors: the start node is tried 1 + max_retries times, then closed
        k = build(ts_graph(), ts_binding(error_rate=1.0), max_retries=max_retries)
        events = drive(k)
        assert k.verdict == Verdict.EXHAUSTED
        np.testing.assert_array_equal(events["node"], np.zeros(1 + max_retries))
        assert (events["outcome"] == _envs.OUT_ERROR).all()
        nodes = k.nodes()
        assert nodes["retries"][0] == max_retries
        assert nodes["state"][0] == _kernel.NODE_DONE_FAIL
        assert k.total_fail == 1 + max_retries

    def test_first_success_ends_at_the_first_terminal_success(self):
        k = build(grid_graph(terminal=True), grid_binding(5, 5), workers=3)
        drive(k)
        assert k.verdict == Verdict.SUCCESS
        assert k.tick == 1 and k.n_open > 0

    def test_all_complete_explores_everything(self):
        k = build(grid_graph(terminal=True), grid_binding(5, 5), workers=3, term="all_complete")
        drive(k)
        assert k.verdict == Verdict.SUCCESS
        assert k.n_open == 0 and k.total_visits == 25

    def test_all_complete_without_success_is_exhausted(self):
        k = build(grid_graph(), grid_binding(5, 5), workers=3, term="all_complete")
        drive(k)
        assert k.verdict == Verdict.EXHAUSTED

    def test_all_succeed_needs_every_worker(self):
        k = build(grid_graph(terminal=True), grid_binding(5, 5), workers=3, term="all_succeed")
        events = drive(k)
        assert k.verdict == Verdict.SUCCESS
        assert k.workers()["succeeded"].all()
        # a worker that succeeded takes no more work
        for w in range(3):
            ticks = events["tick"][events["worker"] == w]
            assert ticks.size == 1

    def test_all_succeed_incomplete_when_one_worker_cannot(self):
        # troubleshooting has one Restart that works: the second worker never completes
        k = build(ts_graph(), ts_binding(), workers=2, term="all_succeed")
        drive(k)
        assert k.verdict == Verdict.INCOMPLETE
        assert k.task_done
        assert k.workers()["succeeded"].sum() == 1

    def test_stop(self):
        k = build(grid_graph(), grid_binding(50, 50))
        k.step(3)
        k.stop()
        assert k.verdict == Verdict.STOPPED
        assert k.step(10) == _kernel.ST_OK and k.tick == 3


# ----------------------------------------------------------------------------- management


def tick_by_tick(k: _kernel.Kernel, ticks: int) -> list[tuple[int, np.ndarray]]:
    """(assigned, worker results) per tick through the split tick API."""
    out = []
    for _ in range(ticks):
        n = k.plan_tick()
        k.commit_native(k.act_tick())
        out.append((n, k.workers()["result"]))
    return out


class TestManagement:
    def test_every_tick(self):
        k = build(grid_graph(), grid_binding(30, 30), workers=2)
        assert [n for n, _ in tick_by_tick(k, 6)] == [1, 2, 2, 2, 2, 2]

    def test_fixed_interval_idles_workers_on_off_ticks(self):
        k = build(grid_graph(), grid_binding(30, 30), workers=2, manage="fixed_interval", interval=3)
        per_tick = tick_by_tick(k, 9)
        assert [n for n, _ in per_tick] == [1, 0, 0, 2, 0, 0, 2, 0, 0]
        for tick, (_, results) in enumerate(per_tick):
            if tick % 3:
                assert (results == _kernel.W_IDLE).all()
        assert k.tick == 9

    def test_completion_based_without_outstanding_work_manages_every_tick(self):
        # native actions finish within their tick, so no worker is ever busy
        # at the manage phase and completion_based assigns every tick
        a = build(grid_graph(), grid_binding(12, 12, block_rate=0.2), workers=3)
        b = build(grid_graph(), grid_binding(12, 12, block_rate=0.2), workers=3,
                  manage="completion_based", max_wait_ticks=4)
        assert_same_columns(drive(a), drive(b))

    def test_workers_without_work_need_guidance(self):
        k = build(grid_graph(), grid_binding(5, 5), workers=3)
        (n, results), = tick_by_tick(k, 1)
        assert n == 1
        assert results.tolist() == [_kernel.W_ACTED, _kernel.W_NEEDS_GUIDANCE, _kernel.W_NEEDS_GUIDANCE]


# ----------------------------------------------------------------------------- rules


class TestParamVariants:
    def test_one_child_per_value(self):
        g = ts_graph({"ReadLogs": ("lines", ["100", "1000", "10000"])})
        rules = g.compile()
        k = build(g, ts_binding(services=6, noise=0.5))
        k.step(1)
        nodes = k.nodes()
        found = nodes["target"][nodes["action"] == METRICS]       # no variants: one per service
        logs = sorted(zip(nodes["target"][nodes["action"] == LOGS], nodes["arg"][nodes["action"] == LOGS]))
        assert logs == sorted((t, x) for t in found for x in range(3))
        assert [rules.args.name(x) for x in range(3)] == ["100", "1000", "10000"]

    def test_start_action_variants(self):
        g = ts_graph({"CheckStatus": ("scope", ["a", "b"])})
        k = build(g, ts_binding())
        nodes = k.nodes()
        assert nodes["action"].tolist() == [CHECK, CHECK]
        assert nodes["arg"].tolist() == [0, 1]


class TestTargetKinds:
    def test_successors_take_only_discoveries_of_their_kind(self):
        # code_exploration: List/Grep take directories (ids < D), Read takes files (ids >= D)
        from swarm_engine.eval.environments.code_exploration import CODE_EXPLORATION
        from swarm_engine.eval.environments.code_exploration import OPS as CODE_OPS

        params = {"files": 60, "files_per_dir": 5, "branching": 3, "grep_limit": 1000, "refs": 2,
                  "error_rate": 0.0}
        binding = CODE_EXPLORATION.bind(params, list(CODE_OPS), None)
        graph = CODE_EXPLORATION.default_graph(list(CODE_OPS), binding.extra["params"])
        k = build(graph, binding, workers=4, term="all_complete", seed=2)
        drive(k)
        nodes = k.nodes()
        dirs = 60 // 5
        by_op = {op: nodes["target"][nodes["action"] == i] for i, op in enumerate(CODE_OPS)}
        assert by_op["Read"].size > 0 and (by_op["Read"] >= dirs).all()
        assert (by_op["List"] < dirs).all() and (by_op["Grep"] < dirs).all()


class TestGranularity:
    def test_action(self):
        k = build(ts_graph(), ts_binding(noise=0.5), granularity="action", term="all_complete")
        drive(k)
        groups = k.groups()
        assert not k.granular
        assert groups["action"].tolist() == list(range(5))
        assert (groups["target"] == -1).all()

    def test_action_target(self):
        k = build(ts_graph(), ts_binding(noise=0.5), granularity="action_target", term="all_complete")
        drive(k)
        groups, nodes = k.groups(), k.nodes()
        assert k.granular
        pairs = list(zip(groups["action"].tolist(), groups["target"].tolist()))
        assert len(pairs) == len(set(pairs))
        assert set(pairs) == set(zip(nodes["action"].tolist(), nodes["target"].tolist()))
        np.testing.assert_array_equal(
            np.bincount(groups["action"], weights=groups["visits"], minlength=5),
            k.action_stats()["visits"])


# ----------------------------------------------------------------------------- memory


class TestGrowth:
    @pytest.mark.parametrize("strategy", ["fifo", "ucb1", "thompson_sampled"])
    def test_need_room_growth_gives_the_same_run(self, strategy):
        binding = grid_binding(24, 24, block_rate=0.2)
        small = build(grid_graph(), binding, workers=4, strategy=strategy, node_capacity=1,
                      event_capacity=1, seed=9)
        big = build(grid_graph(), binding, workers=4, strategy=strategy, node_capacity=1 << 12,
                    event_capacity=1 << 12, seed=9)
        cap0 = small.memory_bytes()["node_capacity"]
        assert_same_columns(drive(small), drive(big))
        assert_same_columns(small.nodes(), big.nodes())
        assert (small.verdict, small.tick) == (big.verdict, big.tick)
        assert small.memory_bytes()["node_capacity"] > cap0

    def test_run_batch_growth_gives_the_same_runs(self):
        g, b = grid_graph(), grid_binding(20, 20, block_rate=0.25, goal=-2)
        small = make_kernel(g.compile(), b, config(workers=3), node_capacity=1)
        big = make_kernel(g.compile(), b, config(workers=3), node_capacity=1 << 12)
        assert_same_columns(run_batch(small, range(40)), run_batch(big, range(40)))

    def test_make_room_refuses_a_full_event_log(self):
        k = build(grid_graph(), grid_binding(10, 10), workers=2, event_capacity=2)
        assert k.step(100) == _kernel.ST_NEED_ROOM
        with pytest.raises(RuntimeError, match="take_events"):
            k.make_room()
        k.take_events()
        k.make_room()

    def test_memory_bytes(self):
        k = build(grid_graph(), grid_binding(40, 40), node_capacity=64, record=False, max_ticks=0)
        mem = k.memory_bytes()
        assert set(mem) == {"nodes", "node_capacity", "groups", "workers", "events"}
        assert mem["node_capacity"] >= 64
        assert mem["nodes"] >= 22 * mem["node_capacity"]          # 22 bytes of columns per node
        assert mem["groups"] > 0 and mem["workers"] > 0
        assert mem["events"] == 0
        drive(k)
        grown = k.memory_bytes()
        assert grown["node_capacity"] >= k.n_nodes == 40 * 40
        assert grown["nodes"] > mem["nodes"]
        assert grown["nodes"] < 200 * grown["node_capacity"]      # no hidden per-node objects

    def test_recording_costs_event_memory(self):
        k = build(grid_graph(), grid_binding(), record=True, event_capacity=1000)
        assert k.memory_bytes()["events"] >= 1000 * 37


# ----------------------------------------------------------------------------- learned bonus


class TestLearnedBonus:
    @staticmethod
    def _bonus_for(action: int, value: float = 1.0) -> np.ndarray:
        A = len(OPS)
        table = np.zeros((A + 1, A + 1, A))
        table[:, :, action] = value
        return table.ravel()

    def _second_action(self, bonus) -> int:
        k = build(ts_graph(), ts_binding(), strategy="greedy", bonus=bonus)
        k.step(2)
        return int(k.take_events()["action"][1])

    def test_bonus_changes_greedys_choice(self):
        # without a bonus Greedy ties and keeps frontier order: ReadLogs comes first
        assert self._second_action(None) == LOGS
        assert self._second_action(self._bonus_for(METRICS)) == METRICS

    def test_bonus_through_set_bonus(self):
        k = build(ts_graph(), ts_binding(), strategy="greedy")
        k.set_bonus(self._bonus_for(METRICS))
        k.step(2)
        assert k.take_events()["action"][1] == METRICS

    def test_bonus_context_is_the_last_two_actions(self):
        A = len(OPS)
        table = np.zeros((A + 1, A + 1, A))
        table[0, CHECK + 1, METRICS] = 1.0        # only after (none, CheckStatus)
        k = build(ts_graph(), ts_binding(), strategy="greedy", bonus=table.ravel())
        k.step(2)
        assert k.take_events()["action"][1] == METRICS

    def test_bonus_table_shape_is_checked(self):
        k = build(ts_graph(), ts_binding(), strategy="greedy")
        with pytest.raises(ValueError, match=r"\(A\+1\)\^2\*A"):
            k.set_bonus(np.zeros(7))


# ----------------------------------------------------------------------------- selectors


class SelectorContract:
    """What every selector guarantees, whatever it scores."""

    strategy: str

    def test_name_maps_to_its_kind(self):
        k = build(ts_graph(), ts_binding(), strategy=self.strategy)
        assert k.selector == SELECTOR_KINDS[self.strategy] == SelectorConfig(self.strategy).kind

    @pytest.mark.parametrize("workers", [1, 3])
    def test_every_troubleshooting_run_succeeds(self, workers):
        k = make_kernel(ts_graph().compile(), ts_binding(services=6), config(workers=workers,
                        strategy=self.strategy, max_ticks=200))
        out = run_batch(k, range(300))
        assert out["success"].all()
        assert out["done"].all()
        assert (out["by_action"][:, RESTART] >= 1).all()

    def test_errors_end_in_success_or_exhaustion(self):
        k = make_kernel(ts_graph().compile(), ts_binding(error_rate=0.3), config(workers=2,
                        strategy=self.strategy, max_ticks=500))
        verdicts = set(run_batch(k, range(300))["verdict"].tolist())
        assert verdicts <= {Verdict.SUCCESS, Verdict.EXHAUSTED}
        assert Verdict.SUCCESS in verdicts

    def test_same_seed_same_events(self):
        def events(seed):
            return drive(build(ts_graph(), ts_binding(services=6, error_rate=0.2), seed=seed, workers=3,
                               strategy=self.strategy, term="all_complete"))

        assert_same_columns(events(11), events(11))

    def test_never_assigns_a_closed_node(self):
        k = build(grid_graph(), grid_binding(14, 14, block_rate=0.2), workers=5, strategy=self.strategy)
        ev = drive(k)
        assert len(np.unique(ev["node"])) == len(ev["node"])    # no errors: each node runs once
        k = build(ts_graph(), ts_binding(services=8, error_rate=0.3, noise=0.6), workers=3,
                  strategy=self.strategy, term="all_complete", max_retries=2, seed=5)
        ev = drive(k)
        for node in np.unique(ev["node"]):
            outcomes = ev["outcome"][ev["node"] == node]
            assert len(outcomes) <= 3
            assert (outcomes[:-1] == _envs.OUT_ERROR).all()     # only errors are retried
        for tick in np.unique(ev["tick"]):
            nodes = ev["node"][ev["tick"] == tick]
            assert len(np.unique(nodes)) == len(nodes)

    def test_batch_size_independence(self):
        g, b = ts_graph(), ts_binding(services=6, error_rate=0.15)
        cfg = config(workers=3, strategy=self.strategy)
        k = make_kernel(g.compile(), b, cfg)
        together = run_batch(k, range(100, 140))
        alone = [run_batch(make_kernel(g.compile(), b, cfg), [s]) for s in range(100, 140)]
        assert_same_columns(together, _concat(alone))


class TestFifo(SelectorContract):
    strategy = "fifo"


class TestUcb1(SelectorContract):
    strategy = "ucb1"


class TestThompson(SelectorContract):
    strategy = "thompson"


class TestThompsonSampled(SelectorContract):
    strategy = "thompson_sampled"


class TestGreedy(SelectorContract):
    strategy = "greedy"


class TestAdaptive(SelectorContract):
    strategy = "adaptive"


def test_every_selector_kind_has_a_contract_test():
    tested = {cls.strategy for cls in SelectorContract.__subclasses__()}
    assert tested == set(SELECTOR_KINDS)
