"""Run an eval (many seeded runs), build the JSON report, write it atomically.

Run: python docs/examples/04_eval_report.py
"""

import json
import tempfile
from pathlib import Path

from swarm_engine import build_report, load_scenario, run_eval
from swarm_engine.eval.report import write_json_atomic

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "troubleshooting.toml"

scenario = load_scenario(SCENARIO, overrides={"environment": {"params": {"error_rate": 0.2}}})


def progress(done, ok):
    if done == 1000:
        print(f"progress: {done} runs, {ok} successes")


result = run_eval(scenario, runs=1000, seed=42, progress=progress)   # seeds 42 .. 1041
print(f"{result.runs} runs, {int(result.success.sum())} successes, engine {result.engine_seconds:.4f} s")

report = build_report(result)
s = report["summary"]
lo, hi = s["success_rate_ci95"]
print(f"success {100 * s['success_rate']:.1f}% (95% CI {100 * lo:.1f} to {100 * hi:.1f})")
print(f"pass@4 {s['pass_at_k']['4']:.4f}  pass^4 {s['pass_hat_k']['4']:.4f}")
print(f"ticks mean {s['ticks']['mean']:.2f}, p95 {s['ticks']['p95']:.0f}")
print("first run:", {k: report["runs"][0][k] for k in ("seed", "success", "reason", "ticks", "actions")})

with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "report.json"
    write_json_atomic(path, report)                # temp file, fsync, rename
    assert json.loads(path.read_text())["summary"]["runs"] == 1000
    print("report written:", path.name)

with tempfile.TemporaryDirectory() as tmp:       # one JSON line per action event
    trace = Path(tmp) / "trace.jsonl"
    run_eval(scenario, runs=2, seed=42, trace=trace)
    print("trace:", trace.read_text().splitlines()[0])
