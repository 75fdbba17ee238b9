"""Suite ``learn``: ``swarm learn once`` vs the number of stored sessions.

The store is made in a temporary directory (a fresh ``LearningStore`` root,
nothing under the user's SWARM_HOME) from real episodes: a few evals of the
shipped troubleshooting scenario with a :class:`SessionRecorder`, exactly as
``swarm eval --learning`` records them, give the session templates. Then:

* the first sessions (up to ``REAL_SESSIONS``) go through
  :func:`swarm_engine.learn.collect.record_session`, the real path (session
  folder, then the locked read-merge-write of the scenario's and the global
  ``stats.json``); its rate is reported;
* the rest are written in bulk: the same two files per folder, named the way
  ``write_session`` names them (UTC timestamp, pid), without the per-file
  fsync; the cumulative ``stats.json`` files are rewritten once per size with
  the exact totals. Bulk writing only makes 10^5 sessions affordable; what
  ``learn once`` then reads is what the real path would have left.

Measured per size: ``learn_once`` (statistics, the simulated parameter search
on training seeds, validation on held-out seeds; a dry run so repeats see the
same store), loading the cumulative stats, listing the sessions, and, as a
comparison, rebuilding the statistics from every session (read and merge
each): ``learn once`` does not do that, it reads the cumulative file that
every recorded eval keeps up to date, so its cost should not grow with the
number of sessions. The rebuild is checked to equal the cumulative file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from swarm_engine.bench.measure import spread
from swarm_engine.bench.settings import Settings
from swarm_engine.bench.workloads import troubleshooting, troubleshooting_path
from swarm_engine.eval.runner import run_eval
from swarm_engine.fsio import write_json
from swarm_engine.learn.collect import record_session
from swarm_engine.learn.offline import learn_once
from swarm_engine.learn.session import SessionRecorder
from swarm_engine.learn.stats import LearnStats
from swarm_engine.learn.store import LearningStore, learning_key

__all__ = ["run", "build_store", "templates", "rebuild_stats", "REAL_SESSIONS"]

_TEMPLATES = 4            # distinct recorded sessions (different seeds), cycled
REAL_SESSIONS = 100       # sessions written through record_session; the rest in bulk


def templates(scenario, episodes: int, seed: int, n: int = _TEMPLATES) -> list[tuple[LearnStats, dict]]:
    """``n`` sessions of ``episodes`` real runs each: (stats, meta) as
    ``swarm eval --learning`` would record them."""
    out = []
    args = list(scenario.rules.args.values) if scenario.rules else []
    for t in range(n):
        rec = SessionRecorder(scenario.actions, args, scenario.config.selector.strategy,
                              target_name=scenario.binding.target_names, online=False)
        first = seed + t * episodes
        res = run_eval(scenario, episodes, first, recorder=rec)
        meta = {"runs": res.runs, "seed": first, "requested": res.requested, "model_version": None,
                "strategy": scenario.config.selector.strategy, "online_updates": rec.updates}
        out.append((rec.finish(res.success), meta))
    return out


def _encode(obj) -> bytes:
    """The bytes ``write_json_atomic`` writes for ``obj``."""
    return msgspec.json.format(msgspec.json.encode(obj), indent=2)


def _times_two(s: LearnStats, k: int) -> LearnStats:
    """``s`` merged with itself to ``k`` copies (by doubling: O(log k) merges)."""
    total, power = LearnStats(), s
    while k:
        if k & 1:
            total = total.merge(power)
        power = power.merge(power)
        k >>= 1
    return total


class _Store:
    """A growing store in ``root`` for one scenario."""

    def __init__(self, root: Path, scenario, tmpl: list[tuple[LearnStats, dict]],
                 real_sessions: int = REAL_SESSIONS) -> None:
        self.root, self.scenario, self.tmpl = root, scenario, tmpl
        self.real_sessions = real_sessions
        self.store = LearningStore(root)
        self.key = learning_key(scenario.id)
        self.count = 0
        self.real_seconds = 0.0
        self.bulk_seconds = 0.0
        self.bulk_count = 0
        self._clock = datetime.now(UTC)
        self._pid = os.getpid()

    def grow(self, n: int) -> None:
        """Add sessions until there are ``n``."""
        t0 = time.perf_counter()
        real = min(n, self.real_sessions)
        while self.count < real:
            stats, meta = self.tmpl[self.count % len(self.tmpl)]
            record_session(stats, self.scenario, self.store, meta=meta)
            self.count += 1
        self.real_seconds += time.perf_counter() - t0
        if self.count >= n:
            return
        t0 = time.perf_counter()
        sdir = self.store.scenario_dir(self.key) / "sessions"
        # the exact files record_session writes, encoded once per template
        encoded = []
        newest = self.store.sessions(self.key)[-1]
        base_meta = msgspec.json.decode((newest / "meta.json").read_bytes())
        for stats, meta in self.tmpl:
            m = {**base_meta, **meta, "episodes": stats.episodes, "successes": stats.success_episodes}
            encoded.append((_encode(stats), _encode(m)))
        added = n - self.count
        self._clock = max(self._clock, datetime.now(UTC))   # after every real session
        while self.count < n:
            self._clock += timedelta(microseconds=1)
            d = sdir / f"{self._clock.strftime('%Y%m%dT%H%M%S.%fZ')}-{self._pid}"
            d.mkdir()
            stats_bytes, meta_bytes = encoded[self.count % len(encoded)]
            (d / "stats.json").write_bytes(stats_bytes)
            (d / "meta.json").write_bytes(meta_bytes)
            self.count += 1
        # cumulative totals: what record_session's merges would have left
        total = LearnStats()
        for i, (stats, _meta) in enumerate(self.tmpl):
            copies = n // len(self.tmpl) + (1 if i < n % len(self.tmpl) else 0)
            total = total.merge(_times_two(stats, copies))
        write_json(self.store.stats_path(self.key), total)
        write_json(self.store.global_path, total)
        self.bulk_seconds += time.perf_counter() - t0
        self.bulk_count += added

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())


def build_store(root: Path, n: int, episodes: int = 10, seed: int = 42,
                real_sessions: int = REAL_SESSIONS) -> _Store:
    """A store of ``n`` troubleshooting sessions in ``root``, the first
    ``real_sessions`` through record_session (tests use it)."""
    sc = troubleshooting().scenario
    st = _Store(Path(root), sc, templates(sc, episodes, seed), real_sessions)
    st.grow(n)
    return st


def rebuild_stats(store: LearningStore, key: str) -> tuple[LearnStats, int]:
    """The statistics merged from every session of ``key``, and the session count
    (what the cumulative stats.json must equal)."""
    total, n = LearnStats(), 0
    for s in store.sessions(key):
        _meta, stats = store.load_session(s)
        total = total.merge(stats)
        n += 1
    return total, n


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(settings: Settings, say: Callable[[str], None] = lambda _m: None) -> dict:
    """One row per session count; see the module docstring."""
    scenario_file = settings.scenario or troubleshooting_path()
    sc = troubleshooting(scenario_file).scenario
    say(f"learn: recording {_TEMPLATES} template sessions of {settings.learn_episodes} episodes")
    tmpl = templates(sc, settings.learn_episodes, settings.seed)
    rows = []
    root = Path(tempfile.mkdtemp(prefix="swarm-bench-learn-"))
    try:
        st = _Store(root, sc, tmpl)
        for n in sorted(set(settings.learn_sessions)):
            say(f"learn: writing sessions up to {n:,}")
            st.grow(n)
            store = LearningStore(root)
            say(f"learn: {n:,} sessions: learn once (warm-up)")
            learn_once(scenario_file, store=store, apply=False, train_runs=settings.learn_train_runs,
                       heldout_runs=settings.learn_heldout_runs)
            once, load, listing, outcome = [], [], [], None
            for k in range(settings.repeat):
                say(f"learn: {n:,} sessions: learn once {k + 1}/{settings.repeat}")
                outcome, secs = _timed(lambda store=store: learn_once(scenario_file, store=store, apply=False,
                                                          train_runs=settings.learn_train_runs,
                                                          heldout_runs=settings.learn_heldout_runs))
                once.append(secs)
                cumulative, secs = _timed(lambda store=store: store.load_stats(st.key))
                load.append(secs)
                sessions, secs = _timed(lambda store=store: store.sessions(st.key))
                listing.append(secs)
            # the rebuild is linear in the sessions: one pass at the largest sizes
            rebuild = []
            for _ in range(settings.repeat if n <= 10_000 else 1):
                say(f"learn: {n:,} sessions: rebuild from every session")
                (rebuilt, count), secs = _timed(lambda store=store: rebuild_stats(store, st.key))
                rebuild.append(secs)
            if count != n or rebuilt.to_builtins() != cumulative.to_builtins():
                raise AssertionError(f"learn: {n} sessions: the rebuilt statistics ({count} sessions) differ "
                                     "from the cumulative stats.json")
            assert outcome is not None
            rows.append({"sessions": n, "episodes": cumulative.episodes, "learn_once_s": spread(once),
                         "load_stats_s": spread(load), "list_sessions_s": spread(listing),
                         "rebuild_s": spread(rebuild), "rebuild_per_session_s": spread([s / n for s in rebuild]),
                         "candidates": outcome.validation.get("candidates"),
                         "stats_json_bytes": st.store.stats_path(st.key).stat().st_size,
                         "store_bytes": st.disk_bytes()})
        real_n = min(st.count, st.real_sessions)
        return {"scenario_id": sc.id, "episodes_per_session": settings.learn_episodes,
                "train_runs": settings.learn_train_runs, "heldout_runs": settings.learn_heldout_runs,
                "templates": len(tmpl), "rows": rows,
                "record_session_s": st.real_seconds / max(1, real_n), "record_session_count": real_n,
                "bulk_session_s": st.bulk_seconds / max(1, st.bulk_count), "bulk_count": st.bulk_count}
    finally:
        shutil.rmtree(root, ignore_errors=True)
