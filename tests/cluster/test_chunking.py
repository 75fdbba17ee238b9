"""Chunk sizes: small probes first, then sized from measured costs, shrinking at the tail."""

from __future__ import annotations

from swarm_engine.cluster.chunking import DRIVER_SHARE, MAX_CHUNK_RUNS, MIN_CHUNK_S, PROBE_RUNS, ChunkSizer


def test_probe_chunks_before_any_came_back():
    assert ChunkSizer(10**6, 8).next(10**6) == PROBE_RUNS
    assert ChunkSizer(20, 4).next(20) == 2                # every slot gets work at once
    assert ChunkSizer(1, 4).next(1) == 1


def test_chunks_last_the_target_time_on_their_node():
    s = ChunkSizer(10**7, 2)
    s.observe(1000, 0.01, 0.0)                           # 10 us a run, a driver that costs nothing
    assert s.target_seconds == MIN_CHUNK_S
    assert s.next(10**7) == int(MIN_CHUNK_S / (0.01 / 1000))


def test_a_busy_driver_gets_longer_chunks():
    s = ChunkSizer(10**9, 100)
    s.observe(1000, 0.01, 0.002)                         # 2 ms of the driver's work per chunk
    assert s.target_seconds == 100 * 0.002 / DRIVER_SHARE
    assert s.next(10**9) == min(MAX_CHUNK_RUNS, int(s.target_seconds / (0.01 / 1000)))


def test_the_tail_is_shared_out():
    s = ChunkSizer(10**6, 4)
    s.observe(1000, 0.01, 0.0)
    assert s.next(800) == 100                            # 800 left over 4 slots, twice over
    assert s.next(3) == 1


def test_fixed_size():
    s = ChunkSizer(100, 4, fixed=30)
    assert [s.next(r) for r in (100, 70, 40, 10)] == [30, 30, 30, 10]
