"""``swarm eval --cluster``: an eval's seeds in chunks, each a Ray task, merged into one result.

The driver hands out contiguous chunks of seeds in order (sized by
:class:`~swarm_engine.cluster.chunking.ChunkSizer`), each a whole node's or
``chunk_cpus`` CPUs' worth (:mod:`swarm_engine.cluster.dispatch`), keeps two
per slot in flight so no node waits on it, and merges the chunks by seed
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
same: only the dispatch (``NodeTasks``, ``SpreadTasks`` or ``ModelPool``) differs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from swarm_engine.cluster.chunk_task import Chunk, chunk_of
from swarm_engine.cluster.chunking import ChunkSizer
from swarm_engine.cluster.connect import import_ray
from swarm_engine.cluster.dispatch import (
    IN_FLIGHT_PER_SLOT,
    NodeTasks,
    SpreadTasks,
    check_chunk_cpus,
    lost_errors,
    plain_tasks,
)
from swarm_engine.cluster.model_host import ModelPool, held_in_process
from swarm_engine.cluster.record import ClusterRecord
from swarm_engine.errors import ClusterError, ConfigError, SwarmError
from swarm_engine.eval.loader import Scenario
from swarm_engine.eval.merge import concat_results, from_payload, no_runs
from swarm_engine.eval.runner import EvalResult
from swarm_engine.inputs import limits

__all__ = ["run_eval_cluster", "RETRIES", "IN_FLIGHT_PER_SLOT", "CRASH_ENV", "MODEL_CHUNK_JOBS"]

RETRIES = 3                  # resubmissions of one chunk after its worker or node died
CRASH_ENV = "SWARM_CLUSTER_CRASH"   # test-only fault injection: comma-separated chunk indices whose first attempt dies
MODEL_CHUNK_JOBS = 1         # a model host's chunk runs on one thread: its engine waits on the model

ProgressFn = Callable[[int, int], None]


def run_eval_cluster(scenario: Scenario, runs: int, seed: int = 42, *, address: str = "ray",
                     progress: ProgressFn | None = None, llm: bool = True, llm_fallback: bool = False,
                     memory: str | None = None, chunk_runs: int | None = None,
                     retries: int = RETRIES, hosts_per_node: int = 1, chunk_cpus: int = 0) -> EvalResult:
    """:func:`swarm_engine.eval.runner.run_eval` on the Ray cluster this process is connected
    to (:func:`swarm_engine.cluster.connect.ray_cluster`); ``result.cluster`` says what ran where.

    ``chunk_runs`` fixes the runs per chunk (default: adapted to the measured
    costs); ``chunk_cpus`` is the CPUs (and threads) of each chunk, 0 a whole
    node (:mod:`~swarm_engine.cluster.dispatch`); ``address`` is only recorded.
    Ctrl-C keeps the chunks finished in seed order from the first one
    (``result.stopped``). An LLM-managed scenario
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
    check_chunk_cpus(chunk_cpus)
    cpus = int(ray.cluster_resources().get("CPU", 0))
    record = ClusterRecord(address=address, ray_version=ray.__version__, cpus=cpus, cpus_per_chunk=0,
                           chunk_cpus=chunk_cpus)
    options: dict[str, Any] = {"memory": memory, "llm": llm, "llm_fallback": llm_fallback, "jobs": MODEL_CHUNK_JOBS}
    crash = _crash_indices()
    pending: dict[Any, Chunk] = {}
    queue: deque[Chunk] = deque()             # chunks to submit again, before any new one
    parts: dict[int, EvalResult] = {}
    end, cursor, index, done, ok = seed + runs, seed, 0, 0, 0
    stopped = False
    t0 = time.perf_counter()
    busy = 0.0
    dispatch: NodeTasks | SpreadTasks | ModelPool | None = None
    try:
        if held_in_process(scenario, llm):
            dispatch = ModelPool(ray, scenario, record, restarts=retries, hosts_per_node=hosts_per_node)
            dispatch.start(chunk_of(scenario, -1, seed, 1, **options))
        else:
            dispatch = plain_tasks(ray, chunk_cpus)
        record.cpus_per_chunk = dispatch.cpus_per_chunk
        lost = lost_errors(ray) + dispatch.lost_errors()
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
            if not pending:              # out of room: every model host, or every node, died
                what = _named(queue[0]) if queue else f"seeds {cursor}..{end - 1}"
                left = "model host" if isinstance(dispatch, ModelPool) else "node"
                raise ClusterError(f"{what}: no {left} is left to run on (every one died and none could "
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
                    dispatch.lost(ref, exc)
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
                record.ran(part.runs, payload["node"], part.engine_seconds, int(part.jobs.get("used") or 1))
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
        if dispatch is not None:
            dispatch.close(pending)           # a finished, failed or stopped eval leaves nothing running
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
