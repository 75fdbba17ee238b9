"""``swarm init``, ``swarm config`` and ``swarm open``: the user's files."""

from __future__ import annotations

import os
import shutil
import subprocess
from enum import Enum

import typer
from rich.console import Console
from rich.table import Table

from swarm_engine import fsio
from swarm_engine.errors import StoreError
from swarm_engine.eval.builtin import builtin_scenarios_dir
from swarm_engine.settings import DEFAULT_CONFIG_TOML, config_path, engine_dir, load_settings, user_dir

__all__ = ["register"]

console = Console()


def _write_new(path, text: str) -> bool:
    """Create path with text unless it exists (atomic, never overwrites)."""
    if path.exists():
        return False
    fsio.write_text(path, text, exclusive=True)
    return True


def init_command() -> None:
    """Create ~/.swarm-engine/config.toml and ~/swarm-engine/scenarios (idempotent)."""
    try:
        for d in (engine_dir(), engine_dir() / "logs", engine_dir() / "learning",
                  user_dir() / "scenarios", user_dir() / "reports"):
            d.mkdir(parents=True, exist_ok=True)
        made = _write_new(config_path(), DEFAULT_CONFIG_TOML)
        copied = 0
        shipped = builtin_scenarios_dir()
        for src in sorted(shipped.rglob("*.toml")):          # subfolders kept: scenarios/llm/...
            dst = user_dir() / "scenarios" / src.relative_to(shipped)
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                copied += 1
    except OSError as exc:
        raise StoreError(f"swarm init: {exc}") from exc
    console.print(f"config: {config_path()} ({'created' if made else 'kept'})", highlight=False)
    console.print(f"scenarios: {user_dir() / 'scenarios'} ({copied} copied)", highlight=False)


def config_command() -> None:
    """Show the merged configuration and where each value comes from."""
    s = load_settings()
    t = Table(title="swarm config", title_justify="left")
    t.add_column("key")
    t.add_column("value")
    t.add_column("from")
    for section, table in s.values.items():
        for key, value in table.items():
            t.add_row(f"{section}.{key}", repr(value), s.sources[f"{section}.{key}"])
    console.print(t)


class Place(str, Enum):
    scenarios = "scenarios"
    reports = "reports"
    config = "config"


def open_command(place: Place = typer.Argument(..., help="scenarios, reports or config")) -> None:
    """Print the path of a place; open it too where a desktop exists."""
    path = {"scenarios": user_dir() / "scenarios", "reports": load_settings().reports_dir,
            "config": config_path()}[place.value]
    print(path)
    opener = shutil.which("xdg-open") or shutil.which("open")
    if opener and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and path.exists():
        subprocess.Popen([opener, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)
    app.command("config")(config_command)
    app.command("open")(open_command)
