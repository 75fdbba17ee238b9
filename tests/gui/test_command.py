"""``swarm gui`` and ``swarm --gui`` as a user runs them: a free 127.0.0.1
port, the URL printed, the page and the API served, Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.request

import pytest

from tests.conftest import OutputReader, stop_process, wait_for, with_default_sigint


def _serve(swarm_exe, subprocess_env, tmp_path, *args):
    env = {**subprocess_env, "SWARM_HOME": str(tmp_path)}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)              # no desktop: no browser is opened
    return subprocess.Popen(with_default_sigint([swarm_exe, *args]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=tmp_path)


@pytest.mark.parametrize("argv", [["gui", "--no-browser"], ["--gui"]])
def test_serves_on_a_free_local_port_and_stops_on_ctrl_c(swarm_exe, subprocess_env, tmp_path, argv):
    proc = _serve(swarm_exe, subprocess_env, tmp_path, *argv)
    try:
        out = OutputReader(proc.stdout)
        url = wait_for(lambda: (m := re.search(r"http://127\.0\.0\.1:(\d+)/", out.text)) and m.group(0),
                       "the URL line")
        assert int(url.rsplit(":", 1)[1].strip("/")) > 0
        with urllib.request.urlopen(url + "api/scenarios", timeout=30) as r:
            names = {s["file"] for s in json.load(r)["scenarios"]}
        assert "troubleshooting.toml" in names
        with urllib.request.urlopen(url, timeout=30) as r:
            assert b"swarm-engine dashboard" in r.read()
        sid = next(s["id"] for s in json.load(urllib.request.urlopen(url + "api/scenarios", timeout=30))["scenarios"]
                   if s["file"] == "troubleshooting.toml")
        start = urllib.request.Request(url + "api/runs", method="POST", headers={"Content-Type": "application/json"},
                                       data=json.dumps({"scenario": sid, "ticks_per_second": 0.5}).encode())
        rid = json.load(urllib.request.urlopen(start, timeout=30))["id"]
        stream = urllib.request.urlopen(f"{url}api/runs/{rid}/events", timeout=30)   # a page watching it
        assert stream.readline().startswith(b"retry:")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "swarm gui: stopped" in out.finish()
        err = proc.stderr.read().decode() if proc.stderr is not None else ""
        assert "Traceback" not in err and "ERROR" not in err        # the open stream ended, not cancelled
        assert b"the dashboard is stopping" in stream.read()
        stream.close()
    finally:
        stop_process(proc)


def test_a_port_in_use_is_one_line(swarm_exe, subprocess_env, tmp_path):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        proc = subprocess.run([swarm_exe, "gui", "--no-browser", "--port", str(port)], capture_output=True,
                              text=True, env={**subprocess_env, "SWARM_HOME": str(tmp_path)}, timeout=60)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr


def test_a_missing_path_is_one_line(swarm_exe, subprocess_env, tmp_path):
    proc = subprocess.run([swarm_exe, "gui", "--no-browser", str(tmp_path / "nope")], capture_output=True,
                          text=True, env={**subprocess_env, "SWARM_HOME": str(tmp_path)}, timeout=60)
    assert proc.returncode == 1 and "no such scenario file or folder" in proc.stderr
