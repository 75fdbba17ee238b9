"""Code exploration: List / Grep / Read over a generated source tree.

The tree (``files`` files, ``files_per_dir`` per directory, a
``branching``-ary directory tree) exists only as arithmetic in the native
kernel, so 10^6 files cost nothing until an action looks at them. Targets are
directories (kind 1) and files (kind 2): List and Grep take directories, Read
takes files. Grep of a subtree with more than ``grep_limit`` files fails as
too broad, so a search has to narrow down with List first.
"""

from __future__ import annotations

from collections.abc import Sequence

from swarm_engine._native import _envs
from swarm_engine.eval.environments.base import EnvironmentFace, ParamSpec
from swarm_engine.exploration.rules import DependencyGraph

__all__ = ["CODE_EXPLORATION", "hidden"]

WORDS = ("src", "core", "api", "auth", "db", "net", "ui", "cli", "models", "services", "handlers",
         "config", "utils", "storage", "events", "jobs")
SYMBOL = "refresh_session_token"
OPS = ("List", "Grep", "Read")
DIR, FILE = 1, 2


def hidden(seed: int, params: dict) -> dict:
    st = CODE_EXPLORATION.hidden_state(seed, params)
    return {"dirs": int(st[0]), "files": int(st[1]), "goal": int(st[2]), "refs": st[5:5 + int(st[4])].tolist()}


def _dir_path(d: int, b: int) -> str:
    parts = []
    while d > 0:
        parts.append(WORDS[d % len(WORDS)] + (str(d // len(WORDS)) if d >= len(WORDS) else ""))
        d = (d - 1) // b
    return "/".join(["repo", *reversed(parts)])


def _target_name(t: int, params: dict) -> str:
    if t < 0:
        return ""
    f, per = int(params["files"]), int(params["files_per_dir"])
    dirs = (f + per - 1) // per
    b = int(params["branching"])
    if t < dirs:
        return _dir_path(t, b) + "/"
    fi = t - dirs
    return f"{_dir_path(fi % dirs, b)}/{WORDS[(fi * 7) % len(WORDS)]}_{fi}.py"


def _default_graph(actions: Sequence[str], params: dict) -> DependencyGraph:
    return DependencyGraph(
        actions=list(actions),
        edges=[("List", "List", 0.6), ("List", "Grep", 0.7), ("Grep", "Read", 0.9), ("Read", "Read", 0.8)],
        start=["List", "Grep"], terminal=[], start_target=0)


def _render(event: dict, seed: int, params: dict) -> str:
    h = hidden(seed, params)
    op, t, ok = event["op"], event["target"], event["outcome"] == 1
    name = _target_name(t, params)
    if event["outcome"] == 2:
        return f"{OPS[op]} {name}: I/O error, try again"
    if op == 0:
        return f"{name}: listed" if ok else f"{name}: not a directory"
    if op == 1:
        if ok:
            return f"grep -rn '{SYMBOL}' {name}: matches found"
        return f"grep -rn '{SYMBOL}' {name}: no matches, or too many files (> {int(params['grep_limit'])}) to search"
    fi = t - h["dirs"]
    if fi == h["goal"]:
        return f"{name}:42: def {SYMBOL}(session, clock):  # the definition"
    if fi in h["refs"]:
        return f"{name}:17: token = {SYMBOL}(s, now)  # defined in {_target_name(h['dirs'] + h['goal'], params)}"
    return f"{name}: no mention of {SYMBOL}"


CODE_EXPLORATION = EnvironmentFace(
    name="code_exploration",
    kind=_envs.ENV_CODE,
    ops=OPS,
    params={
        "files": ParamSpec(200, int, 1, 1 << 26, "files in the tree (up to 10^6 and beyond)"),
        "files_per_dir": ParamSpec(10, int, 1, 1 << 20),
        "branching": ParamSpec(4, int, 1, 64, "subdirectories per directory"),
        "grep_limit": ParamSpec(100, int, 1, None, "a Grep over more files than this fails as too broad"),
        "refs": ParamSpec(3, int, 0, 16, "files that mention the symbol besides its definition"),
        "error_rate": ParamSpec(0.0, float, 0.0, 1.0),
    },
    default_graph=_default_graph,
    target_name=_target_name,
    render=_render,
    description="Find the file that defines a symbol in a large code tree",
    op_kinds=(DIR, DIR, FILE),
    start_targets=(0, 0, -1),         # List and Grep start at the root directory; Read needs a file
)
