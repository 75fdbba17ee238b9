"""Python environments that misbehave: every call into user code is one named line.

Each ``tests.envs_example`` class below breaks the batched protocol in one way
(at construction, in a member, in ``reset``, ``step`` or ``target_name``).
The loader answers with one ``ScenarioError`` line, a run with one
``EnvironmentError_`` line naming the scenario file, ``Class.method()`` and
the tick; never a traceback from inside the engine.
"""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from swarm_engine import (
    EnvironmentBinding,
    EnvironmentError_,
    ScenarioError,
    StepResult,
    Swarm,
    SwarmConfig,
    parse_scenario,
    run_eval,
)
from swarm_engine.core.env_protocol import ProtocolViolation, check_step_result
from tests.envs_example import BadActionNames, Vault
from tests.paths import DATA

VAULT = DATA / "vault.toml"


def scenario_text(env_class: str, params: str = "rooms = 4\nlocked_rate = 0.0") -> str:
    text = VAULT.read_text(encoding="utf-8")
    text = text.replace("python:tests.envs_example:Vault", f"python:tests.envs_example:{env_class}")
    return text.replace("rooms = 8\nlocked_rate = 0.5\nerror_rate = 0.1", params)


def one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# ----------------------------------------------------------------------------- at load time


@pytest.mark.parametrize(("env_class", "field", "fragment"), [
    ("BrokenInit", "environment.params",
     "cannot create python:tests.envs_example:BrokenInit with params {'rooms': 4, 'locked_rate': 0.0}: "
     "BrokenInit.__init__() raised ValueError: the vault's blueprint is missing"),
    ("BadActionNames", "environment.env_type",
     "BadActionNames.action_names must be a non-empty list or tuple of operation names, got int 42"),
    ("BadMaxDiscoveries", "environment.env_type", "BadMaxDiscoveries.max_discoveries must be an int >= 0, got str '6'"),
    ("RaisingActionNames", "environment.env_type",
     "RaisingActionNames.action_names raised RuntimeError: names not loaded yet"),
])
def test_a_bad_class_is_one_scenario_error(env_class, field, fragment):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(scenario_text(env_class), "bad.toml")
    assert info.value.field == field
    assert info.value.path == "bad.toml"
    assert fragment in one_line(info.value)


def test_a_module_that_raises_on_import_is_one_line(tmp_path):
    (tmp_path / "explodes_on_import.py").write_text("raise RuntimeError('half-written module')\n", encoding="utf-8")
    scenario = tmp_path / "s.toml"
    scenario.write_text(scenario_text("Vault").replace("tests.envs_example:Vault", "explodes_on_import:Vault"),
                        encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(scenario.read_text(encoding="utf-8"), str(scenario))
    assert "cannot import module 'explodes_on_import': RuntimeError: half-written module" in one_line(info.value)
    sys.modules.pop("explodes_on_import", None)


def test_from_python_checks_members_too():
    with pytest.raises(EnvironmentError_, match="BadActionNames.action_names must be"):
        EnvironmentBinding.from_python(BadActionNames(), ["Scan"])


# ----------------------------------------------------------------------------- while running


@pytest.mark.parametrize(("env_class", "fragment"), [
    ("BrokenReset", "BrokenReset.reset() with seed 1 raised KeyError: 'no vault for seed 1'"),
    ("NanDuration", "NanDuration.step() at tick 0 returned a malformed StepResult: durations must be finite "
                    "and >= 0 ms, got nan"),
    ("NegativeDuration", "NegativeDuration.step() at tick 0 returned a malformed StepResult: durations must be "
                         "finite and >= 0 ms, got -1.0"),
    ("TooManyDiscoveries", "TooManyDiscoveries.step() at tick 0 returned a malformed StepResult: action 0 "
                           "discovered 4 targets, more than max_discoveries = 2"),
    ("OutOfRangeTarget", "OutOfRangeTarget.step() at tick 0 returned a malformed StepResult: discovered target "
                         "1073741824 is outside -1..268435454"),
    ("ArrayDone", "ArrayDone.step() at tick 0 returned a malformed StepResult: done must be a bool, got ndarray"),
])
def test_a_protocol_violation_while_running_is_one_line(env_class, fragment):
    sc = parse_scenario(scenario_text(env_class), "broken.toml")
    with pytest.raises(EnvironmentError_) as info:
        sc.swarm(seed=1).run()
    msg = one_line(info.value)
    assert msg.startswith(f"broken.toml: environment 'python:tests.envs_example:{env_class}': ")
    assert fragment in msg


def test_a_protocol_violation_fails_the_eval_too():
    sc = parse_scenario(scenario_text("NanDuration"), "broken.toml")
    with pytest.raises(EnvironmentError_, match="durations must be finite"):
        run_eval(sc, 3)


def test_target_name_raising_is_one_line_naming_the_tick(tmp_path):
    sc = parse_scenario(scenario_text("BrokenTargetName"), "names.toml")
    run_eval(sc, 2)                          # names are not needed without a trace
    with pytest.raises(EnvironmentError_) as info:
        run_eval(sc, 2, trace=tmp_path / "t.jsonl")
    msg = one_line(info.value)
    assert msg.startswith("names.toml: environment 'python:tests.envs_example:BrokenTargetName': "
                          "BrokenTargetName.target_name() of target ")
    assert "raised IndexError: room " in msg
    assert "(writing the trace: seed 42, tick 1)" in msg


def test_target_name_must_return_a_string():
    class NumberNames(Vault):
        def target_name(self, target: int) -> str:
            return target  # type: ignore[return-value]

    binding = EnvironmentBinding.from_python(NumberNames(), ["Scan", "Try", "Open"])
    assert binding.target_names is not None
    with pytest.raises(EnvironmentError_, match=r"NumberNames.target_name\(\) of target 3 returned int, "
                                                "expected str"):
        binding.target_names(3)


def test_a_swarm_built_by_hand_is_guarded_too():
    from tests.envs_example import NanDuration

    binding = EnvironmentBinding.from_python(NanDuration(rooms=3), ["Scan", "Try", "Open"])
    graph_swarm = Swarm(Vault().default_graph(), binding, SwarmConfig(max_ticks=10), seed=1)
    with pytest.raises(EnvironmentError_, match=r"^environment 'NanDuration': NanDuration.step\(\) at tick 0"):
        graph_swarm.run()


# ----------------------------------------------------------------------------- the checks themselves


def _result(**changes):
    base = dict(outcome=np.array([1, 0], np.int8), disc_ptr=np.array([0, 1, 1], np.int32),
                discoveries=np.array([5], np.int32), duration_ms=np.array([1.0, 2.0], np.float32), done=False)
    base.update(changes)
    return StepResult(**base)


@pytest.mark.parametrize(("changes", "fragment"), [
    (dict(outcome=np.array([1.0, 0.0])), "outcome must hold integers, got float64"),
    (dict(outcome=np.array([1, 0, 1], np.int8)), "outcome must have 2 entries, got 3"),
    (dict(disc_ptr=np.array([0, 2, 1], np.int32)), "discovery offsets (disc_ptr) must start at 0, rise"),
    (dict(discoveries=np.array([-2], np.int32)), "discovered target -2 is outside"),
    (dict(duration_ms=np.array([np.inf, 1.0])), "durations must be finite and >= 0 ms, got inf"),
    (dict(duration_ms=np.array([1.0])), "duration_ms must have 2 entries"),
    (dict(done=1), "done must be a bool, got int 1"),
    (dict(disc_kind=np.array([1, 2], np.int8)), "disc_kind must have 1 entries, got 2"),
])
def test_check_step_result(changes, fragment):
    with pytest.raises(ProtocolViolation) as info:
        check_step_result(_result(**changes), 2, max_discoveries=4)
    assert fragment in str(info.value)


def test_check_step_result_accepts_a_well_formed_one():
    arrays = check_step_result(_result(done=np.bool_(True)), 2, max_discoveries=1)
    assert arrays.outcome.dtype == np.int8 and arrays.disc_ptr.dtype == np.int32
    assert arrays.done is True and arrays.disc_kind is None


# ----------------------------------------------------------------------------- where the module comes from


def test_the_scenario_folder_is_searched_first(tmp_path):
    (tmp_path / "my_vaults_h13.py").write_text(textwrap.dedent("""
        from tests.envs_example import Vault

        class LocalVault(Vault):
            pass
    """), encoding="utf-8")
    scenario = tmp_path / "local.toml"
    scenario.write_text(scenario_text("Vault").replace("tests.envs_example:Vault", "my_vaults_h13:LocalVault"),
                        encoding="utf-8")
    before = list(sys.path)
    try:
        from swarm_engine import load_scenario

        sc = load_scenario(scenario)
        assert type(sc.binding.python).__name__ == "LocalVault"
        assert sc.swarm(seed=3).run().verdict.reason in ("success", "exhausted")
        assert sys.path == before                      # the folder was on the path for the import only
    finally:
        sys.modules.pop("my_vaults_h13", None)


@pytest.mark.parametrize(("body", "fragment"), [
    ("raise RuntimeError('no graph today')", "Odd.default_graph() raised RuntimeError: no graph today"),
    ("return {'edges': []}", "Odd.default_graph() returned dict, expected a DependencyGraph"),
    ("return DependencyGraph(actions=['Scan', 'Fly'], edges=[('Scan', 'Fly', 1.0)], start=['Scan'])",
     "names 'Fly', which is not one of its operations (Scan, Try, Open)"),
])
def test_default_graph_is_guarded(tmp_path, body, fragment):
    (tmp_path / "odd_graph_h13.py").write_text(textwrap.dedent(f"""
        from swarm_engine import DependencyGraph
        from tests.envs_example import Vault

        class Odd(Vault):
            def default_graph(self):
                {body}
    """), encoding="utf-8")
    text = scenario_text("Vault").replace("tests.envs_example:Vault", "odd_graph_h13:Odd")
    text = text[:text.index("[dependency_graph]")] + '[dependency_graph]\ntype = "static"\n'
    scenario = tmp_path / "odd.toml"
    scenario.write_text(text, encoding="utf-8")
    from swarm_engine import load_scenario

    try:
        with pytest.raises(ScenarioError) as info:
            load_scenario(scenario)
    finally:
        sys.modules.pop("odd_graph_h13", None)
    assert info.value.field == "dependency_graph.type"
    assert fragment in one_line(info.value)
