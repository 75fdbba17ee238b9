"""Start nodes of custom graphs get the environment's documented start target.

A custom graph's ``start`` names actions only; each built-in environment says
where its start is (the grid's cell 0, the code tree's root directory). For
every built-in environment, a custom graph written out from its own graph
must give exactly the runs of ``type = "static"``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from swarm_engine import parse_scenario, run_eval
from swarm_engine.eval.environments import BUILTIN, default_graph
from tests.paths import SCENARIOS

GRID_TEXT = """
[meta]
name = "grid"
[task]
goal = "reach the goal cell"
[[actions.actions]]
name = "Explore"
[app_config]
max_ticks = 400
[environment]
env_type = "grid"
[environment.params]
width = 6
height = 5
block_rate = 0.2
[agents]
workers = 2
"""


def without_graph(text: str) -> str:
    """The scenario text without its [dependency_graph] tables."""
    keep, inside = [], False
    for line in text.splitlines():
        head = line.strip()
        if head.startswith("["):
            inside = head.lstrip("[").startswith("dependency_graph")
        if not inside:
            keep.append(line)
    return "\n".join(keep) + "\n"


def custom_text(sc) -> str:
    """A [dependency_graph] type = "custom" table equal to the environment's own graph."""
    g = default_graph(sc.binding, sc.actions, None)
    lines = ["[dependency_graph]", 'type = "custom"', f"start = {json.dumps(g.start)}",
             f"terminal = {json.dumps(g.terminal)}", "allow_cycles = true"]
    for a, b, c in g.edges:
        lines += ["[[dependency_graph.edges]]", f"from = {json.dumps(a)}", f"to = {json.dumps(b)}",
                  f"confidence = {c}"]
    for action, (key, values) in g.param_variants.items():
        lines += ["[[dependency_graph.param_variants]]", f"action = {json.dumps(action)}",
                  f"key = {json.dumps(key)}", f"values = {json.dumps(values)}"]
    return "\n".join(lines) + "\n"


def scenario_texts() -> dict[str, str]:
    texts = {"grid": GRID_TEXT}
    for path in sorted(SCENARIOS.glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        env = next(line.split('"')[1] for line in text.splitlines() if line.startswith("env_type"))
        texts.setdefault(env, without_graph(text))
    return texts


TEXTS = scenario_texts()


def test_every_builtin_environment_is_covered():
    assert set(TEXTS) == set(BUILTIN)


@pytest.mark.parametrize("env", sorted(TEXTS))
def test_a_custom_copy_of_the_own_graph_runs_the_same(env):
    static = parse_scenario(TEXTS[env] + '[dependency_graph]\ntype = "static"\n', f"{env}-static.toml")
    custom = parse_scenario(TEXTS[env] + custom_text(static), f"{env}-custom.toml")
    assert custom.graph is not None and custom.graph.start_target == -1      # the file names no target
    a, b = run_eval(static, 60, seed=3), run_eval(custom, 60, seed=3)
    for field in ("success", "verdict", "ticks", "actions", "failed", "by_action", "done"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert a.reason == b.reason


@pytest.mark.parametrize(("start", "target"), [(["Explore"], 0)])
def test_grid_custom_start_is_cell_zero(start, target):
    text = GRID_TEXT.replace("block_rate = 0.2", "block_rate = 0.0\ngoal = 7")
    sc = parse_scenario(text + f'[dependency_graph]\ntype = "custom"\nstart = {json.dumps(start)}\n'
                        'allow_cycles = true\nedges = [{from = "Explore", to = "Explore"}]\n', "grid.toml")
    swarm = sc.swarm(seed=1, record_events=True)
    res = swarm.run()
    ev = swarm.events()
    assert ev.target[0] == target and ev.outcome[0] == 1       # it used to fail: no cell
    assert res.success and swarm.state.environment_done


@pytest.mark.parametrize(("start", "targets"), [(["List", "Grep"], [0, 0]), (["Read"], [-1])])
def test_code_tree_custom_starts(start, targets):
    text = TEXTS["code_exploration"]
    sc = parse_scenario(text + f'[dependency_graph]\ntype = "custom"\nstart = {json.dumps(start)}\n'
                        'allow_cycles = true\nedges = [{from = "List", to = "Grep"}, {from = "Grep", to = "Read"}]\n',
                        "code.toml")
    nodes = sc.swarm(seed=1).graph()
    assert nodes["target"][: len(targets)].tolist() == targets
