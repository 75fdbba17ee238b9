"""A single run watched live: the swarm steps one tick at a time in its own
thread, paced for the eye, and publishes one summary per tick.

A tick's summary is a few counters (nodes by state, workers by what they did,
actions) and the best few frontier groups, whatever the number of workers, so
a run of 10^4 workers streams as lightly as one of 4; the page asks for the
graph itself (:meth:`LiveRun.detail`, capped) at its own pace. The swarm is
only touched under the run's lock, between ticks.

An LLM-managed run is run as ``swarm run`` runs it: its backend is built and
checked in the run's thread (loading a model takes seconds; the page sees the
state "loading model"), a planned graph is planned, the manager records every
decision, each tick publishes a ``decisions`` event with what changed
(:class:`~swarm_engine.gui.decisions.DecisionFeed`) and the tick carries the
LLM counters. A backend that does not answer fails the run with its one line.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarm_engine._native import _kernel
from swarm_engine.core.state import VERDICT_REASONS, Verdict
from swarm_engine.errors import ScenarioError, SwarmError, one_line
from swarm_engine.eval.loader import Scenario
from swarm_engine.eval.runner import LlmRunHooks, llm_runner
from swarm_engine.gui.decisions import DecisionFeed, llm_stats
from swarm_engine.gui.topic import Topic

__all__ = ["LiveRun", "LiveRuns", "NODE_STATES", "WORKER_RESULTS", "ACTIVE"]

log = logging.getLogger("swarm_engine.gui")

NODE_STATES = {_kernel.NODE_OPEN: "open", _kernel.NODE_ASSIGNED: "assigned", _kernel.NODE_DONE_OK: "ok",
               _kernel.NODE_DONE_FAIL: "fail"}
WORKER_RESULTS = {_kernel.W_IDLE: "idle", _kernel.W_ACTED: "acted", _kernel.W_CONTINUING: "continuing",
                  _kernel.W_NEEDS_GUIDANCE: "needs_guidance", _kernel.W_ESCALATE: "escalate",
                  _kernel.W_DONE: "done"}
COUNT_NODES_UP_TO = 1 << 18     # above this, ok/fail per tick would copy too much: the page gets done only
FRONTIER_TOP = 6
ACTIVE = ("starting", "loading model", "running")     # the states of a run that is not over


@dataclass
class LiveRun:
    """One run of ``scenario`` with ``seed`` at about ``ticks_per_second`` (0: as fast as it goes)."""

    id: str
    scenario: Scenario
    seed: int
    ticks_per_second: float = 10.0
    topic: Topic = field(default_factory=lambda: Topic(keep=4096))
    state: str = "starting"
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _swarm: Any = None

    def info(self) -> dict[str, Any]:
        sc = self.scenario
        return {"id": self.id, "kind": "run", "state": self.state, "error": self.error, "scenario": sc.name,
                "path": sc.path, "variant": sc.variant, "seed": self.seed, "workers": sc.config.workers,
                "max_ticks": sc.config.max_ticks, "actions": sc.actions, "llm_managed": sc.llm_managed,
                "ticks_per_second": self.ticks_per_second, "last": self.topic.latest("tick"),
                "result": self.topic.latest("done")}

    def stop(self) -> None:
        self._stop.set()

    def set_speed(self, ticks_per_second: float) -> None:
        self.ticks_per_second = max(0.0, min(1000.0, float(ticks_per_second)))

    # ------------------------------------------------------------------ the run thread
    def run(self) -> None:
        runner = hooks = swarm = None
        try:
            sc = self.scenario
            if sc.llm_managed:
                self._set_state("loading model")
                runner = llm_runner(sc)
                sc.plan(runner)
            swarm = sc.swarm(self.seed)
            feed = None
            if runner is not None:
                hooks = LlmRunHooks(sc, runner, record=True)
                hooks.attach(swarm)
                feed = DecisionFeed(hooks.manager.records)
                runner.stats.start_clock()
            with self._lock:
                self._swarm = swarm
            self._set_state("running")
            seen = 0
            while not swarm.done and not self._stop.is_set():
                t0 = time.perf_counter()
                with self._lock:
                    swarm.step(1)
                    summary = self._summary(swarm, seen)
                    rows = feed.changes() if feed is not None else []
                seen = summary["nodes"]
                if runner is not None:
                    summary["llm"] = llm_stats(runner)
                self.topic.publish(summary)
                self._publish_decisions(swarm.tick, rows, feed)
                pause = (1.0 / self.ticks_per_second if self.ticks_per_second > 0 else 0.0) - (
                    time.perf_counter() - t0)
                if pause > 0:
                    self._stop.wait(pause)
            with self._lock:
                if not swarm.done:
                    swarm.stop()
                res = swarm.result()
            done: dict[str, Any] = {"type": "done", "state": "done", "success": res.success,
                                    "verdict": VERDICT_REASONS[Verdict(res.verdict)], "ticks": res.ticks,
                                    "actions": res.actions, "failed_actions": res.failed_actions}
            if runner is not None and hooks is not None and feed is not None:   # an LLM run (set together)
                hooks.finish(swarm)         # what is still in flight belongs to this run: drained
                hooks = None
                runner.stats.stop_clock()
                self._publish_decisions(swarm.tick, feed.changes(), feed)
                done["llm"] = llm_stats(runner)
            self.state = "done"
            self.topic.publish(done)
        except SwarmError as exc:
            self._fail(one_line(str(exc)))
        except Exception as exc:
            log.exception("live run %s failed", self.id)
            self._fail(f"internal error: {type(exc).__name__}: {one_line(str(exc))}")
        finally:
            self._close_llm(hooks, runner, swarm)
            self.topic.close()

    def _set_state(self, state: str) -> None:
        self.state = state
        self.topic.publish({"type": "state", "state": state})

    def _publish_decisions(self, tick: int, rows: list[dict[str, Any]], feed: DecisionFeed | None) -> None:
        if rows:
            self.topic.publish({"type": "decisions", "tick": int(tick), "decisions": rows,
                                "not_shown": feed.not_shown if feed is not None else 0})

    def _close_llm(self, hooks, runner, swarm) -> None:
        """A run that failed half-way still drains its questions; the runner always closes."""
        try:
            if hooks is not None and swarm is not None:
                hooks.finish(swarm)
        except Exception:            # the run's own error is the one the page shows
            log.exception("live run %s: finishing the LLM manager failed", self.id)
        finally:
            if runner is not None:
                runner.close()

    def _fail(self, message: str) -> None:
        self.state, self.error = "failed", message
        self.topic.publish({"type": "error", "state": "failed", "error": message})

    def _summary(self, swarm, seen: int) -> dict[str, Any]:
        k = swarm.kernel
        n = int(k.n_nodes)
        open_, assigned = int(k.n_open), int(k.n_assigned)
        ok = fail = None
        if n <= COUNT_NODES_UP_TO:
            counts = np.bincount(k.nodes()["state"], minlength=4)
            ok, fail = int(counts[_kernel.NODE_DONE_OK]), int(counts[_kernel.NODE_DONE_FAIL])
        results = np.bincount(k.workers()["result"], minlength=len(WORKER_RESULTS))
        return {"type": "tick", "tick": swarm.tick, "nodes": n, "new_nodes": n - seen, "open": open_,
                "assigned": assigned, "done": n - open_ - assigned, "ok": ok, "fail": fail,
                "actions": int(k.total_visits), "failed_actions": int(k.total_fail),
                "workers": {name: int(results[code]) for code, name in WORKER_RESULTS.items()},
                "frontier": self._frontier(swarm, FRONTIER_TOP)}

    def _frontier(self, swarm, top: int) -> list[dict[str, Any]]:
        k = swarm.kernel
        gids, scores = k.selector_scores(256)
        if not len(gids):
            return []
        order = np.argsort(-scores, kind="stable")[:top]
        g = k.groups()
        name = swarm.environment.target_names or str
        out = []
        for i in order:
            gid = int(gids[i])
            t = int(g["target"][gid])
            out.append({"action": swarm.action_names[int(g["action"][gid])], "target": name(t) if t >= 0 else None,
                        "open": int(g["open"][gid]),
                        # an unvisited group scores +inf under UCB1: "untried" on the page
                        "score": float(scores[i]) if np.isfinite(scores[i]) else None})
        return out

    def detail(self, limit: int = 1500, workers: int = 256) -> dict[str, Any]:
        """The graph map so far (the first ``limit`` nodes, by creation), each
        worker's current node (the first ``workers``) and the frontier's scores."""
        with self._lock:
            swarm = self._swarm
            if swarm is None:
                return {"tick": 0, "nodes": [], "total_nodes": 0, "workers": [], "frontier": []}
            nodes = swarm.kernel.nodes()
            w = swarm.kernel.workers()
            frontier = self._frontier(swarm, 20)
            tick = swarm.tick
        total = int(nodes["state"].shape[0])
        m = min(limit, total)
        name = swarm.environment.target_names or str
        args = self.scenario.planned_rules().args
        acts = swarm.action_names
        rows = [{"id": i, "parent": int(nodes["parent"][i]), "action": acts[int(nodes["action"][i])],
                 "target": name(int(nodes["target"][i])) if nodes["target"][i] >= 0 else None,
                 "arg": args.name(int(nodes["arg"][i])) if nodes["arg"][i] >= 0 else None,
                 "state": NODE_STATES.get(int(nodes["state"][i]), "?"), "tick": int(nodes["tick"][i])}
                for i in range(m)]
        wn = w["node"][:workers]
        wr = w["result"][:workers]
        return {"tick": tick, "total_nodes": total, "nodes": rows, "total_workers": int(w["node"].shape[0]),
                "workers": [{"worker": i, "node": int(wn[i]), "result": WORKER_RESULTS.get(int(wr[i]), "?")}
                            for i in range(wn.shape[0])],
                "frontier": frontier}


class LiveRuns:
    """The live runs started from the page; at most ``active`` at once."""

    def __init__(self, active: int = 4, keep: int = 20) -> None:
        self.active = active
        self.keep = keep
        self.runs: dict[str, LiveRun] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, scenario: Scenario, seed: int, ticks_per_second: float) -> LiveRun:
        if scenario.rules is None and not scenario.llm_managed:
            raise ScenarioError("this scenario's dependency graph is planned by the LLM at task start, "
                                "and the provider is none: choose one", path=scenario.path,
                                field="dependency_graph.type")
        with self._lock:
            running = [r for r in self.runs.values() if r.state in ACTIVE]
            if len(running) >= self.active:
                raise ScenarioError(f"{len(running)} live runs are going already (at most {self.active}); "
                                    "stop one first")
            run = LiveRun(id=f"r{next(self._ids)}", scenario=scenario, seed=seed)
            run.set_speed(ticks_per_second)
            self.runs[run.id] = run
            for old in list(self.runs)[:-self.keep]:
                if self.runs[old].state not in ACTIVE:
                    del self.runs[old]
        threading.Thread(target=run.run, name=f"swarm-gui-{run.id}", daemon=True).start()
        return run

    def get(self, run_id: str) -> LiveRun:
        run = self.runs.get(run_id)
        if run is None:
            raise KeyError(f"no live run '{run_id}' (the dashboard keeps the last {self.keep})")
        return run

    def shutdown(self) -> None:
        for run in list(self.runs.values()):
            run.stop()
