"""Dependency rules: which actions follow which, where a search starts and ends.

A :class:`DependencyGraph` speaks in action names; :meth:`compile` turns it into
the CSR arrays the kernel reads (ids are positions in the scenario's action
list; param-variant values are interned into argument ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swarm_engine.errors import ScenarioError

__all__ = ["DependencyGraph", "CompiledRules", "Interner"]


class Interner:
    """Strings <-> dense int ids, interned once at the edge of the engine."""

    def __init__(self, values: list[str] | None = None) -> None:
        self._ids: dict[str, int] = {}
        self.values: list[str] = []
        for v in values or []:
            self.intern(v)

    def intern(self, value: str) -> int:
        found = self._ids.get(value)
        if found is None:
            found = self._ids[value] = len(self.values)
            self.values.append(value)
        return found

    def name(self, ident: int) -> str:
        return self.values[ident] if 0 <= ident < len(self.values) else ""

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class CompiledRules:
    """Rules as arrays; see swarm_engine/_native/_kernel.pxd for each field."""

    succ_ptr: np.ndarray
    succ_act: np.ndarray
    succ_conf: np.ndarray
    is_terminal: np.ndarray
    var_ptr: np.ndarray
    var_val: np.ndarray
    start_act: np.ndarray
    start_tgt: np.ndarray
    start_arg: np.ndarray
    args: Interner


@dataclass
class DependencyGraph:
    """Successors with confidence, start and terminal actions, param variants.

    ``param_variants[action] = (key, values)`` gives one child node per value.
    """

    actions: list[str]
    edges: list[tuple[str, str, float]] = field(default_factory=list)
    start: list[str] = field(default_factory=list)
    terminal: list[str] = field(default_factory=list)
    param_variants: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    start_target: int = -1      # target id of the start nodes (-1 = none)

    def successors(self, action: str) -> list[tuple[str, float]]:
        return [(b, c) for a, b, c in self.edges if a == action]

    def validate(self, source: str | None = None, field_prefix: str = "dependency_graph") -> None:
        """Unknown actions, no start, or terminals no start can reach: one-line errors."""
        known = set(self.actions)

        def fail(msg: str, fld: str) -> None:
            raise ScenarioError(msg, path=source, field=f"{field_prefix}.{fld}")

        if not self.start:
            fail("needs at least one start action", "start")
        for i, (a, b, c) in enumerate(self.edges):
            for end, name in (("from", a), ("to", b)):
                if name not in known:
                    fail(f"unknown action '{name}' (known: {', '.join(self.actions)})", f"edges[{i}].{end}")
            if not 0.0 <= c <= 1.0:
                fail(f"confidence {c} is outside 0..1", f"edges[{i}].confidence")
        for what in ("start", "terminal"):
            for i, name in enumerate(getattr(self, what)):
                if name not in known:
                    fail(f"unknown action '{name}' (known: {', '.join(self.actions)})", f"{what}[{i}]")
        for name in self.param_variants:
            if name not in known:
                fail(f"unknown action '{name}'", "param_variants")
        reach = self.reachable()
        for i, name in enumerate(self.terminal):
            if name not in reach:
                fail(f"terminal action '{name}' cannot be reached from {self.start}", f"terminal[{i}]")
        if not self.terminal and not self.edges and len(self.start) == 0:
            fail("the graph is empty", "edges")

    def reachable(self) -> set[str]:
        seen = set(self.start)
        todo = list(self.start)
        while todo:
            a = todo.pop()
            for b, _ in self.successors(a):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen

    def find_cycle(self) -> list[str] | None:
        """A cycle as a list of actions, or None (cycles are legal: dedup ends them)."""
        color: dict[str, int] = {}
        stack: list[str] = []

        def visit(a: str) -> list[str] | None:
            color[a] = 1
            stack.append(a)
            for b, _ in self.successors(a):
                if color.get(b) == 1:
                    return stack[stack.index(b):] + [b]
                if color.get(b) is None:
                    found = visit(b)
                    if found:
                        return found
            stack.pop()
            color[a] = 2
            return None

        for a in self.actions:
            if color.get(a) is None:
                found = visit(a)
                if found:
                    return found
        return None

    def compile(self, args: Interner | None = None) -> CompiledRules:
        ids = {name: i for i, name in enumerate(self.actions)}
        A = len(self.actions)
        args = args or Interner()
        succ: list[list[tuple[int, float]]] = [[] for _ in range(A)]
        for a, b, c in self.edges:
            if all(t != ids[b] for t, _ in succ[ids[a]]):
                succ[ids[a]].append((ids[b], c))
        succ_ptr = np.zeros(A + 1, np.int32)
        succ_ptr[1:] = np.cumsum([len(s) for s in succ])
        succ_act = np.array([b for s in succ for b, _ in s], np.int32)
        succ_conf = np.array([c for s in succ for _, c in s], np.float64)
        term = np.zeros(A, np.uint8)
        for name in self.terminal:
            term[ids[name]] = 1
        variants = [[args.intern(str(v)) for v in self.param_variants[name][1]]
                    if name in self.param_variants else [] for name in self.actions]
        var_ptr = np.zeros(A + 1, np.int32)
        var_ptr[1:] = np.cumsum([len(v) for v in variants])
        var_val = np.array([x for v in variants for x in v], np.int32)
        s_act, s_arg = [], []
        for name in self.start:
            for x in variants[ids[name]] or [-1]:
                s_act.append(ids[name])
                s_arg.append(x)
        return CompiledRules(succ_ptr, succ_act, succ_conf, term, var_ptr, var_val,
                             np.array(s_act, np.int32), np.full(len(s_act), self.start_target, np.int32),
                             np.array(s_arg, np.int32), args)
