"""How many runs each chunk of a cluster eval gets, so that the driver is never the bottleneck.

The driver pays a cost ``d`` per chunk (submit it, fetch and decode its
arrays, keep it), a node a cost ``p`` per run, and ``S`` chunks run at once.
Two lengths bound a chunk's seconds on its node:

- *fill*: ``S * d / DRIVER_SHARE``. Chunks this long keep every slot busy
  while the driver works at most ``DRIVER_SHARE`` of the time.
- *balance*: ``sqrt(R * p * d)`` for ``R`` runs left. An eval too short to
  fill every slot at that length is fastest when the driver's time for the
  chunks left (``R / c * d``) equals one chunk's (``c * p``); fewer slots are
  busy, but none waits on the driver. It shrinks with ``R``, so the last
  chunks are short and no slot waits long on a straggler at the end.

A chunk lasts the shorter of the two, and at least ``MIN_CHUNK_S`` (Ray's
own ~2 ms per task is then under 1%). The first chunks, before any has come
back, are small probes that measure ``p`` and ``d``.
"""

from __future__ import annotations

import math

__all__ = ["ChunkSizer", "MIN_CHUNK_S", "DRIVER_SHARE", "MAX_CHUNK_RUNS", "PROBE_RUNS", "PROBES"]

MIN_CHUNK_S = 0.5            # node seconds a chunk should take at least (Ray's own ~ms per task is then <1%)
DRIVER_SHARE = 0.05          # the driver's busy share of the wall time the chunk sizes aim at
MAX_CHUNK_RUNS = 1_000_000   # a chunk's arrays on a node: ~100 B per run of a small scenario (100 MB)
PROBE_RUNS = 1_000           # the most runs of a chunk before any has come back
PROBES = 8                   # chunks in flight before any has come back (a 6,400-slot cluster is not
                             # flooded with probes the driver then has to take back one by one)


class ChunkSizer:
    """Runs for the next chunk, from what the finished ones cost.

    Parameters
    ----------
    runs:
        The eval's runs.
    slots:
        Chunks that run at once (the cluster's CPUs over the CPUs a chunk takes).
    fixed:
        Every chunk this many runs (tests, or a user who knows better); no adapting.
    """

    def __init__(self, runs: int, slots: int, *, fixed: int | None = None) -> None:
        self.runs = runs
        self.slots = max(1, slots)
        self.fixed = fixed
        self.node_seconds = 0.0       # summed over the finished chunks
        self.node_runs = 0
        self.driver_seconds = 0.0
        self.chunks = 0

    def observe(self, runs: int, node_seconds: float, driver_seconds: float) -> None:
        """A chunk came back: ``runs`` took ``node_seconds`` there and ``driver_seconds`` here."""
        self.node_runs += runs
        self.node_seconds += node_seconds
        self.driver_seconds += driver_seconds
        self.chunks += 1

    @property
    def per_chunk(self) -> float:
        """The driver's measured seconds per chunk."""
        return self.driver_seconds / self.chunks if self.chunks else 0.0

    def target_seconds(self, remaining: int) -> float:
        """How long the next chunk should run on its node, with ``remaining`` runs left."""
        per_run = self.node_seconds / self.node_runs
        fill = self.slots * self.per_chunk / DRIVER_SHARE
        balance = math.sqrt(remaining * per_run * self.per_chunk)
        return max(MIN_CHUNK_S, min(fill, balance))

    def in_flight(self, per_slot: int) -> int:
        """Chunks to keep submitted: ``per_slot`` per slot, once the probes have come back."""
        return self.slots * per_slot if self.chunks else min(self.slots * per_slot, PROBES)

    def next(self, remaining: int) -> int:
        """Runs of the next chunk (1 .. remaining)."""
        if remaining <= 0:
            return 0
        if self.fixed is not None:
            return min(self.fixed, remaining)
        if self.node_runs == 0 or self.node_seconds <= 0:
            size = min(PROBE_RUNS, math.ceil(self.runs / (4 * self.slots)))
        else:
            size = int(self.target_seconds(remaining) / (self.node_seconds / self.node_runs))
        return max(1, min(size, remaining, MAX_CHUNK_RUNS))
