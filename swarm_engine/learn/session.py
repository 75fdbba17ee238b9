"""What ``swarm eval --learning`` records while it runs, and the online update.

A :class:`SessionRecorder` receives the events of every run (in blocks of
``block`` runs for native batches, one run at a time otherwise) and the LLM
decision records of LLM-managed runs. With ``online`` it recomputes the
learned bonus table and child-ordering prior after every block from the
scenario's stored statistics plus this session's, with the offline model's
weights; the runner installs them in the kernel before the next block.
Blocks are counted in runs, never in seconds, so a session is reproducible
for the same store contents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from swarm_engine.learn.model import OfflineModel, PriorCounts, prior_tables
from swarm_engine.learn.score import ScoreModel
from swarm_engine.learn.stats import LearnStats, episodes_from_events

__all__ = ["SessionRecorder"]

_EVENT_FIELDS = ("run", "tick", "worker", "action", "target", "arg", "outcome", "source")


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
        self._events: list[dict[str, np.ndarray]] = []
        self.updates = 0

    # ------------------------------------------------------------------ recording
    def _arg_name(self, x: int) -> str:
        return self.arg_values[x] if 0 <= x < len(self.arg_values) else str(x)

    def observe(self, events: dict[str, np.ndarray], kernel_success: np.ndarray, offset: int) -> None:
        """Events of runs ``offset .. offset + len(kernel_success) - 1`` (global run
        indices in ``events["run"]``); updates the online statistics."""
        cols = {f: np.asarray(events[f]) for f in _EVENT_FIELDS if f in events}
        self._events.append(cols)
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

    def install(self, kernel) -> None:
        """Put the current tables into ``kernel`` (called between blocks / runs)."""
        bonus, prior = self.tables()
        if bonus is not None:
            kernel.set_bonus(bonus)
        if prior is not None:
            kernel.set_prior(*prior)
        self.updates += 1

    # ------------------------------------------------------------------ the end
    def finish(self, success: np.ndarray) -> LearnStats:
        """This session's statistics with the final (judged) verdict of each run."""
        success = np.asarray(success).astype(bool)
        if not self._events:
            return LearnStats.from_episodes(episodes_from_events(
                {f: np.zeros(0, np.int64) for f in _EVENT_FIELDS}, self.actions, self.target_name, success,
                self.strategy, self._arg_name))
        cols = {f: np.concatenate([e[f] for e in self._events]) for f in self._events[0]}
        keep = cols["run"] < success.shape[0]
        cols = {f: v[keep] for f, v in cols.items()}
        eps = episodes_from_events(cols, self.actions, self.target_name, success, self.strategy, self._arg_name)
        return LearnStats.from_episodes(eps)
