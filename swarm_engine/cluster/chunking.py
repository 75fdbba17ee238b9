"""How many runs each chunk of a cluster eval gets, so that the driver is never the bottleneck.

The driver pays a fixed cost per chunk (submit it, fetch and decode its
arrays, keep it); a node pays per run. With ``slots`` chunks running at
once, the driver is busy a share ``slots * driver_cost / chunk_seconds`` of
the time, so chunks are sized to last ``DRIVER_SHARE**-1`` times the
driver's measured cost per chunk times the slots (and at least
``MIN_CHUNK_S``). The first chunks are small (every slot starts at once and
the per-run cost is measured on them) and the last ones shrink with what is
left, so no slot waits long on a straggler at the end.
"""

from __future__ import annotations

import math

__all__ = ["ChunkSizer", "MIN_CHUNK_S", "DRIVER_SHARE", "MAX_CHUNK_RUNS", "PROBE_RUNS"]

MIN_CHUNK_S = 0.5            # node seconds a chunk should take at least (Ray's own ~ms per task is then <1%)
DRIVER_SHARE = 0.05          # the driver's busy share of the wall time the chunk sizes aim at
MAX_CHUNK_RUNS = 1_000_000   # a chunk's arrays on a node: ~100 B per run of a small scenario (100 MB)
PROBE_RUNS = 1_000           # the most runs of a chunk before any has come back


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
    def target_seconds(self) -> float:
        """How long a chunk should run on its node."""
        per_chunk = self.driver_seconds / self.chunks if self.chunks else 0.0
        return max(MIN_CHUNK_S, self.slots * per_chunk / DRIVER_SHARE)

    def next(self, remaining: int) -> int:
        """Runs of the next chunk (1 .. remaining)."""
        if remaining <= 0:
            return 0
        if self.fixed is not None:
            return min(self.fixed, remaining)
        if self.node_runs == 0 or self.node_seconds <= 0:
            size = min(PROBE_RUNS, math.ceil(self.runs / (4 * self.slots)))
        else:
            per_run = self.node_seconds / self.node_runs
            size = int(self.target_seconds / per_run)
            # the tail: what is left shared out over every slot, twice over
            size = min(size, math.ceil(remaining / (2 * self.slots)))
        return max(1, min(size, remaining, MAX_CHUNK_RUNS))
