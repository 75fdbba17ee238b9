"""The scenarios the dashboard lists: where it looks and what it shows of each.

It looks where ``swarm`` users keep scenarios: the built-in ones (the
checkout's or the wheel's ``scenarios/``, subfolders included), the user's
``~/swarm-engine/scenarios``, the project's ``./scenarios`` and any file or
folder named on the command line (folders are searched recursively, as the
built-in one is). A file that does not load is listed with its one-line
error instead of its contents: the page shows it, nothing stops.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm_engine.errors import ScenarioError, SwarmError, one_line
from swarm_engine.eval.builtin import builtin_scenarios_dir
from swarm_engine.eval.loader import Scenario, list_variants, load_scenario
from swarm_engine.inputs import limits, parse_toml, read_text
from swarm_engine.settings import user_dir

__all__ = ["Entry", "Catalog", "describe"]


@dataclass(frozen=True)
class Entry:
    """One scenario file found: a stable id (from its resolved path), where it came from."""

    id: str
    path: Path
    origin: str                  # "built-in", "user", "project" or "command line"

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "path": str(self.path), "origin": self.origin, "file": self.path.name}


def _entry_id(path: Path) -> str:
    return hashlib.sha1(str(path).encode()).hexdigest()[:12]


def _files(place: Path) -> list[Path]:
    if place.is_file():
        return [place]
    if place.is_dir():
        return sorted(p for p in place.rglob("*.toml") if p.is_file())
    return []


class Catalog:
    """Every scenario file in the places searched; looked up again on each listing
    (a file the user just saved shows up on reload)."""

    def __init__(self, extra: list[Path] | None = None, *, cwd: Path | None = None,
                 builtin: Path | None = None, user: Path | None = None) -> None:
        self.extra = [Path(p) for p in extra or []]
        self.cwd = cwd or Path.cwd()
        self.builtin = builtin or builtin_scenarios_dir()
        self.user = user or user_dir() / "scenarios"

    def places(self) -> list[tuple[str, Path]]:
        return ([("command line", p) for p in self.extra]
                + [("built-in", self.builtin), ("user", self.user), ("project", self.cwd / "scenarios")])

    def entries(self) -> list[Entry]:
        seen: dict[Path, Entry] = {}
        for origin, place in self.places():
            for f in _files(place):
                key = f.resolve()
                if key not in seen:
                    seen[key] = Entry(_entry_id(key), key, origin)
        return list(seen.values())

    def get(self, entry_id: str) -> Entry:
        """The entry of ``entry_id``; a ScenarioError line when there is none (a stale link)."""
        for e in self.entries():
            if e.id == entry_id:
                return e
        raise ScenarioError(f"no scenario with id '{entry_id}' in the places searched "
                            f"({', '.join(str(p) for _, p in self.places())})")


def _variants(path: Path) -> list[dict[str, str]]:
    raw = parse_toml(read_text(path, limit=limits.MAX_SCENARIO_BYTES, error=ScenarioError), str(path),
                     ScenarioError)
    return [{"name": n, "description": d} for n, d in list_variants(raw)]


def _graph(sc: Scenario) -> dict[str, Any] | None:
    g = sc.graph
    if g is None:
        return None                   # planned by the LLM at task start
    return {"nodes": list(g.actions), "start": list(g.start), "terminal": list(g.terminal),
            "edges": [{"from": a, "to": b, "confidence": c} for a, b, c in g.edges],
            "param_variants": {a: {"key": k, "values": v} for a, (k, v) in g.param_variants.items()}}


def describe(entry: Entry, variant: str | None = None) -> dict[str, Any]:
    """What the Scenarios page shows of one file: task, actions, variants, the
    dependency graph; ``error`` (one line) instead when it does not load."""
    out: dict[str, Any] = entry.as_dict()
    try:
        out["variants"] = _variants(entry.path)
        sc = load_scenario(entry.path, variant)
    except SwarmError as exc:
        out["error"] = one_line(str(exc))
        return out
    spec = sc.spec
    out.update(
        name=sc.name, scenario_id=sc.id, description=spec.meta.description, tags=list(spec.meta.tags),
        variant=variant, goal=spec.task.goal, expected=spec.task.expected,
        environment=sc.binding.name, workers=sc.config.workers, max_ticks=sc.config.max_ticks,
        selector=sc.config.selector.strategy, llm_provider=spec.llm.provider, llm_managed=sc.llm_managed,
        actions=[{"name": a.name, "description": a.description, "category": a.category,
                  "params": [p.name for p in a.params]} for a in spec.actions.actions],
        graph=_graph(sc), graph_type=type(spec.dependency_graph).__name__)
    return out
