"""Load a scenario, build a swarm, run it to its verdict.

Run: python docs/examples/01_run_scenario.py
"""

from pathlib import Path

from swarm_engine import Verdict, load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "troubleshooting.toml"

scenario = load_scenario(SCENARIO)                 # validated and compiled once
print(f"{scenario.name}: actions {scenario.actions}, {scenario.config.workers} worker(s)")

swarm = scenario.swarm(seed=7)                     # one run; the seed fixes everything
result = swarm.run()
print(f"seed {result.seed}: {result.verdict.reason} after {result.ticks} ticks, "
      f"{result.actions} actions ({result.failed_actions} failed)")
assert result.verdict == Verdict.SUCCESS

# The same seed gives the same run, bit for bit.
again = scenario.swarm(seed=7).run()
assert (again.ticks, again.actions) == (result.ticks, result.actions)

# Override settings without editing the file (same shape as the TOML tables).
crowd = load_scenario(SCENARIO, overrides={"agents": {"workers": 4},
                                           "app_config": {"selection": {"strategy": "thompson"}}})
print(f"4 workers, thompson: {crowd.swarm(seed=7).run().ticks} ticks")
