"""Soak: memory stays flat over very long runs (issue #13).

Each test runs for ``SWARM_SOAK_SECONDS`` (default 3: what CI gives it) and
samples the resident set size after every chunk of work; after a warm-up
(the first third of the samples) no sample may exceed the last warm-up one by
more than ``TOLERANCE`` (3%, and never less than 2 MiB: the allocator's
noise). By hand, for days-long confidence::

    SWARM_SOAK_SECONDS=900 python -m pytest tests/test_soak.py -m slow -s

reaches about 10^7 ticks of the Python-stepped swarm and 10^8 eval runs
(measured on this repository's 2-core machine: 13k Python-stepped ticks/s,
800k native eval runs/s, 13k runs/s recorded with --learning); each test
prints what it reached and its RSS numbers with ``-s``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

import pytest

from swarm_engine.eval import build_report, load_scenario
from swarm_engine.eval.runner import run_eval
from swarm_engine.learn import LearningStore
from swarm_engine.learn.eval_session import LearningSession
from tests.paths import DATA, TROUBLESHOOTING

pytestmark = pytest.mark.slow

BUDGET = float(os.environ.get("SWARM_SOAK_SECONDS", "3"))
TOLERANCE = 0.03
SLACK_MIB = 2.0
MiB = 1 << 20


def rss_mib() -> float:
    """Resident set size now (Linux /proc), else the peak so far."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MiB
    except OSError:                                  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sampler:
    """RSS after each chunk of work, until the budget is spent."""

    def __init__(self, budget: float, min_samples: int = 6) -> None:
        self.deadline = time.perf_counter() + budget
        self.min_samples = min_samples
        self.samples: list[tuple[int, float]] = []      # (work done, RSS MiB)

    def more(self) -> bool:
        return len(self.samples) < self.min_samples or time.perf_counter() < self.deadline

    def take(self, done: int) -> None:
        self.samples.append((done, rss_mib()))

    def assert_flat(self, what: str) -> None:
        warm = max(2, len(self.samples) // 3)
        base = self.samples[warm - 1][1]
        peak_done, peak = max(self.samples[warm:], key=lambda s: s[1])
        limit = base + max(SLACK_MIB, TOLERANCE * base)
        print(f"\n{what}: {self.samples[-1][0]:,} after {len(self.samples)} chunks; RSS start "
              f"{self.samples[0][1]:.1f} MiB, after warm-up {base:.1f} MiB, peak {peak:.1f} MiB "
              f"(at {peak_done:,}), end {self.samples[-1][1]:.1f} MiB")
        assert peak <= limit, (f"{what}: RSS grew from {base:.1f} MiB after warm-up to {peak:.1f} MiB at "
                               f"{peak_done:,} (limit {limit:.1f} MiB)")


def test_one_swarm_native_ticks():
    """The fused native path: flood-fill a grid, then wait tick after tick."""
    sw = load_scenario(DATA / "soak" / "grid.toml").swarm(1)
    s = Sampler(BUDGET / 3)
    while s.more():
        sw.step(1_000_000)
        assert not sw.done
        s.take(sw.tick)
    s.assert_flat("native swarm ticks")


def test_one_swarm_python_ticks():
    """The Python-stepped path (a Python environment and an event subscriber):
    busy every tick on a graph that stops growing after the first Scan."""
    ticks_per_s = 20_000                       # sized so the run outlasts the budget
    targets = int(ticks_per_s * 8 * BUDGET / 256) + 100
    sc = load_scenario(DATA / "soak" / "treadmill.toml", overrides={"environment": {"params": {"targets": targets}}})
    sw = sc.swarm(1)

    class Count:
        events = 0

        def on_events(self, batch) -> None:
            Count.events += len(batch)

    sw.subscribe(Count())
    s = Sampler(BUDGET)
    while s.more() and not sw.done:
        sw.step(2_000)
        s.take(sw.tick)
    assert Count.events == sw.kernel.total_visits > 0
    s.assert_flat("Python-stepped swarm ticks")


def test_eval_runs_in_chunks():
    """run_eval + build_report over chunks of 10^5 runs, seeds continuing."""
    sc = load_scenario(TROUBLESHOOTING)
    chunk, done = 100_000, 0
    s = Sampler(BUDGET / 2)
    while s.more():
        result = run_eval(sc, chunk, 1 + done)
        report = build_report(result, include_runs=False)
        assert report["summary"]["runs"] == chunk and report["manifest"]["seeds"]["first"] == 1 + done
        done += chunk
        del result, report
        s.take(done)
    s.assert_flat("eval runs")


def test_eval_runs_with_learning_in_chunks(tmp_path):
    """``swarm eval --learning`` over and over on one key: sessions recorded,
    the store's totals read and merged at every chunk."""
    store = LearningStore(tmp_path / "learning")
    sc = load_scenario(TROUBLESHOOTING)
    chunk, done = 2_000, 0
    s = Sampler(BUDGET / 2)
    while s.more():
        session = LearningSession.open(sc, learning=True, store=store)
        result = run_eval(session.scenario, chunk, 1 + done, recorder=session.recorder)
        report = build_report(result, include_runs=False)
        report["learning"] = session.close(result, 1 + done)
        assert report["learning"]["episodes"] == chunk
        done += chunk
        del session, result, report
        s.take(done)
    assert store.load_stats(store.learning_key(sc.id)).episodes == done
    assert store.problems == []
    s.assert_flat("eval runs recorded with --learning")


# VmHWM, not ru_maxrss: a forked child's ru_maxrss starts at its parent's peak
_ONE_EVAL = """
import re, sys
from swarm_engine.eval import load_scenario
from swarm_engine.eval.runner import run_eval
from swarm_engine.learn import LearningStore
from swarm_engine.learn.eval_session import LearningSession
sc = load_scenario(sys.argv[1])
session = LearningSession.open(sc, learning=True, store=LearningStore(sys.argv[2]))
result = run_eval(session.scenario, int(sys.argv[3]), 1, recorder=session.recorder)
session.close(result, 1)
print(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_one_long_eval_with_learning_stays_small(tmp_path, subprocess_env):
    """One eval of many runs with --learning, in a fresh process for a clean
    peak RSS: the recorder's memory does not grow with the runs (it held every
    event and built every episode at the end: 1.2 KB a run, 577 MiB peak for
    4 x 10^5 troubleshooting runs). What may grow is the runner's own per-run
    result arrays (about 200 bytes a run), so the peak of an eval 10x as long
    as another may exceed it by at most 400 bytes a run."""
    runs = max(20_000, int(13_000 * BUDGET / 2))

    def peak_kib(n: int) -> int:
        proc = subprocess.run([sys.executable, "-c", _ONE_EVAL, str(TROUBLESHOOTING), str(tmp_path / "store"),
                               str(n)], capture_output=True, text=True, env=subprocess_env, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.split()[-1])

    short, long = peak_kib(runs // 10), peak_kib(runs)
    per_run = (long - short) * 1024 / (runs - runs // 10)
    print(f"\none eval with --learning: peak RSS {short / 1024:.1f} MiB for {runs // 10:,} runs, "
          f"{long / 1024:.1f} MiB for {runs:,} ({per_run:.0f} bytes a run)")
    assert per_run < 400, f"{per_run:.0f} bytes a run"
