"""``--cluster`` (``swarm eval``, ``swarm learn once``): the command's evals sent to a Ray cluster.

Kept apart from eval_cmd.py so that the command only swaps its runner: the
cluster is joined (or started) once for all the scenario files of the
command, and each eval goes through :func:`run_eval_cluster` with the
arguments ``run_eval`` would have had.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from swarm_engine.errors import ConfigError
from swarm_engine.eval.runner import EvalResult, run_eval

__all__ = ["eval_runner"]

Runner = Callable[..., EvalResult]


@contextlib.contextmanager
def eval_runner(cluster: str | None, *, trace: Any = None, learning: bool = False,
                memory: str | None = None, hosts_per_node: int = 1,
                chunk_cpus: int = 0) -> Iterator[Runner]:
    """``run_eval`` without ``--cluster``; with it, a runner on that cluster while inside
    (``swarm eval``, and ``swarm learn once`` for its candidates' evals); ``hosts_per_node``
    is the model hosts per node of an eval whose model runs in process, ``chunk_cpus``
    the CPUs of each plain chunk (0: a whole node)."""
    if cluster is None:
        yield run_eval
        return
    from swarm_engine.cluster import parse_cluster, ray_cluster, run_eval_cluster

    addr = parse_cluster(cluster)
    if trace is not None:
        raise ConfigError("--trace writes every event here; it cannot be combined with --cluster", path="--trace")
    if learning:
        raise ConfigError("--learning updates the learning store between blocks of runs here; it cannot be "
                          "combined with --cluster (give --no-learning)", path="--learning")

    def run(scenario, runs: int, seed: int, *, progress=None, llm: bool = True, llm_fallback: bool = False,
            warn: Callable[[str], None] | None = None, **_local_only: Any) -> EvalResult:
        # trace and recorder are refused above; llm_stats is the local progress bar's
        result = run_eval_cluster(scenario, runs, seed, address=str(addr), progress=progress, llm=llm,
                                  llm_fallback=llm_fallback, memory=memory, hosts_per_node=hosts_per_node,
                                  chunk_cpus=chunk_cpus)
        if warn is None:
            return result
        for r in result.cluster.get("retries", []):
            warn(f"chunk {r['chunk']} (seeds {r['seeds'][0]}..{r['seeds'][1]}) was lost with its worker, model "
                 f"host or node ({r['error']}) and ran again; the report records it")
        for m in result.cluster.get("models", []):
            if not m["available"]:    # llm_fallback: that host's chunks ran with the bandit alone
                warn(f"{m['reason']}; its chunks fall back to the bandit alone (--llm-fallback)")
        return result

    with ray_cluster(addr):
        yield run
