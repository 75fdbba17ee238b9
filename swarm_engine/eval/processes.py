"""Runs of a Python environment on several processes, the same runs as on one.

A Python environment holds the GIL while it steps, so threads would take
turns; processes do not. Each process (``spawn``: no forked locks or
threads) rebuilds the scenario once from the text it was parsed from, checks
its sha256, and takes the parent's compiled rules and run configuration (a
learned selector, a planned graph), so only the environment object is its
own. It then runs chunks of contiguous seeds one swarm per seed, as one core
does, and sends back the chunk's columns (and its events, for a trace); the
parent keeps them in seed order. That assumes what the environment protocol
asks: a run depends on the parameters and the seed alone (``reset(seed)``).

Processes pay only for long evals: starting one (spawn, imports, parsing)
took 0.6-1.7 s on the 2-core development machine, while a run of a numpy
environment takes ~1.5 ms. So the parent first runs the eval's first seeds
itself (:data:`PROBE_RUNS`, part of the eval), and starts processes for the
rest only when that time, shared by the jobs, beats it by more than the
start-up (:data:`START_SECONDS`); otherwise it runs the rest too, and says why.

Ctrl-C reaches the parent only (the processes ignore SIGINT): it sets a
shared flag that every process checks after each run, and the finished
prefix of the seeds is kept, as on one core.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from swarm_engine.core.events import EventBatch
from swarm_engine.errors import ConfigError, EnvironmentError_
from swarm_engine.eval.jobs import chunks
from swarm_engine.eval.loader import Scenario, parse_scenario
from swarm_engine.eval.threaded import EventSink

__all__ = ["python_processes", "PROBE_RUNS", "START_SECONDS"]

PROBE_RUNS = 16            # the first seeds, run in the parent to time a run
START_SECONDS = 1.5        # what starting the worker processes costs (measured 0.6-1.7 s, see above)

ProgressFn = Callable[[int, int], None]
# the one-core runner of Python environments, swarm_engine.eval.runner._python_runs,
# handed in by the runner (this module cannot import it: the runner imports this one)
RunsFn = Callable[..., tuple[dict[str, np.ndarray], float, bool]]

_worker: dict[str, Any] = {}        # this worker process's scenario and shared flags (set by _init)


def _init(text: str, path: str | None, variant: str | None, overrides: dict | None, sha256: str,
          rules: Any, config: Any, runs_fn: RunsFn, stop: Any, counts: Any) -> None:
    """A worker process's start: its own scenario, rebuilt from the parent's
    text. An error waits for the first chunk (an initializer's error would
    only break the pool, its message lost)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker.update(runs=runs_fn, stop=stop, counts=counts)
    try:
        sc = parse_scenario(text, path, variant, overrides, memory="off")
        if sc.sha256 != sha256:
            raise ConfigError(f"the scenario rebuilt in a worker process has sha256 {sc.sha256[:12]}..., "
                              f"expected {sha256[:12]}...")
        _worker["scenario"] = dataclasses.replace(sc, rules=rules, config=config)
    except Exception as exc:           # raised again by _run, in the parent
        _worker["error"] = exc


class _Collect:
    """A chunk's events, kept to send back (the parent writes the trace)."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.events: list[dict[str, np.ndarray]] = []

    def write(self, events: EventBatch) -> None:
        cols = {f: getattr(events, f) for f in EventBatch.__dataclass_fields__}
        cols["run"] = cols["run"] + self.offset
        self.events.append(cols)


def _run(index: int, lo: int, seeds: np.ndarray, record: bool) -> tuple[dict, list, bool]:
    """One chunk in a worker process: (columns, events, stopped)."""
    if "error" in _worker:
        raise _worker["error"]
    counts, stop = _worker["counts"], _worker["stop"]
    if stop.is_set():                        # queued before Ctrl-C: nothing to run
        return _worker["runs"](_worker["scenario"], seeds[:0], None, None)[0], [], True

    def progress(done: int, ok: int) -> None:
        counts[2 * index], counts[2 * index + 1] = done, ok
        if stop.is_set():
            raise KeyboardInterrupt          # the one-core runner keeps the finished runs

    sink = _Collect(lo) if record else None
    out, _elapsed, stopped = _worker["runs"](_worker["scenario"], seeds, progress, sink)
    return out, sink.events if sink else [], stopped


class _Ordered:
    """The chunks' results in seed order: the finished prefix, and the trace
    written as far as it reaches."""

    def __init__(self, futures: list[Future], sizes: list[int], trace: EventSink | None) -> None:
        self.futures = futures
        self.sizes = sizes
        self.trace = trace
        self.kept: list[dict] = []
        self.complete = True            # every kept chunk ran all its seeds

    def advance(self) -> None:
        """Take every chunk finished in order since the last call."""
        while self.complete and len(self.kept) < len(self.futures):
            f = self.futures[len(self.kept)]
            if not f.done() or f.cancelled() or f.exception() is not None:
                return
            out, events, stopped = f.result()
            if self.trace is not None:
                for cols in events:
                    self.trace.write(EventBatch.from_columns(cols))
            self.complete = not stopped and out["ticks"].shape[0] == self.sizes[len(self.kept)]
            self.kept.append(out)


class _Shifted:
    """A sink (and progress) for runs that start at seed index ``offset``."""

    def __init__(self, trace: EventSink | None, progress: ProgressFn | None, offset: int, ok: int) -> None:
        self.trace, self.report, self.offset, self.ok = trace, progress, offset, ok

    def write(self, events: EventBatch) -> None:
        assert self.trace is not None
        self.trace.write(dataclasses.replace(events, run=events.run + self.offset))

    def progress(self, done: int, ok: int) -> None:
        if self.report:
            self.report(self.offset + done, self.ok + ok)


def python_processes(scenario: Scenario, seeds: np.ndarray, jobs: int, progress: ProgressFn | None,
                     trace: EventSink | None, poll: float, runs_fn: RunsFn
                     ) -> tuple[dict[str, np.ndarray], float, bool, str | None]:
    """Run every seed, the first ones in this process and, when it pays, the
    rest on ``jobs`` processes: ``(columns, engine seconds, stopped, why one
    core)`` as ``runs_fn`` (the one-core runner) returns the first three."""
    t0 = time.perf_counter()
    n = min(PROBE_RUNS, seeds.shape[0])
    first, probe_s, stopped = runs_fn(scenario, seeds[:n], progress, trace)
    rest = seeds.shape[0] - n
    if stopped or rest == 0:
        return first, time.perf_counter() - t0, stopped, None
    ok = int(first["success"].sum())
    serial = probe_s / n * rest
    if START_SECONDS + serial / jobs >= serial:
        shifted = _Shifted(trace, progress, n, ok)
        more, _s, stopped = runs_fn(scenario, seeds[n:], shifted.progress, shifted if trace is not None else None)
        why = (f"a run takes {1e3 * probe_s / n:.2f} ms, so the {rest} runs left would gain less on {jobs} "
               f"processes than starting them costs (~{START_SECONDS:g} s)")
        return _concat([first, more]), time.perf_counter() - t0, stopped, why
    out, _s, stopped = _on_processes(scenario, seeds, n, jobs, progress, trace, poll, runs_fn, ok)
    return _concat([first, out]), time.perf_counter() - t0, stopped, None


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _on_processes(scenario: Scenario, seeds: np.ndarray, start: int, jobs: int, progress: ProgressFn | None,
                  trace: EventSink | None, poll: float, runs_fn: RunsFn, ok: int
                  ) -> tuple[dict[str, np.ndarray], float, bool]:
    """Seeds ``start ..`` on ``jobs`` processes (``ok``: successes before ``start``)."""
    ctx = multiprocessing.get_context("spawn")
    parts = chunks(start, seeds.shape[0], jobs)
    stop = ctx.Event()
    counts = ctx.Array("q", 2 * len(parts), lock=False)      # (done, successes) per chunk
    init = (scenario.text, scenario.path, scenario.variant, scenario.overrides, scenario.sha256,
            scenario.planned_rules(), scenario.config, runs_fn, stop, counts)
    stopped = False
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init, initargs=init) as pool:
        futures = [pool.submit(_run, i, lo, seeds[lo:hi], trace is not None) for i, (lo, hi) in enumerate(parts)]
        ordered = _Ordered(futures, [hi - lo for lo, hi in parts], trace)
        finished = False                # every chunk returned, none raised
        try:
            pending: set[Future] = set(futures)
            while pending:
                done, pending = wait(pending, timeout=max(0.01, poll), return_when=FIRST_EXCEPTION)
                if any(f.exception() is not None for f in done):
                    break
                ordered.advance()
                if progress:
                    progress(start + sum(counts[0::2]), ok + sum(counts[1::2]))
            finished = not pending
        except KeyboardInterrupt:
            stopped = True
        finally:
            if not finished:            # Ctrl-C, a worker's error or the trace's: the rest stop
                stop.set()
                for f in futures:
                    f.cancel()
            wait(futures)
    for f in futures:
        if f.done() and not f.cancelled():
            try:
                f.result()                    # a worker's error, raised here
            except BrokenProcessPool as exc:
                raise EnvironmentError_(
                    f"a worker process of the Python environment ended abruptly ({exc}); a script that "
                    f"calls run_eval(jobs=N) must guard its top level with `if __name__ == \"__main__\":` "
                    f"(the workers import it again), or run with jobs=1") from None
    ordered.advance()
    elapsed = time.perf_counter() - t0
    if progress:
        progress(start + sum(counts[0::2]), ok + sum(counts[1::2]))
    if not ordered.kept:
        return runs_fn(scenario, seeds[:0], None, None)[0], elapsed, True
    return _concat(ordered.kept), elapsed, stopped or len(ordered.kept) < len(parts) or not ordered.complete
