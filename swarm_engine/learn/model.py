"""The offline model file (``offline_model.json``) and how it turns into a selector.

Layout (the original's keys first; ours after them)::

    {"version": 3,
     "parameters": {"ucb1_c": 1.41, "learning_weight": 0.3, "ngram_weight": 1.0},
     "strategy_config": {"initial_strategy": "ucb1", "maturity_threshold": 10,
                         "error_rate_threshold": 0.3},
     "recommended_paths": [{"path": ["CheckStatus", "ReadLogs", "Diagnose"], "success_rate": 0.98,
                            "support": 120}],
     "prior_weight": 1.0,            # 0 = children in discovery order; 1 = learned order
     "learning_key": "...", "created": "...", "episodes": 30,
     "score": {action, transition, contextual, ngram},     # the ScoreModel tables
     "prior": {"targets": {action: {target: [ok, fail]}}, "args": {...}, "target_ids": {...}},
     "validation": {...}, "changes": [...]}

The model is self-contained: the bonus table and the child-ordering prior are
rebuilt from it alone, so a rollback restores exactly the old behaviour.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from swarm_engine.exploration.selectors import SELECTOR_KINDS, SelectorConfig
from swarm_engine.learn.score import ScoreModel, rate
from swarm_engine.learn.stats import LearnStats

__all__ = ["Parameters", "StrategyConfig", "OptimalParamsModel", "RecommendedPath", "OfflineModel", "prior_tables",
           "selector_from_model", "model_from_stats"]


class Parameters(msgspec.Struct, kw_only=True):
    ucb1_c: float = 2.0 ** 0.5
    learning_weight: float = 0.3
    ngram_weight: float = 1.0


class StrategyConfig(msgspec.Struct, kw_only=True):
    initial_strategy: str = "ucb1"
    maturity_threshold: int = 10
    error_rate_threshold: float = 0.3


class OptimalParamsModel(msgspec.Struct, kw_only=True):
    """The selector settings a model carries, and the statistics analysis that
    proposes them before ``swarm learn once`` searches (the search may change them):

    * ``initial_strategy``: the recorded strategy with the best success rate, then
      fewest actions per episode (at least 5 episodes), else the scenario's;
    * ``maturity_threshold``: the mean actions per recorded episode, in 5..100
      (adaptive stays on UCB1 for about one episode's worth of visits);
    * ``error_rate_threshold``: the recorded action failure rate + 0.1, in
      0.05..0.9 (adaptive turns from greedy to thompson when failures exceed the
      usual level);
    * ``ucb1_c``, ``learning_weight``, ``ngram_weight``: the scenario's.
    """

    parameters: Parameters = msgspec.field(default_factory=Parameters)
    strategy_config: StrategyConfig = msgspec.field(default_factory=StrategyConfig)

    @classmethod
    def from_stats(cls, stats: LearnStats, base: SelectorConfig, min_episodes: int = 5) -> OptimalParamsModel:
        best, best_key = base.strategy, None
        for name, (eps, ok, acts) in stats.strategies.items():
            if name in SELECTOR_KINDS and eps >= min_episodes:
                key = (ok / eps, -acts / eps)
                if best_key is None or key > best_key:
                    best, best_key = name, key
        total = sum(v[2] for v in stats.strategies.values())
        maturity = base.maturity_threshold
        if stats.episodes:
            maturity = int(min(100, max(5, round(total / stats.episodes))))
        ok = sum(v[0] for v in stats.actions.values())
        fail = sum(v[1] for v in stats.actions.values())
        err = base.error_rate_threshold
        if ok + fail:
            err = round(min(0.9, max(0.05, fail / (ok + fail) + 0.1)), 4)
        return cls(parameters=Parameters(ucb1_c=base.ucb1_c, learning_weight=base.learning_weight,
                                         ngram_weight=base.ngram_weight),
                   strategy_config=StrategyConfig(initial_strategy=best, maturity_threshold=maturity,
                                                  error_rate_threshold=err))


class RecommendedPath(msgspec.Struct, kw_only=True):
    path: list[str]
    success_rate: float
    support: int


class ScoreTables(msgspec.Struct, kw_only=True):
    action: dict[str, float] = {}
    transition: dict[str, float] = {}
    contextual: dict[str, float] = {}
    ngram: dict[str, float] = {}


class PriorCounts(msgspec.Struct, kw_only=True):
    targets: dict[str, dict[str, list[int]]] = {}
    args: dict[str, dict[str, list[int]]] = {}
    target_ids: dict[str, int] = {}


class OfflineModel(msgspec.Struct, kw_only=True):
    version: int = 0
    parameters: Parameters = msgspec.field(default_factory=Parameters)
    strategy_config: StrategyConfig = msgspec.field(default_factory=StrategyConfig)
    recommended_paths: list[RecommendedPath] = []
    prior_weight: float = 0.0
    learning_key: str = ""
    scenario_id: str = ""
    created: str = ""
    episodes: int = 0
    score: ScoreTables = msgspec.field(default_factory=ScoreTables)
    prior: PriorCounts = msgspec.field(default_factory=PriorCounts)
    validation: dict[str, Any] = {}
    changes: list[str] = []

    def __post_init__(self) -> None:
        if self.strategy_config.initial_strategy not in SELECTOR_KINDS:
            raise msgspec.ValidationError(f"unknown strategy '{self.strategy_config.initial_strategy}'")

    def summary(self) -> str:
        """One line for "Offline model loaded: ..."."""
        p, sc = self.parameters, self.strategy_config
        return (f"v{self.version} ucb1_c={p.ucb1_c:.3g}, learning_weight={p.learning_weight:.3g}, "
                f"ngram_weight={p.ngram_weight:.3g}, strategy={sc.initial_strategy}, "
                f"prior={'on' if self.prior_weight > 0 else 'off'} ({self.episodes} episodes)")

    def score_model(self) -> ScoreModel:
        s = self.score
        return ScoreModel(dict(s.action), dict(s.transition), dict(s.contextual), dict(s.ngram),
                          ngram_weight=min(1.0, max(0.0, self.parameters.ngram_weight)))

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> OfflineModel:
        return msgspec.json.decode(data, type=cls)


def prior_tables(counts: PriorCounts, actions: Sequence[str], arg_values: Sequence[str],
                 weight: float = 1.0, max_targets: int = 1 << 16):
    """The kernel's child-ordering tables from per-(action, target/arg) outcome
    counts: ``weight * (rate(ok, fail) - 0.5)``, so unseen children score 0
    (neutral), ones that worked score up, ones that failed score down.

    Returns (target (A, T) | None, arg (A, V) | None); None when nothing applies.
    Targets with ids at or above ``max_targets`` are left out (neutral).
    """
    if weight <= 0:
        return None
    A = len(actions)
    ids = {n: i for n, i in counts.target_ids.items() if 0 <= i < max_targets}
    index = {a: i for i, a in enumerate(actions)}
    target = None
    T = 1 + max(ids.values(), default=-1)
    if T > 0 and counts.targets:
        target = np.zeros((A, T))
        for a, per in counts.targets.items():
            if a not in index:
                continue
            for name, (ok, fail) in per.items():
                t = ids.get(name)
                if t is not None:
                    target[index[a], t] = weight * (rate(ok, fail) - 0.5)
    arg = None
    if arg_values and counts.args:
        vid = {v: i for i, v in enumerate(arg_values)}
        arg = np.zeros((A, len(arg_values)))
        for a, per in counts.args.items():
            if a not in index:
                continue
            for name, (ok, fail) in per.items():
                if name in vid:
                    arg[index[a], vid[name]] = weight * (rate(ok, fail) - 0.5)
    if target is None and arg is None:
        return None
    return target, arg


def selector_from_model(base: SelectorConfig, model: OfflineModel, actions: Sequence[str],
                        arg_values: Sequence[str]) -> SelectorConfig:
    """``base`` with the model's strategy, parameters, bonus table and prior."""
    p, sc = model.parameters, model.strategy_config
    return dataclasses.replace(
        base, strategy=sc.initial_strategy, ucb1_c=p.ucb1_c, learning_weight=p.learning_weight,
        ngram_weight=p.ngram_weight, maturity_threshold=sc.maturity_threshold,
        error_rate_threshold=sc.error_rate_threshold,
        bonus=model.score_model().bonus_table(actions),
        prior=prior_tables(model.prior, actions, arg_values, model.prior_weight))


def recommended_paths(stats: LearnStats, top: int = 5, min_support: int = 2) -> list[RecommendedPath]:
    """The most supported action paths of successful episodes: the greedy chain
    from START (each step the transition seen most in successes), then the
    4-grams and 3-grams with the most successes."""
    out: list[RecommendedPath] = []
    chain, seen, prev = [], set(), "START"
    for _ in range(12):
        best = None
        for key, (s, f) in stats.transitions.items():
            p, a = key.rsplit("->", 1)
            if p == prev and a not in seen and s >= min_support and (best is None or s > best[1][0]):
                best = (a, (s, f))
        if best is None:
            break
        chain.append(best[0])
        seen.add(best[0])
        prev = best[0]
    if chain:
        s, f = stats.transitions[f"START->{chain[0]}"]
        out.append(RecommendedPath(path=chain, success_rate=round(rate(s, f), 4), support=int(s)))
    grams = sorted(((k, v) for k, v in {**stats.fourgrams, **stats.trigrams}.items() if v[0] >= min_support),
                   key=lambda kv: (-kv[1][0], -rate(*kv[1]), kv[0]))
    for key, (s, f) in grams:
        path = [x for x in key.split("->") if x != "START"]
        if len(out) >= top:
            break
        if any(path == p.path[:len(path)] for p in out):
            continue
        out.append(RecommendedPath(path=path, success_rate=round(rate(s, f), 4), support=int(s)))
    return out


def model_from_stats(stats: LearnStats, base: SelectorConfig, *, key: str = "", scenario_id: str = "",
                     prior_weight: float = 1.0) -> OfflineModel:
    """The statistics-only model ``swarm learn once`` starts its search from:
    :class:`OptimalParamsModel` settings and the learned tables."""
    sm = ScoreModel.from_stats(stats, ngram_weight=min(1.0, base.ngram_weight))
    params = OptimalParamsModel.from_stats(stats, base)
    return OfflineModel(
        parameters=params.parameters, strategy_config=params.strategy_config,
        recommended_paths=recommended_paths(stats), prior_weight=prior_weight, learning_key=key,
        scenario_id=scenario_id, episodes=stats.episodes,
        score=ScoreTables(action=sm.action, transition=sm.transition, contextual=sm.contextual, ngram=sm.ngram),
        prior=PriorCounts(targets={a: {t: list(v) for t, v in per.items()} for a, per in stats.action_targets.items()},
                          args={a: {t: list(v) for t, v in per.items()} for a, per in stats.action_args.items()},
                          target_ids=dict(stats.target_ids)))
