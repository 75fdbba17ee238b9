"""``swarm learn once``: statistics analysis, then a parameter search by simulation.

1. *Statistics* (as the original): the scenario's accumulated LearnStats give
   the ScoreModel tables (learned bonus), per-(action, target/arg) outcome
   counts (child-ordering prior), recommended paths, and the strategy that
   did best in the recorded episodes.
2. *Search* (ours): where the scenario's environment can run, candidate
   models are scored by simulated evals with the engine itself on training
   seeds (coordinate descent over strategy, prior on/off, learning_weight,
   ngram_weight, ucb1_c and the adaptive thresholds; every candidate on the
   same seeds). The objective is the success rate, then the mean actions of
   the successful runs.
3. *Validation*: the best candidate and the model in use (or, with none, the
   scenario's own settings) run on held-out seeds; the new model is applied
   only when it is not worse there (atomic swap; the old version is kept for
   ``swarm learn rollback``).

Training seeds start at ``TRAIN_SEED``, held-out ones at ``HELDOUT_SEED``: far
from the seeds people pass to ``swarm eval`` (42 by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from swarm_engine.errors import SwarmError
from swarm_engine.eval.loader import Scenario, load_scenario
from swarm_engine.exploration.selectors import SelectorConfig
from swarm_engine.learn.model import OfflineModel, model_from_stats, selector_from_model
from swarm_engine.learn.simulate import SimResult, simulate
from swarm_engine.learn.stats import LearnStats
from swarm_engine.learn.store import LearningStore, learning_key

__all__ = ["LearnOutcome", "learn_once", "resolve_target", "TRAIN_SEED", "HELDOUT_SEED", "LearnError"]

TRAIN_SEED = 1_000_000_007
HELDOUT_SEED = 2_000_000_011

ProgressFn = Callable[[str], None]


class LearnError(SwarmError):
    """Nothing to learn from, or no scenario to learn for."""


@dataclass
class LearnOutcome:
    key: str
    applied: bool
    version: int | None                     # the new version when applied
    model: OfflineModel | None
    previous_version: int | None
    lines: list[str] = field(default_factory=list)
    validation: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def resolve_target(target: str | Path, store: LearningStore, key: str | None = None
                   ) -> tuple[str, Scenario | None]:
    """(learning key, loaded scenario or None) for a scenario path or a learning key.

    A key finds its scenario through the newest session that names an existing
    file (``scenario_path`` and ``variant`` in meta.json).
    """
    p = Path(target)
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise LearnError(f"{p}: no such scenario file")
        sc = load_scenario(p)
        k = learning_key(sc.id, key)
        variant = _newest_meta(store, k).get("variant")
        if variant:
            sc = load_scenario(p, variant)
        return k, sc
    k = learning_key("", str(target)) if key is None else learning_key("", key)
    meta = _newest_meta(store, k)
    path = meta.get("scenario_path")
    if path and Path(path).is_file():
        return k, load_scenario(path, meta.get("variant") or None)
    return k, None


def _newest_meta(store: LearningStore, key: str) -> dict:
    """Where the key's newest session says its scenario is: scenario.json (written
    with every session), else a scan of the sessions, newest first."""
    try:
        meta = msgspec.json.decode((store.scenario_dir(key) / "scenario.json").read_bytes())
        if isinstance(meta, dict) and meta.get("scenario_path"):
            return meta
    except (OSError, msgspec.DecodeError):
        pass
    for s in reversed(store.sessions(key)):
        meta, _ = store.load_session(s) if (s / "meta.json").exists() else ({}, None)
        if meta.get("scenario_path"):
            return meta
    return {}


def _describe(a: OfflineModel, b: OfflineModel) -> list[str]:
    """What differs between two models' settings, one phrase each."""
    out = []
    if a.strategy_config.initial_strategy != b.strategy_config.initial_strategy:
        out.append(f"strategy {a.strategy_config.initial_strategy} -> {b.strategy_config.initial_strategy}")
    for name in ("ucb1_c", "learning_weight", "ngram_weight"):
        x, y = getattr(a.parameters, name), getattr(b.parameters, name)
        if abs(x - y) > 1e-12:
            out.append(f"{name} {x:.3g} -> {y:.3g}")
    for name in ("maturity_threshold", "error_rate_threshold"):
        x, y = getattr(a.strategy_config, name), getattr(b.strategy_config, name)
        if x != y:
            out.append(f"{name} {x:g} -> {y:g}")
    if (a.prior_weight > 0) != (b.prior_weight > 0):
        out.append(f"learned child order {'on' if b.prior_weight > 0 else 'off'}")
    return out


def _fmt(r: SimResult) -> str:
    lo, hi = r.ci95()
    return f"success {100 * r.success_rate:.1f}%, {r.mean_actions:.2f} actions to success [{lo:.2f}, {hi:.2f}]"


def _candidates(m: OfflineModel, dim: str) -> list[OfflineModel]:
    def with_(**kw) -> OfflineModel:
        p = {k: kw.pop(k) for k in ("ucb1_c", "learning_weight", "ngram_weight") if k in kw}
        s = {k: kw.pop(k) for k in ("initial_strategy", "maturity_threshold", "error_rate_threshold") if k in kw}
        out = OfflineModel.from_json(m.to_json())
        for name, v in p.items():
            setattr(out.parameters, name, v)
        for field_name, v in s.items():
            setattr(out.strategy_config, field_name, v)
        for attr, v in kw.items():
            setattr(out, attr, v)
        return out

    strat = m.strategy_config.initial_strategy
    if dim == "strategy":
        return [with_(initial_strategy=s) for s in ("ucb1", "thompson", "thompson_sampled", "greedy", "adaptive")]
    if dim == "prior":
        return [with_(prior_weight=w) for w in (0.0, 1.0)]
    if dim == "learning_weight" and strat not in ("fifo", "greedy"):
        return [with_(learning_weight=w) for w in (0.0, 0.3, 1.0, 3.0)]
    if dim == "ngram_weight" and strat != "fifo":
        return [with_(ngram_weight=w) for w in (0.0, 0.5, 1.0)]
    if dim == "ucb1_c" and strat in ("ucb1", "adaptive"):
        return [with_(ucb1_c=c) for c in (0.25, 0.5, 1.0, 2.0 ** 0.5, 2.0)]
    if dim == "adaptive" and strat == "adaptive":
        return [with_(maturity_threshold=t, error_rate_threshold=e) for t in (5, 10, 20, 50) for e in (0.1, 0.3, 0.5)]
    return []


def learn_once(target: str | Path, *, store: LearningStore | None = None, key: str | None = None,
               apply: bool = True, train_runs: int = 1000, heldout_runs: int = 2000,
               budget_seconds: float = 120.0, progress: ProgressFn | None = None,
               jobs: int | None = 1, evaluate: Callable[..., Any] | None = None) -> LearnOutcome:
    """Learn a new offline model for ``target`` (scenario path or learning key);
    its simulated evals run on ``jobs`` threads or processes (0 or None: every
    core), which changes their speed, never their runs.

    ``evaluate`` runs each candidate's evals instead of ``run_eval``, with its
    arguments (``swarm learn once --cluster``: on a Ray cluster)."""
    t_start = time.perf_counter()
    store = store if store is not None else LearningStore()
    say = progress or (lambda _m: None)
    k, scenario = resolve_target(target, store, key)
    stats = store.load_stats(k)
    if stats.episodes == 0:
        raise LearnError(f"learning key '{k}': no recorded episodes under {store.scenario_dir(k)}; "
                         f"record some with: swarm eval SCENARIO -n 30 --learning")
    with store.model_lock(k):
        current = store.load_model(k)
        lines = [f"{stats.episodes} episodes ({stats.success_episodes} successful) in {store.stats_path(k)}"]
        base_sel = scenario.config.selector if scenario is not None else SelectorConfig()
        model = model_from_stats(stats, base_sel, key=k, scenario_id=scenario.id if scenario else "")
        analysis = _describe(_as_model(base_sel), model)
        if analysis:
            lines.append("statistics analysis: " + ", ".join(analysis))
        validation: dict[str, Any] = {}
        if scenario is None or scenario.rules is None:
            lines.append("no runnable scenario for this key: statistics only, no search or validation")
            winner = model
        else:
            winner, validation = _search(scenario, model, current, lines, train_runs, heldout_runs,
                                         budget_seconds, say, jobs, evaluate)
        winner.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        winner.episodes = stats.episodes
        winner.validation = validation
        ok = validation.get("accepted", True)
        prev = current.version if current is not None else None
        if ok and apply:
            winner.changes = list(lines)
            version = store.save_model(k, winner)
            lines.append(f"applied as version {version}" + (f" (was {prev})" if prev else ""))
            return LearnOutcome(k, True, version, winner, prev, lines, validation, time.perf_counter() - t_start)
        if not ok:
            lines.append("not applied: worse than the model in use on held-out seeds")
        else:
            lines.append("not applied (dry run)")
        return LearnOutcome(k, False, None, winner, prev, lines, validation, time.perf_counter() - t_start)


def _search(scenario: Scenario, start: OfflineModel, current: OfflineModel | None, lines: list[str],
            train_runs: int, heldout_runs: int, budget: float, say: ProgressFn, jobs: int | None = 1,
            evaluate: Callable[..., Any] | None = None):
    actions = scenario.actions
    assert scenario.rules is not None, "learn_once searches planned scenarios only (it checks first)"
    args = list(scenario.rules.args.values)
    base = scenario.config.selector
    if not scenario.binding.native:
        # a Python environment steps one swarm per seed: fewer, costlier runs
        train_runs, heldout_runs = max(50, train_runs // 5), max(100, heldout_runs // 5)

    def run(m: OfflineModel | None, seed: int, n: int) -> SimResult:
        sel = base if m is None else selector_from_model(base, m, actions, args)
        return simulate(scenario, sel, seed, n, jobs, evaluate)

    t0 = time.perf_counter()
    reference = current
    ref_train = run(reference, TRAIN_SEED, train_runs)
    say(f"in use ({f'v{current.version}' if current else 'scenario settings'}): {_fmt(ref_train)}")
    best, best_r = start, run(start, TRAIN_SEED, train_runs)
    say(f"statistics model: {_fmt(best_r)}")
    tried = 2
    for _round in range(2):
        improved = False
        for dim in ("strategy", "prior", "learning_weight", "ngram_weight", "ucb1_c", "adaptive"):
            for cand in _candidates(best, dim):
                if time.perf_counter() - t0 > budget:
                    break
                r = run(cand, TRAIN_SEED, train_runs)
                tried += 1
                if r.better_than(best_r):
                    say(f"  {', '.join(_describe(best, cand))}: {_fmt(r)}")
                    best, best_r, improved = cand, r, True
        if not improved or time.perf_counter() - t0 > budget:
            break
    changed = _describe(current or _as_model(base), best)
    lines.append(f"search: {tried} candidates x {train_runs} training seeds in {time.perf_counter() - t0:.2f} s")
    lines.append("changes: " + (", ".join(changed) if changed else "none (tables refreshed)"))
    lines.append(f"training seeds: in use {_fmt(ref_train)}; new {_fmt(best_r)}")
    new_h = run(best, HELDOUT_SEED, heldout_runs)
    cur_h = run(reference, HELDOUT_SEED, heldout_runs)
    accepted = new_h.not_worse_than(cur_h)
    lines.append(f"held-out seeds: in use {_fmt(cur_h)}; new {_fmt(new_h)}")
    validation = {"train_seed": TRAIN_SEED, "train_runs": train_runs, "heldout_seed": HELDOUT_SEED,
                  "heldout_runs": heldout_runs, "candidates": tried,
                  "train": {"in_use": ref_train.to_dict(), "new": best_r.to_dict()},
                  "heldout": {"in_use": cur_h.to_dict(), "new": new_h.to_dict()},
                  "compared_with": current.version if current else "scenario settings", "accepted": accepted}
    return best, validation


def _as_model(sel: SelectorConfig) -> OfflineModel:
    """The scenario's own settings as a model (for "what changed")."""
    m = model_from_stats(LearnStats(), sel, prior_weight=0.0)
    m.strategy_config.initial_strategy = sel.strategy
    m.strategy_config.maturity_threshold = sel.maturity_threshold
    m.strategy_config.error_rate_threshold = sel.error_rate_threshold
    return m
