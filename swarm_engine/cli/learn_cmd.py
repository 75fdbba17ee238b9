"""``swarm learn once|show|status|rollback|daemon|lora``: the learning system.

Each sub-command group lives in its own module and registers itself on
``learn_app``; this module mounts the group on the ``swarm`` app. The command
modules import only typer and rich at the top; what a command needs (torch,
transformers, the learning daemon) is imported when that command runs, so
``swarm --help`` stays fast.
"""

from __future__ import annotations

import typer

from swarm_engine.cli import learn_daemon_cmd, learn_lora_cmd, learn_model_cmd

__all__ = ["learn_app", "register"]

learn_app = typer.Typer(name="learn", help="Learn from past runs: statistics, offline model, daemon, LoRA.",
                        no_args_is_help=True, add_completion=False)


def register(app: typer.Typer) -> None:
    for module in (learn_model_cmd, learn_daemon_cmd, learn_lora_cmd):
        module.register(learn_app)
    app.add_typer(learn_app, name="learn")
