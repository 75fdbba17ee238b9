"""Hooks at four levels, an event subscriber, and stopping a run from a hook.

Run: python docs/examples/03_hooks_and_subscribers.py
"""

from pathlib import Path

import numpy as np

from swarm_engine import Hook, Verdict, WorkResult, load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "troubleshooting.toml"


class Printer(Hook):
    """Override only what you need: the engine calls nothing else."""

    def on_manage(self, swarm, assignments):
        # after the manager assigned work, before the environment acts
        names = [swarm.action_names[a] for a in assignments.actions]
        print(f"tick {swarm.tick}: assigned {names}")

    def on_worker(self, swarm, results):
        # one WorkResult code per worker, after the merge phase
        print("    workers:", [WorkResult(int(r)).name for r in results])

    def on_action(self, swarm, events):
        # the tick's action events, as columns
        print("    outcomes:", [row["outcome"] for row in events.rows()])

    def on_tick(self, swarm, tick):
        pass


class Budget(Hook):
    """End the run after a number of actions."""

    def __init__(self, max_actions):
        self.max_actions = max_actions

    def on_tick(self, swarm, tick):
        if swarm.state.total_actions >= self.max_actions:
            swarm.stop()


class Counter:
    """A subscriber: any object with on_events(EventBatch), called once per tick."""

    def __init__(self):
        self.per_action = None

    def on_events(self, events):
        counts = np.bincount(events.action, minlength=5)
        self.per_action = counts if self.per_action is None else self.per_action + counts


scenario = load_scenario(SCENARIO)
swarm = scenario.swarm(seed=11)
swarm.add_hook(Printer())
counter = Counter()
swarm.subscribe(counter)
result = swarm.run()
print("verdict:", result.verdict.reason)
print("actions per kind:", dict(zip(scenario.actions, counter.per_action.tolist())))

stopped = scenario.swarm(seed=11)
stopped.add_hook(Budget(max_actions=2))
result = stopped.run()
print(f"with a budget of 2 actions: {result.verdict.reason} after {result.actions} actions")
assert result.verdict == Verdict.STOPPED
