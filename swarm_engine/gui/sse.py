"""Server-sent events from a :class:`~swarm_engine.gui.topic.Topic`.

The stream polls the topic every ``interval`` seconds in the server's event
loop (the publishing thread never waits on a reader) and sends what came
since. Consecutive ``tick`` events are coalesced to the newest one, so a run
going faster than the page can draw costs one message per poll, not one per
tick. The stream ends with an ``end`` event once the topic is closed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from swarm_engine.gui.jsonsafe import dumps
from swarm_engine.gui.topic import Topic

__all__ = ["event_stream", "sse_response"]

KEEPALIVE_SECONDS = 15.0


def _coalesce(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in events:
        if out and e.get("type") in ("tick", "progress") and out[-1].get("type") == e.get("type"):
            out[-1] = e
        else:
            out.append(e)
    return out


def _frame(event: dict[str, Any]) -> str:
    return f"event: {event.get('type', 'message')}\ndata: {dumps(event)}\n\n"


async def event_stream(topic: Topic, interval: float = 0.1,
                       stopping: threading.Event | None = None) -> AsyncIterator[str]:
    """The topic's events as SSE frames; ends when the topic closes or ``stopping`` is
    set (the server shutting down: its streams end before uvicorn has to cancel them)."""
    seq = 0
    idle = 0.0
    yield "retry: 2000\n\n"
    while True:
        seq, events, closed = topic.since(seq)
        for e in _coalesce(events):
            yield _frame(e)
        if closed:
            seq, rest, _ = topic.since(seq)
            for e in _coalesce(rest):
                yield _frame(e)
            yield _frame({"type": "end"})
            return
        if stopping is not None and stopping.is_set():
            yield _frame({"type": "end", "reason": "the dashboard is stopping"})
            return
        if events:
            idle = 0.0
        else:
            idle += interval
            if idle >= KEEPALIVE_SECONDS:
                idle = 0.0
                yield ": keepalive\n\n"
        await asyncio.sleep(interval)


def sse_response(topic: Topic, stopping: threading.Event | None = None) -> StreamingResponse:
    return StreamingResponse(event_stream(topic, stopping=stopping), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
