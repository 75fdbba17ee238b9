"""The learning daemon's serving: a blue-green llama-server pair that follows
``lora/active.json``.

``swarm learn daemon --serve`` keeps one endpoint up with the active adapter;
when the pointer names another adapter, the pair brings up its standby with
it, moves traffic and drains the old server
(:class:`~swarm_engine.llm.bluegreen.BlueGreen`). A broken adapter never takes
the endpoint down: at start the base model is served instead, on a switch the
current server keeps serving; either way the failure is kept
(:attr:`AdapterServing.last_error`) and that pointer is not retried until it
changes. Its own module so the daemon's learning bookkeeping and the
serving's process juggling can be read (and tested) apart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from swarm_engine.errors import SwarmError

__all__ = ["AdapterServing", "Pointer", "read_pointer"]

# (version or None, adapter path)
Pointer = tuple[int | None, str]


def read_pointer(path: Path) -> tuple[Pointer | None, str | None]:
    """``(pointer, None)`` from ``lora/active.json``; ``(None, None)`` when there
    is none; ``(None, why)`` when it is unreadable or malformed."""
    try:
        data = msgspec.json.decode(path.read_bytes())
    except FileNotFoundError:
        return None, None
    except (OSError, msgspec.DecodeError) as exc:
        return None, f"{path}: unreadable ({exc})"
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        return None, f"{path}: expected {{version, path}}"
    from swarm_engine.learn.lora.active import pointer_path

    version = data.get("version")
    return ((version if isinstance(version, int) else None), str(pointer_path(path, data))), None


class AdapterServing:
    """A blue-green pair serving the adapter ``pointer`` names.

    Parameters
    ----------
    pointer:
        The ``lora/active.json`` to follow.
    make_pair:
        ``make_pair(on_event) -> BlueGreen`` (or anything with its ``start``,
        ``switch``, ``stop``, ``status``, ``version``, ``adapter`` and
        ``endpoint``).
    on_event:
        Called with one line at each step.
    """

    def __init__(self, pointer: Path, make_pair: Callable[[Callable[[str], None]], Any],
                 on_event: Callable[[str], None]) -> None:
        self.pointer = pointer
        self._make_pair = make_pair
        self._event = on_event
        self.pair: Any = None
        self._last_error: str | None = None
        self._failed: Pointer | None = None

    @property
    def last_error(self) -> str | None:
        """Why the last start or switch did not serve the pointer's adapter (None after a good switch)."""
        return self._last_error

    def _read(self) -> Pointer | None:
        pointer, why = read_pointer(self.pointer)
        if why is not None:
            self._last_error = why
        return pointer

    def start(self) -> None:
        """Start the pair with the pointer's adapter, or the base model when there
        is none or it cannot be served.

        Raises
        ------
        SwarmError
            The pair cannot serve even the base model.
        """
        self.pair = self._make_pair(self._event)
        pointer = self._read()
        version, adapter = pointer if pointer else (None, None)
        try:
            self.pair.start(adapter, version=version)
        except SwarmError as exc:
            if pointer is None:
                raise
            # a broken adapter must not keep the endpoint down: serve the base model
            self._last_error = str(exc)
            self._failed = pointer
            self._event(f"cannot serve adapter v{version}: {exc}; serving the base model")
            self.pair.start(None)
        self._event(f"serving at {self.pair.endpoint}")

    def due(self) -> Pointer | None:
        """The pointer when it names an adapter other than the served one (and
        not one that already failed); None otherwise."""
        if self.pair is None:
            return None
        pointer = self._read()
        if pointer is None or pointer == self._failed:
            return None
        version, adapter = pointer
        if (version, adapter) == (self.pair.version, self.pair.adapter):
            return None
        if self.pair.adapter is not None and version is None and \
                Path(adapter).resolve() == Path(self.pair.adapter).resolve():
            return None
        return pointer

    def switch(self, pointer: Pointer) -> bool:
        """Serve ``pointer``'s adapter; False (recorded in :attr:`last_error`) when
        the standby did not come up: the current server keeps serving."""
        version, adapter = pointer
        try:
            report = self.pair.switch(adapter, version=version)
        except SwarmError as exc:
            self._last_error = str(exc)
            self._failed = pointer
            self._event(f"adapter v{version} not served: {exc}")
            return False
        self._last_error = None
        self._event(f"now serving adapter v{version} on {report.to_color} "
                    f"(drained {report.from_color} in {report.drain_seconds:g} s)")
        return True

    def status(self) -> dict | None:
        """For daemon.json: the pair's status plus ``last_error``; a failed start
        without a pair shows as state "failed"; None when serving never started."""
        if self.pair is not None:
            out = dict(self.pair.status())
            out["last_error"] = self._last_error
            return out
        if self._last_error:
            return {"endpoint": None, "state": "failed", "last_error": self._last_error}
        return None

    def stop(self) -> None:
        """Stop the pair (a SwarmError on the way is the caller's to suppress)."""
        if self.pair is not None:
            self._event("stopping the servers")
            self.pair.stop()
