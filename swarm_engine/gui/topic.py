"""A thread-safe stream of events from a worker thread to any number of readers.

The eval or run thread calls :meth:`Topic.publish` (a lock and an append:
this is all the dashboard adds to a watched eval's thread); readers (the
server-sent-event streams) ask :meth:`Topic.since` for what they have not
seen, at their own pace. Only the last ``keep`` events are kept, and the
latest event of each kind always is, so a reader that joins late or falls
behind still gets the current state.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["Topic"]


class Topic:
    def __init__(self, keep: int = 512) -> None:
        self._lock = threading.Lock()
        self._events: deque[tuple[int, dict[str, Any]]] = deque(maxlen=keep)
        self._latest: dict[str, tuple[int, dict[str, Any]]] = {}
        self._seq = 0
        self.closed = False

    def publish(self, event: dict[str, Any]) -> None:
        """Add ``event`` (a JSON-able dict with a ``type``)."""
        with self._lock:
            self._seq += 1
            item = (self._seq, event)
            self._events.append(item)
            self._latest[str(event.get("type"))] = item

    def close(self) -> None:
        """No more events will come: readers end once they have read the rest."""
        with self._lock:
            self.closed = True

    @property
    def seq(self) -> int:
        return self._seq

    def since(self, seq: int) -> tuple[int, list[dict[str, Any]], bool]:
        """(last seq, events after ``seq`` in order, closed). A reader that fell
        out of the window gets the latest event of each kind instead."""
        with self._lock:
            first = self._events[0][0] if self._events else self._seq + 1
            if seq + 1 >= first:
                items = [e for s, e in self._events if s > seq]
            else:
                items = [e for s, e in sorted(self._latest.values(), key=lambda x: x[0]) if s > seq]
            return self._seq, items, self.closed

    def latest(self, kind: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._latest.get(kind)
            return item[1] if item else None
