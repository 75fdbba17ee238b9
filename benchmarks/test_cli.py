"""``swarm-bench --quick``: the whole tool end to end, with its JSON."""

from __future__ import annotations

import json

import pytest

from swarm_engine.cli.bench import main


@pytest.mark.benchmark(group="cli")
def test_swarm_bench_quick(benchmark, tmp_path):
    out = tmp_path / "bench.json"
    code = benchmark.pedantic(main, args=(["--quick", "--json", str(out)],), rounds=1, iterations=1)
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["suites"]) == {"troubleshooting", "exploration", "swarm"}
    assert report["machine"]["cores"] >= 1
    t = report["suites"]["troubleshooting"]
    assert t["identical_runs"] == t["reference_runs"] > 0
    assert report["seconds"] < 60, "--quick should finish in seconds"
