"""The real ``swarm`` console script, run as a subprocess.

The package must be installed (``pip install -e .``) so the script exists;
without it these tests are skipped, not failed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import swarm_engine
from swarm_engine import load_scenario, run_eval
from tests.paths import DATA, SCENARIOS, TROUBLESHOOTING


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


# ----------------------------------------------------------------------------- eval


class TestEval:
    def test_report(self, swarm, tmp_path):
        proc = swarm("eval", TROUBLESHOOTING, "-n", "200", "-o", "report.json")
        assert proc.returncode == 0, proc.stderr
        report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
        s, runs = report["summary"], report["runs"]
        assert s["runs"] == 200 == len(runs)
        assert s["successes"] == sum(r["success"] for r in runs)
        assert s["success_rate"] == pytest.approx(s["successes"] / 200)
        assert s["total_actions"] == sum(r["actions"] for r in runs)
        assert s["wall_seconds"] >= 0.0
        assert s["actions_per_sec"] is None or s["actions_per_sec"] > 0
        assert [r["seed"] for r in runs] == list(range(42, 242))
        for r in runs:
            assert {"seed", "success", "ticks", "actions"} <= set(r)
            assert isinstance(r["success"], bool) and r["ticks"] >= 1 and r["actions"] >= 1
        assert "Service Troubleshooting" in proc.stdout
        assert "report.json" in proc.stdout

    def test_report_matches_the_library(self, swarm, tmp_path):
        proc = swarm("eval", TROUBLESHOOTING, "-n", "50", "-s", "7", "-q", "-o", "r.json")
        assert proc.returncode == 0, proc.stderr
        runs = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["runs"]
        res = run_eval(load_scenario(TROUBLESHOOTING), 50, seed=7)
        np.testing.assert_array_equal([r["ticks"] for r in runs], res.ticks)
        np.testing.assert_array_equal([r["actions"] for r in runs], res.actions)
        np.testing.assert_array_equal([r["success"] for r in runs], res.success)

    def test_quiet(self, swarm, tmp_path):
        proc = swarm("eval", TROUBLESHOOTING, "-n", "20", "--quiet", "-o", "q.json")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "" and proc.stderr == ""
        assert json.loads((tmp_path / "q.json").read_text(encoding="utf-8"))["summary"]["runs"] == 20

    def test_verbose_prints_tick_snapshots(self, swarm):
        proc = swarm("eval", TROUBLESHOOTING, "-n", "2", "-v")
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
        assert "tick 0" in out and "tick 1" in out
        assert "w0 CheckStatus() -> " in out
        assert "next: " in out
        assert "run seed 42: " in out

    def test_trace(self, swarm, tmp_path):
        proc = swarm("eval", TROUBLESHOOTING, "-n", "5", "-q", "--trace", "trace.jsonl", "-o", "r.json")
        assert proc.returncode == 0, proc.stderr
        rows = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text(encoding="utf-8").splitlines()]
        report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
        assert len(rows) == report["summary"]["total_actions"]
        assert {r["seed"] for r in rows} == set(range(42, 47))
        first = rows[0]
        assert first["action"] == "CheckStatus" and first["tick"] == 0
        assert set(first).issuperset({"outcome", "target", "observation", "worker", "duration_ms"})
        assert all(r["outcome"] in ("ok", "fail", "error") for r in rows)

    def test_variant(self, swarm, tmp_path):
        proc = swarm("eval", DATA / "variants.toml", "--variant", "crowd", "-n", "10", "-q", "-o", "v.json")
        assert proc.returncode == 0, proc.stderr
        report = json.loads((tmp_path / "v.json").read_text(encoding="utf-8"))
        assert report["scenario"]["variant"] == "crowd"
        assert report["config_summary"]["worker_count"] == 8

    def test_directory_compares_scenarios(self, swarm, tmp_path):
        folder = tmp_path / "scenarios"
        folder.mkdir()
        shutil.copy(TROUBLESHOOTING, folder / "a.toml")
        shutil.copy(DATA / "minimal.toml", folder / "b.toml")
        proc = swarm("eval", folder, "-n", "10", "-o", "both.json")
        assert proc.returncode == 0, proc.stderr
        report = json.loads((tmp_path / "both.json").read_text(encoding="utf-8"))
        assert [r["scenario"]["name"] for r in report["scenarios"]] == ["Service Troubleshooting",
                                                                        "minimal troubleshooting"]
        assert "comparison" in proc.stdout

    def test_every_shipped_scenario(self, swarm, tmp_path):
        proc = swarm("eval", SCENARIOS, "-n", "20", "-q", "-o", "all.json")
        assert proc.returncode == 0, proc.stderr
        report = json.loads((tmp_path / "all.json").read_text(encoding="utf-8"))
        files = sorted(p.name for p in (SCENARIOS).glob("*.toml"))
        assert sorted(Path(r["scenario"]["file"]).name for r in report["scenarios"]) == files
        assert all(r["summary"]["runs"] == 20 for r in report["scenarios"])

    def test_python_environment(self, swarm, tmp_path):
        proc = swarm("eval", DATA / "vault.toml", "-n", "10", "-q", "-o", "vault.json")
        assert proc.returncode == 0, proc.stderr
        report = json.loads((tmp_path / "vault.json").read_text(encoding="utf-8"))
        assert report["summary"]["runs"] == 10
        assert set(report["summary"]["actions_by_kind"]) == {"scan", "open", "try"}

    def test_jobs_give_the_same_report_and_trace(self, swarm, tmp_path):
        """-j 1 and -j 3: the same report but for the clock and the manifest's
        jobs, and the same trace, byte for byte."""
        for j in ("1", "3"):
            proc = swarm("eval", TROUBLESHOOTING, "--variant", "complex", "-n", "500", "-q", "-j", j,
                         "-o", f"r{j}.json", "--trace", f"t{j}.jsonl")
            assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        one, three = (json.loads((tmp_path / f"r{j}.json").read_text(encoding="utf-8")) for j in "13")
        assert three["manifest"]["jobs"] == {"requested": 3, "used": 3, "mode": "threads", "reason": None}
        for j, report in zip("13", (one, three), strict=True):
            for key in ("wall_seconds", "actions_per_sec"):
                del report["summary"][key]
            del report["manifest"]["jobs"]
            assert report["manifest"].pop("trace") == str((tmp_path / f"t{j}.jsonl").resolve())
            for run in report["runs"]:
                del run["wall_seconds"]
        assert one == three
        assert (tmp_path / "t1.jsonl").read_bytes() == (tmp_path / "t3.jsonl").read_bytes()

    def test_jobs_from_the_config_and_why_one_core(self, swarm, tmp_path):
        """eval.jobs (here $SWARM_EVAL_JOBS) is -j's default; an eval asked for
        more that runs on one core says why, in one warning line."""
        proc = swarm("eval", TROUBLESHOOTING, "-n", "50", "-q", "-o", "t.json", env={"SWARM_EVAL_JOBS": "2"})
        assert proc.returncode == 0, proc.stderr
        assert json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))["manifest"]["jobs"]["used"] == 2
        proc = swarm("eval", DATA / "vault.toml", "-n", "10", "-q", "-j", "2")
        assert proc.returncode == 0
        assert stderr_lines(proc) == ["warning: vault: ran on one core: 10 runs of a Python environment are too "
                                      "few to pay for starting processes (at least 64)"]

    @pytest.mark.parametrize(("threshold", "code"), [("0.01", 0), ("0.99", 1)])
    def test_fail_under(self, swarm, threshold, code):
        # the maze variant succeeds in a few percent of runs
        proc = swarm("eval", DATA / "variants.toml", "--variant", "maze", "-n", "40", "-q",
                     "--fail-under", threshold)
        assert proc.returncode == code, proc.stderr


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["unknown_key.toml", "bad_syntax.toml", "cycle.toml", "unknown_metric.toml",
                                  "does_not_exist.toml"])
def test_broken_scenario_is_one_line(swarm, name):
    path = DATA / name
    proc = swarm("eval", path, "-n", "3")
    assert proc.returncode == 1
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0]
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    if path.exists():
        assert any(f"{path}:{n}:" in lines[0] for n in range(1, 100))


def test_broken_scenario_fails_before_any_run(swarm, tmp_path):
    # every file is validated before the first run; no report is written
    proc = swarm("eval", TROUBLESHOOTING, DATA / "unknown_key.toml", "-n", "3", "-o", "r.json")
    assert proc.returncode == 1
    assert not (tmp_path / "r.json").exists()


def test_debug_shows_the_traceback(swarm):
    proc = swarm("eval", DATA / "unknown_key.toml", env={"SWARM_DEBUG": "1"})
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "ScenarioError" in proc.stderr


@pytest.mark.parametrize("args", [("eval", str(TROUBLESHOOTING), "-n", "0"), ("eval",), ("no-such-command",)],
                         ids=["bad-option-value", "missing-argument", "unknown-command"])
def test_usage_errors_have_no_traceback(swarm, args):
    proc = swarm(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip()


# ----------------------------------------------------------------------------- small commands


def test_list_variants(swarm):
    proc = swarm("eval", DATA / "variants.toml", "--list-variants")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert str(DATA / "variants.toml") in lines[0]
    assert [line.split()[0] for line in lines[1:] if line.strip()] == ["crowd", "maze", "typo"]
    assert "Eight workers" in proc.stdout


def test_list_variants_without_any(swarm):
    proc = swarm("eval", DATA / "minimal.toml", "--list-variants")
    assert proc.returncode == 0
    assert "no variants" in proc.stdout


def test_version(swarm):
    proc = swarm("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"swarm-engine {swarm_engine.__version__}"


def test_help(swarm):
    proc = swarm("eval", "--help")
    assert proc.returncode == 0
    for option in ("--runs", "--seed", "--output", "--quiet", "--verbose", "--trace", "--list-variants"):
        assert option in proc.stdout


HEAVY = ("torch", "transformers", "peft", "llama_cpp", "httpx", "safetensors", "accelerate", "watchfiles")


@pytest.mark.parametrize("args", [["--help"], ["learn", "--help"], ["learn", "lora", "--help"],
                                  ["learn", "daemon", "--help"], ["llama", "--help"]])
def test_help_imports_nothing_heavy(subprocess_env, tmp_path, args):
    """Every command module is imported for --help; what a command needs (torch,
    llama.cpp, HTTP clients) waits until that command runs."""
    probe = ("import sys\nfrom swarm_engine.cli.main import main\n"
             f"code = main({args!r})\n"
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
             "sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env={**subprocess_env, "SWARM_HOME": str(tmp_path)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "[]"


# ----------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_keeps_finished_runs(swarm_exe, subprocess_env, tmp_path, jobs):
    """SIGINT stops between batches: the report holds the finished runs, exit 130;
    on two threads too (each stops when its batch returns, the finished prefix is kept).

    The child gets SIGINT's default disposition whatever pytest inherited (a
    background ``pytest &`` ignores it), the test sends the signal once the
    progress bar shows finished runs, and the child never outlives the test."""
    import re
    import signal

    from tests.conftest import OutputReader, stop_process, wait_for, with_default_sigint

    code = SCENARIOS / "code_exploration.toml"
    # FORCE_COLOR: rich draws its progress bar into the pipe as on a terminal ("N/100000 ok M")
    proc = subprocess.Popen(with_default_sigint([swarm_exe, "eval", str(code), "--variant", "large",
                                                 "-n", "100000", "-j", jobs, "-o", "report.json"]),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**subprocess_env, "SWARM_HOME": str(tmp_path), "FORCE_COLOR": "1"})
    try:
        out = OutputReader(proc.stdout)
        err = OutputReader(proc.stderr)
        finished = lambda: proc.poll() is not None or [
            n for n in re.findall(r"(\d+)/100000", out.text) if 0 < int(n) < 100000]
        wait_for(finished, "the progress bar to show finished runs")
        assert proc.poll() is None, err.finish()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130, err.finish()
        out.finish()
        stderr = err.finish()
    finally:
        stop_process(proc)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    summary = report["summary"]
    assert summary["stopped"] is True
    assert 0 < summary["runs"] < 100000
    assert "Traceback" not in stderr
    if jobs != "1":          # the finished prefix: the first runs of the eval, as one thread runs them
        res = run_eval(load_scenario(code, "large"), summary["runs"], jobs=1)
        np.testing.assert_array_equal([r["actions"] for r in report["runs"]], res.actions)
