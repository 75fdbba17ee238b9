"""Evals started from the dashboard: validated like ``swarm eval``, run one at a
time in a background thread, their progress streamed through a :class:`Topic`.

A native eval runs as consecutive chunks of seeds (each a plain
:func:`~swarm_engine.eval.runner.run_eval` call, sized to about a third of a
second) put back together with :func:`~swarm_engine.eval.merge.concat_results`:
run for run the same result as one call, and between chunks the dashboard
knows the actions done so far, so actions/s is live and Stop takes effect
within a chunk. Nothing is added inside the runner: an eval nobody watches
runs exactly as before. LLM-managed and Python-environment evals run as one
call (their runs are slow; the runs-done counter moves per run).
"""

from __future__ import annotations

import itertools
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swarm_engine.cli import options
from swarm_engine.errors import ConfigError, SwarmError, one_line
from swarm_engine.eval.loader import Scenario, load_scenario
from swarm_engine.eval.memory import check_memory, estimate, memory_limit
from swarm_engine.eval.merge import concat_results
from swarm_engine.eval.report import build_report
from swarm_engine.eval.runner import EvalResult, run_eval
from swarm_engine.eval.stats import wilson
from swarm_engine.fsio import write_json
from swarm_engine.gui.topic import Topic
from swarm_engine.inputs import limits

__all__ = ["EvalRequest", "EvalJob", "JobQueue", "validate_request"]

log = logging.getLogger("swarm_engine.gui")

CHUNK_SECONDS = 0.33             # target engine time of one chunk of a native eval
MIN_CHUNK, MAX_CHUNK = 32, 1 << 20
PUBLISH_EVERY = 0.1              # seconds between two progress events (the last one always goes)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class EvalRequest:
    """What the page asks for; the same fields and checks as ``swarm eval``'s flags."""

    path: Path
    runs: int
    seed: int
    variant: str | None = None
    provider: str | None = None


def _int_field(raw: dict, name: str, default: int, lo: int, hi: int) -> int:
    value = raw.get(name, default)
    if value in (None, ""):
        return default
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,30}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"got {value!r}, expected an int in {lo}..{hi}", path=f"--{name}")
    if not lo <= value <= hi:
        raise ConfigError(f"got {value}, expected an int in {lo}..{hi}", path=f"--{name}")
    return value


def validate_request(raw: dict, path: Path, *, default_runs: int, default_seed: int) -> EvalRequest:
    """The page's form as an :class:`EvalRequest`; one ConfigError line naming the field otherwise."""
    runs = _int_field(raw, "runs", default_runs, 1, limits.MAX_RUNS)
    seed = _int_field(raw, "seed", default_seed, 0, limits.UINT64_MAX)
    options.check_seeds(seed, runs)
    variant = raw.get("variant") or None
    provider = raw.get("provider") or None
    for name, value in (("variant", variant), ("provider", provider)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"got {value!r}, expected a name", path=f"--{name}")
    return EvalRequest(path=path, runs=runs, seed=seed, variant=variant, provider=provider)


def load_for(request: EvalRequest, runs: int) -> Scenario:
    """The scenario of ``request``, loaded and memory-checked as ``swarm eval`` does."""
    sc = load_scenario(request.path, request.variant, options.scenario_overrides(request.provider, None, None))
    check_memory(estimate(sc.binding, sc.config, sc.rules, len(sc.actions), runs), memory_limit(None),
                 source=sc.path)
    return sc


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass
class EvalJob:
    """One eval: its request, its state and the events it has published."""

    id: str
    request: EvalRequest
    scenario: Scenario
    reports_dir: Path
    topic: Topic = field(default_factory=Topic)
    state: str = "queued"              # queued, running, done, stopped, failed
    error: str | None = None
    report_name: str | None = None
    created: float = field(default_factory=time.time)
    origin: str = "page"               # page: started here; cli: a `swarm eval --gui` this page watches
    _stop: threading.Event = field(default_factory=threading.Event)
    _last_publish: float = 0.0

    def info(self) -> dict[str, Any]:
        r = self.request
        return {"id": self.id, "kind": "eval", "state": self.state, "error": self.error,
                "scenario": self.scenario.name, "path": str(r.path), "variant": r.variant, "runs": r.runs,
                "seed": r.seed, "provider": r.provider or self.scenario.spec.llm.provider,
                "report": self.report_name, "created": self.created, "origin": self.origin,
                "progress": self.topic.latest("progress")}

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ the eval thread
    def _progress(self, done: int, ok: int, actions: int | None, actions_seconds: float, started: float,
                  force: bool = False, llm: Any = None) -> None:
        """Publish the counts (at most every PUBLISH_EVERY s unless ``force``); ``llm``:
        the eval's LlmStats, whose live counters go along."""
        now = time.perf_counter()
        if not force and now - self._last_publish < PUBLISH_EVERY:
            return
        self._last_publish = now
        elapsed = now - started
        lo, hi = wilson(ok, done)
        event = {
            "type": "progress", "done": done, "requested": self.request.runs, "successes": ok,
            "success_rate": ok / done if done else None, "ci95": [lo, hi], "actions": actions,
            "actions_per_sec": actions / actions_seconds if actions and actions_seconds > 0 else None,
            "runs_per_sec": done / elapsed if elapsed > 0 else None, "elapsed": elapsed}
        if llm is not None:
            event["llm"] = {"in_flight": llm.in_flight, "applied": llm.applied, "failed": llm.failed,
                            "decisions_per_sec": llm.rate()}
        self.topic.publish(event)

    def feed(self, done: int, ok: int, started: float, llm: Any = None) -> None:
        """The body of a runner's progress callback (runs counted, no actions): publish,
        then raise KeyboardInterrupt, the runner's Ctrl-C that keeps the finished runs,
        once Stop was asked."""
        self._progress(done, ok, None, 0.0, started, llm=llm)
        if self._stop.is_set():
            raise KeyboardInterrupt

    def report_file(self, prefix: str) -> str:
        """A fresh report name in the folder: ``PREFIX-<scenario id>-<time>-<eval>.json``."""
        return f"{prefix}-{_UNSAFE.sub('_', self.scenario.id).strip('_')}-{_stamp()}-{self.id}.json"

    def finish(self, result: EvalResult, report: dict, started: float, name: str | None = None) -> None:
        """The eval ended: its last counts, its report in the folder (written as a fresh
        ``gui-`` file unless ``name`` is one already there) and the final event."""
        self._progress(result.runs, int(result.success.sum()), int(result.actions.sum()), result.engine_seconds,
                       started, force=True)
        if name is None:
            name = self.report_file("gui")
            write_json(self.reports_dir / name, report)
        self.report_name = name
        self.state = "stopped" if result.stopped else "done"
        self.topic.publish({"type": "done", "state": self.state, "report": name,
                            "summary": _brief(report["summary"])})

    def _chunk_progress(self, done: int, ok: int, actions: int, seconds: float,
                        started: float) -> Callable[[int, int], None]:
        """The progress callback of one chunk: its runs counted after the chunks before it."""
        return lambda d, s: self._progress(done + d, ok + s, actions, seconds, started)

    def _chunked(self, started: float) -> EvalResult:
        sc, req = self.scenario, self.request
        parts: list[EvalResult] = []
        done = ok = actions = 0
        seconds = 0.0
        chunk = MIN_CHUNK
        while done < req.runs and not self._stop.is_set():
            n = min(chunk, req.runs - done)
            part = run_eval(sc, n, req.seed + done, progress=self._chunk_progress(done, ok, actions, seconds, started))
            parts.append(part)
            done += part.runs
            ok += int(part.success.sum())
            actions += int(part.actions.sum())
            seconds += part.engine_seconds
            self._progress(done, ok, actions, seconds, started, force=True)
            if part.stopped:
                break
            rate = part.runs / part.engine_seconds if part.engine_seconds > 0 else MAX_CHUNK
            chunk = max(MIN_CHUNK, min(MAX_CHUNK, int(rate * CHUNK_SECONDS), 4 * n))
        if not parts:
            raise ConfigError("stopped before the first run")
        result = concat_results(parts, requested=req.runs)
        return replace(result, stopped=True) if result.runs < req.runs else result

    def _whole(self, started: float) -> EvalResult:
        req = self.request
        from swarm_engine.settings import load_settings

        fallback = bool(load_settings().get("eval", "llm_fallback"))
        stats = None
        if self.scenario.llm_managed:
            from swarm_engine.llm.stats import LlmStats

            stats = LlmStats()

        return run_eval(self.scenario, req.runs, req.seed, llm_fallback=fallback, warn=self._warn,
                        llm_stats=stats, progress=lambda done, ok: self.feed(done, ok, started, stats))

    def evaluate(self, started: float) -> EvalResult:
        """The eval's result, its progress published on the way (chunked when native)."""
        sc = self.scenario
        native = sc.binding.native and not sc.llm_managed and sc.config.tick_duration_ms <= 0
        return self._chunked(started) if native else self._whole(started)

    def _warn(self, line: str) -> None:
        self.topic.publish({"type": "warning", "message": one_line(line)})

    def run(self) -> None:
        """Run the eval here (the queue's thread); every outcome ends in one event."""
        self.state = "running"
        self.topic.publish({"type": "state", "state": "running"})
        started = time.perf_counter()
        try:
            result = self.evaluate(started)
            self.finish(result, build_report(result, lazy_runs=True), started)
        except SwarmError as exc:
            self._fail(one_line(str(exc)))
        except Exception as exc:        # a bug: the page says so, the server stays up
            log.exception("eval %s failed", self.id)
            self._fail(f"internal error: {type(exc).__name__}: {one_line(str(exc))}")
        finally:
            self.topic.close()

    def _fail(self, message: str) -> None:
        self.state, self.error = "failed", message
        self.topic.publish({"type": "error", "state": "failed", "error": message})


def _brief(summary: dict) -> dict:
    keys = ("runs", "requested", "successes", "success_rate", "success_rate_ci95", "total_actions",
            "wall_seconds", "actions_per_sec")
    return {k: summary.get(k) for k in keys}


class JobQueue:
    """Evals run one at a time, in order, in one daemon thread; the last
    ``keep`` jobs stay listed."""

    def __init__(self, reports_dir: Path, keep: int = 50) -> None:
        self.reports_dir = reports_dir
        self.keep = keep
        self.jobs: dict[str, EvalJob] = {}
        self._ids = itertools.count(1)
        self._queue: queue.Queue[EvalJob | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, request: EvalRequest) -> EvalJob:
        """Validate (load the scenario, check its memory) and queue; a SwarmError line otherwise."""
        sc = load_for(request, request.runs)
        with self._lock:
            job = EvalJob(id=f"e{next(self._ids)}", request=request, scenario=sc, reports_dir=self.reports_dir)
            self.jobs[job.id] = job
            for old in list(self.jobs)[:-self.keep]:
                if self.jobs[old].state not in ("queued", "running"):
                    del self.jobs[old]
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="swarm-gui-evals", daemon=True)
                self._thread.start()
        self._queue.put(job)
        job.topic.publish({"type": "state", "state": "queued"})
        return job

    def watch(self, request: EvalRequest, scenario: Scenario) -> EvalJob:
        """List an eval that runs elsewhere (the command line's ``swarm eval --gui``):
        its owner publishes its events; the queue's thread never runs it."""
        with self._lock:
            job = EvalJob(id=f"c{next(self._ids)}", request=request, scenario=scenario,
                          reports_dir=self.reports_dir, origin="cli")
            self.jobs[job.id] = job
        return job

    def get(self, job_id: str) -> EvalJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise KeyError(f"no eval '{job_id}' (the dashboard keeps the last {self.keep})")
        return job

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            if job._stop.is_set():
                job.state = "stopped"
                job.topic.publish({"type": "done", "state": "stopped", "report": None, "summary": None})
                job.topic.close()
                continue
            job.run()

    def shutdown(self) -> None:
        """Stop every job (the running one within a chunk) and end the thread."""
        for job in list(self.jobs.values()):
            job.stop()
        self._queue.put(None)
