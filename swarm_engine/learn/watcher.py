"""When the learning daemon looks again: on a file event, or every
``check_seconds``.

New sessions are noticed through ``watchfiles`` when it is installed (an
event as soon as a session is written under ``sessions/`` or
``lora/active.json`` changes) and by polling every ``check_seconds``
otherwise. Either way the daemon rescans everything on each wake, so a wake
is only a hint: nothing written during a learn is lost, and a session written
in the instant between a scan and the start of the watch is counted at the
next check. Its own module so the daemon reads as what it does on a wake,
not how the wake comes.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from swarm_engine.errors import ConfigError

__all__ = ["WATCHERS", "pick_watcher", "wakeups"]

WATCHERS = ("auto", "watchfiles", "polling")


def pick_watcher(choice: str) -> str:
    """``"watchfiles"`` or ``"polling"`` for a configured ``choice`` (one of :data:`WATCHERS`).

    Raises
    ------
    ConfigError
        ``"watchfiles"`` asked for and the package is not installed.
    """
    if choice == "polling":
        return "polling"
    if importlib.util.find_spec("watchfiles") is None:
        if choice == "watchfiles":
            raise ConfigError("watcher watchfiles: the watchfiles package is not installed "
                              "(pip install watchfiles)")
        return "polling"
    return "watchfiles"


class _AnyEvent:
    """``is_set()`` of two events: watchfiles polls it to end a watch early."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


def wakeups(kind: str, scenario_dir: Path, check_seconds: float, stop: threading.Event,
            wake: threading.Event) -> Iterator[None]:
    """Yield on a relevant file change or every ``check_seconds``, until ``stop`` is set.

    ``kind`` is what :func:`pick_watcher` returned. Setting ``wake`` (a learn
    request) ends the current wait at once: one more yield, then the watch
    resumes.
    """
    if kind == "polling":
        while not stop.is_set():
            wake.wait(check_seconds)
            wake.clear()
            if not stop.is_set():
                yield
        return
    import watchfiles

    root = scenario_dir.resolve()                # the watcher reports absolute paths
    sessions, pointer = str(root / "sessions") + os.sep, str(root / "lora" / "active.json")

    def relevant(change: Any, path: str) -> bool:
        # not daemon.json (the daemon's own writes would wake it), offline models or training files
        return path.startswith(sessions) or path == pointer

    either = _AnyEvent(stop, wake)
    while not stop.is_set():
        wake.clear()
        for _ in watchfiles.watch(root, watch_filter=relevant, stop_event=either,
                                  yield_on_timeout=True, rust_timeout=int(check_seconds * 1000), debounce=200,
                                  step=50, raise_interrupt=False):
            yield
            if wake.is_set():
                break
        if not stop.is_set():
            yield
