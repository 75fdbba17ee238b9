"""Glue from an eval's events to the learning store (``swarm eval --learning``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from swarm_engine.learn.stats import LearnStats, episodes_from_events
from swarm_engine.learn.store import LearningStore, learning_key

__all__ = ["record_eval", "record_session"]


def record_eval(result_events, scenario, success: np.ndarray, strategy: str,
                store: LearningStore | None = None, *, key: str | None = None,
                meta: dict[str, Any] | None = None) -> Path:
    """Build one episode per run from ``result_events`` (an EventBatch of all runs,
    ``run`` = index into ``success``), write a session and merge its stats into
    the scenario's and the global stats. Returns the session folder.

    ``scenario`` needs ``.id`` and ``.actions``; ``.binding.target_names`` names
    targets when present. ``key`` overrides the learning key.
    """
    store = store if store is not None else LearningStore()
    k = learning_key(getattr(scenario, "id", "") or "", key)
    binding = getattr(scenario, "binding", None)
    names_fn = getattr(binding, "target_names", None) or str
    eps = episodes_from_events(result_events, list(scenario.actions), names_fn, success, strategy)
    stats = LearnStats.from_episodes(eps)
    succ = np.asarray(success).astype(bool)
    info = {"learning_key": k, "scenario_id": getattr(scenario, "id", ""),
            "scenario_name": getattr(scenario, "name", ""), "strategy": strategy,
            "episodes": len(eps), "successes": int(succ.sum()), "events": len(result_events),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pid": os.getpid()}
    info.update(meta or {})
    return store.commit_session(k, info, stats)


def record_session(stats: LearnStats, scenario, store: LearningStore | None = None, *, key: str | None = None,
                   decisions: list[dict] | None = None, meta: dict[str, Any] | None = None) -> Path:
    """Write one eval's session (stats, LLM decisions, meta) and merge its stats
    into the scenario's and the global totals, exactly once even if the process
    is killed (:meth:`LearningStore.commit_session`). Returns the session folder."""
    store = store if store is not None else LearningStore()
    k = learning_key(getattr(scenario, "id", "") or "", key)
    info = {"learning_key": k, "scenario_id": getattr(scenario, "id", ""),
            "scenario_name": getattr(scenario, "name", ""),
            "scenario_path": str(Path(scenario.path).resolve()) if getattr(scenario, "path", None) else None,
            "variant": getattr(scenario, "variant", None),
            "episodes": stats.episodes, "successes": stats.success_episodes,
            "decisions": len(decisions or ()),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pid": os.getpid()}
    info.update(meta or {})
    # scenario.json: where learn once / the daemon find the scenario of a key without listing sessions
    pointer = ({key: info.get(key) for key in ("scenario_path", "variant", "scenario_id", "created")}
               if info.get("scenario_path") else None)
    return store.commit_session(k, info, stats, decisions, scenario=pointer)
