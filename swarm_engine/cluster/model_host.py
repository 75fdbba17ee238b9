"""A model held per node for a cluster eval whose LLM runs in process (``[llm] provider = "llama-cpp"``).

A plain chunk task would load the model again for every chunk (seconds
each), so such an eval gets one :class:`ModelHost` actor per alive node with
CPUs instead: it loads the model once (:func:`swarm_engine.eval.runner.llm_runner`,
the same preflight as a local eval) and runs the chunks dealt to it, one at a
time, with that runner (``run_eval(..., held_runner=)``). The driver side is
:class:`ModelPool`: it starts the actors, deals each chunk to the first free
one, replaces an actor that died (on its node, while the node lives) and kills
them all when the eval ends, however it ends. Providers that call a server
(``llama-server``, ``ollama``, ``openai``) keep plain chunk tasks: each node
calls the endpoints its ``[llm]`` names.

Ray is imported by the caller (:func:`swarm_engine.cluster.connect.import_ray`)
and handed in; this module never imports it, so the engine imports without it.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec

from swarm_engine.cluster.chunk_task import CRASH_EXIT, Chunk, _node_id, rebuild, with_selector
from swarm_engine.cluster.record import ClusterRecord
from swarm_engine.errors import ClusterError, ConfigError, SwarmError
from swarm_engine.eval.loader import Scenario
from swarm_engine.eval.merge import to_payload
from swarm_engine.eval.runner import llm_runner, run_eval, unavailable_summary

__all__ = ["ModelHost", "ModelPool", "HostPlan", "host_plan", "held_in_process", "model_threads", "IN_PROCESS",
           "MODEL_THREADS", "LOAD_TIMEOUT_S", "MAX_HOSTS_PER_NODE"]

IN_PROCESS = ("llama-cpp",)    # providers whose model lives in the eval's process: held by an actor per node
# llama.cpp threads (and the CPUs asked of Ray) of a node's model when [llm] extra.n_threads
# is not given: the backend's own default (every core of the process) would take the whole
# node from Ray, although one chunk at a time keeps the engine thread waiting on the model
# and a small model's decode is bound by memory, not cores. Chosen, not measured on a big node.
MODEL_THREADS = 4
MAX_HOSTS_PER_NODE = 64       # hosts_per_node's upper bound (each holds its own copy of the model)
LOAD_TIMEOUT_S = 180.0         # the actors' start and model load, all nodes together (> the preflight's 75 s)


def held_in_process(scenario: Scenario, llm: bool) -> bool:
    """True when the eval's chunks go to model hosts: LLM-managed, the LLM on, and in process."""
    return scenario.llm_managed and llm and scenario.spec.llm.provider in IN_PROCESS


def model_threads(scenario: Scenario, node_cpus: int) -> int:
    """llama.cpp threads for a node of ``node_cpus`` CPUs: ``[llm] extra.n_threads``, else
    :data:`MODEL_THREADS` (at most the node's CPUs)."""
    given = scenario.spec.llm.extra.get("n_threads")
    if isinstance(given, int) and given >= 1:
        return given
    return max(1, min(MODEL_THREADS, node_cpus))


@dataclass(frozen=True)
class HostPlan:
    """The model hosts of one node: ``count`` actors of ``threads`` llama.cpp threads,
    each asking Ray for ``cpus`` CPUs and ``gpus`` GPUs."""

    count: int
    threads: int
    cpus: int
    gpus: int


def host_plan(scenario: Scenario, resources: dict[str, float], hosts_per_node: int = 1) -> HostPlan:
    """How many hosts a node of ``resources`` (Ray's, of ``ray.nodes()``) gets, and their share.

    A host takes one GPU where the node has one and the scenario offloads
    (``n_gpu_layers`` != 0), else ``threads`` CPUs. ``hosts_per_node`` = 0 is as
    many as fit: one per GPU, or the node's CPUs over a host's; N >= 1 is at
    most N, never more than fit (a host never shares its CPUs or its GPU).
    Every host loads its own copy of the model: the node needs that much memory
    for each.
    """
    node_cpus = int(resources.get("CPU", 0))
    node_gpus = int(resources.get("GPU", 0))
    threads = model_threads(scenario, node_cpus)
    cpus = max(1, min(threads, node_cpus))
    gpus = 1 if scenario.spec.llm.n_gpu_layers != 0 and node_gpus >= 1 else 0
    if gpus:
        fit = node_gpus
        cpus = max(1, min(cpus, node_cpus // fit))
    else:
        fit = max(1, node_cpus // cpus)
    fit = min(fit, MAX_HOSTS_PER_NODE)
    return HostPlan(count=fit if hosts_per_node == 0 else min(hosts_per_node, fit), threads=threads,
                    cpus=cpus, gpus=gpus)


class ModelHost:
    """The actor's body (wrapped with ``ray.remote`` at use time): one scenario's model on one node.

    Its methods run one at a time (an actor's default), so a chunk never shares the model.
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.runner: Any = None
        self.scenario: Scenario | None = None
        self.failure: str | None = None     # why the model did not load (llm_fallback: the bandit runs)
        self.info: dict[str, Any] | None = None

    def load(self, chunk: Chunk) -> dict[str, Any]:
        """Build the scenario and load its model (once); where and how long, as a dict.

        A model that does not load is a ClusterError naming this node, unless the
        chunk allows ``llm_fallback``: then its chunks run with the bandit alone.
        """
        if self.info is not None:
            return self.info
        sc = rebuild(chunk)
        where = f"node {_node_id()} ({socket.gethostname()})"
        t0 = time.perf_counter()
        try:
            self.runner = llm_runner(_with_threads(sc, self.threads))
        except SwarmError as exc:
            from swarm_engine.llm.health import LlmUnavailableError

            if not (chunk.llm_fallback and isinstance(exc, LlmUnavailableError)):
                raise ClusterError(f"the model did not load on {where}: {exc}") from None
            if sc.rules is None:
                raise ConfigError(f"{exc}; cannot fall back to the bandit: the scenario's dependency graph "
                                  f"is planned by the LLM") from None
            self.failure = f"{exc} (on {where})"
        else:
            sc.plan(self.runner)       # an LLM-planned graph: once per host, shared by its chunks
        self.scenario = sc
        self.info = {"node_id": _node_id(), "host": socket.gethostname(), "pid": os.getpid(),
                     "threads": self.threads, "gpus": len(_gpu_ids()),
                     "load_seconds": time.perf_counter() - t0, "available": self.failure is None,
                     "reason": self.failure}
        return self.info

    def run(self, chunk: Chunk) -> dict[str, Any]:
        """Run one chunk with the held model; its payload, with ``node`` and ``model``."""
        if chunk.crash and chunk.attempt == 0:
            os._exit(CRASH_EXIT)      # the actor dying mid-eval, as a killed or OOM-killed one does
        info = self.load(chunk)
        assert self.scenario is not None
        sc = with_selector(self.scenario, chunk.selector)
        if self.failure is None:
            result = run_eval(sc, chunk.runs, chunk.seed, llm=True, jobs=chunk.jobs, held_runner=self.runner)
        else:
            result = run_eval(sc, chunk.runs, chunk.seed, llm=False, jobs=chunk.jobs)
            result.llm = unavailable_summary(self.failure)
        payload = to_payload(result)
        payload["node"] = {"node_id": info["node_id"], "host": info["host"], "pid": info["pid"]}
        payload["model"] = dict(info)
        return payload

    def close(self) -> None:
        """Free the model (the pool kills the actor anyway; this lets llama.cpp unload first)."""
        if self.runner is not None:
            self.runner.close()
            self.runner = None


def _with_threads(sc: Scenario, threads: int) -> Scenario:
    """``sc`` whose ``[llm]`` loads the model on ``threads`` threads (only for building the runner)."""
    llm = msgspec.structs.replace(sc.spec.llm, extra={**sc.spec.llm.extra, "n_threads": threads})
    return dataclasses.replace(sc, spec=msgspec.structs.replace(sc.spec, llm=llm))


def _gpu_ids() -> list[Any]:
    import sys

    ray = sys.modules.get("ray")
    return list(ray.get_gpu_ids()) if ray is not None and ray.is_initialized() else []


@dataclass
class _Host:
    """One actor as the driver sees it."""

    key: str                   # the actor's id: a node may get a replacement
    node_id: str
    host: str
    cpus: int
    gpus: int
    actor: Any
    threads: int = 1
    busy: Any = None           # the ref of the chunk it runs, None when free


@dataclass
class ModelPool:
    """The driver's side: :class:`ModelHost` actors on every alive node with CPUs, for one eval.

    ``hosts_per_node`` (:func:`host_plan`: 1 by default, 0 as many as fit) is
    how many per node; ``restarts`` bounds the replacements per node of actors
    that died (a chunk's own attempts are bounded by the eval's retries).
    """

    ray: Any
    scenario: Scenario
    record: ClusterRecord
    restarts: int = 3
    hosts_per_node: int = 1
    hosts: list[_Host] = field(default_factory=list)
    by_ref: dict[Any, _Host] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)      # node id -> actors started there after the first
    _cls: Any = None

    @property
    def slots(self) -> int:
        """Chunks that run at once: one per live host."""
        return len(self.hosts)

    @property
    def cpus_per_chunk(self) -> int:
        return max((h.cpus for h in self.hosts), default=0)

    def lost_errors(self) -> tuple[type[BaseException], ...]:
        """Ray's errors of a chunk whose actor died (its process or its node)."""
        names = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "ActorUnschedulableError")
        found = (getattr(self.ray.exceptions, n, None) for n in names)
        return tuple(e for e in found if isinstance(e, type) and issubclass(e, BaseException))

    def start(self, first: Chunk, timeout: float = LOAD_TIMEOUT_S) -> None:
        """Start the hosts of every alive node with CPUs (:func:`host_plan`) and load their
        models; ClusterError naming the node whose model does not load (or that did not
        start in ``timeout`` s)."""
        self._cls = self.ray.remote(ModelHost)
        nodes = [n for n in self.ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
        if not nodes:
            raise ClusterError("the Ray cluster has no alive node with CPUs for the model")
        if not 0 <= self.hosts_per_node <= MAX_HOSTS_PER_NODE:
            raise ConfigError(f"got {self.hosts_per_node}, expected 0 (as many as fit) or 1..{MAX_HOSTS_PER_NODE}",
                              path="--hosts-per-node")
        for node in nodes:
            plan = host_plan(self.scenario, node["Resources"], self.hosts_per_node)
            for _ in range(plan.count):
                self._spawn(str(node["NodeID"]), str(node.get("NodeManagerHostname", "?")), plan)
        loads = {h.actor.load.remote(first): h for h in self.hosts}
        ready, missing = self.ray.wait(list(loads), num_returns=len(loads), timeout=timeout)
        if missing:
            late = ", ".join(f"{loads[r].node_id} ({loads[r].host})" for r in missing)
            raise ClusterError(f"the model host did not start and load in {timeout:g} s on node(s) {late} "
                               f"(no free CPUs there?)")
        for ref in ready:
            host = loads[ref]
            try:
                info = self.ray.get(ref)
            except self.ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, SwarmError):
                    raise ClusterError(str(cause)) from None
                raise
            except self.lost_errors() as exc:
                raise ClusterError(f"the model host on node {host.node_id} ({host.host}) died while loading: "
                                   f"{type(exc).__name__}") from None
            self.record.model_loaded(host.key, info)

    def _spawn(self, node_id: str, hostname: str, plan: HostPlan) -> _Host:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        actor = self._cls.options(num_cpus=plan.cpus, num_gpus=plan.gpus, max_restarts=0, max_task_retries=0,
                                  scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
                                  ).remote(plan.threads)
        host = _Host(key=actor._actor_id.hex(), node_id=node_id, host=hostname, cpus=plan.cpus, gpus=plan.gpus,
                     actor=actor, threads=plan.threads)
        self.hosts.append(host)
        return host

    def room(self) -> int:
        """Chunks that may be submitted now: one per free host."""
        return sum(h.busy is None for h in self.hosts)

    def submit(self, chunk: Chunk) -> Any:
        """Deal ``chunk`` to the first free host; its ref."""
        host = next(h for h in self.hosts if h.busy is None)
        ref = host.actor.run.remote(chunk)
        host.busy = ref
        self.by_ref[ref] = host
        return ref

    def done(self, ref: Any, payload: dict[str, Any]) -> None:
        """``ref``'s chunk came back: its host is free and counted."""
        host = self.by_ref.pop(ref)
        host.busy = None
        self.record.model_ran(host.key, payload["model"], int(len(payload["success"])))

    def lost(self, ref: Any, exc: BaseException | None = None) -> None:
        """``ref``'s host died: it is dropped, and replaced on its node while the node lives."""
        host = self.by_ref.pop(ref)
        self.hosts.remove(host)
        self._kill(host)
        alive = {str(n["NodeID"]): n for n in self.ray.nodes() if n.get("Alive")}
        node = alive.get(host.node_id)
        if node is None or self.replaced.get(host.node_id, 0) >= self.restarts:
            return
        self.replaced[host.node_id] = self.replaced.get(host.node_id, 0) + 1
        # the dead one's share (its CPUs or GPU are free again); it loads with its first chunk
        self._spawn(host.node_id, host.host, HostPlan(1, host.threads, host.cpus, host.gpus))

    def close(self, pending: Any = None) -> None:
        """Kill every host (with what it runs): nothing of this eval is left running."""
        for host in self.hosts:
            self._kill(host)
        self.hosts.clear()
        self.by_ref.clear()

    def _kill(self, host: _Host) -> None:
        try:
            self.ray.kill(host.actor, no_restart=True)
        except Exception:           # already dead, or its node gone
            pass
