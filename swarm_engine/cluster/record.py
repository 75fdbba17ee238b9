"""What a cluster eval did, for the report's ``cluster`` section: nodes, chunks, retries, models.

::

    cluster {address, ray_version, cpus, chunk_cpus, cpus_per_chunk, chunks, chunk_runs {min, max, mean},
             nodes [{node_id, host, chunks, runs, node_seconds, threads}],
             retries [{chunk, seeds [first, last], attempt, error, message}],
             models [{actor, node_id, host, threads, gpus, load_seconds, available, reason, chunks, runs}],
             wall_seconds, driver_seconds}

``models`` has one entry per model host (cluster/model_host.py) of an eval whose
model runs in process (empty otherwise): a node whose host died and was replaced has two.
``chunk_cpus`` is the setting (0: a whole node per chunk), ``cpus_per_chunk`` the
most CPUs one chunk (or model host) asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClusterRecord"]


@dataclass
class ClusterRecord:
    """Filled by the driver as chunks come back (or fail)."""

    address: str
    ray_version: str
    cpus: int
    cpus_per_chunk: int
    chunk_cpus: int = 0
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)     # node id -> its counts
    sizes: list[int] = field(default_factory=list)                    # runs of each finished chunk
    retries: list[dict[str, Any]] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)   # model host (actor id) -> its load, counts
    wall_seconds: float = 0.0
    driver_seconds: float = 0.0       # the driver's own work: submitting, fetching, merging (waits excluded)

    def ran(self, runs: int, node: dict[str, Any], node_seconds: float, threads: int = 1) -> None:
        """A chunk of ``runs`` came back from ``node`` (its ``node_id``, ``host``), run there on
        ``threads`` threads (a node's ``threads`` is the most any of its chunks used)."""
        entry = self.nodes.setdefault(str(node.get("node_id")), {"node_id": str(node.get("node_id")),
                                                                 "host": node.get("host"), "chunks": 0,
                                                                 "runs": 0, "node_seconds": 0.0,
                                                                 "threads": 0})
        entry["chunks"] += 1
        entry["runs"] += runs
        entry["node_seconds"] += node_seconds
        entry["threads"] = max(entry["threads"], threads)
        self.sizes.append(runs)

    def retried(self, chunk: int, first_seed: int, runs: int, attempt: int, exc: BaseException) -> None:
        """Chunk ``chunk``'s attempt ``attempt`` died (a node or worker lost); it goes again."""
        lines = str(exc).strip().splitlines()
        self.retries.append({"chunk": chunk, "seeds": [first_seed, first_seed + runs - 1], "attempt": attempt,
                             "error": type(exc).__name__, "message": lines[0] if lines else ""})

    def model_loaded(self, actor: str, info: dict[str, Any]) -> None:
        """Model host ``actor`` loaded its model (``info``: ModelHost.load's dict)."""
        if actor not in self.models:
            keep = ("node_id", "host", "threads", "gpus", "load_seconds", "available", "reason")
            self.models[actor] = {"actor": actor, **{k: info.get(k) for k in keep}, "chunks": 0, "runs": 0}

    def model_ran(self, actor: str, info: dict[str, Any], runs: int) -> None:
        """Model host ``actor`` ran a chunk of ``runs`` (a replacement host is recorded by its first)."""
        self.model_loaded(actor, info)
        self.models[actor]["chunks"] += 1
        self.models[actor]["runs"] += runs

    def as_dict(self) -> dict[str, Any]:
        sizes = self.sizes or [0]
        return {"address": self.address, "ray_version": self.ray_version, "cpus": self.cpus,
                "chunk_cpus": self.chunk_cpus, "cpus_per_chunk": self.cpus_per_chunk, "chunks": len(self.sizes),
                "chunk_runs": {"min": min(sizes), "max": max(sizes), "mean": sum(sizes) / len(sizes)},
                "nodes": sorted(self.nodes.values(), key=lambda n: (str(n["host"]), n["node_id"])),
                "retries": list(self.retries),
                "models": sorted(self.models.values(), key=lambda m: (str(m["host"]), str(m["node_id"]))),
                "wall_seconds": self.wall_seconds,
                "driver_seconds": self.driver_seconds}
