"""Processes and ports, as llama-server control needs them.

A pid file outlives its process, and a pid can be reused by an unrelated
process: :func:`pid_alive` checks the start time /proc records, not only
``kill(pid, 0)``. The ports: one nothing listens on (the kernel's pick), and
whether one is taken. Kept apart from :mod:`swarm_engine.llm.server` so the
server class reads as the start/status/stop life cycle it is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import time
from pathlib import Path

from swarm_engine.errors import ConfigError, LlmPermanentError

__all__ = ["proc_stat", "pid_alive", "free_port", "port_in_use", "kill_process"]


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) from /proc, or None when unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()    # the command name may contain spaces
    try:
        return rest[0], int(rest[19])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, starttime: int | None = None) -> bool:
    """The process exists, is not a zombie, and (when known) started when recorded."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    st = proc_stat(pid)
    if st is None:
        return not Path("/proc/self/stat").exists()     # no /proc: trust kill(0)
    state, started = st
    if state in ("Z", "X"):
        return False
    return starttime is None or started == starttime


def free_port(host: str = "127.0.0.1") -> int:
    """A port that nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        # same option as the server sets, so a TIME_WAIT leftover does not count
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(f"--host {host}: not an address of this machine") from exc
            raise
    return False


def kill_process(pid: int, starttime: int | None, timeout: float) -> None:
    """SIGTERM, up to ``timeout`` seconds, then SIGKILL, up to 5 s more.

    Raises
    ------
    LlmPermanentError
        The process survived SIGKILL.
    """
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not pid_alive(pid, starttime):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid, starttime):
                return
            time.sleep(0.05)
    if pid_alive(pid, starttime):
        raise LlmPermanentError(f"llama-server pid {pid} survived SIGKILL")
