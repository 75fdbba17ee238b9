"""Chunk sizes: small probes first, then sized from measured costs so the driver keeps up."""

from __future__ import annotations

import math

import pytest

from swarm_engine.cluster.chunking import DRIVER_SHARE, MAX_CHUNK_RUNS, MIN_CHUNK_S, PROBE_RUNS, PROBES, ChunkSizer

PER_RUN = 0.01 / 1000                    # what observe(1000, 0.01, ...) measures


def test_probe_chunks_before_any_came_back():
    assert ChunkSizer(10**6, 8).next(10**6) == PROBE_RUNS
    assert ChunkSizer(20, 4).next(20) == 2                # every slot gets work at once
    assert ChunkSizer(1, 4).next(1) == 1


def test_few_probes_are_in_flight_on_a_large_cluster():
    s = ChunkSizer(10**9, 6400)
    assert s.in_flight(2) == PROBES
    s.observe(1000, 0.01, 0.004)
    assert s.in_flight(2) == 12800
    assert ChunkSizer(100, 2).in_flight(2) == 4


def test_a_small_eval_gets_chunks_of_the_minimum_length():
    s = ChunkSizer(10**6, 2)
    s.observe(1000, 0.01, 0.004)                          # 10 us a run, 4 ms of the driver a chunk
    assert s.target_seconds(10**6) == MIN_CHUNK_S
    assert s.next(10**6) == int(MIN_CHUNK_S / PER_RUN)


def test_a_large_eval_fills_every_slot_with_the_driver_at_its_share():
    s = ChunkSizer(10**12, 4)
    s.observe(1000, 0.01, 0.05)
    fill = 4 * 0.05 / DRIVER_SHARE                        # 4 s: sqrt(1e12 * 1e-5 * 0.05) is 22 s
    assert s.target_seconds(10**12) == pytest.approx(fill)
    assert s.next(10**12) == min(MAX_CHUNK_RUNS, int(fill / PER_RUN))


def test_an_eval_too_short_to_fill_the_slots_balances_driver_and_chunk():
    s = ChunkSizer(10**9, 6400)                          # 10^9 runs on 100 nodes x 64 cores
    s.observe(1000, 0.01, 0.004)
    balance = math.sqrt(10**9 * PER_RUN * 0.004)          # 6.3 s; filling 6,400 slots would want 512 s
    assert s.target_seconds(10**9) == pytest.approx(balance)
    # and the chunks shrink as the runs left do: the end is not one long straggler
    assert s.target_seconds(10**7) == pytest.approx(math.sqrt(10**7 * PER_RUN * 0.004))


def test_fixed_size():
    s = ChunkSizer(100, 4, fixed=30)
    assert [s.next(r) for r in (100, 70, 40, 10)] == [30, 30, 30, 10]
