"""``swarm learn once|show|status|rollback``: the offline model."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    pass
