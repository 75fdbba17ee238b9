"""Serve the dashboard: bind 127.0.0.1 (or ``--host``) on a free port unless
one is given, print the URL, open a browser where a desktop exists, stop on
Ctrl-C (uvicorn's own signal handling; live streams get one second to end).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable

import uvicorn

from swarm_engine.errors import ConfigError
from swarm_engine.gui.app import GuiState, create_app

__all__ = ["bind", "serve", "serve_in_background", "Background", "has_desktop"]


def bind(host: str, port: int, flag: str = "--port") -> socket.socket:
    """A listening socket on (host, port); port 0 takes a free one. One ConfigError line
    (naming ``flag``, the option that chose the port) when it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", path=flag) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def has_desktop() -> bool:
    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class _Server(uvicorn.Server):
    """uvicorn's server that, on Ctrl-C, first ends the dashboard's live streams (they
    return within a poll), so its graceful shutdown never has to cancel them."""

    def __init__(self, config: uvicorn.Config, state: GuiState) -> None:
        super().__init__(config)
        self.gui = state

    def handle_exit(self, sig, frame) -> None:
        self.gui.stopping.set()
        super().handle_exit(sig, frame)


def _listening(state: GuiState, host: str, port: int, flag: str, grace: int) -> tuple[_Server, socket.socket]:
    """The bound socket and the server of ``state`` on it (``grace``: seconds of graceful shutdown)."""
    sock = bind(host, port, flag)
    app = create_app(state, local_only=host in ("127.0.0.1", "localhost", "::1"))
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=grace, lifespan="off")
    return _Server(config, state), sock


def serve(state: GuiState, *, host: str = "127.0.0.1", port: int = 0, open_browser: bool = True,
          say: Callable[[str], None] = print) -> None:
    """Run the dashboard until Ctrl-C."""
    server, sock = _listening(state, host, port, "--port", grace=3)
    url = url_of(sock)
    say(f"swarm gui: {url}  (Ctrl-C to stop)")
    if open_browser and has_desktop():
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn shuts down on the first Ctrl-C, then raises the signal again for the
        # caller; here that is the end we asked for, not an interruption (exit 0)
        pass
    finally:
        state.shutdown()
        sock.close()
        say("swarm gui: stopped")


class Background:
    """The dashboard served from a daemon thread of a process that does something
    else (``swarm eval --gui``); uvicorn installs no signal handlers off the main
    thread, so Ctrl-C stays the command line's."""

    def __init__(self, server: _Server, thread: threading.Thread, sock: socket.socket, url: str) -> None:
        self.server, self.thread, self.sock, self.url = server, thread, sock, url

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self.server.gui.shutdown()          # the live streams end within a poll
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()


def serve_in_background(state: GuiState, *, host: str = "127.0.0.1", port: int = 0,
                        flag: str = "--port") -> Background:
    """Start serving ``state`` on a daemon thread; returns once the socket listens."""
    server, sock = _listening(state, host, port, flag, grace=2)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="swarm-gui-server", daemon=True)
    thread.start()
    return Background(server, thread, sock, url_of(sock))
