"""``swarm-bench --quick``: the tool end to end, with its JSON."""

from __future__ import annotations

import json

import pytest

from swarm_engine.cli.bench import main


@pytest.mark.benchmark(group="cli")
def test_swarm_bench_quick(benchmark, tmp_path):
    out = tmp_path / "bench.json"
    # every suite but llm (minutes with a real model: benchmarks/test_llm_*.py)
    args = ["--quick", "--json", str(out)] + [a for s in ("exploration", "peers", "python-env", "learn")
                                              for a in ("--suite", s)]
    code = benchmark.pedantic(main, args=(args,), rounds=1, iterations=1)
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["suites"]) == {"exploration", "peers", "python-env", "learn"}
    assert report["machine"]["cores"] >= 1
    for t in report["suites"]["exploration"]["troubleshooting"]["rows"]:
        assert t["identical_runs"] == t["reference_runs"] > 0
    assert report["seconds"] < 60, "--quick should finish in seconds"
