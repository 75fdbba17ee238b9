"""Runs an async invoker beside the synchronous tick loop.

The orchestrator must never block a tick on I/O: ``submit`` hands a batch of
requests to an event loop on a background thread and returns at once;
``poll`` returns whatever batches have finished. ``wait_any`` lets an idle
tick (every worker waiting on the model) sleep until an answer arrives instead
of spinning through empty ticks.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait

from swarm_engine.errors import LlmError
from swarm_engine.llm.protocol import ERROR_PERMANENT, ERROR_TRANSIENT, Decision, DecisionRequest, Invoker
from swarm_engine.llm.stats import LlmStats

__all__ = ["InvokerRunner"]


class InvokerRunner:
    """Owns an event loop thread and one invoker; thread-safe submit/poll."""

    def __init__(self, invoker: Invoker, stats: LlmStats | None = None) -> None:
        self.invoker = invoker
        self.stats = stats or LlmStats()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="swarm-llm", daemon=True)
        self._thread.start()
        self._pending: list[tuple[Future, list[DecisionRequest], float]] = []
        self._closed = False

    # ------------------------------------------------------------------ calls
    def submit(self, requests: Sequence[DecisionRequest]) -> None:
        """Start deciding ``requests`` (one batch); returns immediately."""
        if not requests:
            return
        batch = list(requests)
        fut = asyncio.run_coroutine_threadsafe(self._decide(batch), self._loop)
        self._pending.append((fut, batch, time.perf_counter()))
        self.stats.in_flight += len(batch)

    async def _decide(self, batch: list[DecisionRequest]) -> list[Decision]:
        try:
            out = await self.invoker.decide(batch)
            if len(out) != len(batch):
                raise LlmError(f"{self.invoker.name} returned {len(out)} decisions for {len(batch)} requests")
            return out
        except LlmError as exc:       # a backend bug or dead backend must not kill the run
            kind = ERROR_PERMANENT if "Permanent" in type(exc).__name__ else ERROR_TRANSIENT
            return [Decision(worker=r.worker, choice=None, error=kind, message=str(exc)) for r in batch]

    def poll(self) -> list[tuple[DecisionRequest, Decision]]:
        """Finished (request, decision) pairs since the last poll."""
        ready: list[tuple[DecisionRequest, Decision]] = []
        still: list[tuple[Future, list[DecisionRequest], float]] = []
        for fut, batch, t0 in self._pending:
            if fut.done():
                try:
                    decisions = fut.result()
                except Exception as exc:   # reported as transient decisions
                    decisions = [Decision(worker=r.worker, choice=None, error=ERROR_TRANSIENT,
                                          message=f"{type(exc).__name__}: {exc}") for r in batch]
                self.stats.record(decisions)
                self.stats.add_time(time.perf_counter() - t0)
                ready.extend(zip(batch, decisions))
            else:
                still.append((fut, batch, t0))
        self._pending = still
        self.stats.in_flight = sum(len(b) for _, b, _ in still)
        return ready

    @property
    def in_flight(self) -> int:
        return sum(len(b) for _, b, _ in self._pending)

    def wait_any(self, timeout: float) -> None:
        """Sleep until some batch finishes or ``timeout`` seconds pass."""
        if self._pending:
            t0 = time.perf_counter()
            wait([f for f, _, _ in self._pending], timeout=timeout, return_when=FIRST_COMPLETED)
            self.stats.add_wait(time.perf_counter() - t0)

    def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) for what is in flight, record it and drop
        the answers: a finished run's questions must not reach the next run."""
        if self._pending:
            t0 = time.perf_counter()
            wait([f for f, _, _ in self._pending], timeout=timeout)
            self.stats.add_wait(time.perf_counter() - t0)
        self.poll()
        for fut, _, _ in self._pending:
            fut.cancel()
        self._pending.clear()
        self.stats.in_flight = 0

    def run(self, coro, timeout: float | None = None):
        """Run a coroutine on the invoker's loop and wait for it (set-up work
        such as planning a dependency graph, never inside a tick)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ------------------------------------------------------------------ close
    def close(self) -> None:
        """Cancel what is in flight, close the invoker, stop the loop; safe twice."""
        if self._closed:
            return
        self._closed = True
        for fut, _, _ in self._pending:
            fut.cancel()
        self._pending.clear()
        try:
            asyncio.run_coroutine_threadsafe(self.invoker.aclose(), self._loop).result(10)
        except Exception:  # closing a broken backend must not raise
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
