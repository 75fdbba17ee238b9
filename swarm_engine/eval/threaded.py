"""Native runs of one eval on several threads, the same runs as on one.

``Kernel.run_batch`` releases the GIL for the whole batch, so threads run
truly in parallel: each owns one Kernel (no shared mutable state; the
scenario's rules and environment parameters are read-only) and runs chunks
of contiguous seeds (:func:`swarm_engine.eval.jobs.chunks`), writing every
run's row at its seed's index of the shared output columns. Every value of a
run depends on its seed alone, so the columns are those of one thread.

The main thread keeps what one thread did: it polls the chunks' counters for
the progress bar, writes the trace in seed order (each chunk's events are
buffered until every chunk before it is written), and with a learning
recorder runs its blocks one after another (tables installed in every kernel
before a block, its events observed after it), so the tables each run sees
are those of one thread. Ctrl-C asks every thread to stop when its current
``run_batch`` call returns (every ``chunk_seconds``) and keeps the finished
prefix of the seeds: runs after the first unfinished one are dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from swarm_engine._native import _kernel
from swarm_engine.core.config import make_kernel
from swarm_engine.core.events import EventBatch
from swarm_engine.eval.jobs import chunks
from swarm_engine.eval.loader import Scenario

__all__ = ["native_threads", "EventSink"]

ProgressFn = Callable[[int, int], None]
ObserveFn = Callable[[Any, list[dict], np.ndarray, int], None]
_COLUMNS = ("success", "verdict", "ticks", "actions", "failed", "wall", "by_action")
# events each kernel logs before run_batch returns to have them drained (as on one thread)
EVENT_CAPACITY = 1 << 16


class EventSink(Protocol):
    """Where a trace goes (:class:`swarm_engine.eval.runner.TraceWriter`)."""

    def write(self, events: EventBatch) -> None: ...


@dataclass
class _Chunk:
    """Seeds ``lo .. hi - 1``: ``r`` is the next run to finish (read by the
    main thread, written by the one running the chunk)."""

    lo: int
    hi: int
    r: int = 0
    events: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.r = self.lo


def _run_chunk(idle: queue.SimpleQueue, chunk: _Chunk, seeds: np.ndarray, out: dict[str, np.ndarray],
               chunk_seconds: float, record: bool, stop: threading.Event) -> None:
    k = idle.get()
    try:
        r, resume = chunk.lo, False
        cols = [out[c] for c in _COLUMNS]
        while r < chunk.hi and not stop.is_set():
            r, status = k.run_batch(seeds[:chunk.hi], r, resume, *cols, chunk_seconds, out["done"])
            if record and k.n_events:
                chunk.events.append(k.take_events())
            chunk.r = r
            resume = status == _kernel.ST_NEED_ROOM
            if resume:
                k.make_room()
    finally:
        idle.put(k)


def _finished(parts: list[_Chunk]) -> int:
    """The end of the finished prefix: the first chunk's start plus every
    chunk's runs up to and including the first unfinished one."""
    end = parts[0].lo if parts else 0
    for c in parts:
        end = c.r
        if c.r < c.hi:
            break
    return end


def _columns(events: list[dict], below: int) -> dict[str, np.ndarray] | None:
    """A chunk's events concatenated, those of runs ``>= below`` dropped (an
    unfinished run of a stopped eval)."""
    if not events:
        return None
    cols = {f: np.concatenate([e[f] for e in events]) for f in events[0]}
    keep = cols["run"] < below
    return cols if keep.all() else {f: v[keep] for f, v in cols.items()}


class _Block:
    """One block of seeds run on every thread; see the module docstring."""

    def __init__(self, start: int, end: int, jobs: int) -> None:
        self.start = start
        self.parts = [_Chunk(lo, hi) for lo, hi in chunks(start, end, jobs)]
        self.futures: list[Future] = []
        self.written = 0                  # chunks whose events went to the trace

    def write_trace(self, trace: EventSink | None, final: bool) -> None:
        """Write the events of the chunks finished in order so far (all
        finished chunks and the tail of a stopped one, when ``final``)."""
        if trace is None:
            return
        end = _finished(self.parts)
        while self.written < len(self.parts):
            c = self.parts[self.written]
            if c.r < c.hi and not final:
                return
            cols = _columns(c.events, end)
            if cols is not None:
                trace.write(EventBatch.from_columns(cols))
            c.events = []
            self.written += 1
            if c.r < c.hi:
                return

    def events(self) -> list[dict]:
        return [e for c in self.parts for e in c.events]


def native_threads(scenario: Scenario, seeds: np.ndarray, jobs: int, progress: ProgressFn | None,
                   trace: EventSink | None, chunk_seconds: float, recorder=None,
                   observe: ObserveFn | None = None) -> tuple[dict[str, np.ndarray], float, bool]:
    """Run every seed on ``jobs`` threads; ``(columns, engine seconds, stopped)``
    as the one-thread runner returns them. ``observe(recorder, events,
    success, offset)`` folds a finished block into the recorder."""
    R, A = seeds.shape[0], len(scenario.actions)
    record = trace is not None or recorder is not None
    kernels = [make_kernel(scenario.planned_rules(), scenario.binding, scenario.config,
                           record_events=record, event_capacity=EVENT_CAPACITY) for _ in range(jobs)]
    idle: queue.SimpleQueue = queue.SimpleQueue()
    for k in kernels:
        idle.put(k)
    out: dict[str, np.ndarray] = dict(
        success=np.zeros(R, np.uint8), verdict=np.zeros(R, np.int8), ticks=np.zeros(R, np.int64),
        actions=np.zeros(R, np.int64), failed=np.zeros(R, np.int64), wall=np.zeros(R),
        by_action=np.zeros((R, A), np.int64), done=np.zeros(R, np.uint8))
    # with a recorder, runs go in blocks of recorder.block, one after another
    # (the tables change between blocks); without one the eval is one block
    size = recorder.block if recorder is not None else R
    stop = threading.Event()
    stopped, r = False, 0
    b: _Block | None = None

    def finish(b: _Block) -> int:
        b.write_trace(trace, final=True)
        end = _finished(b.parts)
        if recorder is not None and observe is not None and end > b.start:
            observe(recorder, b.events(), out["success"][b.start:end], b.start)
        return end

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="swarm-eval") as pool:
        try:
            for start in range(0, R, size):
                if recorder is not None:
                    recorder.install(*kernels)
                b = _Block(start, min(R, start + size), jobs)
                b.futures = [pool.submit(_run_chunk, idle, c, seeds, out, chunk_seconds, record, stop)
                             for c in b.parts]
                stopped = _follow(b, out, trace, progress, chunk_seconds, stop)
                r, b = finish(b), None
                if stopped or r < min(R, start + size):
                    break
        except KeyboardInterrupt:         # between two blocks: the chunks of the last one stop
            stop.set()
            stopped = True
            if b is not None:
                wait(b.futures)
                r = finish(b)
    elapsed = time.perf_counter() - t0
    return {key: v[:r] for key, v in out.items()}, elapsed, stopped


def _follow(b: _Block, out: dict[str, np.ndarray], trace: EventSink | None, progress: ProgressFn | None,
            poll: float, stop: threading.Event) -> bool:
    """Wait for a block's chunks, reporting progress and writing the trace as
    they finish; True when Ctrl-C stopped them. A chunk's error (or the
    trace's) stops the others and is raised once they have returned."""
    stopped = False
    try:
        pending = set(b.futures)
        while pending:
            done, pending = wait(pending, timeout=max(0.01, poll), return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                stop.set()
                break
            b.write_trace(trace, final=False)
            if progress:
                progress(*_counts(b, out))
    except KeyboardInterrupt:
        stop.set()
        stopped = True
    except BaseException:
        stop.set()
        wait(b.futures)
        raise
    wait(b.futures)
    for f in b.futures:
        f.result()
    if progress:
        progress(*_counts(b, out))
    return stopped


def _counts(b: _Block, out: dict[str, np.ndarray]) -> tuple[int, int]:
    """(finished runs, successes among them) over the block and every run before it."""
    done = b.start + sum(c.r - c.lo for c in b.parts)
    ok = int(out["success"][:b.start].sum()) + sum(int(out["success"][c.lo:c.r].sum()) for c in b.parts)
    return done, ok
