"""``swarm eval DIR`` and ``--trace``: bad files and bad paths are one line, the rest go on.

A directory eval runs the folder's own ``*.toml`` files (not its
subfolders); a file that cannot be loaded or run is one ``error:`` line,
the others still run and are reported, and the command exits 1 at the end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.paths import DATA, TROUBLESHOOTING


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("error: ")]


@pytest.fixture
def folder(tmp_path) -> Path:
    """a.toml (good), b.toml (an unknown key), c.toml (a Python environment that raises), sub/d.toml (good)."""
    f = tmp_path / "scenarios"
    (f / "sub").mkdir(parents=True)
    shutil.copy(TROUBLESHOOTING, f / "a.toml")
    shutil.copy(DATA / "unknown_key.toml", f / "b.toml")
    vault = (DATA / "vault.toml").read_text(encoding="utf-8")
    (f / "c.toml").write_text(vault.replace("envs_example:Vault", "envs_example:NanDuration"), encoding="utf-8")
    shutil.copy(DATA / "minimal.toml", f / "sub" / "d.toml")
    return f


def test_a_directory_eval_reports_bad_files_and_goes_on(swarm, folder, tmp_path):
    proc = swarm("eval", folder, "-n", "5", "-o", "r.json", "--trace", "t.jsonl")
    assert proc.returncode == 1
    lines = errors(proc)
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {folder / 'b.toml'}:23: app_config.max_tick: unknown field")
    assert lines[1].startswith(f"error: {folder / 'c.toml'}: environment 'python:tests.envs_example:NanDuration': "
                               "NanDuration.step() at tick 0 returned a malformed StepResult: durations")
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [Path(r["scenario"]["file"]).name for r in report["scenarios"]] == ["a.toml"]   # sub/ is not searched
    assert [Path(e["file"]).name for e in report["errors"]] == ["b.toml", "c.toml"]
    assert (tmp_path / "t.0.jsonl").exists()                  # traces are numbered by file
    assert "Service Troubleshooting" in proc.stdout


def test_a_subfolder_is_evaluated_when_named(swarm, folder):
    proc = swarm("eval", folder / "sub", "-n", "3", "-q")
    assert proc.returncode == 0, proc.stderr


def test_an_empty_directory_is_one_line(swarm, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = swarm("eval", tmp_path / "empty", "-n", "3")
    assert proc.returncode == 1
    assert errors(proc) == [f"error: {tmp_path / 'empty'}: no *.toml scenario files in this directory "
                            "(subdirectories are not searched)"]


def test_list_variants_of_a_directory_goes_on(swarm, folder):
    (folder / "z.toml").write_text("not [ toml", encoding="utf-8")
    proc = swarm("eval", folder, "--list-variants")
    assert proc.returncode == 1
    assert len(errors(proc)) == 1 and "z.toml:1: TOML syntax error" in errors(proc)[0]
    assert "a.toml" in proc.stdout


def test_files_named_one_by_one_still_fail_before_any_run(swarm, tmp_path):
    proc = swarm("eval", TROUBLESHOOTING, DATA / "unknown_key.toml", "-n", "3", "-o", "r.json")
    assert proc.returncode == 1 and len(errors(proc)) == 1
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("flag", ["--trace", "-o"])
def test_an_unwritable_output_path_is_one_line(swarm, tmp_path, flag):
    (tmp_path / "a_file").write_text("", encoding="utf-8")
    target = tmp_path / "a_file" / "out.jsonl"            # under a regular file: never writable, even as root
    proc = swarm("eval", TROUBLESHOOTING, "-n", "3", "-q", flag, target)
    assert proc.returncode == 1
    lines = errors(proc)
    assert len(lines) == 1 and str(target) in lines[0] and "cannot write" in lines[0], proc.stderr


@pytest.mark.parametrize(("env_class", "fragment"), [
    ("BrokenInit", "BrokenInit.__init__() raised ValueError"),
    ("BrokenReset", "BrokenReset.reset() with seed 42 raised KeyError"),
    ("BadActionNames", "BadActionNames.action_names must be a non-empty list"),
    ("TooManyDiscoveries", "more than max_discoveries = 2"),
])
def test_a_misbehaving_python_environment_is_one_line(swarm, tmp_path, env_class, fragment):
    vault = (DATA / "vault.toml").read_text(encoding="utf-8")
    path = tmp_path / "v.toml"
    path.write_text(vault.replace("envs_example:Vault", f"envs_example:{env_class}"), encoding="utf-8")
    proc = swarm("eval", path, "-n", "2", "-q")
    assert proc.returncode == 1
    lines = errors(proc)
    assert len(lines) == 1 and fragment in lines[0] and str(path) in lines[0], proc.stderr


def test_target_name_raising_under_trace_is_one_line(swarm, tmp_path):
    vault = (DATA / "vault.toml").read_text(encoding="utf-8")
    path = tmp_path / "v.toml"
    path.write_text(vault.replace("envs_example:Vault", "envs_example:BrokenTargetName"), encoding="utf-8")
    assert swarm("eval", path, "-n", "2", "-q").returncode == 0
    proc = swarm("eval", path, "-n", "2", "-q", "--trace", "t.jsonl")
    assert proc.returncode == 1
    lines = errors(proc)
    assert len(lines) == 1 and "BrokenTargetName.target_name() of target" in lines[0]
    assert "(writing the trace: seed 42, tick" in lines[0]

