"""``swarm eval --gui``: a command-line eval watched in the dashboard it serves
while it runs (a real process, a real server, the page's API and event stream)."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from swarm_engine.eval.builtin import builtin_scenario
from tests.conftest import OutputReader, stop_process, wait_for
from tests.paths import DATA

pytest.importorskip("uvicorn", reason="the dashboard needs the gui extra: pip install -e '.[gui]'")


def _eval(swarm_exe, subprocess_env, tmp_path, *args, scenario: Path | None = None) -> subprocess.Popen:
    env = {**subprocess_env, "SWARM_HOME": str(tmp_path)}
    path = scenario or builtin_scenario("troubleshooting")
    return subprocess.Popen([swarm_exe, "eval", str(path), "--gui", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env, cwd=tmp_path)


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def _events(url: str) -> list[dict]:
    """The server-sent events of ``url`` until the stream ends."""
    out = []
    with urllib.request.urlopen(url, timeout=60) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("data:"):
                out.append(json.loads(line[5:]))
    return out


def test_the_page_watches_the_eval_to_its_report(swarm_exe, subprocess_env, tmp_path):
    out_file = tmp_path / "elsewhere" / "report.json"
    # a Python environment (~1 ms a run): the eval lasts seconds, its report stays small
    proc = _eval(swarm_exe, subprocess_env, tmp_path, "-n", "3000", "--seed", "7", "-j", "1", "-o", str(out_file),
                 scenario=DATA / "vault.toml")
    try:
        err = OutputReader(proc.stderr)
        url = wait_for(lambda: (m := re.search(r"http://127\.0\.0\.1:\d+/#/eval/(\w+)", err.text)) and m.group(0),
                       "the eval's URL line")
        base, jid = url.split("#/eval/")
        info = _get(f"{base}api/evals/{jid}")
        assert info["origin"] == "cli" and info["runs"] == 3000 and info["seed"] == 7
        assert jid in [j["id"] for j in _get(f"{base}api/evals")["evals"]]
        events = _events(f"{base}api/evals/{jid}/events")
        assert proc.wait(timeout=300) == 0            # not a terminal: the server ends with the eval
        kinds = [e["type"] for e in events]
        assert kinds[-1] == "end" and "done" in kinds
        progress = [e for e in events if e["type"] == "progress"]
        assert progress[-1]["done"] == 3000
        assert all(a["done"] <= b["done"] for a, b in zip(progress, progress[1:], strict=False))
        done = next(e for e in events if e["type"] == "done")
        saved = json.loads(out_file.read_text())
        folder = Path(_get_folder(tmp_path))
        copy = json.loads((folder / done["report"]).read_text())
        assert copy["summary"] == saved["summary"] and copy["runs"] == saved["runs"]
        assert done["summary"]["runs"] == 3000 and done["summary"]["successes"] == saved["summary"]["successes"]
    finally:
        stop_process(proc)


def _get_folder(home: Path) -> str:
    found = list(home.rglob("cli-*.json"))
    assert len(found) == 1, found
    return str(found[0].parent)


def test_stop_on_the_page_is_ctrl_c_for_the_command_line(swarm_exe, subprocess_env, tmp_path):
    # a Python environment: ~10^3 runs/s, so the eval is still going when Stop lands
    proc = _eval(swarm_exe, subprocess_env, tmp_path, "-n", "1000000", "-j", "1", scenario=DATA / "vault.toml")
    try:
        err = OutputReader(proc.stderr)
        out = OutputReader(proc.stdout)
        url = wait_for(lambda: (m := re.search(r"http://127\.0\.0\.1:\d+/#/eval/(\w+)", err.text)) and m.group(0),
                       "the eval's URL line")
        base, jid = url.split("#/eval/")
        wait_for(lambda: (_get(f"{base}api/evals/{jid}")["progress"] or {}).get("done", 0) > 0, "some runs done")
        stop = urllib.request.Request(f"{base}api/evals/{jid}/stop", method="POST", data=b"{}",
                                      headers={"Content-Type": "application/json"})
        urllib.request.urlopen(stop, timeout=30).close()
        assert proc.wait(timeout=120) == 130
        text = out.finish()
        assert "stopped (Stop on the dashboard):" in text and "of 1000000 runs finished" in text
        assert "Traceback" not in err.finish()
    finally:
        stop_process(proc)


def test_a_scenario_that_does_not_load_serves_no_dashboard(swarm_exe, subprocess_env, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[task]\ngoal = 1\n")
    env = {**subprocess_env, "SWARM_HOME": str(tmp_path)}
    done = subprocess.run([swarm_exe, "eval", str(bad), "--gui"], capture_output=True, text=True, env=env,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert "watch it at" not in done.stderr and done.stderr.count("\n") == 1 and "bad.toml" in done.stderr


def test_without_the_gui_extra_it_is_one_line(monkeypatch, capsys):
    import sys

    from swarm_engine.cli.main import main

    monkeypatch.setitem(sys.modules, "swarm_engine.gui.watch", None)      # import fails as without the extra
    assert main(["eval", str(builtin_scenario("troubleshooting")), "-n", "10", "--gui"]) == 1
    err = capsys.readouterr().err
    assert "--gui needs the 'gui' extra: pip install 'swarm-engine[gui]'" in err and err.count("\n") == 1


def test_swarm_bench_measures_what_watching_costs(tmp_path, capsys):
    """``swarm-bench --suite gui``: the three ways, each watched one with its
    stream read and its runs checked against the unwatched eval."""
    from swarm_engine.cli.bench import main as bench

    out = tmp_path / "bench.json"
    assert bench(["--quick", "--suite", "gui", "--repeat", "1", "--json", str(out)]) == 0
    gui = json.loads(out.read_text())["suites"]["gui"]
    assert [r["how"] for r in gui["rows"]] == ["unwatched", "page", "command line"]
    assert gui["identical_runs"] == gui["runs"] > 0 and gui["limit"] == 1.05
    assert all(r["events"] >= 2 for r in gui["rows"][1:])       # at least a progress and the end
    assert "gui: the troubleshooting eval" in capsys.readouterr().out


def test_a_gui_port_in_use_is_one_line_naming_the_flag(swarm_exe, subprocess_env, tmp_path):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        env = {**subprocess_env, "SWARM_HOME": str(tmp_path)}
        done = subprocess.run([swarm_exe, "eval", str(builtin_scenario("troubleshooting")), "-n", "10", "--gui",
                               "--gui-port", str(port)], capture_output=True, text=True, env=env, timeout=120,
                              stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert done.stderr == f"error: --gui-port: cannot listen on 127.0.0.1:{port}: Address already in use\n"
