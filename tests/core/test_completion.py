"""When is the task done: the environment's own completion vs terminal actions.

An environment that reports its own completion (every built-in one, the grid
with a goal, a Python environment with ``reports_done = True``) is the only
judge of ``environment.done``; a terminal action's success marks the worker
as succeeded but ends nothing. Without its own completion (the grid with
``goal = -1``, a Python environment without ``reports_done``), a terminal
success completes the task, as in the original.
"""

from __future__ import annotations

import numpy as np
import pytest

from swarm_engine import DependencyGraph, SwarmConfig, Verdict, load_scenario, parse_scenario, run_eval
from swarm_engine._reference.kernel import ReferenceKernel
from swarm_engine.core.config import TerminationConfig, kernel_kwargs, make_kernel
from swarm_engine.eval.environments.grid import GRID
from swarm_engine.eval.environments.troubleshooting import OPS, TROUBLESHOOTING, hidden
from tests.paths import DATA
from tests.paths import TROUBLESHOOTING as TS_FILE

RESTART = OPS.index("Restart")


def two_faults(**params):
    return load_scenario(TS_FILE, overrides={"environment": {"params": {"faults": 2, "error_rate": 0.0, **params}}})


class TestMultiFaultTroubleshooting:
    def test_bindings_say_who_completes(self):
        assert two_faults().binding.completes
        assert GRID.bind({"goal": 3}, ["Explore"], None).completes
        assert not GRID.bind({"goal": -1}, ["Explore"], None).completes

    def test_one_restart_is_not_the_task(self):
        sc = two_faults()
        swarm = sc.swarm(seed=11, record_events=True)
        restored = 0
        while not swarm.done:
            swarm.step()
            ev = swarm.events()
            restored = int(((ev.action == RESTART) & (ev.outcome == 1)).sum())
            # environment.done means every fault is restored, never one of two
            assert swarm.state.environment_done == (restored >= 2)
        assert swarm.verdict == Verdict.SUCCESS and restored == 2

    def test_the_eval_needs_every_fault_restored(self):
        sc = two_faults()
        res = run_eval(sc, 300, seed=5)
        assert res.success.all() and res.done.all()
        # each successful run restarted both faulty services (and nothing else succeeds at Restart)
        assert (res.by_action[:, RESTART] >= 2).all()
        for i in range(0, 300, 37):
            assert sum(p >= 0 for p in hidden(int(res.seeds[i]), sc.binding.extra["params"])["problem"]) == 2

    def test_a_timed_out_multi_fault_run_is_not_done(self):
        sc = two_faults(services=12, noise=1.0)
        res = run_eval(sc, 200, seed=1)
        cut = load_scenario(TS_FILE, overrides={"environment": {"params": {"faults": 2, "services": 12,
                                                                           "noise": 1.0}},
                                                "app_config": {"max_ticks": int(np.median(res.ticks)) - 1}})
        short = run_eval(cut, 200, seed=1)
        timed_out = short.verdict == Verdict.TIMEOUT
        assert timed_out.any()
        assert not short.done[timed_out].any() and not short.success[timed_out].any()

    def test_all_succeed_with_one_worker_keeps_working_until_done(self):
        # the worker succeeded at its first Restart; it is not retired while the task is unfinished
        sc = load_scenario(TS_FILE, overrides={"environment": {"params": {"faults": 2, "error_rate": 0.0}},
                                               "app_config": {"termination": {"strategy": "all_succeed"}}})
        res = run_eval(sc, 100, seed=3)
        assert res.success.all() and res.done.all()
        assert (res.by_action[:, RESTART] >= 2).all()

    def test_native_and_reference_kernels_agree(self):
        sc = two_faults()
        kw = kernel_kwargs(sc.planned_rules(), sc.binding, sc.config)
        assert kw["env_completes"] is True
        native = make_kernel(sc.planned_rules(), sc.binding, sc.config)
        ref = ReferenceKernel(**kw)
        seeds = np.arange(40, dtype=np.uint64)
        rows = ref.run_batch(seeds)
        for seed, row in zip(seeds, rows):
            native.reset(int(seed))
            while native.verdict == Verdict.RUNNING:
                native.step(1000)
            assert (row.verdict, row.ticks, row.actions, row.done) == (
                native.verdict, native.tick, native.total_visits, bool(native.task_done))


class TestWithoutOwnCompletion:
    def grid_swarm(self, strategy: str = "first_success", workers: int = 1):
        graph = DependencyGraph(actions=["Explore"], edges=[("Explore", "Explore", 1.0)], start=["Explore"],
                                terminal=["Explore"])
        binding = GRID.bind({"width": 5, "height": 5, "goal": -1}, ["Explore"], None)
        config = SwarmConfig(workers=workers, termination=TerminationConfig(strategy))
        from swarm_engine import Swarm

        return Swarm(graph, binding, config, seed=1)

    def test_a_terminal_success_completes_the_task(self):
        swarm = self.grid_swarm()
        res = swarm.run()
        assert res.verdict == Verdict.SUCCESS and res.ticks == 1
        assert swarm.state.environment_done

    def test_all_succeed_retires_each_worker_at_its_success(self):
        swarm = self.grid_swarm("all_succeed", workers=3)
        res = swarm.run()
        assert res.verdict == Verdict.SUCCESS
        assert swarm.workers.succeeded.all() and res.actions == 3


VAULT_TEXT = (DATA / "vault.toml").read_text(encoding="utf-8")


def vault(env_class: str):
    text = VAULT_TEXT.replace("python:tests.envs_example:Vault", f"python:tests.envs_example:{env_class}")
    return parse_scenario(text.replace("error_rate = 0.1", "error_rate = 0.0"), f"{env_class}.toml")


class TestPythonEnvironments:
    @pytest.mark.parametrize(("env_class", "completes", "opens"), [("TwoLocks", True, 2),
                                                                   ("TwoLocksUnreported", False, 1)])
    def test_reports_done_decides(self, env_class, completes, opens):
        sc = vault(env_class)
        assert sc.binding.completes is completes
        open_id = sc.actions.index("open")
        res = run_eval(sc, 60, seed=9)
        won = res.success
        assert won.mean() > 0.5
        assert (res.by_action[won, open_id] >= opens).all()
        if completes:                                  # the run went on past the first Open
            ok_opens = []
            for seed in res.seeds[won][:10]:
                swarm = sc.swarm(int(seed), record_events=True)
                swarm.run()
                ev = swarm.events()
                ok_opens.append(int(((ev.action == open_id) & (ev.outcome == 1)).sum()))
            assert min(ok_opens) == 2

    def test_reports_done_must_be_a_bool(self):
        from swarm_engine import EnvironmentBinding, EnvironmentError_
        from tests.envs_example import Vault

        class Odd(Vault):
            reports_done = "yes"

        with pytest.raises(EnvironmentError_, match="Odd.reports_done must be a bool, got str 'yes'"):
            EnvironmentBinding.from_python(Odd(), ["Scan"])


def test_default_troubleshooting_is_unchanged_by_the_rule():
    # one fault: the Restart that restores it is the completion; same runs as ever
    sc = load_scenario(TS_FILE)
    kw = kernel_kwargs(sc.planned_rules(), sc.binding, sc.config)
    ref_rows = ReferenceKernel(**{**kw, "env_completes": False}).run_batch(np.arange(30, dtype=np.uint64))
    new_rows = ReferenceKernel(**kw).run_batch(np.arange(30, dtype=np.uint64))
    assert ref_rows == new_rows
    assert TROUBLESHOOTING.completes({})
