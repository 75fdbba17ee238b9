"""What ``swarm eval --learning`` records while it runs, and the online update.

A :class:`SessionRecorder` receives the events of every run (in blocks of
``block`` runs for native batches, one run at a time otherwise) and the LLM
decision records of LLM-managed runs. With ``online`` it recomputes the
learned bonus table and child-ordering prior after every block from the
scenario's stored statistics plus this session's, with the offline model's
weights; the runner installs them in the kernel before the next block.
Blocks are counted in runs, never in seconds, so a session is reproducible
for the same store contents.

The events wait for the final verdicts in an :class:`EventSpool` (an
anonymous temp file), not in memory: holding them as arrays and building
every episode at the end took 1.2 KB of RAM per run (577 MiB peak for
4 x 10^5 troubleshooting runs); spooled and folded one block at a time the
peak stays flat (see tests/test_soak.py).
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from swarm_engine.learn.model import OfflineModel, PriorCounts, prior_tables
from swarm_engine.learn.score import ScoreModel
from swarm_engine.learn.stats import LearnStats, episodes_from_events

__all__ = ["SessionRecorder", "EventSpool"]

_EVENT_FIELDS = ("run", "tick", "worker", "action", "target", "arg", "outcome", "source")


class EventSpool:
    """Blocks of event columns kept in an anonymous temp file until the eval ends.

    Each block holds every event of runs ``offset .. offset + runs - 1`` (what
    :meth:`SessionRecorder.observe` receives). The file has no name (``O_TMPFILE``
    or unlinked at once), so a killed process leaves nothing behind. Columns are
    written with ``np.save(allow_pickle=False)``. The file is opened by the first
    block and closed by :meth:`close` or, for a spool dropped unclosed, when it
    is collected.
    """

    def __init__(self) -> None:
        self._file: Any = None
        self.blocks = 0

    def add(self, cols: dict[str, np.ndarray], offset: int, runs: int) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="swarm-events-")
            weakref.finalize(self, self._file.close)
        f = self._file
        f.seek(0, 2)
        np.save(f, np.array([offset, runs], np.int64), allow_pickle=False)
        np.save(f, np.array(list(cols)), allow_pickle=False)
        for name in cols:
            np.save(f, np.ascontiguousarray(cols[name]), allow_pickle=False)
        self.blocks += 1

    def __iter__(self) -> Iterator[tuple[dict[str, np.ndarray], int, int]]:
        """(columns, offset, runs) of every block, in the order added."""
        f = self._file
        if f is None:
            return
        f.seek(0)
        for _ in range(self.blocks):
            offset, runs = (int(x) for x in np.load(f, allow_pickle=False))
            names = [str(n) for n in np.load(f, allow_pickle=False)]
            yield {n: np.load(f, allow_pickle=False) for n in names}, offset, runs

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class SessionRecorder:
    def __init__(self, actions: Sequence[str], arg_values: Sequence[str], strategy: str, *,
                 target_name: Callable[[int], str] | None = None, base_stats: LearnStats | None = None,
                 model: OfflineModel | None = None, online: bool = True, block: int = 256) -> None:
        self.actions = list(actions)
        self.arg_values = list(arg_values)
        self.strategy = strategy
        self.target_name = target_name or str
        self.base_stats = base_stats or LearnStats()
        self.model = model
        self.online = online
        self.block = max(1, int(block))
        self.session = LearnStats()
        self.decisions: list[dict[str, Any]] = []
        self._spool = EventSpool()
        self.updates = 0

    # ------------------------------------------------------------------ recording
    def _arg_name(self, x: int) -> str:
        return self.arg_values[x] if 0 <= x < len(self.arg_values) else str(x)

    def observe(self, events: dict[str, np.ndarray], kernel_success: np.ndarray, offset: int) -> None:
        """Events of runs ``offset .. offset + len(kernel_success) - 1`` (global run
        indices in ``events["run"]``); updates the online statistics."""
        cols = {f: np.asarray(events[f]) for f in _EVENT_FIELDS if f in events}
        self._spool.add(cols, int(offset), int(np.asarray(kernel_success).shape[0]))
        if self.online:
            rel = dict(cols, run=cols["run"] - offset)
            eps = episodes_from_events(rel, self.actions, self.target_name, kernel_success, self.strategy,
                                       self._arg_name)
            self.session = self.session.merge(LearnStats.from_episodes(eps))

    def add_decisions(self, run: int, seed: int, records: Sequence[dict]) -> None:
        for r in records:
            self.decisions.append({"run": int(run), "seed": int(seed), **r})

    # ------------------------------------------------------------------ online tables
    def tables(self):
        """(bonus table | None, prior | None) for the next block: the model's own
        tables until this session has episodes, then stored + session statistics."""
        m = self.model
        if m is not None and (not self.online or self.session.episodes == 0):
            return m.score_model().bonus_table(self.actions), prior_tables(m.prior, self.actions, self.arg_values,
                                                                           m.prior_weight)
        if not self.online:
            return None, None
        stats = self.base_stats.merge(self.session)
        if stats.episodes == 0:
            return None, None
        ngram_weight = self.model.parameters.ngram_weight if self.model else 1.0
        prior_weight = self.model.prior_weight if self.model else 0.0
        bonus = ScoreModel.from_stats(stats, ngram_weight=min(1.0, ngram_weight)).bonus_table(self.actions)
        counts = PriorCounts(targets=stats.action_targets, args=stats.action_args, target_ids=stats.target_ids)
        return bonus, prior_tables(counts, self.actions, self.arg_values, prior_weight)

    def install(self, *kernels) -> None:
        """Put the current tables into every one of ``kernels`` (called between
        blocks / runs; an eval on several threads runs one block on all of
        them, so it is one update)."""
        bonus, prior = self.tables()
        for kernel in kernels:
            if bonus is not None:
                kernel.set_bonus(bonus)
            if prior is not None:
                kernel.set_prior(*prior)
        self.updates += 1

    # ------------------------------------------------------------------ the end
    def finish(self, success: np.ndarray) -> LearnStats:
        """This session's statistics with the final (judged) verdict of each run
        (runs ``0 .. len(success) - 1``; runs without events are empty episodes).

        Folds one spooled block at a time into one LearnStats, so memory does
        not grow with the number of runs. May be called more than once."""
        success = np.asarray(success).astype(bool)
        R = int(success.shape[0])
        total = LearnStats()
        done = np.zeros(R, bool)                     # runs folded so far
        for cols, offset, runs in self._spool:
            lo, hi = min(offset, R), min(offset + runs, R)
            if hi <= lo:
                continue
            rel = dict(cols, run=cols["run"] - lo)
            keep = (rel["run"] >= 0) & (rel["run"] < hi - lo)
            self._fold(total, {f: v[keep] for f, v in rel.items()}, success[lo:hi])
            done[lo:hi] = True
        rest = np.flatnonzero(~done)
        if rest.size:                                # runs never observed: empty episodes
            empty = {f: np.zeros(0, np.int64) for f in _EVENT_FIELDS}
            self._fold(total, empty, success[rest])
        return total

    def _fold(self, total: LearnStats, cols: dict[str, np.ndarray], success: np.ndarray) -> None:
        for ep in episodes_from_events(cols, self.actions, self.target_name, success, self.strategy,
                                       self._arg_name):
            total.add_episode(ep)

    def close(self) -> None:
        """Drop the spooled events (safe twice)."""
        self._spool.close()
