"""``swarm eval --cluster``: an eval's seeds in chunks, each a Ray task, merged into one result.

The driver hands out contiguous chunks of seeds in order (sized by
:class:`~swarm_engine.cluster.chunking.ChunkSizer`), keeps two per slot in
flight so no node waits on it, and merges the chunks by seed
(:func:`swarm_engine.eval.merge.concat_results`): the result is the local
one, run for run. A chunk whose worker or node died is submitted again
(Ray's own retries are off so that every retry is seen and recorded in the
report); an error of the engine on a node (a bad scenario there, another
engine version) ends the eval with its line.

An LLM-managed eval whose model runs in process (``llama-cpp``) sends its
chunks to model hosts instead, one Ray actor per node that loads the model
once (:mod:`swarm_engine.cluster.model_host`), one chunk at a time each; a
chunk whose host died runs again on another host or on its node's
replacement, recorded like a task's retry. Either way the loop below is the
same: only the dispatch (:class:`_Tasks` or ``ModelPool``) differs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from swarm_engine.cluster.chunk_task import Chunk, chunk_of, run_chunk
from swarm_engine.cluster.chunking import ChunkSizer
from swarm_engine.cluster.connect import import_ray
from swarm_engine.cluster.model_host import ModelPool, held_in_process
from swarm_engine.cluster.record import ClusterRecord
from swarm_engine.errors import ClusterError, ConfigError, SwarmError
from swarm_engine.eval.loader import Scenario
from swarm_engine.eval.merge import concat_results, from_payload, no_runs
from swarm_engine.eval.runner import EvalResult
from swarm_engine.inputs import limits

__all__ = ["run_eval_cluster", "CPUS_PER_CHUNK", "RETRIES", "IN_FLIGHT_PER_SLOT", "CRASH_ENV"]

# CPUs (and run_eval threads, chunk_task._run) per chunk: one, so Ray fills a node's
# cores with that many chunks side by side (smaller chunks balance better than one
# chunk on every core, and no chunk waits for a whole node to be free)
CPUS_PER_CHUNK = 1
RETRIES = 3                  # resubmissions of one chunk after its worker or node died
IN_FLIGHT_PER_SLOT = 2       # chunks queued per slot: the next one is there when one finishes
CRASH_ENV = "SWARM_CLUSTER_CRASH"   # test-only fault injection: comma-separated chunk indices whose first attempt dies

# Ray's errors for a task that died with its worker or node (retried); anything else is not
_LOST = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError", "OwnerDiedError",
         "ObjectReconstructionFailedError", "RaySystemError", "ObjectFetchTimedOutError")

ProgressFn = Callable[[int, int], None]


def run_eval_cluster(scenario: Scenario, runs: int, seed: int = 42, *, address: str = "ray",
                     progress: ProgressFn | None = None, llm: bool = True, llm_fallback: bool = False,
                     memory: str | None = None, chunk_runs: int | None = None,
                     retries: int = RETRIES, hosts_per_node: int = 1) -> EvalResult:
    """:func:`swarm_engine.eval.runner.run_eval` on the Ray cluster this process is connected
    to (:func:`swarm_engine.cluster.connect.ray_cluster`); ``result.cluster`` says what ran where.

    ``chunk_runs`` fixes the runs per chunk (default: adapted to the measured
    costs); ``address`` is only recorded. Ctrl-C keeps the chunks finished in
    seed order from the first one (``result.stopped``). An LLM-managed scenario
    whose model runs in process goes to one model host per node
    (:class:`~swarm_engine.cluster.model_host.ModelPool`, ``result.cluster["models"]``),
    killed when the eval ends (``hosts_per_node`` of them per node, 0: as many as fit,
    :func:`~swarm_engine.cluster.model_host.host_plan`); ``retries`` also bounds a
    node's replacement hosts.
    """
    ray = import_ray()
    if not ray.is_initialized():
        raise ClusterError("not connected to a Ray cluster (use swarm_engine.cluster.ray_cluster or ray.init)")
    if runs < 1:
        raise ConfigError(f"runs must be at least 1, got {runs}")
    problem = limits.seeds_error(seed, runs)
    if problem:
        raise ConfigError(problem)
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < CPUS_PER_CHUNK:
        raise ClusterError(f"the Ray cluster at {address} has {cpus} CPUs; a chunk needs {CPUS_PER_CHUNK}")
    record = ClusterRecord(address=address, ray_version=ray.__version__, cpus=cpus, cpus_per_chunk=CPUS_PER_CHUNK)
    options: dict[str, Any] = {"memory": memory, "llm": llm, "llm_fallback": llm_fallback, "jobs": CPUS_PER_CHUNK}
    crash = _crash_indices()
    pending: dict[Any, Chunk] = {}
    queue: deque[Chunk] = deque()             # chunks to submit again, before any new one
    parts: dict[int, EvalResult] = {}
    end, cursor, index, done, ok = seed + runs, seed, 0, 0, 0
    stopped = False
    t0 = time.perf_counter()
    busy = 0.0
    dispatch: _Tasks | ModelPool = _Tasks(ray, cpus // CPUS_PER_CHUNK)
    try:
        if held_in_process(scenario, llm):
            dispatch = ModelPool(ray, scenario, record, restarts=retries, hosts_per_node=hosts_per_node)
            dispatch.start(chunk_of(scenario, -1, seed, 1, **options))
            record.cpus_per_chunk = dispatch.cpus_per_chunk
        lost = _lost_errors(ray) + dispatch.lost_errors()
        sizer = ChunkSizer(runs, dispatch.slots, fixed=chunk_runs)
        while cursor < end or pending or queue:
            t = time.perf_counter()
            room = min(sizer.in_flight(IN_FLIGHT_PER_SLOT) - len(pending), dispatch.room())
            while room > 0 and (queue or cursor < end):
                if queue:
                    chunk = queue.popleft()
                else:
                    n = sizer.next(end - cursor)
                    chunk = chunk_of(scenario, index, cursor, n, crash=index in crash, **options)
                    cursor, index = cursor + n, index + 1
                pending[dispatch.submit(chunk)] = chunk
                room -= 1
            busy += time.perf_counter() - t
            if not pending:              # only a pool runs out of room: its hosts all died
                what = _named(queue[0]) if queue else f"seeds {cursor}..{end - 1}"
                raise ClusterError(f"{what}: no model host is left to run on (every one died and none could "
                                   f"be started again)")
            ray.wait(list(pending), num_returns=1)
            t = time.perf_counter()
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
            came = []
            for ref in ready:
                chunk = pending.pop(ref)
                try:
                    payload = ray.get(ref)
                except lost as exc:
                    dispatch.lost(ref)
                    if chunk.attempt >= retries:
                        raise ClusterError(f"{_named(chunk)} was lost on all {chunk.attempt + 1} attempts, "
                                           f"last: {_line(exc)}") from None
                    record.retried(chunk.index, chunk.seed, chunk.runs, chunk.attempt, exc)
                    queue.append(dataclasses.replace(chunk, attempt=chunk.attempt + 1))
                    continue
                except ray.exceptions.RayTaskError as exc:
                    raise _task_error(exc, chunk) from None
                dispatch.done(ref, payload)
                part = from_payload(scenario, payload)
                parts[chunk.index] = part
                record.ran(part.runs, payload["node"], part.engine_seconds)
                came.append(part)
                done += part.runs
                ok += int(part.success.sum())
            spent = time.perf_counter() - t
            busy += spent
            for part in came:
                sizer.observe(part.runs, part.engine_seconds, spent / len(came))
            if progress and came:
                progress(done, ok)
    except KeyboardInterrupt:
        stopped = True
    finally:
        dispatch.close(pending)               # a finished, failed or stopped eval leaves nothing running
    t = time.perf_counter()
    ordered: list[EvalResult] = []          # the chunks in seed order, up to the first one missing
    while len(ordered) in parts:
        ordered.append(parts[len(ordered)])
    if not ordered and not parts:
        raise KeyboardInterrupt             # stopped before any chunk came back: nothing to report
    if ordered:
        result = concat_results(ordered, requested=runs, engine_seconds=time.perf_counter() - t0)
    else:                                   # chunks came back, but not the first: no prefix of the seeds
        result = no_runs(next(iter(parts.values())), base_seed=seed, requested=runs,
                         engine_seconds=time.perf_counter() - t0)
    result.stopped = result.stopped or stopped
    record.driver_seconds = busy + time.perf_counter() - t
    record.wall_seconds = result.engine_seconds
    result.cluster = record.as_dict()
    return result


class _Tasks:
    """Plain chunk tasks, spread over the nodes: every eval but one whose model runs in process."""

    def __init__(self, ray: Any, slots: int) -> None:
        self.ray = ray
        self.slots = slots
        self.task = ray.remote(run_chunk).options(num_cpus=CPUS_PER_CHUNK, max_retries=0, scheduling_strategy="SPREAD")

    def lost_errors(self) -> tuple[type[BaseException], ...]:
        return ()

    def room(self) -> int:
        return self.slots * IN_FLIGHT_PER_SLOT      # Ray queues them; the sizer's in-flight count bounds it

    def submit(self, chunk: Chunk) -> Any:
        return self.task.remote(chunk)

    def done(self, ref: Any, payload: dict[str, Any]) -> None:
        pass

    def lost(self, ref: Any) -> None:
        pass

    def close(self, pending: dict[Any, Chunk]) -> None:
        for ref in pending:
            self.ray.cancel(ref, force=True)


def _lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's exception classes of a chunk lost with its worker or node (those this Ray has)."""
    found = (getattr(ray.exceptions, name, None) for name in _LOST)
    return tuple(e for e in found if isinstance(e, type) and issubclass(e, BaseException))


def _named(chunk: Chunk) -> str:
    return f"chunk {chunk.index} (seeds {chunk.seed}..{chunk.seed + chunk.runs - 1})"


def _crash_indices() -> set[int]:
    raw = os.environ.get(CRASH_ENV, "")
    return {int(x) for x in raw.split(",") if x.strip().isdigit()}


def _line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _task_error(exc: Any, chunk: Chunk) -> BaseException:
    """A chunk that raised on its node: the engine's own error as one line; a bug keeps its traceback."""
    cause = getattr(exc, "cause", None)
    where = f"{_named(chunk)} on a Ray node"
    if isinstance(cause, SwarmError):
        return ClusterError(f"{where}: {cause}")
    if isinstance(cause, ImportError):
        return ClusterError(f"{where}: {cause} (install swarm-engine, the driver's version, on every node)")
    return exc
