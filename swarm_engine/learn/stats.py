"""LearnStats: what the learning store accumulates from episodes.

An *episode* is one run: its actions in order, each action's outcome and
target, whether the run succeeded, and the selection strategy used.

Counting rules (all counts are plain integers, so :meth:`LearnStats.merge`
is elementwise addition: commutative and associative):

* the action sequence is padded with one ``"START"`` in front, so the first
  action's transition is ``"START->a0"`` and the first trigram is
  ``"START->a0->a1"``;
* ``transitions["p->a"]``, ``trigrams["pp->p->a"]`` and
  ``fourgrams["ppp->pp->p->a"]`` are ``[in_success_episodes, in_failure_episodes]``:
  every occurrence in an episode counts once on the side of that episode's verdict;
* ``contextual["p->a"]``, ``actions[a]`` and ``action_targets[a][target]`` are
  ``[ok, fail]`` counts of the *action's own* outcome (outcome 1 / True is ok,
  fail and error are fail);
* ``action_args[a][arg]`` is ``[ok, fail]`` of the action per argument
  (param-variant value) where it has one; ``target_ids[name]`` is the
  environment's id of each target name seen (to map learned priors back);
* ``strategies[s]`` is ``[episodes, successful_episodes, total_actions]``;
* ``decisions[source]`` is ``[ok, fail]`` per decision source
  (``selector``, ``llm``, ``fallback``) where the episodes carry sources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import msgspec
import numpy as np

__all__ = ["LearnStats", "Episode", "START", "episodes_from_events", "SEP"]

START = "START"
SEP = "->"
NO_TARGET = "-"
_SOURCES = {0: "selector", 1: "llm", 2: "fallback"}


class Episode(NamedTuple):
    actions: Sequence[str]
    outcomes: Sequence            # per action: bool, or 0 fail / 1 ok / 2 error
    targets: Sequence             # per action: str, or None for no target
    success: bool
    strategy: str = ""
    sources: Sequence[str] | None = None     # per action: "selector" | "llm" | "fallback"
    args: Sequence | None = None             # per action: argument name, or None
    target_ids: Sequence | None = None       # per action: the target's environment id, or None


def _ok(outcome) -> bool:
    if isinstance(outcome, (bool, np.bool_)):
        return bool(outcome)
    return int(outcome) == 1


def _bump(d: dict, key: str, i: int, n: int = 1, width: int = 2) -> None:
    v = d.get(key)
    if v is None:
        v = d[key] = [0] * width
    v[i] += n


def _add_counts(a: dict, b: dict) -> dict:
    out = {k: list(v) for k, v in a.items()}
    for k, v in b.items():
        cur = out.get(k)
        if cur is None:
            out[k] = list(v)
        else:
            out[k] = [x + y for x, y in zip(cur, v)]
    return out


class LearnStats(msgspec.Struct, kw_only=True):
    """Accumulated learning statistics; JSON round-trips through msgspec."""

    version: int = 1
    success_episodes: int = 0
    failure_episodes: int = 0
    transitions: dict[str, list[int]] = {}
    trigrams: dict[str, list[int]] = {}
    fourgrams: dict[str, list[int]] = {}
    contextual: dict[str, list[int]] = {}
    actions: dict[str, list[int]] = {}
    action_targets: dict[str, dict[str, list[int]]] = {}
    action_args: dict[str, dict[str, list[int]]] = {}
    target_ids: dict[str, int] = {}
    strategies: dict[str, list[int]] = {}
    decisions: dict[str, list[int]] = {}

    # ------------------------------------------------------------------ building
    @property
    def episodes(self) -> int:
        return self.success_episodes + self.failure_episodes

    def add_episode(self, ep: Episode) -> None:
        acts = [str(a) for a in ep.actions]
        if not (len(acts) == len(ep.outcomes) == len(ep.targets)):
            raise ValueError("an episode's actions, outcomes and targets must have the same length")
        side = 0 if ep.success else 1
        if ep.success:
            self.success_episodes += 1
        else:
            self.failure_episodes += 1
        seq = [START] + acts
        for i in range(1, len(seq)):
            _bump(self.transitions, SEP.join(seq[i - 1:i + 1]), side)
            if i >= 2:
                _bump(self.trigrams, SEP.join(seq[i - 2:i + 1]), side)
            if i >= 3:
                _bump(self.fourgrams, SEP.join(seq[i - 3:i + 1]), side)
        for i, (a, o, t) in enumerate(zip(acts, ep.outcomes, ep.targets)):
            res = 0 if _ok(o) else 1
            _bump(self.contextual, seq[i] + SEP + a, res)
            _bump(self.actions, a, res)
            _bump(self.action_targets.setdefault(a, {}), NO_TARGET if t is None else str(t), res)
            if ep.sources is not None:
                _bump(self.decisions, str(ep.sources[i]), res)
            if ep.args is not None and ep.args[i] is not None:
                _bump(self.action_args.setdefault(a, {}), str(ep.args[i]), res)
            if ep.target_ids is not None and t is not None and ep.target_ids[i] is not None:
                self.target_ids[str(t)] = int(ep.target_ids[i])
        st = self.strategies.get(ep.strategy or "")
        if st is None:
            st = self.strategies[ep.strategy or ""] = [0, 0, 0]
        st[0] += 1
        st[1] += 1 if ep.success else 0
        st[2] += len(acts)

    @classmethod
    def from_episodes(cls, episodes: Iterable[Episode]) -> LearnStats:
        s = cls()
        for ep in episodes:
            s.add_episode(ep if isinstance(ep, Episode) else Episode(*ep))
        return s

    # ------------------------------------------------------------------ merging
    def merge(self, other: LearnStats) -> LearnStats:
        """A new LearnStats with both sets of counts added (neither input changes)."""
        at = {k: dict(v) for k, v in self.action_targets.items()}
        for a, per in other.action_targets.items():
            at[a] = _add_counts(at.get(a, {}), per)
        aa = {k: dict(v) for k, v in self.action_args.items()}
        for a, per in other.action_args.items():
            aa[a] = _add_counts(aa.get(a, {}), per)
        return LearnStats(
            version=max(self.version, other.version),
            success_episodes=self.success_episodes + other.success_episodes,
            failure_episodes=self.failure_episodes + other.failure_episodes,
            transitions=_add_counts(self.transitions, other.transitions),
            trigrams=_add_counts(self.trigrams, other.trigrams),
            fourgrams=_add_counts(self.fourgrams, other.fourgrams),
            contextual=_add_counts(self.contextual, other.contextual),
            actions=_add_counts(self.actions, other.actions),
            action_targets={a: _add_counts({}, per) for a, per in at.items()},
            action_args={a: _add_counts({}, per) for a, per in aa.items()},
            target_ids={**self.target_ids, **other.target_ids},
            strategies=_add_counts(self.strategies, other.strategies),
            decisions=_add_counts(self.decisions, other.decisions),
        )

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> LearnStats:
        """Raises msgspec.DecodeError / ValidationError on a malformed document."""
        return msgspec.json.decode(data, type=cls)

    def to_builtins(self) -> dict:
        return msgspec.to_builtins(self)


def episodes_from_events(events, action_names: Sequence[str],
                         target_name_fn: Callable[[int], str] | None,
                         success_by_run, strategy: str = "",
                         arg_name_fn: Callable[[int], str] | None = None) -> list[Episode]:
    """One :class:`Episode` per run index ``0 .. len(success_by_run)-1``.

    ``events`` is an :class:`~swarm_engine.core.events.EventBatch` (or a dict of
    its columns) holding the events of those runs; each run's events are put in
    (tick, worker) order. Runs without events become empty episodes (they still
    count for their verdict and strategy). Targets < 0 have no target.
    """
    col = (lambda n: np.asarray(events[n])) if isinstance(events, dict) else \
        (lambda n: np.asarray(getattr(events, n)))
    success_by_run = np.asarray(success_by_run).astype(bool)
    R = int(success_by_run.shape[0])
    run, tick, worker = col("run"), col("tick"), col("worker")
    action, target, outcome = col("action"), col("target"), col("outcome")
    try:
        arg = col("arg")
    except (AttributeError, KeyError):
        arg = None
    try:
        source = col("source")
    except (AttributeError, KeyError):
        source = None
    order = np.lexsort((worker, tick, run))
    name_t = target_name_fn or str
    bounds = np.searchsorted(run[order], np.arange(R + 1)) if len(order) else np.zeros(R + 1, np.int64)
    out = []
    for r in range(R):
        idx = order[bounds[r]:bounds[r + 1]]
        acts = [action_names[int(a)] for a in action[idx]]
        outs = [int(o) for o in outcome[idx]]
        tgts = [name_t(int(t)) if t >= 0 else None for t in target[idx]]
        srcs = [_SOURCES.get(int(s), str(int(s))) for s in source[idx]] if source is not None else None
        args = None
        if arg is not None:
            name_a = arg_name_fn or str
            args = [name_a(int(x)) if x >= 0 else None for x in arg[idx]]
        tids = [int(t) if t >= 0 else None for t in target[idx]]
        out.append(Episode(acts, outs, tgts, bool(success_by_run[r]), strategy, srcs, args, tids))
    return out
