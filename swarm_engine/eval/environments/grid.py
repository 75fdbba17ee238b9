"""Grid: flood-fill exploration of a width x height grid of cells.

The large-swarm workload: every cell is a node (10^6 cells = 10^6 nodes),
Explore(cell) discovers the 4-neighbours, blocked cells fail (a stateless hash
of seed and cell, so the grid costs no memory), and reaching ``goal`` completes
the task (goal -1: no goal, explore everything; -2: a random cell).
"""

from __future__ import annotations

from collections.abc import Sequence

from swarm_engine._native import _envs, _kernel
from swarm_engine.errors import ScenarioError
from swarm_engine.eval.environments.base import EnvironmentFace, ParamSpec
from swarm_engine.exploration.rules import DependencyGraph

__all__ = ["GRID"]


def _default_graph(actions: Sequence[str], params: dict) -> DependencyGraph:
    return DependencyGraph(actions=list(actions), edges=[("Explore", "Explore", 1.0)],
                           start=["Explore"], terminal=[], start_target=0)


def _cell(t: int, params: dict) -> str:
    w = int(params["width"])
    return f"({t % w},{t // w})" if t >= 0 else ""


def _render(event: dict, seed: int, params: dict) -> str:
    cell = _cell(event["target"], params)
    if event["outcome"] == 1:
        return f"cell {cell} open; neighbours discovered"
    return f"cell {cell} blocked"


def _has_goal(params: dict) -> bool:
    """goal -1 is "explore everything": no completion of its own, terminal actions end the task."""
    return int(params["goal"]) != -1


def _check(params: dict, source: str | None) -> None:
    cells = int(params["width"]) * int(params["height"])
    if cells > _kernel.LIMITS["target"]:
        raise ScenarioError(f"width x height = {cells} cells exceeds the {_kernel.LIMITS['target']} targets "
                            "a node key can hold", path=source, field="environment.params")
    if int(params["goal"]) >= cells:
        raise ScenarioError(f"goal {params['goal']} is outside the {cells} cells", path=source,
                            field="environment.params.goal")


GRID = EnvironmentFace(
    name="grid",
    kind=_envs.ENV_GRID,
    ops=("Explore",),
    params={
        "width": ParamSpec(100, int, 1, 1 << 24),
        "height": ParamSpec(100, int, 1, 1 << 24),
        "block_rate": ParamSpec(0.0, float, 0.0, 1.0, "probability that a cell is blocked"),
        "goal": ParamSpec(-2, int, -2, None, "goal cell; -1 none, -2 random"),
    },
    default_graph=_default_graph,
    target_name=_cell,
    render=_render,
    description="Flood-fill a grid (the large-swarm benchmark workload)",
    check=_check,
    completes=_has_goal,
    start_targets=(0,),               # the start is cell 0, whichever graph names Explore first
)
