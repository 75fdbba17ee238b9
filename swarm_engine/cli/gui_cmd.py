"""``swarm gui`` (and ``swarm --gui``): the local web dashboard (swarm_engine.gui).

The dashboard needs the ``gui`` extra (Starlette, uvicorn); without it the
command is one line saying how to install it.
"""

from __future__ import annotations

from pathlib import Path

import typer

from swarm_engine.errors import ConfigError

__all__ = ["register", "gui_command", "run_gui"]


def run_gui(paths: list[Path] | None = None, *, host: str = "127.0.0.1", port: int = 0,
            no_browser: bool = False, reports: Path | None = None) -> None:
    try:
        from swarm_engine.gui.app import GuiState
        from swarm_engine.gui.server import serve
    except ImportError as exc:
        raise ConfigError(f"swarm gui needs the 'gui' extra: pip install 'swarm-engine[gui]' ({exc})") from None
    for p in paths or []:
        if not p.exists():
            raise ConfigError(f"{p}: no such scenario file or folder")
    state = GuiState.from_settings(list(paths or []), reports)
    serve(state, host=host, port=port, open_browser=not no_browser, say=lambda line: print(line, flush=True))


def gui_command(
    paths: list[Path] = typer.Argument(None, help="More scenario files or folders to list."),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port to listen on [0: a free one]."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (another than 127.0.0.1 "
                                                        "exposes the dashboard to the network)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser."),
    reports: Path | None = typer.Option(None, "--reports", help="Reports folder [config eval.reports_dir]."),
) -> None:
    """Serve the dashboard (scenarios, live evals and runs, reports, learning, servers) until Ctrl-C."""
    run_gui(list(paths or []), host=host, port=port, no_browser=no_browser, reports=reports)


def register(app: typer.Typer) -> None:
    app.command("gui")(gui_command)
