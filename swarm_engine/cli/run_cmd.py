"""``swarm run``: one run of a scenario, live, optionally with another task."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import typer
from rich.console import Console

from swarm_engine.cli import options
from swarm_engine.cli.eval_cmd import SnapshotHook, llm_lines, warn
from swarm_engine.eval.loader import load_scenario
from swarm_engine.learn.eval_session import LearningSession
from swarm_engine.settings import load_settings

__all__ = ["register"]

console = Console()


def _say(line: str) -> None:
    console.print(line, highlight=False, markup=False, soft_wrap=True)


def run_command(
    scenario: Path = typer.Argument(..., help="Scenario file."),
    task: str | None = typer.Option(None, "--task", help="Replace the scenario's task goal."),
    seed: int | None = options.SEED,
    variant: str | None = options.VARIANT,
    quiet: bool = options.QUIET,
    provider: str | None = options.PROVIDER,
    model: str | None = options.MODEL,
    endpoint: str | None = options.ENDPOINT,
    learning: bool | None = options.LEARNING,
    learning_key_: str | None = options.LEARNING_KEY,
    no_learned_model: bool = options.NO_LEARNED_MODEL,
    llm_fallback: bool | None = options.LLM_FALLBACK,
    memory: str | None = options.MEMORY_LIMIT,
) -> None:
    """Run the scenario once and show every tick as it happens.

    An LLM-managed scenario checks its backend first; one that does not answer
    is an error (exit 1) unless --llm-fallback is given."""
    settings = load_settings()
    fallback = options.resolve_llm_fallback(llm_fallback, settings)
    seed = options.resolve_seed(seed, settings)
    options.check_seeds(seed, 1)
    sc = load_scenario(scenario, variant, options.scenario_overrides(provider, model, endpoint, task=task),
                       memory=memory)
    session = LearningSession.open(sc, learning=options.resolve_learning(learning, settings), key=learning_key_,
                                   use_model=not no_learned_model, say=_say)
    sc = session.scenario
    recorder = session.recorder
    console.print(f"[bold]{sc.name}[/] seed {seed}", highlight=False)
    console.print(f"task: {sc.spec.task.goal}", highlight=False, markup=False)
    runner = None
    if sc.llm_managed:
        from swarm_engine.eval.runner import LlmRunHooks, llm_runner
        from swarm_engine.llm.health import LlmUnavailableError

        try:
            runner = llm_runner(sc)
        except LlmUnavailableError as exc:
            if not fallback or sc.rules is None:
                raise
            warn(f"{exc}; falling back to the bandit alone (--llm-fallback)")
    try:
        if runner is not None:
            sc.plan(runner)
        swarm = sc.swarm(seed, record_events=recorder is not None)
        hooks = None
        if recorder is not None:
            recorder.install(swarm.kernel)
        if runner is not None:
            hooks = LlmRunHooks(sc, runner, record=recorder is not None)
            hooks.attach(swarm)
            runner.stats.start_clock()
        if not quiet:
            swarm.add_hook(SnapshotHook(sc, console))
        res = swarm.run()
        if recorder is not None:
            ev = swarm.events()
            recorder.observe({f: getattr(ev, f) for f in ev.__dataclass_fields__}, np.array([res.success]), 0)
            if hooks is not None:
                recorder.add_decisions(0, seed, hooks.finish(swarm).get("decisions", ()))
            session.close(SimpleNamespace(success=np.array([res.success]), runs=1, requested=1), seed, say=_say)
    finally:
        if runner is not None:
            runner.stats.stop_clock()
            line, warning = llm_lines(runner.stats.summary())
            console.print(line, highlight=False, markup=False, soft_wrap=True)
            if warning:
                console.print(f"warning: {warning}", style="yellow", highlight=False, markup=False,
                              soft_wrap=True)
            runner.close()
    style = "green" if res.success else "red"
    console.print(f"[{style}]{res.verdict.reason}[/] after {res.ticks} ticks, {res.actions} actions "
                  f"({res.failed_actions} failed)", highlight=False)
    if not res.success:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
