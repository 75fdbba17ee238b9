"""The node's side of a cluster eval: one chunk of seeds, run where Ray put it.

A chunk travels as a :class:`Chunk` of plain values (the scenario's text,
not its compiled native objects); the node rebuilds the scenario, checks
that it is the driver's (sha256 of the text, the engine version, the
validated spec), runs the seeds and sends back the result as arrays
(:func:`swarm_engine.eval.merge.to_payload`). This module is imported by
Ray's workers by name, so every node needs the same swarm-engine installed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from swarm_engine._version import __version__
from swarm_engine.errors import ConfigError
from swarm_engine.eval.loader import Scenario, parse_scenario
from swarm_engine.eval.merge import to_payload
from swarm_engine.eval.runner import EvalResult, run_eval
from swarm_engine.exploration.selectors import SelectorConfig

__all__ = ["Chunk", "run_chunk", "chunk_of", "spec_digest", "with_selector", "CRASH_EXIT"]

CRASH_EXIT = 70       # the exit status of a worker told to die (fault injection, tests)


@dataclass(frozen=True)
class Chunk:
    """One chunk of an eval, as plain values for the trip to a node."""

    index: int                       # the chunk's place in the eval (seed order)
    seed: int                        # its first seed
    runs: int
    attempt: int                     # 0 first, 1.. when resubmitted after a node or worker died
    text: str                        # the scenario file's text and how it was loaded
    path: str | None
    variant: str | None
    overrides: dict[str, Any] | None
    sha256: str
    spec: str                        # sha256 of the validated spec (msgspec JSON): what the node must rebuild
    selector: SelectorConfig         # the driver's selector (a learned model may have replaced the file's)
    version: str                     # the driver's swarm-engine
    memory: str | None = None        # --memory-limit
    llm: bool = True
    llm_fallback: bool = False
    jobs: int = 1                    # threads for the chunk on its node (-j); see _run
    crash: bool = False              # fault injection: die on the first attempt (SWARM_CLUSTER_CRASH, tests)


def spec_digest(scenario: Scenario) -> str:
    """sha256 of the scenario's validated spec: equal on two machines when both built the same scenario."""
    return hashlib.sha256(msgspec.json.encode(scenario.spec)).hexdigest()


def chunk_of(scenario: Scenario, index: int, seed: int, runs: int, **options: Any) -> Chunk:
    """The :class:`Chunk` for ``runs`` seeds from ``seed`` of ``scenario``."""
    return Chunk(index=index, seed=seed, runs=runs, attempt=0, text=scenario.text, path=scenario.path,
                 variant=scenario.variant, overrides=scenario.overrides, sha256=scenario.sha256,
                 spec=spec_digest(scenario), selector=scenario.config.selector, version=__version__, **options)


# scenarios this worker process has rebuilt, by what they were built from: a rebuild
# costs ~3 ms (troubleshooting), as much as ~1000 of its runs, and a worker runs many
# chunks of one eval
_BUILT: dict[str, Scenario] = {}
_BUILT_MAX = 4


def rebuild(chunk: Chunk) -> Scenario:
    """The driver's scenario, built again here from its text (once per worker
    process); ConfigError when it is not the same."""
    key = json.dumps([chunk.sha256, chunk.spec, chunk.path, chunk.variant, chunk.overrides, chunk.memory,
                      chunk.version], sort_keys=True, default=str)
    sc = _BUILT.get(key)
    if sc is None:
        sc = _build(chunk)
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[key] = sc
    return with_selector(sc, chunk.selector)


def with_selector(sc: Scenario, selector: SelectorConfig) -> Scenario:
    """``sc`` with the driver's ``selector`` (its learned tables made writable)."""
    return dataclasses.replace(sc, config=dataclasses.replace(sc.config, selector=_writable(selector)))


def _writable(selector: SelectorConfig) -> SelectorConfig:
    """The selector with its learned tables copied: Ray hands numpy arrays over
    read-only (straight from its object store), and the kernel writes through them."""
    if selector.bonus is None and selector.prior is None:
        return selector
    bonus = None if selector.bonus is None else np.array(selector.bonus)
    prior = None if selector.prior is None else tuple(None if t is None else np.array(t) for t in selector.prior)
    return dataclasses.replace(selector, bonus=bonus, prior=prior)


def _build(chunk: Chunk) -> Scenario:
    if chunk.version != __version__:
        raise ConfigError(f"this node runs swarm-engine {__version__}, the driver {chunk.version}: install the "
                          f"same version on every node")
    sc = parse_scenario(chunk.text, chunk.path, chunk.variant, chunk.overrides, memory=chunk.memory)
    if sc.sha256 != chunk.sha256:
        raise ConfigError(f"the scenario arrived with sha256 {sc.sha256[:12]}..., the driver sent "
                          f"{chunk.sha256[:12]}...")
    if spec_digest(sc) != chunk.spec:
        raise ConfigError("the scenario built here differs from the driver's (was it changed after loading, "
                          "e.g. by a LoRA adapter of the driver's learning store?)", path=chunk.path)
    return sc


def _run(sc: Scenario, chunk: Chunk) -> EvalResult:
    # the one place a chunk's threads are chosen: chunk.jobs is the CPUs the driver asked
    # Ray for (cluster.dispatch: a whole node's, or --chunk-cpus), so the chunk's threads
    # are the cores Ray holds for it
    return run_eval(sc, chunk.runs, chunk.seed, llm=chunk.llm, llm_fallback=chunk.llm_fallback, jobs=chunk.jobs)


def run_chunk(chunk: Chunk) -> dict[str, Any]:
    """Run one chunk; its result as a payload, with where it ran (``node``)."""
    if chunk.crash and chunk.attempt == 0:
        os._exit(CRASH_EXIT)          # a worker process dying mid-eval, as a killed or OOM-killed one does
    result = _run(rebuild(chunk), chunk)
    payload = to_payload(result)
    payload["node"] = {"node_id": _node_id(), "host": socket.gethostname(), "pid": os.getpid()}
    return payload


def _node_id() -> str:
    ray = sys.modules.get("ray")      # never imported here: outside a worker, asking would start a Ray
    if ray is None or not ray.is_initialized():
        return "local"
    return str(ray.get_runtime_context().get_node_id())
