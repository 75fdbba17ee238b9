"""Step a swarm tick by tick and read its state, workers, statistics and graph.

Run: python docs/examples/02_step_and_inspect.py
"""

from pathlib import Path

from swarm_engine import load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "troubleshooting.toml"

scenario = load_scenario(SCENARIO, overrides={"agents": {"workers": 2},
                                              "environment": {"params": {"services": 6}}})
swarm = scenario.swarm(seed=3, record_events=True)

while not swarm.done:
    swarm.step()                                   # one tick (step(n) runs up to n)
    state = swarm.state                            # a snapshot: copies, safe to keep
    print(f"tick {state.tick:2d}  actions {state.total_actions:2d}  "
          f"failed {state.failed_actions}  frontier {swarm.kernel.n_open}")
    for action, target, open_nodes, score in swarm.frontier_scores()[:3]:
        print(f"    next {action}({target or ''}) x{open_nodes}  score {score:.3f}")

print("verdict:", swarm.verdict.reason)

workers = swarm.workers                            # per-worker arrays
print("actions per worker:", workers.actions.tolist(), "results:", [r.name for r in workers.results()])

for name, s in swarm.stats().items():              # online statistics per action
    print(f"{name:15s} visits {s['visits']}  ok {s['successes']}  mean {s['duration_ms'] / max(1, s['visits']):.0f} ms")

graph = swarm.graph()                              # the graph map as arrays
print(f"{len(graph['action'])} nodes; states {graph['state'].tolist()}")

events = swarm.events()                            # every action event of the run
for row in list(events.rows())[:3]:
    print(row)
assert len(events) == swarm.result().actions
