"""LLM call statistics for reports and -v: counts, latency percentiles, tokens.

The decision counters partition what happened to each answer the manager
collected::

    applied    the model's choice was assigned: the worker acts on it
    unsure     answered below the confidence threshold -> the bandit decides
    taken      the chosen node was taken by another worker meanwhile -> bandit
    failed     the call failed or the answer could not be mapped -> bandit
    single     one candidate only: the model was not asked (not a call)

``fallbacks`` = unsure + taken + failed. ``decisions_per_sec`` is *applied*
decisions per second of wall time since :meth:`LlmStats.start_clock`;
``call_seconds`` is the time batches were in flight and ``wait_seconds`` the
wall time the engine sat blocked waiting on the model (idle ticks, draining a
finished run).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from swarm_engine.llm.protocol import Decision

__all__ = ["LlmStats", "failure_cause"]


def failure_cause(decision: Decision) -> str:
    """A short cause for a failed decision, from its kind and message:
    refused, closed, timeout, unavailable, http, parse, or the error kind."""
    if decision.error == "parse":
        return "parse"
    text = decision.message.lower()
    for needle, cause in (("circuit open", "unavailable"), ("refused", "refused"), ("connecterror", "refused"),
                          ("remoteprotocolerror", "closed"), ("readerror", "closed"), ("closed", "closed"),
                          ("timeout", "timeout"), ("timed out", "timeout"), ("http ", "http")):
        if needle in text:
            return cause
    return decision.error or "unknown"


@dataclass
class LlmStats:
    """Thread-safe accumulator (the invoker's event loop thread records,
    the engine thread reads)."""

    invocations: int = 0
    errors: int = 0
    retries: int = 0
    repaired: int = 0
    unsure: int = 0
    applied: int = 0
    taken: int = 0
    failed: int = 0
    single: int = 0
    in_flight: int = 0            # requests submitted and not yet collected (live, for progress bars)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0          # wall time spent with calls in flight (summed over batches)
    wait_seconds: float = 0.0     # wall time the engine thread blocked waiting on the model
    run: int = 0                  # index of the run in progress (set by the eval), for first_failure
    errors_by_kind: dict = field(default_factory=dict)      # Decision.error kind -> count (every call)
    failed_by_cause: dict = field(default_factory=dict)     # failure_cause -> count (collected decisions)
    first_failure: dict | None = None
    _latency_ms: list = field(default_factory=list)
    _t0: float | None = None
    _t1: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, decisions: list[Decision]) -> None:
        with self._lock:
            for d in decisions:
                self.invocations += 1
                self.errors += d.error is not None
                if d.error is not None:
                    self.errors_by_kind[d.error] = self.errors_by_kind.get(d.error, 0) + 1
                self.retries += d.retries
                self.repaired += d.repaired
                self.prompt_tokens += d.prompt_tokens
                self.completion_tokens += d.completion_tokens
                self.cached_tokens += d.cached_tokens
                self._latency_ms.append(d.latency_ms)

    def add_time(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds

    def add_wait(self, seconds: float) -> None:
        with self._lock:
            self.wait_seconds += seconds

    # -- what the manager's collect phase saw
    def count_unsure(self) -> None:
        with self._lock:
            self.unsure += 1

    def count_taken(self) -> None:
        with self._lock:
            self.taken += 1

    def count_failed(self, decision: Decision, *, seed: int | None = None, tick: int | None = None) -> None:
        cause = failure_cause(decision)
        with self._lock:
            self.failed += 1
            self.failed_by_cause[cause] = self.failed_by_cause.get(cause, 0) + 1
            if self.first_failure is None:
                self.first_failure = {
                    "run": self.run, "seed": seed, "tick": tick, "worker": int(decision.worker),
                    "kind": decision.error or "unknown", "cause": cause, "message": decision.message,
                    "after_seconds": round(time.perf_counter() - self._t0, 3) if self._t0 is not None else None}

    @property
    def fallbacks(self) -> int:
        """Decisions the exploration selector made instead of the model."""
        return self.unsure + self.taken + self.failed

    # -- the wall clock decisions/s is measured against
    def start_clock(self) -> None:
        with self._lock:
            if self._t0 is None:
                self._t0 = time.perf_counter()
            self._t1 = None

    def stop_clock(self) -> None:
        with self._lock:
            if self._t0 is not None:
                self._t1 = time.perf_counter()

    @property
    def wall_seconds(self) -> float:
        if self._t0 is None:
            return 0.0
        return (self._t1 if self._t1 is not None else time.perf_counter()) - self._t0

    def rate(self) -> float | None:
        """Applied decisions per second of wall time (None before the clock runs)."""
        wall = self.wall_seconds
        return self.applied / wall if wall > 0 else None

    def summary(self) -> dict:
        with self._lock:
            lat = np.asarray(self._latency_ms, dtype=np.float64)
            wall = self.wall_seconds
            return {
                "invocations": self.invocations, "errors": self.errors, "retries": self.retries,
                "errors_by_kind": dict(self.errors_by_kind),
                "applied": self.applied, "fallbacks": self.fallbacks,
                "unsure": self.unsure, "taken": self.taken, "failed": self.failed, "single": self.single,
                "failed_by_cause": dict(self.failed_by_cause), "first_failure": self.first_failure,
                "repaired": self.repaired, "low_confidence": self.unsure,      # the old name of unsure
                "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else None,
                "latency_ms_p95": float(np.percentile(lat, 95)) if lat.size else None,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cached_prompt_tokens": self.cached_tokens,
                "cache_hit_rate": self.cached_tokens / self.prompt_tokens if self.prompt_tokens else None,
                "wall_seconds": wall, "call_seconds": self.seconds, "wait_seconds": self.wait_seconds,
                "decisions_per_sec": self.applied / wall if wall > 0 else None,
                "calls_per_sec": self.invocations / self.seconds if self.seconds > 0 else None,
            }
