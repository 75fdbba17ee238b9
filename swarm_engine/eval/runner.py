"""Run a scenario N times (seeds s, s+1, ...) and collect per-run results.

Native environments run in batches inside the kernel (one call covers many
runs, returning every ``chunk_seconds`` so progress bars update and Ctrl-C is
honoured); Python environments run one :class:`Swarm` per seed. Conditions and
milestones are then judged over the arrays of runs at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from swarm_engine._native import _kernel
from swarm_engine.core.config import make_kernel
from swarm_engine.core.events import EventBatch
from swarm_engine.errors import ConfigError, EnvironmentError_, LlmError, StoreError
from swarm_engine.eval.conditions import run_metrics
from swarm_engine.eval.jobs import JobPlan, plan, resolve_jobs
from swarm_engine.eval.judge import judge
from swarm_engine.eval.loader import Scenario
from swarm_engine.eval.processes import python_processes
from swarm_engine.eval.threaded import EventSink, native_threads

if TYPE_CHECKING:
    from swarm_engine.llm.runner import InvokerRunner

__all__ = ["EvalResult", "run_eval", "TraceWriter", "RunHooks", "LlmRunHooks", "PER_RUN_LLM", "unavailable_summary",
           "llm_runner"]

ProgressFn = Callable[[int, int], None]
# per-run LLM columns (EvalResult.per_run_llm, the report's runs[]): calls, errored calls,
# applied decisions, fallbacks and their causes, one-candidate skips
PER_RUN_LLM = ("llm_calls", "llm_errors", "llm_decisions", "llm_fallbacks", "llm_unsure", "llm_taken",
               "llm_failed", "llm_single")


@dataclass
class EvalResult:
    """Per-run arrays of one eval (index i = seed base_seed + i)."""

    scenario: Scenario
    base_seed: int
    requested: int
    seeds: np.ndarray
    success: np.ndarray          # bool, after conditions
    verdict: np.ndarray          # int8 kernel verdict (Verdict)
    reason: list[str]
    done: np.ndarray             # bool: task completed
    ticks: np.ndarray
    actions: np.ndarray
    failed: np.ndarray
    wall: np.ndarray             # seconds per run
    by_action: np.ndarray        # (R, A)
    conditions: dict[str, np.ndarray]
    milestones: dict[str, np.ndarray]
    engine_seconds: float
    stopped: bool = False
    llm: dict = field(default_factory=dict)             # LlmStats.summary() of LLM-managed evals
    per_run_llm: dict = field(default_factory=dict)     # llm_calls, llm_errors, ... per run
    jobs: dict = field(default_factory=dict)            # JobPlan.to_dict(): requested, used, mode, reason
    cluster: dict = field(default_factory=dict)         # a cluster eval's nodes, chunks, retries (cluster.record)

    @property
    def runs(self) -> int:
        return int(self.seeds.shape[0])


class TraceWriter:
    """Writes one JSON line per action event, with names and the lazily
    rendered text observation."""

    def __init__(self, scenario: Scenario, seeds: np.ndarray, stream: TextIO) -> None:
        self.scenario = scenario
        self.seeds = seeds
        self.stream = stream
        self.actions = scenario.actions
        self.binding = scenario.binding

    def write(self, events: EventBatch) -> None:
        for row in events.rows():
            seed = int(self.seeds[row["run"]])
            try:
                line = self._line(row, seed)
            except EnvironmentError_ as exc:     # a Python environment's target_name / render
                raise EnvironmentError_(f"{exc} (writing the trace: seed {seed}, tick {row['tick']})") from exc
            try:
                self.stream.write(line)
            except OSError as exc:
                raise StoreError(f"cannot write the trace {getattr(self.stream, 'name', '')}: "
                                 f"{exc.strerror or exc}") from exc

    def _line(self, row: dict, seed: int) -> str:
        b = self.binding
        name = b.target_names or str
        args = self.scenario.planned_rules().args        # planned by now (an LLM plans before the runs)
        op = int(b.ops[row["action"]])
        obs = None
        arg = args.name(row["arg"]) if row["arg"] >= 0 else None
        if b.renderer is not None:
            obs = b.renderer({"op": op, "target": row["target"], "arg": row["arg"], "arg_name": arg,
                              "outcome": {"fail": 0, "ok": 1, "error": 2}[row["outcome"]]}, seed)
        row.update(seed=seed, action=self.actions[row["action"]],
                   target=name(row["target"]) if row["target"] >= 0 else None,
                   arg=arg, observation=obs)
        return json.dumps(row) + "\n"


def _open_trace(path: str | Path) -> TextIO:
    """The trace file, its folder made as ``-o`` makes a report's; one StoreError line if it cannot be."""
    folder = Path(path).parent
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"cannot write the trace {path}: {folder} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot write the trace {path}: {exc.strerror or exc}") from None


def _native_batches(scenario: Scenario, seeds: np.ndarray, progress: ProgressFn | None,
                    trace: EventSink | None, chunk_seconds: float, recorder=None):
    R, A = seeds.shape[0], len(scenario.actions)
    record = trace is not None or recorder is not None
    k = make_kernel(scenario.planned_rules(), scenario.binding, scenario.config,
                    record_events=record, event_capacity=1 << 16)
    out: dict[str, np.ndarray] = dict(
        success=np.zeros(R, np.uint8), verdict=np.zeros(R, np.int8), ticks=np.zeros(R, np.int64),
        actions=np.zeros(R, np.int64), failed=np.zeros(R, np.int64), wall=np.zeros(R),
        by_action=np.zeros((R, A), np.int64), done=np.zeros(R, np.uint8))
    # with a recorder, runs go in blocks of recorder.block: the learned tables
    # are updated between blocks (counted in runs, so results are reproducible)
    block = recorder.block if recorder is not None else R
    r, resume, stopped = 0, False, False
    start = 0
    pending: list[dict] = []
    if recorder is not None:
        recorder.install(k)
    t0 = time.perf_counter()
    try:
        while r < R:
            end = min(R, start + block)
            r, status = k.run_batch(seeds[:end], r, resume, out["success"], out["verdict"], out["ticks"],
                                    out["actions"], out["failed"], out["wall"], out["by_action"],
                                    chunk_seconds, out["done"])
            if record and k.n_events:
                ev = k.take_events()
                if trace is not None:
                    trace.write(EventBatch.from_columns(ev))
                if recorder is not None:
                    pending.append(ev)
            resume = status == _kernel.ST_NEED_ROOM
            if resume:
                k.make_room()
            elif recorder is not None and r == end:
                _observe_block(recorder, pending, out["success"][start:end], start)
                pending = []
                start = end
                if r < R:
                    recorder.install(k)
            if progress:
                progress(r, int(out["success"][:r].sum()))
    except KeyboardInterrupt:
        stopped = True
    if recorder is not None and pending and r > start:
        _observe_block(recorder, pending, out["success"][start:r], start)
    elapsed = time.perf_counter() - t0
    return {key: v[:r] for key, v in out.items()}, elapsed, stopped


def _observe_block(recorder, pending: list[dict], success: np.ndarray, offset: int) -> None:
    if not pending:
        pending = [{f: np.zeros(0, np.int64) for f in ("run", "tick", "worker", "action", "target", "arg",
                                                        "outcome", "source")}]
    ev = {f: np.concatenate([p[f] for p in pending]) for f in pending[0]}
    keep = ev["run"] < offset + success.shape[0]
    recorder.observe({f: v[keep] for f, v in ev.items()}, success, offset)


class RunHooks:
    """Per-run set-up around a Python-driven run (the LLM manager uses it)."""

    def attach(self, swarm) -> None:
        """Called before each run with the swarm reset to that run's seed."""

    def finish(self, swarm) -> dict:
        """Called after each run; returns extra per-run values (llm_calls, llm_errors)."""
        return {}


def _python_runs(scenario: Scenario, seeds: np.ndarray, progress: ProgressFn | None,
                 trace: EventSink | None, hooks: RunHooks | None = None, recorder=None):
    R, A = seeds.shape[0], len(scenario.actions)
    rows, extras = [], []
    stopped = False
    hooks = hooks or RunHooks()
    t0 = time.perf_counter()
    try:
        for i in range(R):
            swarm = scenario.swarm(int(seeds[i]), record_events=trace is not None or recorder is not None)
            if recorder is not None:
                recorder.install(swarm.kernel)
            hooks.attach(swarm)
            t = time.perf_counter()
            res = swarm.run()
            extras.append(hooks.finish(swarm))
            if trace is not None or recorder is not None:
                ev = swarm.events()
                batch = EventBatch(**{**{f: getattr(ev, f) for f in EventBatch.__dataclass_fields__},
                                      "run": np.full(len(ev), i, np.int32)})
                if trace is not None:
                    trace.write(batch)
                if recorder is not None:
                    recorder.observe({f: getattr(batch, f) for f in EventBatch.__dataclass_fields__},
                                     np.array([res.success]), i)
                    recorder.add_decisions(i, int(seeds[i]), extras[-1].pop("decisions", ()))
            rows.append((res.success, int(res.verdict), res.ticks, res.actions, res.failed_actions,
                         time.perf_counter() - t, swarm.kernel.action_stats()["visits"],
                         bool(swarm.kernel.task_done)))
            if progress:
                progress(i + 1, sum(r[0] for r in rows))
    except KeyboardInterrupt:
        stopped = True
    elapsed = time.perf_counter() - t0
    n = len(rows)
    out = dict(success=np.array([r[0] for r in rows], np.uint8), verdict=np.array([r[1] for r in rows], np.int8),
               ticks=np.array([r[2] for r in rows], np.int64), actions=np.array([r[3] for r in rows], np.int64),
               failed=np.array([r[4] for r in rows], np.int64), wall=np.array([r[5] for r in rows]),
               by_action=np.array([r[6] for r in rows], np.int64).reshape(n, A),
               done=np.array([r[7] for r in rows], np.uint8))
    for key in PER_RUN_LLM:
        if extras and key in extras[0]:
            out[key] = np.array([e[key] for e in extras[:n]], np.int64)
    return out, elapsed, stopped


class LlmRunHooks(RunHooks):
    """Attaches a fresh LLM manager to every run; counts its calls per run."""

    def __init__(self, scenario: Scenario, runner, record: bool = False) -> None:
        from swarm_engine.llm.manager import ManagerPolicy
        from swarm_engine.llm.protocol import Sampling

        spec = scenario.spec
        m = spec.manager
        self.scenario = scenario
        self.runner = runner
        self.record = record
        self.policy = ManagerPolicy(process_every_tick=m.process_every_tick,
                                    process_interval_ticks=m.process_interval_ticks,
                                    immediate_on_escalation=m.immediate_on_escalation,
                                    confidence_threshold=m.confidence_threshold,
                                    idle_wait_s=spec.llm.timeout)
        self.sampling = Sampling(spec.llm.temperature, spec.llm.max_tokens, spec.llm.seed)
        ctx = spec.task.context
        self.context = " ".join(x for x in (spec.task.expected and f"Expected: {spec.task.expected}.",
                                            ctx.notes, ctx.target_path and f"Path: {ctx.target_path}.") if x)
        self.actions = [(a.name, a.description) for a in spec.actions.actions]
        self.runs = 0                  # runs attached so far (the index of the next one)

    def attach(self, swarm) -> None:
        from swarm_engine.llm.manager import LlmManager, attach

        self.runner.stats.run = self.runs
        self.runs += 1
        self.before = self.runner.stats.summary()
        self.manager = LlmManager(self.runner, goal=self.scenario.spec.task.goal, context=self.context,
                                  actions=self.actions, policy=self.policy, sampling=self.sampling,
                                  record=self.record)
        attach(self.manager, swarm)

    def finish(self, swarm) -> dict:
        # answers still in flight belong to this run: wait for them and drop them
        self.runner.drain(self.scenario.spec.llm.timeout)
        after = self.runner.stats.summary()
        out = {"llm_calls": after["invocations"] - self.before["invocations"],
               "llm_errors": after["errors"] - self.before["errors"],
               "llm_decisions": self.manager.applied,
               "llm_fallbacks": after["fallbacks"] - self.before["fallbacks"],
               **{f"llm_{k}": after[k] - self.before[k] for k in ("unsure", "taken", "failed", "single")}}
        if self.record:
            out["decisions"] = list(getattr(self.manager, "records", ()))
        return out


def llm_runner(scenario: Scenario, stats=None):
    """The invoker runner of an LLM-managed scenario, its backend checked
    (preflight); LlmUnavailableError (one line) when it does not answer."""
    from swarm_engine.llm.factory import make_invoker
    from swarm_engine.llm.health import LlmUnavailableError, preflight
    from swarm_engine.llm.runner import InvokerRunner

    llm = scenario.spec.llm
    try:
        invoker = make_invoker(llm)
    except LlmError as exc:           # llama-cpp: the model did not load
        raise LlmUnavailableError(f"{llm.provider}: {exc}") from None
    runner = InvokerRunner(invoker, stats)
    try:
        preflight(runner, llm.provider, timeout=max(60.0, llm.timeout) + 15.0)   # > the 60 s a loading server is given
    except BaseException:
        runner.close()
        raise
    return runner


def unavailable_summary(reason: str) -> dict:
    """``EvalResult.llm`` of an eval that fell back to the bandit because the
    LLM did not answer: every counter 0, ``available`` false and why."""
    from swarm_engine.llm.stats import LlmStats

    return {"available": False, "unavailable_reason": reason, **LlmStats().summary()}


def _llm_runs(scenario: Scenario, seeds: np.ndarray, progress: ProgressFn | None,
              trace: TraceWriter | None, recorder=None, runner=None, owned: bool = True):
    try:
        scenario.plan(runner)
        hooks = LlmRunHooks(scenario, runner, record=recorder is not None)
        runner.stats.start_clock()
        out, elapsed, stopped = _python_runs(scenario, seeds, progress, trace, hooks, recorder)
        runner.stats.stop_clock()
        return out, elapsed, stopped, {"available": True, **runner.stats.summary()}
    finally:
        if owned:
            runner.close()


def _judge(scenario: Scenario, out: dict) -> tuple[np.ndarray, list[str], dict, dict]:
    metrics = run_metrics(out["done"], out["ticks"], out["actions"], out["failed"], out["by_action"],
                          scenario.actions, out.get("llm_errors"), out.get("llm_calls"))
    j = judge(scenario.spec, out["verdict"], metrics)
    return j.success, j.reason, j.conditions, j.milestones


def run_eval(scenario: Scenario, runs: int, seed: int = 42, *, progress: ProgressFn | None = None,
             trace: str | Path | None = None, chunk_seconds: float = 0.2, llm: bool = True,
             recorder=None, llm_fallback: bool = False, llm_stats=None,
             warn: Callable[[str], None] | None = None, jobs: int | None = 1,
             held_runner: InvokerRunner | None = None) -> EvalResult:
    """Run ``runs`` seeded runs of ``scenario``; Ctrl-C keeps the finished runs.

    ``jobs`` runs them on that many threads (native environments) or
    processes (Python ones); 0 or None: every core this process may use. The
    result is the same, run for run, as with ``jobs=1`` (only the per-run
    ``wall`` seconds differ); ``result.jobs`` says how it ran and, for an
    eval that stays on one core (LLM-managed, paced, see
    :mod:`swarm_engine.eval.jobs`), why.

    ``llm=False`` runs an LLM-managed scenario with its bandit alone. Before
    the first run of an LLM-managed scenario its backend is checked
    (:func:`swarm_engine.llm.health.preflight`): when it does not answer,
    :class:`~swarm_engine.llm.health.LlmUnavailableError` (one line naming the
    endpoint and why), or with ``llm_fallback=True`` a warning (``warn``, else
    :func:`warnings.warn`) and the runs go to the bandit alone, with
    ``result.llm["available"]`` false. ``llm_stats`` (an
    :class:`~swarm_engine.llm.stats.LlmStats`) is the accumulator the runner
    fills, for callers that show it live (progress bars). A
    ``recorder`` (:class:`swarm_engine.learn.session.SessionRecorder`) receives
    every run's events and LLM decisions and may update the learned tables
    between blocks of runs (``swarm eval --learning``).

    ``held_runner`` is a runner already built (:func:`llm_runner`, its preflight
    passed) that an LLM-managed eval uses instead of building one: a model
    held across evals (a cluster node's, :mod:`swarm_engine.cluster.model_host`)
    loads once. The caller owns it (it is not closed here); its ``stats`` are
    set to ``llm_stats`` (or a fresh accumulator), so ``result.llm`` counts
    this eval's calls alone. Without ``llm`` it is not used.
    """
    if runs < 1:
        raise ConfigError(f"runs must be at least 1, got {runs}")
    if not 0 <= seed or seed + runs > 2 ** 64:
        raise ConfigError(f"seeds must lie in [0, 2^64), got {runs} runs from seed {seed} "
                          f"(seeds {seed}..{seed + runs - 1})")
    seeds = (np.uint64(seed) + np.arange(runs, dtype=np.uint64)).astype(np.uint64)
    n_jobs = resolve_jobs(jobs)
    llm_summary: dict = {}
    runner = None
    held = scenario.llm_managed and llm and held_runner is not None
    if held and held_runner is not None:      # (the second test is for the type checker)
        from swarm_engine.llm.stats import LlmStats

        runner = held_runner
        held_runner.stats = llm_stats if llm_stats is not None else LlmStats()
    elif scenario.llm_managed and llm:
        from swarm_engine.llm.health import LlmUnavailableError

        try:
            runner = llm_runner(scenario, llm_stats)
        except LlmUnavailableError as exc:
            if not llm_fallback:
                raise
            if scenario.rules is None:
                raise ConfigError(f"{exc}; cannot fall back to the bandit: the scenario's dependency graph "
                                  f"is planned by the LLM") from None
            message = f"{exc}; falling back to the bandit alone (--llm-fallback)"
            if warn is not None:
                warn(message)
            else:
                import warnings

                warnings.warn(message, RuntimeWarning, stacklevel=2)
            llm_summary = unavailable_summary(str(exc))
    how = plan(scenario, n_jobs, runs, llm=runner is not None, recorder=recorder is not None)
    stream = _open_trace(trace) if trace else None
    try:
        tw = TraceWriter(scenario, seeds, stream) if stream else None
        paced = scenario.config.tick_duration_ms > 0
        if runner is not None:
            out, elapsed, stopped, llm_summary = _llm_runs(scenario, seeds, progress, tw, recorder, runner,
                                                           owned=not held)
        else:
            out, elapsed, stopped, how = _bandit_runs(scenario, seeds, how, progress, tw, chunk_seconds,
                                                      recorder, paced)
    finally:
        if stream:
            stream.close()
        if runner is not None and not held:
            runner.close()
    n = out["ticks"].shape[0]
    success, reason, conds, miles = _judge(scenario, out)
    return EvalResult(scenario=scenario, base_seed=seed, requested=runs, seeds=seeds[:n], success=success,
                      verdict=out["verdict"], reason=reason, done=out["done"].astype(bool), ticks=out["ticks"],
                      actions=out["actions"], failed=out["failed"], wall=out["wall"],
                      by_action=out["by_action"], conditions=conds, milestones=miles,
                      engine_seconds=elapsed, stopped=stopped, llm=llm_summary,
                      per_run_llm={k: out[k] for k in PER_RUN_LLM if k in out}, jobs=how.to_dict())


def _bandit_runs(scenario: Scenario, seeds: np.ndarray, how: JobPlan, progress: ProgressFn | None,
                 trace: EventSink | None, chunk_seconds: float, recorder, paced: bool):
    """The runs without an LLM, on the cores ``how`` chose; and how they ran."""
    if how.mode == "threads":
        return (*native_threads(scenario, seeds, how.jobs, progress, trace, chunk_seconds, recorder,
                                observe=_observe_block), how)
    if how.mode == "processes":
        out, elapsed, stopped, why = python_processes(scenario, seeds, how.jobs, progress, trace, chunk_seconds,
                                                      _python_runs)
        return out, elapsed, stopped, how if why is None else JobPlan(how.requested, 1, "serial", why)
    if scenario.binding.native and not paced:
        return (*_native_batches(scenario, seeds, progress, trace, chunk_seconds, recorder), how)
    return (*_python_runs(scenario, seeds, progress, trace, recorder=recorder), how)


