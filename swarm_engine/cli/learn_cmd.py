"""``swarm learn once|show|status|rollback|daemon|lora``: the learning system.

Each sub-command group lives in its own module and registers itself on
``learn_app``; this module mounts the group on the ``swarm`` app.
"""

from __future__ import annotations

import typer

__all__ = ["learn_app", "register"]

learn_app = typer.Typer(name="learn", help="Learn from past runs: statistics, offline model, daemon, LoRA.",
                        no_args_is_help=True, add_completion=False)


def register(app: typer.Typer) -> None:
    from swarm_engine.cli import learn_model_cmd

    learn_model_cmd.register(learn_app)
    for mod in ("learn_daemon_cmd", "learn_lora_cmd"):
        try:
            module = __import__(f"swarm_engine.cli.{mod}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"swarm_engine.cli.{mod}":
                raise
            continue
        module.register(learn_app)
    app.add_typer(learn_app, name="learn")
