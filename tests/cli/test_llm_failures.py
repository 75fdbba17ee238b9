"""LLM failures through the command line: no server at all (one line, exit 1,
or --llm-fallback: a warning and a bandit-only eval), and a server that dies
in the middle of an eval (the eval finishes on the bandit and says when and why).

The mid-eval test needs a real llama-server with the small model (the 'llm'
and 'server' extras); without them it is skipped with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swarm_engine.llm.models import server_unavailable
from swarm_engine.llm.server import LlamaServer, free_port
from tests.conftest import wait_for
from tests.paths import ROOT

LLM_SCENARIO = ROOT / "scenarios" / "llm" / "troubleshooting_llm.toml"


@pytest.fixture
def swarm(subprocess_env, tmp_path):
    """``swarm ARGS...`` as a subprocess in a temporary directory with its own home."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**subprocess_env, "SWARM_HOME": str(home)}
    argv = [sys.executable, "-m", "swarm_engine.cli.main"]

    def run(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*argv, *map(str, args)], capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=timeout)

    run.popen = lambda *args: subprocess.Popen([*argv, *map(str, args)], stdout=subprocess.PIPE,  # type: ignore
                                               stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    return run


def lines(text: str) -> list[str]:
    return [x for x in text.splitlines() if x.strip()]


class TestNoServer:
    def test_one_line_and_exit_1(self, swarm):
        url = f"http://127.0.0.1:{free_port()}"
        proc = swarm("eval", LLM_SCENARIO, "-n", "2", "--endpoint", url)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        err = lines(proc.stderr)
        assert len(err) == 1, proc.stderr
        assert f"{url}/health" in err[0] and "connection refused" in err[0]
        assert "swarm llama start" in err[0]
        assert "Traceback" not in proc.stderr + proc.stdout

    def test_run_checks_too(self, swarm):
        url = f"http://127.0.0.1:{free_port()}"
        proc = swarm("run", LLM_SCENARIO, "-q", "--endpoint", url)
        assert proc.returncode == 1
        err = lines(proc.stderr)
        assert len(err) == 1 and f"{url}/health" in err[0] and "swarm llama start" in err[0], proc.stderr

    def test_fallback_runs_on_the_bandit(self, swarm, tmp_path):
        url = f"http://127.0.0.1:{free_port()}"
        proc = swarm("eval", LLM_SCENARIO, "-n", "2", "--endpoint", url, "--llm-fallback", "-o", "r.json")
        assert proc.returncode == 0, proc.stderr
        err = lines(proc.stderr)
        assert len(err) == 1 and err[0].startswith("warning:") and "bandit" in err[0], proc.stderr
        assert "unavailable" in proc.stdout
        llm = json.loads((tmp_path / "r.json").read_text())["summary"]["llm"]
        assert llm["available"] is False and f"{url}/health" in llm["unavailable_reason"]
        assert llm["applied"] == llm["invocations"] == 0 and llm["decisions_per_sec"] is None

    def test_fallback_from_config(self, swarm, tmp_path):
        cfg = tmp_path / "home" / ".swarm-engine"
        cfg.mkdir(parents=True)
        (cfg / "config.toml").write_text("[eval]\nllm_fallback = true\n")
        proc = swarm("eval", LLM_SCENARIO, "-n", "1", "--endpoint", f"http://127.0.0.1:{free_port()}")
        assert proc.returncode == 0 and "warning:" in proc.stderr, proc.stderr
        proc = swarm("eval", LLM_SCENARIO, "-n", "1", "--no-llm-fallback",
                     "--endpoint", f"http://127.0.0.1:{free_port()}")
        assert proc.returncode == 1

    def test_help_documents_the_flag(self, swarm):
        assert "--llm-fallback" in swarm("eval", "--help").stdout
        assert "--llm-fallback" in swarm("run", "--help").stdout


@pytest.mark.skipif(server_unavailable() is not None, reason=server_unavailable() or "")
@pytest.mark.slow
def test_server_dies_mid_eval(swarm, tmp_path):
    """`swarm llama stop` (SIGTERM) once the server has answered a few
    decisions: the eval goes on with the bandit, exits 0, warns with the count
    of failed decisions, and the report says when and why."""
    srv = LlamaServer("dies", home=tmp_path / "srv")
    srv.start(port=free_port(), parallel=4, kvu=False, threads=1, ctx_size=4096, timeout=60)
    try:
        proc = swarm.popen("eval", LLM_SCENARIO, "-n", "8", "--endpoint", srv.url, "-o", "r.json")
        try:
            wait_for(lambda: srv.log_path.read_text(errors="replace").count("stop processing") >= 6
                     or proc.poll() is not None, "the server to answer six decisions", timeout=120)
            assert proc.poll() is None, "the eval ended before the server was stopped: " + proc.stderr.read()
            srv.stop()
            out, err = proc.communicate(timeout=120)       # a deadline against a stall, not a speed check
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        srv.stop()
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err
    warning = [x for x in lines(out) if x.startswith("warning:")]
    llm = json.loads((tmp_path / "r.json").read_text())["summary"]["llm"]
    assert llm["available"] is True and llm["failed"] > 0 and llm["applied"] + llm["unsure"] + llm["taken"] > 0
    assert len(warning) == 1 and f"{llm['failed']} LLM decisions failed" in warning[0], out
    first = llm["first_failure"]
    assert first["cause"] in ("refused", "closed", "unavailable") and first["message"]
    assert 0 <= first["run"] < 8 and first["seed"] == 42 + first["run"] and first["tick"] >= 0
    assert sum(llm["failed_by_cause"].values()) == llm["failed"]
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["runs"] == 8


def test_progress_column_and_lines_show_the_models_work():
    from swarm_engine.cli.eval_cmd import LlmColumn, llm_lines
    from swarm_engine.eval.runner import unavailable_summary
    from swarm_engine.llm.protocol import ERROR_TRANSIENT, Decision
    from swarm_engine.llm.stats import LlmStats

    st = LlmStats()
    st.start_clock()
    st.in_flight, st.applied = 3, 5
    assert str(LlmColumn(st).render(None)).startswith("llm 3 in flight, 5 applied (")
    st.count_failed(Decision(0, None, error=ERROR_TRANSIENT, message="POST u: ConnectError: connection refused"),
                    seed=42, tick=7)
    assert "1 failed" in str(LlmColumn(st).render(None))
    line, warning = llm_lines(st.summary())
    assert "5 applied" in line and "1 failed" in line and "applied decisions/s" in line
    assert warning is not None and warning.startswith("1 LLM decisions failed (refused 1)")
    assert "run 0 (seed 42) at tick 7" in warning
    line, warning = llm_lines(unavailable_summary("x: connection refused"))
    assert "unavailable" in line and warning and "connection refused" in warning
