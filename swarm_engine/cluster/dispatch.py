"""Where a cluster eval's plain chunks go: a whole node each, or a fixed number of CPUs each.

``chunk_cpus = 0`` (the default, :class:`NodeTasks`): each chunk is pinned to
one node, asks Ray for all of that node's CPUs and runs on as many threads
(``run_eval(..., jobs=)``), so a 64-core node runs one chunk on 64 cores and
the driver handles one chunk where it would handle 64. ``chunk_cpus = N``
(:class:`SpreadTasks`): each chunk asks for N CPUs and runs on N threads,
scheduled ``SPREAD``, so a node runs its CPUs over N chunks side by side and
a node that joins mid-eval (or an autoscaler's new one) gets chunks at once.

Both keep :data:`IN_FLIGHT_PER_SLOT` chunks per slot submitted, so the next
one is queued on its node when one finishes. Ray is handed in by the caller.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from swarm_engine.cluster.chunk_task import Chunk, run_chunk
from swarm_engine.errors import ClusterError, ConfigError
from swarm_engine.inputs import limits

__all__ = ["NodeTasks", "SpreadTasks", "plain_tasks", "check_chunk_cpus", "lost_errors", "cpu_nodes",
           "IN_FLIGHT_PER_SLOT", "MAX_CHUNK_CPUS", "NODES_EVERY_S"]

IN_FLIGHT_PER_SLOT = 2       # chunks queued per slot: the next one is there when one finishes
MAX_CHUNK_CPUS = limits.MAX_JOBS   # chunk_cpus' upper bound: a chunk's threads are an eval's -j
NODES_EVERY_S = 5.0          # NodeTasks asks Ray for the alive nodes at most this often (a joined one is used)

# Ray's errors for a task that died with its worker or node (retried); anything else is not.
# TaskUnschedulableError: a chunk pinned to a node that died before it started there.
_LOST = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError", "OwnerDiedError",
         "ObjectReconstructionFailedError", "RaySystemError", "ObjectFetchTimedOutError", "TaskUnschedulableError")

_NODE_LOST = ("NodeDiedError", "LocalRayletDiedError", "TaskUnschedulableError")   # the node, not a worker


def lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's exception classes of a chunk lost with its worker or node (those this Ray has)."""
    found = (getattr(ray.exceptions, name, None) for name in _LOST)
    return tuple(e for e in found if isinstance(e, type) and issubclass(e, BaseException))


def cpu_nodes(ray: Any) -> dict[str, dict[str, Any]]:
    """The alive nodes with at least one CPU, by node id (``ray.nodes()`` entries)."""
    return {str(n["NodeID"]): n for n in ray.nodes()
            if n.get("Alive") and int(n.get("Resources", {}).get("CPU", 0)) >= 1}


def check_chunk_cpus(chunk_cpus: int) -> None:
    """A one-line ConfigError naming ``--chunk-cpus`` when it is out of range."""
    if not 0 <= chunk_cpus <= MAX_CHUNK_CPUS:
        raise ConfigError(f"got {chunk_cpus}, expected 0 (a whole node per chunk) or 1..{MAX_CHUNK_CPUS}",
                          path="--chunk-cpus")


def plain_tasks(ray: Any, chunk_cpus: int) -> NodeTasks | SpreadTasks:
    """The dispatch for ``chunk_cpus`` (0: a whole node per chunk; the caller has checked its
    range with :func:`check_chunk_cpus`); a one-line error when no node has that many CPUs."""
    return NodeTasks(ray) if chunk_cpus == 0 else SpreadTasks(ray, chunk_cpus)


class SpreadTasks:
    """Chunks of ``cpus`` CPUs (and threads) each, spread over the nodes by Ray."""

    def __init__(self, ray: Any, cpus: int) -> None:
        self.ray = ray
        self.cpus = cpus
        nodes = cpu_nodes(ray)
        self.slots = sum(int(n["Resources"]["CPU"]) // cpus for n in nodes.values())
        if self.slots < 1:
            most = max((int(n["Resources"]["CPU"]) for n in nodes.values()), default=0)
            raise ClusterError(f"no node of the Ray cluster has {cpus} CPUs for a chunk (the most: {most}); "
                               f"give --chunk-cpus at most {most}, or 0 for a whole node")
        self.task = ray.remote(run_chunk).options(num_cpus=cpus, max_retries=0, scheduling_strategy="SPREAD")

    @property
    def cpus_per_chunk(self) -> int:
        return self.cpus

    def lost_errors(self) -> tuple[type[BaseException], ...]:
        return ()

    def room(self) -> int:
        return self.slots * IN_FLIGHT_PER_SLOT      # Ray queues them; the sizer's in-flight count bounds it

    def submit(self, chunk: Chunk) -> Any:
        return self.task.remote(dataclasses.replace(chunk, jobs=self.cpus))

    def done(self, ref: Any, payload: dict[str, Any]) -> None:
        pass

    def lost(self, ref: Any, exc: BaseException) -> None:
        pass

    def close(self, pending: dict[Any, Chunk]) -> None:
        for ref in pending:
            self.ray.cancel(ref, force=True)


class NodeTasks:
    """Chunks of a whole node each: pinned to the node with the fewest in flight, asking for
    all its CPUs, run on that many threads. A chunk lost with its node runs again on
    another (the node is dropped); nodes that join are picked up every :data:`NODES_EVERY_S`."""

    def __init__(self, ray: Any) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray = ray
        self._pin = NodeAffinitySchedulingStrategy
        self._task = ray.remote(run_chunk)
        self.cpus: dict[str, int] = {}             # alive node id -> its CPUs
        self.load: dict[str, int] = {}             # node id -> chunks in flight there
        self.by_ref: dict[Any, str] = {}
        self.dropped: set[str] = set()             # nodes a chunk was lost with (not just a worker)
        self._seen = 0.0
        self._refresh()
        if not self.cpus:
            raise ClusterError("the Ray cluster has no alive node with CPUs")
        self.slots = len(self.cpus)

    @property
    def cpus_per_chunk(self) -> int:
        return max(self.cpus.values(), default=0)

    def _refresh(self) -> None:
        self.cpus = {k: int(n["Resources"]["CPU"]) for k, n in cpu_nodes(self.ray).items()
                     if k not in self.dropped}
        for node in self.cpus:
            self.load.setdefault(node, 0)
        self._seen = time.monotonic()

    def lost_errors(self) -> tuple[type[BaseException], ...]:
        return ()

    def room(self) -> int:
        if time.monotonic() - self._seen > NODES_EVERY_S:
            self._refresh()
        return sum(max(0, IN_FLIGHT_PER_SLOT - self.load[n]) for n in self.cpus)

    def submit(self, chunk: Chunk) -> Any:
        # the freest node, the biggest first among equals: the sizer's first probes land on the big ones
        node = min(self.cpus, key=lambda n: (self.load[n], -self.cpus[n], n))
        cpus = self.cpus[node]
        ref = self._task.options(num_cpus=cpus, max_retries=0,
                                 scheduling_strategy=self._pin(node, soft=False)).remote(
            dataclasses.replace(chunk, jobs=cpus))
        self.load[node] += 1
        self.by_ref[ref] = node
        return ref

    def done(self, ref: Any, payload: dict[str, Any]) -> None:
        self.load[self.by_ref.pop(ref)] -= 1

    def lost(self, ref: Any, exc: BaseException) -> None:
        node = self.by_ref.pop(ref)
        self.load[node] -= 1
        if type(exc).__name__ in _NODE_LOST:       # Ray may still list it alive for a while: never again
            self.dropped.add(node)
        self._refresh()

    def close(self, pending: dict[Any, Chunk]) -> None:
        for ref in pending:
            self.ray.cancel(ref, force=True)
