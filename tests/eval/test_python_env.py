"""Python environments through the batched protocol (tests/envs_example.py).

A scenario names one with ``env_type = "python:tests.envs_example:Vault"``;
the same object also plugs into a :class:`Swarm` by hand. Every environment,
native or Python, passes one contract class.
"""

from __future__ import annotations

import abc

import numpy as np
import pytest

from swarm_engine import (
    ActionBatch,
    BatchedEnvironment,
    EnvironmentBinding,
    EnvironmentError_,
    ScenarioError,
    StepResult,
    Swarm,
    SwarmConfig,
    Verdict,
    load_scenario,
    run_eval,
)
from swarm_engine._native._envs import ENV_PYTHON
from swarm_engine.eval.loader import parse_scenario
from tests.conftest import assert_same_columns, event_columns
from tests.envs_example import OP_OPEN, OP_SCAN, OP_TRY, Vault
from tests.paths import DATA, SCENARIOS

VAULT = DATA / "vault.toml"


def vault_text(env_class: str = "Vault", params: str = "rooms = 8\nlocked_rate = 0.5\nerror_rate = 0.1") -> str:
    text = VAULT.read_text(encoding="utf-8")
    text = text.replace("python:tests.envs_example:Vault", f"python:tests.envs_example:{env_class}")
    return text.replace("rooms = 8\nlocked_rate = 0.5\nerror_rate = 0.1", params)


def events_of(swarm: Swarm) -> dict[str, np.ndarray]:
    return event_columns(swarm.events())


# ----------------------------------------------------------------------------- the protocol


class TestStepResult:
    def test_build(self):
        res = StepResult.build([1, 0, 2], [[4, 5], [], [7]], [1.0, 2.0, 3.0], done=True)
        assert res.outcome.dtype == np.int8 and res.outcome.tolist() == [1, 0, 2]
        assert res.disc_ptr.tolist() == [0, 2, 2, 3]
        assert res.discoveries.tolist() == [4, 5, 7]
        assert res.duration_ms.dtype == np.float32
        assert res.done

    def test_build_empty(self):
        res = StepResult.build([])
        assert res.disc_ptr.tolist() == [0] and len(res.discoveries) == 0


class TestVaultDirectly:
    """The environment object on its own: numpy in, numpy out."""

    def test_is_a_batched_environment(self):
        assert isinstance(Vault(), BatchedEnvironment)

    def test_step(self):
        env = Vault(rooms=4, locked_rate=0.0)
        env.reset(3)
        batch = ActionBatch(workers=np.arange(3, dtype=np.int32),
                            ops=np.array([OP_SCAN, OP_TRY, OP_OPEN], np.int32),
                            targets=np.array([-1, 2, env.vault], np.int32),
                            args=np.full(3, -1, np.int32))
        res = env.step(batch)
        assert res.outcome.tolist() == [1, 1, 1]
        assert res.disc_ptr.tolist() == [0, 4, 4, 4]
        assert res.discoveries.tolist() == [0, 1, 2, 3]
        assert res.done

    def test_same_seed_same_hidden_state(self):
        a, b = Vault(rooms=16), Vault(rooms=16)
        a.reset(5)
        b.reset(5)
        assert a.vault == b.vault
        np.testing.assert_array_equal(a.locked, b.locked)


def direct_swarm(workers: int = 3, seed: int = 1, **params) -> tuple[Swarm, Vault]:
    """A Swarm over a Vault without a scenario file."""
    env = Vault(**params)
    binding = EnvironmentBinding(name="vault", kind=ENV_PYTHON, params=np.zeros(0),
                                 ops=np.arange(3, dtype=np.int32), python=env,
                                 max_discoveries=env.max_discoveries, target_names=env.target_name)
    swarm = Swarm(env.default_graph(), binding, SwarmConfig(workers=workers, max_ticks=100), seed=seed,
                  record_events=True)
    return swarm, env


class TestThroughSwarm:
    def test_runs_to_success(self):
        swarm, env = direct_swarm()
        result = swarm.run()
        assert result.verdict == Verdict.SUCCESS
        assert swarm.state.environment_done
        ev = swarm.events()
        last_open = ev.action[ev.outcome == 1][-1]
        assert swarm.action_names[last_open] == "Open"
        assert ev.target[-1] >= 0

    def test_step_is_called_once_per_tick(self):
        swarm, env = direct_swarm(workers=4, rooms=12)
        result = swarm.run()
        assert result.actions > result.ticks          # several actions per tick ...
        assert env.steps <= result.ticks              # ... one step() call per tick

    def test_deterministic(self):
        a, _ = direct_swarm(seed=8, error_rate=0.2)
        b, _ = direct_swarm(seed=8, error_rate=0.2)
        a.run()
        b.run()
        assert_same_columns(events_of(a), events_of(b))

    def test_reset_replays(self):
        swarm, _ = direct_swarm(seed=4, error_rate=0.2)
        swarm.run()
        first = events_of(swarm)
        swarm.reset(4)
        swarm.run()
        assert_same_columns(first, events_of(swarm))

    def test_pair_stats_use_target_names(self):
        swarm, _ = direct_swarm(rooms=5)
        swarm.run()
        names = {row["target"] for row in swarm.pair_stats() if row["target"] is not None}
        assert names and all(n.startswith("room-") for n in names)


class TestThroughScenario:
    def test_loads(self):
        sc = load_scenario(VAULT)
        assert not sc.binding.native
        assert isinstance(sc.binding.python, Vault)
        assert sc.binding.python.rooms == 8
        # scenario actions (scan, open, try) map to the environment's ops by name
        assert sc.binding.ops.tolist() == [OP_SCAN, OP_OPEN, OP_TRY]

    def test_runs(self):
        sc = load_scenario(VAULT)
        res = sc.swarm(seed=2).run()
        assert res.verdict in (Verdict.SUCCESS, Verdict.EXHAUSTED)

    def test_static_graph_comes_from_the_environment(self):
        text = vault_text()
        text = text[:text.index("[dependency_graph]")] + '[dependency_graph]\ntype = "static"\n'
        sc = parse_scenario(text, "static.toml")
        assert sc.graph.start == ["scan"] and sc.graph.terminal == ["open"]
        assert sorted(sc.graph.edges) == [("scan", "try", 1.0), ("try", "open", 1.0)]

    def test_eval_is_deterministic(self):
        sc = load_scenario(VAULT)
        a = run_eval(sc, 30, seed=100)
        b = run_eval(load_scenario(VAULT), 30, seed=100)
        for field in ("success", "verdict", "ticks", "actions", "failed", "by_action"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
        assert a.success.mean() > 0.5

    def test_eval_trace(self, tmp_path):
        import json

        trace = tmp_path / "trace.jsonl"
        res = run_eval(load_scenario(VAULT), 3, seed=7, trace=trace)
        rows = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
        assert len(rows) == int(res.actions.sum())
        assert {r["seed"] for r in rows} == {7, 8, 9}
        assert {r["action"] for r in rows} <= {"scan", "try", "open"}
        assert all(r["target"] is None or r["target"].startswith("room-") for r in rows)


# ----------------------------------------------------------------------------- broken environments


@pytest.mark.parametrize(("env_class", "fragment"), [
    ("BrokenRaises", "BrokenRaises.step() at tick 2 raised ZeroDivisionError: the vault's door sensor"),
    ("BrokenReturnsDict", "BrokenReturnsDict.step() at tick 0 returned dict, expected StepResult"),
    ("BrokenWrongLength", "step() at tick 0 returned a malformed StepResult: outcome must have 1 entries, got 0"),
    ("BrokenBadOutcome", "step() at tick 0 returned a malformed StepResult: outcomes must be 0 (fail), 1 (ok) or 2"),
])
def test_broken_environment_is_one_clear_line(env_class, fragment):
    sc = parse_scenario(vault_text(env_class, "rooms = 4\nlocked_rate = 0.0"), "broken.toml")
    with pytest.raises(EnvironmentError_) as info:
        sc.swarm(seed=1).run()
    msg = str(info.value)
    assert msg.startswith(f"broken.toml: environment 'python:tests.envs_example:{env_class}': ")
    assert fragment in msg
    assert "\n" not in msg


def test_broken_environment_fails_the_eval_too():
    sc = parse_scenario(vault_text("BrokenRaises", "rooms = 4\nlocked_rate = 0.0"), "broken.toml")
    with pytest.raises(EnvironmentError_, match="ZeroDivisionError"):
        run_eval(sc, 2)


@pytest.mark.parametrize(("env_type", "params", "fragment"), [
    ("python:tests.envs_example:NotAnEnvironment", "", "does not implement the batched environment protocol"),
    ("python:tests.envs_example:NoSuchClass", "", "has no attribute 'NoSuchClass'"),
    ("python:tests.no_such_module:Vault", "", "cannot import module 'tests.no_such_module'"),
    ("python:tests.envs_example", "", "expected 'python:package.module:Class'"),
    ("python:tests.envs_example:Vault", "doors = 3", "cannot create"),
])
def test_bad_python_environment_is_a_scenario_error(env_type, params, fragment):
    text = vault_text(params=params).replace("python:tests.envs_example:Vault", env_type)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "bad.toml")
    assert info.value.field in ("environment.env_type", "environment.params")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_action_the_python_environment_lacks():
    text = vault_text().replace('name = "try"', 'name = "kick"').replace('"try"', '"kick"')
    with pytest.raises(ScenarioError, match="action 'kick' is not supported"):
        parse_scenario(text, "kick.toml")


# ----------------------------------------------------------------------------- environment contract


class EnvironmentContract(abc.ABC):
    """What every environment, native or Python, guarantees to the engine."""

    @abc.abstractmethod
    def scenario(self):
        """The scenario each subclass checks."""

    def test_same_seed_same_run(self):
        runs = []
        for _ in range(2):
            swarm = self.scenario().swarm(seed=21, record_events=True)
            swarm.run()
            runs.append(events_of(swarm))
        assert_same_columns(*runs)

    def test_runs_to_a_verdict(self):
        swarm = self.scenario().swarm(seed=5, record_events=True)
        res = swarm.run()
        assert res.verdict != Verdict.RUNNING
        ev = swarm.events()
        assert set(np.unique(ev.outcome).tolist()) <= {0, 1, 2}
        assert len(ev) == res.actions

    def test_target_names(self):
        sc = self.scenario()
        swarm = sc.swarm(seed=5, record_events=True)
        swarm.run()
        for t in np.unique(swarm.events().target):
            if t >= 0:
                assert isinstance(sc.binding.target_names(int(t)), str)

    def test_eval_matches_single_runs(self):
        sc = self.scenario()
        res = run_eval(sc, 5, seed=30)
        for i in range(5):
            single = self.scenario().swarm(seed=30 + i).run()
            assert (single.ticks, single.actions) == (int(res.ticks[i]), int(res.actions[i]))


class TestTroubleshootingContract(EnvironmentContract):
    def scenario(self):
        return load_scenario(SCENARIOS / "troubleshooting.toml")


class TestGridContract(EnvironmentContract):
    def scenario(self):
        return load_scenario(DATA / "variants.toml")


class TestCodeExplorationContract(EnvironmentContract):
    def scenario(self):
        return load_scenario(SCENARIOS / "code_exploration.toml")


class TestSearchContract(EnvironmentContract):
    def scenario(self):
        return load_scenario(SCENARIOS / "search.toml")


class TestInternalDiagnosisContract(EnvironmentContract):
    def scenario(self):
        return load_scenario(SCENARIOS / "internal_diagnosis.toml")


class TestVaultContract(EnvironmentContract):
    def scenario(self):
        return load_scenario(VAULT)
