"""Put an eval back together from parts that ran apart (threads, processes, Ray tasks).

Every per-run value of an :class:`EvalResult` depends on its own seed alone
(runs share no state, and a run's conditions and milestones are judged from
its own metrics), so an eval split into contiguous chunks of seeds is the
concatenation of the chunks' results, run for run. ``to_payload`` /
``from_payload`` carry a part across a process boundary as plain arrays and
lists: a :class:`Scenario` holds compiled native objects, so the receiver
brings its own (rebuilt from the same text, its sha256 checked). The payload
is packed for the trip (the per-run results are what a cluster eval ships:
46 instead of 86 bytes a troubleshooting run): int64 columns whose values fit
go as int32, contiguous seeds as their first and count, and the runs' reasons
as codes into their few distinct strings (Ray decodes a list of a million
strings in ~60 ms, the codes in ~15); the receiver gets the same values back,
dtype and all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from swarm_engine.errors import ConfigError
from swarm_engine.eval.judge import reason_codes
from swarm_engine.eval.loader import Scenario
from swarm_engine.eval.runner import EvalResult

__all__ = ["concat_results", "no_runs", "to_payload", "from_payload", "ARRAY_FIELDS"]

# the per-run arrays of an EvalResult, in the order of its fields
ARRAY_FIELDS = ("seeds", "success", "verdict", "done", "ticks", "actions", "failed", "wall", "by_action")
_I32 = np.iinfo(np.int32)


def concat_results(parts: Sequence[EvalResult], *, requested: int | None = None,
                   engine_seconds: float | None = None) -> EvalResult:
    """One result from ``parts`` given in seed order, each starting where the
    previous one ended. ``engine_seconds`` defaults to the parts' sum (parts
    that ran one after another); callers that ran them side by side pass the
    wall time they measured. A stopped part stops the eval there: later parts
    are dropped, so the result is still a prefix of the seeds."""
    if not parts:
        raise ConfigError("no results to merge")
    kept: list[EvalResult] = []
    for p in parts:
        if kept:
            prev = kept[-1]
            expected = prev.base_seed + prev.runs
            if p.base_seed != expected:
                raise ConfigError(f"results do not follow each other: a part starts at seed {p.base_seed}, "
                                  f"expected {expected}")
            if p.scenario.sha256 != kept[0].scenario.sha256:
                raise ConfigError("results of different scenarios cannot be merged")
        kept.append(p)
        if p.stopped or p.runs < p.requested:
            break
    first = kept[0]
    arrays = {f: np.concatenate([getattr(p, f) for p in kept]) for f in ARRAY_FIELDS}
    conds = {k: np.concatenate([p.conditions[k] for p in kept]) for k in first.conditions}
    miles = {k: np.concatenate([p.milestones[k] for p in kept]) for k in first.milestones}
    per_run_llm = {k: np.concatenate([p.per_run_llm[k] for p in kept]) for k in first.per_run_llm}
    stopped = any(p.stopped for p in kept) or len(kept) < len(parts)
    return EvalResult(
        scenario=first.scenario, base_seed=first.base_seed,
        requested=requested if requested is not None else sum(p.requested for p in parts),
        reason=[r for p in kept for r in p.reason], conditions=conds, milestones=miles,
        engine_seconds=engine_seconds if engine_seconds is not None else sum(p.engine_seconds for p in kept),
        stopped=stopped, llm=_merge_llm([p.llm for p in kept]), per_run_llm=per_run_llm, jobs=dict(first.jobs),
        cluster={},
        **arrays)


def no_runs(like: EvalResult, *, base_seed: int, requested: int, engine_seconds: float) -> EvalResult:
    """A stopped result of zero runs shaped like ``like``: what an eval keeps when it
    is stopped before its first seed finished (later chunks alone are not a prefix)."""
    arrays = {f: getattr(like, f)[:0] for f in ARRAY_FIELDS}
    return dataclasses.replace(
        like, base_seed=base_seed, requested=requested, reason=[], engine_seconds=engine_seconds, stopped=True,
        conditions={k: v[:0] for k, v in like.conditions.items()},
        milestones={k: v[:0] for k, v in like.milestones.items()},
        per_run_llm={k: v[:0] for k, v in like.per_run_llm.items()}, llm={}, cluster={}, **arrays)


def _merge_llm(summaries: list[dict]) -> dict:
    """LLM summaries of the parts: counts add up, the rest is the first part's."""
    present = [s for s in summaries if s]
    if not present:
        return {}
    if len(present) == 1:
        return dict(present[0])
    out = dict(present[0])
    for key, value in present[0].items():
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] = sum(int(s.get(key, 0)) for s in present)
    return out


def to_payload(result: EvalResult) -> dict[str, Any]:
    """The result as plain arrays, lists and numbers (no Scenario), packed for the trip,
    with the scenario's sha256 so the receiver can check it merges the right thing."""
    packed: dict[str, Any] = {}
    arrays = {f: _pack(f, np.asarray(getattr(result, f)), packed) for f in ARRAY_FIELDS}
    names, codes = reason_codes(result.reason)
    return {"sha256": result.scenario.sha256, "base_seed": result.base_seed, "requested": result.requested,
            "reason": {"names": names, "codes": codes}, "engine_seconds": result.engine_seconds,
            "stopped": result.stopped,
            "llm": dict(result.llm), "conditions": dict(result.conditions),
            "milestones": dict(result.milestones), "per_run_llm": dict(result.per_run_llm), "jobs": dict(result.jobs),
            "packed": packed, **arrays}


def _pack(name: str, a: np.ndarray, packed: dict[str, Any]) -> np.ndarray | None:
    """``a`` as it travels; ``packed[name]`` says how to unpack it (absent: as it is)."""
    if name == "seeds" and a.dtype == np.uint64 and a.ndim == 1 and a.size:
        first = int(a[0])
        if int(a[-1]) - first == a.size - 1 and np.array_equal(a, np.arange(first, first + a.size, dtype=a.dtype)):
            packed[name] = {"range": [first, int(a.size)]}
            return None
    if a.dtype == np.int64 and a.size and _I32.min <= int(a.min()) and int(a.max()) <= _I32.max:
        packed[name] = {"dtype": "int64"}
        return a.astype(np.int32)
    return a


def _reasons(packed: dict[str, Any]) -> list[str]:
    return np.array(packed["names"], dtype=object)[np.asarray(packed["codes"], dtype=np.intp)].tolist()


def _unpack(name: str, a: Any, packed: dict[str, Any]) -> np.ndarray:
    how = packed.get(name)
    if how is None:
        return np.asarray(a)
    if "range" in how:
        first, n = how["range"]
        return np.arange(first, first + n, dtype=np.uint64)
    return np.asarray(a).astype(np.dtype(how["dtype"]))


def from_payload(scenario: Scenario, payload: dict[str, Any]) -> EvalResult:
    """The result ``to_payload`` made, bound to the receiver's ``scenario``."""
    if payload.get("sha256") != scenario.sha256:
        raise ConfigError(f"a result of scenario sha256 {str(payload.get('sha256'))[:12]}... cannot be merged "
                          f"into an eval of {scenario.sha256[:12]}...")
    return EvalResult(scenario=scenario, base_seed=int(payload["base_seed"]), requested=int(payload["requested"]),
                      reason=_reasons(payload["reason"]), conditions=dict(payload["conditions"]),
                      milestones=dict(payload["milestones"]), engine_seconds=float(payload["engine_seconds"]),
                      stopped=bool(payload["stopped"]), llm=dict(payload["llm"]),
                      per_run_llm=dict(payload["per_run_llm"]), jobs=dict(payload.get("jobs", {})), cluster={},
                      **{f: _unpack(f, payload[f], payload.get("packed", {})) for f in ARRAY_FIELDS})
