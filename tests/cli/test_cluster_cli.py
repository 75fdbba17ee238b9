"""``swarm eval --cluster`` as a user meets its errors: one line each, exit 1, before any run."""

from __future__ import annotations

import pytest

from tests.paths import TROUBLESHOOTING


def _one_error_line(res) -> str:
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 1, res.stderr
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_without_ray_it_says_how_to_install_it(swarm, subprocess_env, tmp_path):
    shim = tmp_path / "no_ray"
    (shim / "ray").mkdir(parents=True)
    (shim / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {"PYTHONPATH": f"{shim}:{subprocess_env['PYTHONPATH']}"}
    line = _one_error_line(swarm("eval", TROUBLESHOOTING, "-n", "5", "--cluster", "ray", env=env))
    assert "--cluster needs Ray, which is not installed: pip install 'swarm-engine[cluster]'" in line


@pytest.mark.parametrize(("value", "expected"), [
    ("rey", "--cluster: expected ray, auto or ray://HOST:PORT, got 'rey'"),
    ("ray://h:0", "--cluster: port '0' of 'h:0' is not a number in 1..65535"),
])
def test_a_bad_value_is_one_line(swarm, value, expected):
    assert expected in _one_error_line(swarm("eval", TROUBLESHOOTING, "-n", "5", "--cluster", value))


def test_an_unreachable_address_is_one_line(swarm):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[cluster]' (.ci/run installs it)")
    from tests.cluster.conftest import free_port

    port = free_port()                     # nothing listens there
    line = _one_error_line(swarm("eval", TROUBLESHOOTING, "-n", "5", "--cluster", f"ray://127.0.0.1:{port}"))
    assert f"cannot reach the Ray cluster at ray://127.0.0.1:{port}" in line


def test_trace_and_cluster_do_not_mix(swarm, tmp_path):
    line = _one_error_line(swarm("eval", TROUBLESHOOTING, "-n", "5", "--cluster", "ray", "--trace",
                                 tmp_path / "t.jsonl"))
    assert "--trace" in line and "--cluster" in line


def test_learn_once_takes_the_same_cluster_values(swarm):
    line = _one_error_line(swarm("learn", "once", TROUBLESHOOTING, "--cluster", "rey"))
    assert "--cluster: expected ray, auto or ray://HOST:PORT, got 'rey'" in line
