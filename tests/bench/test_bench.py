"""swarm-bench: the suites compute the right things (no timing is asserted).

The equivalence claims of docs/benchmarks.md are tested here at small sizes:
the Mesa model and the numpy environment produce exactly the runs of the
engine, the synthetic learning store is what record_session would leave,
and the CLI writes its JSON and plots. Suites that need an optional extra
skip with the reason when it is missing.
"""

from __future__ import annotations

import importlib.util
import io
import json

import numpy as np
import pytest
from rich.console import Console

from swarm_engine._reference.envs import grid_blocked
from swarm_engine.bench import learn, llm_suite, peers, pyenv, runner, tables
from swarm_engine.bench.equivalence import MismatchError, check_final_state, check_runs
from swarm_engine.bench.gates import seeds
from swarm_engine.bench.selectors import overrides
from swarm_engine.bench.settings import Settings
from swarm_engine.bench.workloads import grid, troubleshooting
from swarm_engine.cli.bench import main
from swarm_engine.errors import ConfigError

needs_mesa = pytest.mark.skipif(importlib.util.find_spec("mesa") is None,
                                reason="Mesa is not installed (pip install 'swarm-engine[peers]')")
needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="matplotlib is not installed (pip install 'swarm-engine[bench]')")

TINY = Settings.quick_settings().with_(
    runs=500, reference_runs=50, eval_runs=(200,), explore_runs=100, explore_reference_runs=20, workers=200,
    grid=40, reference_grid=12, reference_workers=12, scale_workers=(10, 100), scale_workers_grid=40,
    scale_ticks=10, scale_grids=(20, 40), scale_grid_workers=20, peer_runs=300, peer_reference_runs=40,
    peer_mesa_runs=30, pyenv_grid=20, pyenv_workers=(5, 50), learn_sessions=(3, 8), learn_train_runs=20,
    learn_heldout_runs=40, learn_episodes=5, jobs_runs=2_000, repeat=1)


# ---------------------------------------------------------------- settings and suite names
class TestSettings:
    def test_quick_and_tiny_are_valid(self):
        Settings().validate()
        Settings.quick_settings().validate()
        TINY.validate()

    @pytest.mark.parametrize("change", [dict(repeat=0), dict(scale_workers=()), dict(learn_sessions=(0,)),
                                        dict(block_rate=1.0), dict(scale_grids=(20_000,)), dict(jobs=(0, 2)),
                                        dict(jobs_runs=0)])
    def test_bad_sizes_are_one_line_errors(self, change):
        with pytest.raises(ConfigError):
            Settings().with_(**change).validate()

    def test_resolve_suites_and_parts(self):
        assert list(runner.resolve(None)) == list(runner.SUITES)
        assert list(runner.resolve(["all", "peers"])) == list(runner.SUITES)
        assert runner.resolve(["graph", "troubleshooting"]) == {"exploration": ["troubleshooting", "graph"]}
        assert runner.resolve(["learn", "exploration"]) == {"exploration": None, "learn": None}
        with pytest.raises(ConfigError, match="unknown suite 'nope'"):
            runner.resolve(["nope"])


# ---------------------------------------------------------------- peers: Mesa == reference == native
@needs_mesa
class TestMesaModel:
    @pytest.mark.parametrize("ov", [None, overrides("ucb1")], ids=["troubleshooting", "16x4"])
    def test_same_runs_as_the_engine(self, ov):
        from swarm_engine.bench import peers_mesa

        wl = troubleshooting(overrides=ov)
        s = seeds(300)
        mesa_rows = peers_mesa.run_seeds(wl, s)
        ref_rows = wl.reference().run_batch(s)
        assert mesa_rows == ref_rows
        native = wl.native()
        from swarm_engine.bench.measure import native_batch

        out, _ = native_batch(native, s)
        assert check_runs("mesa", s, out, mesa_rows) == 300

    def test_it_is_a_mesa_model_with_agents(self):
        import mesa

        from swarm_engine.bench import peers_mesa

        wl = troubleshooting(overrides=overrides("ucb1"))
        m = peers_mesa.TroubleshootingModel(wl.rules, wl.binding, wl.config, 7)
        assert isinstance(m, mesa.Model)
        assert len(m.agents_by_type[peers_mesa.Worker]) == 4
        assert len(m.agents_by_type[peers_mesa.Service]) == 16
        while m.running:
            m.step()
        assert m.steps == m.result().ticks > 0

    def test_unsupported_workloads_are_refused(self):
        from swarm_engine.bench import peers_mesa

        wl = troubleshooting(overrides=overrides("thompson"))
        with pytest.raises(ValueError, match="does not implement"):
            peers_mesa.TroubleshootingModel(wl.rules, wl.binding, wl.config, 1)

    def test_a_wrong_model_fails_the_check(self, monkeypatch):
        from swarm_engine.bench import peers_mesa

        monkeypatch.setattr(peers_mesa.Service, "diagnose", lambda self: 0)     # never diagnoses
        wl = troubleshooting()
        s = seeds(20)
        with pytest.raises(MismatchError):
            check_runs("mesa", s, peers.result_columns(wl.reference().run_batch(s)),
                       peers_mesa.run_seeds(wl, s))

    def test_suite_reports_ratios_and_common_counts(self):
        r = peers.run(TINY)
        for w in r["workloads"]:
            assert w["mesa"]["runs"] == 30 and w["reference"]["runs"] == 40
            assert w["common_runs"] == 30 and 0 < w["common_successes"] <= 30
            assert w["ratio_mesa"]["median"] > 0 and w["ratio_reference"]["median"] > 0


def test_peers_without_mesa_skips_the_mesa_rows(monkeypatch):
    monkeypatch.setattr(peers, "mesa_skip_reason", lambda: peers.MESA_SKIP)
    r = peers.run(TINY.with_(peer_runs=100, peer_reference_runs=10))
    assert all(w["mesa"] == {"skipped": peers.MESA_SKIP} for w in r["workloads"])
    console = Console(file=io.StringIO(), width=200)
    console.print(tables.peers_table(r))
    assert "skipped: Mesa is not installed" in console.file.getvalue()


# ---------------------------------------------------------------- python-env: numpy env == native env
class TestNumpyGrid:
    def test_blocked_cells_match_the_native_hash(self):
        env = pyenv.NumpyGrid(50, 50, 0.3)
        rng = np.random.default_rng(0)
        for seed in (0, 42, 2 ** 64 - 1):
            env.reset(seed)
            cells = rng.integers(0, 2500, 200)
            assert env.blocked(cells).tolist() == [grid_blocked(seed, int(c), 0.3) for c in cells]

    @pytest.mark.parametrize("shape", ["corner", "spread"])
    def test_same_graph_as_the_native_env(self, shape):
        from swarm_engine.core.environment import EnvironmentBinding
        from swarm_engine.core.orchestrator import Swarm

        wl = grid(30, 25, "ucb1", shape)
        env = pyenv.NumpyGrid(30, 30, 0.1)
        py = Swarm(wl.rules, EnvironmentBinding.from_python(env, ["Explore"]), wl.config, seed=5)
        nat = Swarm(wl.rules, wl.binding, wl.config, seed=5)
        py.run()
        nat.run()
        check_final_state("numpy vs native", nat.kernel, py.kernel)
        assert py.kernel.total_fail > 0

    def test_suite_rows(self):
        r = pyenv.run(TINY)
        assert [row["workers"] for row in r["rows"]] == [5, 50]
        assert all(row["identical"] and row["actions"] > 0 for row in r["rows"])


# ---------------------------------------------------------------- learn: the synthetic store
class TestLearnStore:
    def test_bulk_sessions_equal_what_record_session_leaves(self, tmp_path):
        st = learn.build_store(tmp_path, 9, episodes=4, real_sessions=3)
        assert st.count == 9 and st.bulk_count == 6
        sessions = st.store.sessions(st.key)
        assert len(sessions) == 9
        real_meta, _ = st.store.load_session(sessions[0])
        bulk_meta, _ = st.store.load_session(sessions[-1])
        assert set(real_meta) == set(bulk_meta)
        assert bulk_meta["scenario_path"] == real_meta["scenario_path"]
        rebuilt, n = learn.rebuild_stats(st.store, st.key)
        assert n == 9
        assert rebuilt.to_builtins() == st.store.load_stats(st.key).to_builtins()
        assert st.store.load_stats(st.key).episodes == 9 * 4

    def test_suite_rows(self):
        r = learn.run(TINY)
        assert [row["sessions"] for row in r["rows"]] == [3, 8]
        assert r["rows"][1]["episodes"] == 8 * TINY.learn_episodes
        assert all(row["candidates"] and row["learn_once_s"]["median"] > 0 for row in r["rows"])


# ---------------------------------------------------------------- llm: skips cleanly
def test_llm_suite_skips_with_the_reason(monkeypatch):
    monkeypatch.setattr(llm_suite, "skip_reason", lambda: "needs the 'llm' and 'server' extras: test")
    report = runner.run_suites(TINY, ["llm"])
    assert report["suites"]["llm"] == {"skipped": "needs the 'llm' and 'server' extras: test"}
    assert tables.suite_tables(report) == ["llm: skipped: needs the 'llm' and 'server' extras: test"]


# ---------------------------------------------------------------- the CLI end to end
def test_cli_tiny_exploration_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Settings, "quick_settings", classmethod(lambda cls: TINY))
    out = tmp_path / "bench.json"
    assert main(["--quick", "--suite", "exploration", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    ex = report["suites"]["exploration"]
    assert list(ex) == ["troubleshooting", "jobs", "selectors", "swarm", "workers", "graph"]
    assert [r["workers"] for r in ex["workers"]["rows"]] == [10, 100]
    assert [r["grid"] for r in ex["graph"]["rows"]] == [20, 40]
    assert all(r["identical_runs"] > 0 for r in ex["troubleshooting"]["rows"])
    assert report["machine"]["cores"] >= 1 and "extras" in report["machine"]
    text = capsys.readouterr().out
    assert "scaling: workers" in text and "scaling: graph size" in text


@needs_matplotlib
def test_cli_plots(tmp_path, monkeypatch):
    monkeypatch.setattr(Settings, "quick_settings", classmethod(lambda cls: TINY))
    assert main(["--quick", "--suite", "workers", "--suite", "jobs", "--suite", "python-env", "--suite", "learn",
                 "--plot", str(tmp_path / "plots")]) == 0
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["exploration_jobs.png", "exploration_workers.png", "learn.png", "python_env.png"]
    assert all((tmp_path / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_cli_sizes_override_quick(tmp_path, monkeypatch):
    monkeypatch.setattr(Settings, "quick_settings", classmethod(lambda cls: TINY))
    out = tmp_path / "b.json"
    assert main(["--quick", "--suite", "troubleshooting", "--eval-runs", "100,300", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["suites"]["exploration"]["troubleshooting"]["rows"]
    assert [r["runs"] for r in rows] == [100, 300, 500]


def test_cli_jobs_curve(tmp_path, monkeypatch, capsys):
    """--jobs N: the curve 1..N, every row the same runs as jobs=1 (checked by the part)."""
    monkeypatch.setattr(Settings, "quick_settings", classmethod(lambda cls: TINY))
    out = tmp_path / "j.json"
    assert main(["--quick", "--suite", "jobs", "--jobs", "3", "--repeat", "2", "--json", str(out)]) == 0
    r = json.loads(out.read_text())["suites"]["exploration"]["jobs"]
    assert [row["jobs"] for row in r["rows"]] == [1, 2, 3]
    assert r["runs"] == r["identical_runs"] == 2_000 and r["rows"][0]["speedup_best"] == 1.0
    for row in r["rows"]:
        assert len(row["seconds"]["samples"]) == 2
        assert row["efficiency_best"] == pytest.approx(row["speedup_best"] / row["jobs"])
    assert "jobs: troubleshooting eval of 2,000 runs" in capsys.readouterr().out


def test_cli_errors(capsys):
    assert main(["--suite", "nope"]) == 1
    assert "unknown suite 'nope'" in capsys.readouterr().err
    assert main(["--scale-workers", "10,x"]) == 2
    assert main(["--quick", "--repeat", "0"]) == 2


def test_llm_server_failure_is_reported_and_exits_1(monkeypatch, capsys):
    pytest.importorskip("httpx", reason="httpx is not installed (the 'llm' extra)")
    from swarm_engine.bench import llm as llm_lib
    from swarm_engine.errors import LlmPermanentError

    def dead(_settings, _say):
        raise LlmPermanentError("llama-server exited with SIGSEGV")

    monkeypatch.setattr(llm_suite, "skip_reason", lambda: None)
    monkeypatch.setattr(llm_suite, "_server", dead)
    monkeypatch.setattr(llm_suite.llm_inprocess, "run", lambda _s, _say: {"skipped": "not in this test"})
    monkeypatch.setattr(llm_lib, "client_cost", lambda mode: {"invoker_us": 1.0, "bare_us": 1.0})
    assert main(["--quick", "--suite", "llm"]) == 1
    out, err = capsys.readouterr()
    assert "llm: failed: llama-server: LlmPermanentError: llama-server exited with SIGSEGV" in out
    assert "error: llm: llama-server: LlmPermanentError" in err


def test_cli_usage_error_is_one_line(capsys):
    assert main(["--repeat", "x"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: Invalid value for '--repeat'"), err
    assert "swarm-bench --help" in err[0]
