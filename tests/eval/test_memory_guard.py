"""The memory a run and an eval will need is estimated before anything is
allocated, and refused over the limit with the estimate and the limit."""

from __future__ import annotations

import pytest

from swarm_engine import ConfigError, ScenarioError, load_scenario
from swarm_engine.eval.memory import ENV_VAR, check_memory, estimate, memory_limit, parse_size
from tests.inprocess import assert_one_error_line, isolate, run_swarm
from tests.paths import SCENARIOS, TROUBLESHOOTING


def _estimate(sc, runs=1):
    return estimate(sc.binding, sc.config, sc.rules, len(sc.actions), runs)


@pytest.mark.parametrize(("text", "expected"), [("8G", 8 * 2**30), ("512M", 512 * 2**20), ("1.5GiB", 3 * 2**29),
                                                ("1000000", 10**6), ("2gb", 2 * 10**9), ("off", None),
                                                ("0", None)])
def test_parse_size(text, expected):
    assert parse_size(text, "x")[0] == expected


@pytest.mark.parametrize("text", ["abc", "-5G", "150%", "0%", "8X", ""])
def test_parse_size_rejects(text):
    with pytest.raises(ConfigError, match="expected a size"):
        parse_size(text, "$SWARM_MEMORY_LIMIT")


def test_share_of_ram():
    limit, how = parse_size("50%", "x")
    assert limit is None or (limit > 0 and "% of" in how)


def test_estimate_grows_with_workers_and_runs():
    small = load_scenario(TROUBLESHOOTING)
    big = load_scenario(TROUBLESHOOTING, overrides={"agents": {"workers": 1000}}, memory="off")
    assert _estimate(big).kernel > 100 * _estimate(small).kernel
    assert _estimate(small, 10**6).results >= 2 * 10**9


def test_estimate_bounds_the_graph_by_its_targets():
    sc = load_scenario(SCENARIOS / "troubleshooting.toml", overrides={"environment": {"params": {"services": 2**20}},
                                                                     "app_config": {"max_ticks": 0}}, memory="off")
    est = _estimate(sc)
    assert est.kernel < 10 * 2**30          # 5 actions x 2^20 services bound the graph, not unlimited ticks


def test_workers_over_the_limit_are_refused_at_load():
    with pytest.raises(ScenarioError) as info:
        load_scenario(TROUBLESHOOTING, overrides={"agents": {"workers": 10**6}}, memory="64M")
    text = str(info.value)
    assert info.value.field == "agents.workers"
    assert "a run needs about" in text and "over the memory limit of 64.0 MiB" in text and "--memory-limit" in text


def test_env_var_sets_the_limit(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "64M")
    with pytest.raises(ScenarioError, match="over the memory limit of 64.0 MiB"):
        load_scenario(TROUBLESHOOTING, overrides={"agents": {"workers": 10**6}})
    monkeypatch.setenv(ENV_VAR, "off")
    assert load_scenario(TROUBLESHOOTING, overrides={"agents": {"workers": 10**5}}).config.workers == 10**5
    monkeypatch.setenv(ENV_VAR, "lots")
    with pytest.raises(ConfigError, match=r"\$SWARM_MEMORY_LIMIT: got 'lots'"):
        memory_limit()


def test_runs_over_the_limit():
    sc = load_scenario(TROUBLESHOOTING)
    with pytest.raises(ConfigError) as info:
        check_memory(_estimate(sc, 10**6), (2**20, "1.0 MiB"))
    assert str(info.value).startswith("--runs: got 1000000: the runs need about")


def test_cli_refuses_too_many_runs_before_allocating(tmp_path, monkeypatch, capsys):
    isolate(monkeypatch, tmp_path)
    out = run_swarm(capsys, "eval", TROUBLESHOOTING, "-n", "100000", "--memory-limit", "16M", "-q")
    assert_one_error_line(out, "--runs: got 100000", "over the memory limit of 16.0 MiB", code=1)
    out = run_swarm(capsys, "eval", TROUBLESHOOTING, "-n", "3", "--memory-limit", "16M", "-q")
    assert out.code == 0, out.err


def test_cli_flag_overrides_env(tmp_path, monkeypatch, capsys):
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv(ENV_VAR, "1M")
    out = run_swarm(capsys, "eval", TROUBLESHOOTING, "-n", "2", "-q", "--memory-limit", "off")
    assert out.code == 0, out.err
    out = run_swarm(capsys, "run", TROUBLESHOOTING, "-q", "--memory-limit", "1K")
    assert_one_error_line(out, "a run needs about", code=1)
