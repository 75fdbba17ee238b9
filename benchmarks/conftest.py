"""Shared workloads of the pytest-benchmark suite (run only when asked).

    python -m pytest benchmarks -q --benchmark-only

Every benchmark asserts on what it computed (against the pure-Python
reference or an independent oracle), so a fast wrong answer fails. Ratio
gates time native and reference on the same inputs in the same test and
compare the ratio to a floor; nothing here compares absolute times except
``--benchmark-compare`` against a baseline from the same machine
(docs/benchmarks.md).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from swarm_engine._reference.envs import grid_blocked
from swarm_engine.bench.workloads import Workload, troubleshooting

SEED = 42


@pytest.fixture(scope="session")
def seed() -> int:
    """The first seed, as ``swarm eval`` and ``swarm-bench`` default it."""
    return SEED


@pytest.fixture(scope="session")
def trouble() -> Workload:
    """The shipped troubleshooting scenario (1 worker, UCB1, 4 services)."""
    return troubleshooting()


@pytest.fixture(scope="session")
def seeds() -> np.ndarray:
    """Seeds 42, 43, ... as the eval runner numbers them."""
    return (np.uint64(SEED) + np.arange(100_000, dtype=np.uint64)).astype(np.uint64)


def flood_fill(size: int, starts: np.ndarray, block_rate: float, seed: int) -> tuple[int, int]:
    """Independent oracle of a grid run with no goal: (nodes, blocked nodes).

    Every cell reachable from a start through open cells becomes a node, and
    so does every blocked cell next to one (it is explored and fails); the
    search order does not matter for these counts."""
    seen = np.zeros(size * size, dtype=bool)
    blocked_nodes = 0
    queue = deque()
    for c in (int(x) for x in starts):
        if not seen[c]:
            seen[c] = True
            queue.append(c)
    while queue:
        c = queue.popleft()
        if grid_blocked(seed, c, block_rate):
            blocked_nodes += 1
            continue
        x, y = c % size, c // size
        for ok, n in ((x + 1 < size, c + 1), (y + 1 < size, c + size), (x > 0, c - 1), (y > 0, c - size)):
            if ok and not seen[n]:
                seen[n] = True
                queue.append(n)
    return int(seen.sum()), blocked_nodes


@pytest.fixture(scope="session")
def grid_oracle():
    """flood_fill, memoised per (workload, seed): it is pure Python."""
    cache: dict = {}

    def oracle(wl: Workload, size: int, block_rate: float = 0.1, seed: int = SEED) -> tuple[int, int]:
        key = (size, tuple(wl.rules.start_tgt.tolist()), block_rate, seed)
        if key not in cache:
            cache[key] = flood_fill(size, wl.rules.start_tgt, block_rate, seed)
        return cache[key]

    return oracle

