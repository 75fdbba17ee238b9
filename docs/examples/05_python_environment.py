"""A Python environment: the batched protocol written with numpy.

The engine calls step() once per tick with every worker's action as arrays,
so Python costs are paid per tick, not per action. A scenario names the class
with env_type = "python:package.module:Class"; this script defines it in
__main__, so the scenario below says "python:__main__:Vault".

Run: python docs/examples/05_python_environment.py
"""

import numpy as np

from swarm_engine import ActionBatch, DependencyGraph, EnvironmentBinding, StepResult, Swarm, SwarmConfig, run_eval
from swarm_engine.eval.loader import parse_scenario

SCAN, TRY, OPEN = 0, 1, 2


class Vault:
    """Scan lists the rooms; Try(room) works on unlocked doors; Open(room)
    completes the task in the vault room."""

    action_names = ("Scan", "Try", "Open")      # scenario actions map to these by name

    def __init__(self, rooms=6, locked_rate=0.5):
        self.rooms = rooms
        self.locked_rate = locked_rate
        self.max_discoveries = rooms            # at most this many targets per action

    def reset(self, seed):                      # hidden state of a run, from its seed only
        rng = np.random.default_rng(seed)
        self.vault = int(rng.integers(self.rooms))
        self.locked = rng.random(self.rooms) < self.locked_rate
        self.locked[self.vault] = False

    def step(self, batch: ActionBatch) -> StepResult:
        ops, room = batch.ops, np.clip(batch.targets, 0, self.rooms - 1)
        ok = np.select([ops == SCAN, ops == TRY, ops == OPEN],
                       [True, ~self.locked[room], room == self.vault], False)
        ok &= (ops == SCAN) | (batch.targets >= 0)
        scans = int(((ops == SCAN) & ok).sum())
        disc_ptr = np.zeros(len(batch) + 1, np.int32)
        np.cumsum(np.where((ops == SCAN) & ok, self.rooms, 0), out=disc_ptr[1:])
        return StepResult(outcome=ok.astype(np.int8), disc_ptr=disc_ptr,
                          discoveries=np.tile(np.arange(self.rooms, dtype=np.int32), scans),
                          duration_ms=np.ones(len(batch), np.float32),
                          done=bool(((ops == OPEN) & ok).any()))

    def target_name(self, target):
        return f"room-{target}"


# 1. Directly: rules + binding + config, no scenario file.
env = Vault(rooms=8)
graph = DependencyGraph(actions=["Scan", "Try", "Open"], edges=[("Scan", "Try", 1.0), ("Try", "Open", 1.0)],
                        start=["Scan"], terminal=["Open"])
binding = EnvironmentBinding.from_python(env, graph.actions)   # action names -> the env's ops
swarm = Swarm(graph, binding, SwarmConfig(workers=3, max_ticks=50), seed=1)
result = swarm.run()
print(f"direct: {result.verdict.reason} in {result.ticks} ticks, {result.actions} actions; "
      f"vault was {env.target_name(env.vault)}")

# 2. Through a scenario: the loader imports, instantiates with [environment.params] and validates.
SCENARIO = """
[meta]
name = "vault"

[task]
goal = "Open the vault"

[[actions.actions]]
name = "Scan"

[[actions.actions]]
name = "Try"

[[actions.actions]]
name = "Open"

[environment]
env_type = "python:__main__:Vault"

[environment.params]
rooms = 10

[agents]
workers = 4

[dependency_graph]
type = "custom"
start = ["Scan"]
terminal = ["Open"]

[[dependency_graph.edges]]
from = "Scan"
to = "Try"

[[dependency_graph.edges]]
from = "Try"
to = "Open"
"""
scenario = parse_scenario(SCENARIO, "vault.toml")
evaluation = run_eval(scenario, runs=50)
print(f"scenario: {int(evaluation.success.sum())}/{evaluation.runs} runs opened the vault, "
      f"mean {evaluation.ticks.mean():.1f} ticks")
