"""Record LLM decisions of seeded runs outside ``swarm eval`` (tests, demos,
and measuring a model with and without an adapter end to end).

``swarm eval --learning`` is the usual source of ``decisions.jsonl``; this is
the same recording (``LlmManager(record=True)``) with the records returned,
one run per seed, each record carrying ``run``, ``seed`` and ``run_success``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["collect_decisions", "write_decisions_session"]


def collect_decisions(scenario: Any, seeds: Iterable[int], *, invoker: Any = None,
                      lora: Sequence[tuple[str, float]] | None = None,
                      progress: Callable[[int, int, int], None] | None = None) -> tuple[list[dict], list[dict]]:
    """Run ``scenario`` (LLM-managed) once per seed with decision recording.

    Parameters
    ----------
    scenario:
        A loaded :class:`~swarm_engine.eval.loader.Scenario` with an [llm] section.
    seeds:
        One run per seed, in order.
    invoker:
        The backend; by default the scenario's (``make_invoker``). It is closed
        here either way.
    lora:
        ``(adapter path, scale)`` pairs applied to every request (in-process
        backends load them by path).
    progress:
        Called after each run with (runs done, runs total, successes).

    Returns
    -------
    (records, runs)
        The decision records (with ``run``, ``seed``, ``run_success``) and one
        summary dict per run (``seed``, ``success``, ``ticks``, ``actions``,
        ``decisions``, ``applied``).
    """
    from swarm_engine.eval.runner import LlmRunHooks
    from swarm_engine.llm.factory import make_invoker
    from swarm_engine.llm.manager import LlmManager, attach
    from swarm_engine.llm.protocol import LoraScale
    from swarm_engine.llm.runner import InvokerRunner

    seeds = [int(s) for s in seeds]
    runner = InvokerRunner(invoker if invoker is not None else make_invoker(scenario.spec.llm))
    scales = tuple(LoraScale(str(p), float(s)) for p, s in lora) if lora else None
    records: list[dict] = []
    runs: list[dict] = []
    try:
        scenario.plan(runner)
        hooks = LlmRunHooks(scenario, runner)
        for i, seed in enumerate(seeds):
            swarm = scenario.swarm(seed)
            manager = LlmManager(runner, goal=scenario.spec.task.goal, context=hooks.context,
                                 actions=hooks.actions, policy=hooks.policy, sampling=hooks.sampling,
                                 lora=scales, record=True)
            attach(manager, swarm)
            res = swarm.run()
            runner.drain(scenario.spec.llm.timeout)
            ok = bool(res.success)
            records += [{**r, "run": i, "seed": seed, "run_success": ok} for r in manager.records]
            runs.append({"seed": seed, "success": ok, "ticks": int(res.ticks), "actions": int(res.actions),
                         "decisions": len(manager.records), "applied": int(manager.applied)})
            if progress is not None:
                progress(i + 1, len(seeds), sum(r["success"] for r in runs))
    finally:
        runner.close()
    return records, runs


def write_decisions_session(store: Any, key: str, records: Sequence[dict], meta: dict | None = None) -> Any:
    """A new session folder of ``key`` holding ``decisions.jsonl`` (and the
    store's meta.json / stats.json); returns the folder."""
    from swarm_engine.learn.stats import LearnStats

    # the records go in with the folder (written whole), not after it: a reader
    # never sees the session without them
    return store.write_session(key, dict(meta or {}), LearnStats(), list(records))
