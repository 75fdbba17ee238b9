"""The orchestrator: one swarm, one run, five phases per tick.

1. collect  - fold in finished asynchronous work (registered async sources)
2. manage   - idle workers get their next node from the selector
3. act      - the environment executes the whole tick's actions as one batch
4. merge    - close/expand nodes, statistics, event log, termination judge
5. advance  - tick += 1; with tick_duration_ms > 0, sleep out the tick budget

Phases 2-4 are one native call. When nothing needs Python between ticks (no
hooks, subscribers, async sources, pacing, and a native environment), ``run``
and ``step(n)`` advance many ticks per call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from swarm_engine._native import _kernel
from swarm_engine.core.config import SwarmConfig, make_kernel
from swarm_engine.core.env_protocol import StepArrays
from swarm_engine.core.environment import ActionBatch, EnvironmentBinding
from swarm_engine.core.events import EventBatch, EventSubscriber
from swarm_engine.core.guarded_env import GuardedEnvironment
from swarm_engine.core.hooks import Assignments, Hook
from swarm_engine.core.state import SharedState, Verdict, WorkerStates
from swarm_engine.errors import ConfigError
from swarm_engine.exploration.rules import CompiledRules, DependencyGraph

__all__ = ["Swarm", "RunResult", "AsyncSource"]

_EMA_ALPHA = 0.1
_FUSED_CHUNK = 1 << 20     # ticks per native call when nothing needs Python between ticks


class AsyncSource(Protocol):
    """Asynchronous work: ``collect`` folds in finished results (collect phase);
    ``manage`` may hand workers to it before the selector runs (manage phase),
    e.g. an LLM manager asking the model and marking those workers waiting."""

    def collect(self, swarm: Swarm) -> None: ...

    def manage(self, swarm: Swarm) -> None: ...


@dataclass(frozen=True)
class RunResult:
    """The outcome of one run."""

    seed: int
    verdict: Verdict
    ticks: int
    actions: int
    failed_actions: int
    wall_seconds: float

    @property
    def success(self) -> bool:
        return self.verdict == Verdict.SUCCESS


class Swarm:
    """One swarm of workers exploring one environment.

    Parameters
    ----------
    rules:
        The dependency graph (action names must match ``rules.actions`` order)
        or already compiled rules.
    environment:
        How to reach the environment (see :class:`EnvironmentBinding`).
    config:
        Workers, ticks, management, termination and selector settings.
    seed:
        Seed of the run's random streams; the same seed gives the same trace.
    record_events:
        Keep the action event log even without subscribers (for traces).
    """

    def __init__(self, rules: DependencyGraph | CompiledRules, environment: EnvironmentBinding,
                 config: SwarmConfig | None = None, *, seed: int = 42, record_events: bool = False,
                 action_names: Sequence[str] | None = None) -> None:
        self.config = config or SwarmConfig()
        if isinstance(rules, DependencyGraph):
            self.action_names = list(rules.actions)
            rules = rules.compile()
        else:
            self.action_names = list(action_names or [f"action{i}" for i in range(len(rules.is_terminal))])
        self.rules = rules
        self.environment = environment
        self._guard = None if environment.python is None else GuardedEnvironment(
            environment.python, environment.name, environment.source, environment.max_discoveries)
        self._record = record_events
        self.kernel = make_kernel(rules, environment, self.config, record_events=True)
        self._hooks: list[Hook] = []
        self._subscribers: list[EventSubscriber] = []
        self._sources: list[AsyncSource] = []
        self.shared: dict[str, Any] = {}
        self.ema_tick_ms = 0.0
        self._wall = 0.0
        self.reset(seed)

    # ---------------------------------------------------------------- set-up
    def reset(self, seed: int) -> None:
        """Start a new run (clears the graph, statistics and event log)."""
        if not 0 <= seed < 2 ** 64:
            raise ConfigError(f"seed must be in [0, 2^64), got {seed}")
        self.seed = int(seed)
        if self._guard is not None:
            self._guard.reset(self.seed)
        self.kernel.reset(self.seed)
        self.shared.clear()
        self.ema_tick_ms = 0.0
        self._wall = 0.0
        self._events: list[EventBatch] = []

    def add_hook(self, hook: Hook) -> None:
        self._hooks.append(hook)

    def subscribe(self, subscriber: EventSubscriber) -> None:
        self._subscribers.append(subscriber)

    def add_source(self, source: AsyncSource) -> None:
        self._sources.append(source)

    def stop(self) -> None:
        """End the run now with the verdict 'stopped'."""
        self.kernel.stop()

    # ---------------------------------------------------------------- state
    @property
    def tick(self) -> int:
        return int(self.kernel.tick)

    @property
    def verdict(self) -> Verdict:
        return Verdict(self.kernel.verdict)

    @property
    def done(self) -> bool:
        return self.kernel.verdict != _kernel.V_RUNNING

    @property
    def workers(self) -> WorkerStates:
        return WorkerStates(**self.kernel.workers())

    @property
    def state(self) -> SharedState:
        w = self.kernel.workers()
        return SharedState(
            tick=self.tick, verdict=self.verdict, environment_done=bool(self.kernel.task_done),
            done_workers=int(w["done"].sum()), total_actions=int(self.kernel.total_visits),
            failed_actions=int(self.kernel.total_fail), ema_tick_ms=self.ema_tick_ms,
            stats=self.stats(), shared=self.shared)

    def stats(self) -> dict[str, dict[str, int | float]]:
        """Online statistics per action name: visits, successes, failures, discoveries, duration_ms."""
        s = self.kernel.action_stats()
        return {name: {k: (float(v[i]) if k == "duration_ms" else int(v[i])) for k, v in s.items()}
                for i, name in enumerate(self.action_names)}

    def pair_stats(self) -> list[dict[str, Any]]:
        """Statistics per (action, target) (granular selection only)."""
        g = self.kernel.groups()
        name = self.environment.target_names or str
        return [{"action": self.action_names[g["action"][i]],
                 "target": name(int(g["target"][i])) if g["target"][i] >= 0 else None,
                 "visits": int(g["visits"][i]), "successes": int(g["successes"][i]),
                 "discoveries": int(g["discoveries"][i]), "open": int(g["open"][i])}
                for i in range(len(g["action"]))]

    def graph(self) -> dict[str, np.ndarray]:
        """The graph map as arrays: action, target, arg, parent, state, tick, retries."""
        return self.kernel.nodes()

    def frontier_scores(self) -> list[tuple[str, str | None, int, float]]:
        """(action, target, open nodes, score) per non-empty group, best first."""
        gids, scores = self.kernel.selector_scores()
        g = self.kernel.groups()
        name = self.environment.target_names or str
        rows = [(self.action_names[g["action"][i]],
                 name(int(g["target"][i])) if g["target"][i] >= 0 else None,
                 int(g["open"][i]), float(s)) for i, s in zip(gids, scores)]
        return sorted(rows, key=lambda r: -r[3])

    def result(self) -> RunResult:
        return RunResult(self.seed, self.verdict, self.tick, int(self.kernel.total_visits),
                         int(self.kernel.total_fail), self._wall)

    # ---------------------------------------------------------------- running
    def _needs_python_per_tick(self) -> bool:
        return bool(self._hooks or self._subscribers or self._sources
                    or self.config.tick_duration_ms > 0 or self.environment.python is not None)

    def step(self, ticks: int = 1) -> int:
        """Advance up to ``ticks`` ticks (fewer if the run ends). Returns ticks run."""
        start = self.tick
        if not self._needs_python_per_tick():
            t0 = time.perf_counter()
            while self.tick - start < ticks and not self.done:
                status = self.kernel.step(min(ticks - (self.tick - start), _FUSED_CHUNK))
                if status == _kernel.ST_NEED_ROOM:
                    self._drain_events()
                    self.kernel.make_room()
            self._drain_events()
            elapsed = time.perf_counter() - t0
            self._wall += elapsed
            ran = self.tick - start
            if ran:
                self._update_ema(elapsed * 1000.0 / ran)
            return ran
        while self.tick - start < ticks and not self.done:
            self._one_tick()
        return self.tick - start

    def run(self) -> RunResult:
        """Run to the verdict."""
        while not self.done:
            self.step(_FUSED_CHUNK)
        return self.result()

    def _update_ema(self, ms: float) -> None:
        self.ema_tick_ms = ms if self.ema_tick_ms == 0.0 else (
            _EMA_ALPHA * ms + (1 - _EMA_ALPHA) * self.ema_tick_ms)

    def _one_tick(self) -> None:
        t0 = time.perf_counter()
        tick = self.tick
        for source in self._sources:                      # 1. collect
            source.collect(self)
        k = self.kernel
        for source in self._sources:                      # 2. manage: async sources first,
            manage = getattr(source, "manage", None)
            if manage is not None:
                manage(self)
        n = k.plan_tick()                                 #    then the selector
        if self._hooks and any(h.overrides("on_manage") for h in self._hooks):
            a = Assignments(*k.assignments())
            for h in self._hooks:
                h.on_manage(self, a)
        if self._guard is None:                           # 3. act + 4. merge
            k.commit_native(k.act_tick())
        else:
            k.commit_tick(*self._python_act(self._guard, n))
        events = self._drain_events()
        if self._hooks:
            w = k.workers()["result"]
            for h in self._hooks:
                if h.overrides("on_worker"):
                    h.on_worker(self, w)
                if h.overrides("on_action"):
                    h.on_action(self, events)
                if h.overrides("on_tick"):
                    h.on_tick(self, tick)
        elapsed = time.perf_counter() - t0                # 5. advance
        self._update_ema(elapsed * 1000.0)
        budget = self.config.tick_duration_ms / 1000.0
        if budget > 0 and elapsed < budget and not self.done:
            time.sleep(budget - elapsed)
        self._wall += time.perf_counter() - t0

    def _python_act(self, guard: GuardedEnvironment, n: int) -> StepArrays:
        """The tick's actions through the Python environment's step(), its
        result checked (a raise or a protocol violation is one line)."""
        if not n:           # no work this tick: the environment is not called
            return StepArrays(np.zeros(0, np.int8), np.zeros(1, np.int32), np.zeros(0, np.int32),
                              np.zeros(0, np.float32), False, None)
        workers, actions, targets, args = self.kernel.assignments()
        batch = ActionBatch(workers, self.environment.ops[actions], targets, args)
        return guard.step(batch, self.tick)

    def _drain_events(self) -> EventBatch | None:
        if self.kernel.n_events == 0 and not self._subscribers:
            return None
        batch = EventBatch.from_columns(self.kernel.take_events())
        for sub in self._subscribers:
            sub.on_events(batch)
        if self._record:
            self._events.append(batch)
        return batch

    def events(self) -> EventBatch:
        """Every event of this run so far (needs ``record_events=True``)."""
        if not self._record:
            raise ValueError("create the Swarm with record_events=True to keep its events")
        if not self._events:
            return EventBatch.from_columns(self.kernel.take_events())
        cols = {f: np.concatenate([getattr(b, f) for b in self._events])
                for f in EventBatch.__dataclass_fields__}
        return EventBatch.from_columns(cols)
