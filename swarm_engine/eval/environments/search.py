"""Search: pick the right file among search results.

Search returns ``results`` files in a seeded order: the target, ``decoys``
whose previews look relevant, and unrelated files. Only Read confirms the
target; Submit of the read target completes the task.
"""

from __future__ import annotations

from collections.abc import Sequence

from swarm_engine._native import _envs
from swarm_engine.eval.environments.base import EnvironmentFace, ParamSpec
from swarm_engine.exploration.rules import DependencyGraph

__all__ = ["SEARCH", "hidden"]

OPS = ("Search", "Preview", "Read", "Submit")
TOPICS = ("quarterly-report", "incident-review", "design-notes", "onboarding", "release-plan",
          "postmortem", "budget", "roadmap")


def hidden(seed: int, params: dict) -> dict:
    st = SEARCH.hidden_state(seed, params)
    k, d = int(st[4]), int(st[5])
    return {"target": int(st[1]), "results": st[6:6 + k].tolist(), "decoys": st[6 + k:6 + k + d].tolist()}


def _name(t: int, params: dict) -> str:
    return f"docs/{TOPICS[t % len(TOPICS)]}-{t:03d}.md" if t >= 0 else ""


def _default_graph(actions: Sequence[str], params: dict) -> DependencyGraph:
    return DependencyGraph(actions=list(actions),
                           edges=[("Search", "Preview", 0.9), ("Preview", "Read", 0.9), ("Read", "Submit", 1.0)],
                           start=["Search"], terminal=["Submit"])


def _render(event: dict, seed: int, params: dict) -> str:
    h = hidden(seed, params)
    op, t, ok = event["op"], event["target"], event["outcome"] == 1
    if event["outcome"] == 2:
        return f"{OPS[op]}: search backend timed out"
    if op == 0:
        return "results: " + ", ".join(_name(f, params) for f in h["results"])
    name = _name(t, params)
    if op == 1:
        return f"{name}: preview mentions the query terms" if ok else f"{name}: preview is unrelated"
    if op == 2:
        if ok:
            return f"{name}: content answers the question (the target)"
        return f"{name}: looked relevant but is about something else" if t in h["decoys"] else f"{name}: unrelated"
    return f"submitted {name}: accepted" if ok else f"submitted {name}: rejected"


SEARCH = EnvironmentFace(
    name="search",
    kind=_envs.ENV_SEARCH,
    ops=OPS,
    params={
        "files": ParamSpec(10, int, 1, 1 << 24, "files in the corpus"),
        "results": ParamSpec(5, int, 1, 4096, "files a Search returns"),
        "decoys": ParamSpec(2, int, 0, 4095, "results whose preview looks relevant"),
        "error_rate": ParamSpec(0.0, float, 0.0, 1.0),
    },
    default_graph=_default_graph,
    target_name=_name,
    render=_render,
    description="Find the right file among search results",
)
