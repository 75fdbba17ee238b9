"""The ``swarm`` command: one app factory, command groups mounted per module.

``main()`` turns a SwarmError into one red line and exit code 1; set
SWARM_DEBUG=1 to see the traceback instead. A usage error (an unknown
option, a flag out of its range) is one line too, with exit code 2.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from swarm_engine._version import __version__
from swarm_engine.cli.usage import usage_errors, usage_line
from swarm_engine.errors import SwarmError, one_line

__all__ = ["app_factory", "main"]

err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"swarm-engine {__version__}")
        raise typer.Exit()


def _gui(value: bool) -> None:
    """``swarm --gui``: the original's spelling of ``swarm gui`` (defaults: a free port, a browser)."""
    if value:
        from swarm_engine.cli.gui_cmd import run_gui

        run_gui()
        raise typer.Exit()


def app_factory() -> typer.Typer:
    from swarm_engine.cli import eval_cmd, gui_cmd, learn_cmd, llama_cmd, run_cmd, setup_cmds

    app = typer.Typer(name="swarm", help="Run swarms of AI agents: evaluate scenarios fast.",
                      no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
              gui: bool = typer.Option(False, "--gui", callback=_gui, is_eager=True,
                                       help="Serve the web dashboard (as swarm gui) and exit on Ctrl-C.")) -> None:
        """swarm-engine command line."""

    eval_cmd.register(app)
    run_cmd.register(app)
    setup_cmds.register(app)
    llama_cmd.register(app)
    learn_cmd.register(app)
    gui_cmd.register(app)
    return app


def main(argv: list[str] | None = None) -> int:
    app = app_factory()
    try:
        # not standalone: click's usage errors come here, to be printed as one line
        code = app(args=argv, prog_name="swarm", standalone_mode=False)
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except SwarmError as exc:
        if os.environ.get("SWARM_DEBUG") == "1":
            raise
        err_console.print(f"[bold red]error:[/] {escape(one_line(str(exc)))}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except usage_errors() as exc:
        exit_code = int(getattr(exc, "exit_code", 2))
        show = getattr(exc, "show", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and callable(show):   # `swarm` or a group alone: its help
            show()
            return exit_code
        err_console.print(f"[bold red]error:[/] {escape(one_line(usage_line(exc)))}", highlight=False,
                          soft_wrap=True)
        return exit_code
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
