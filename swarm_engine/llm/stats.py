"""LLM call statistics for reports and -v: counts, latency percentiles, tokens."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from swarm_engine.llm.protocol import Decision

__all__ = ["LlmStats"]


@dataclass
class LlmStats:
    """Thread-safe accumulator (the invoker's event loop thread records,
    the engine thread reads)."""

    invocations: int = 0
    errors: int = 0
    retries: int = 0
    fallbacks: int = 0            # decisions replaced by the exploration selector
    repaired: int = 0
    low_confidence: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0          # wall time spent with calls in flight
    _latency_ms: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, decisions: list[Decision]) -> None:
        with self._lock:
            for d in decisions:
                self.invocations += 1
                self.errors += d.error is not None
                self.retries += d.retries
                self.repaired += d.repaired
                self.prompt_tokens += d.prompt_tokens
                self.completion_tokens += d.completion_tokens
                self.cached_tokens += d.cached_tokens
                self._latency_ms.append(d.latency_ms)

    def add_time(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds

    def summary(self) -> dict:
        with self._lock:
            lat = np.asarray(self._latency_ms, dtype=np.float64)
            return {
                "invocations": self.invocations, "errors": self.errors, "retries": self.retries,
                "fallbacks": self.fallbacks, "repaired": self.repaired, "low_confidence": self.low_confidence,
                "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else None,
                "latency_ms_p95": float(np.percentile(lat, 95)) if lat.size else None,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cached_prompt_tokens": self.cached_tokens,
                "cache_hit_rate": self.cached_tokens / self.prompt_tokens if self.prompt_tokens else None,
                "decisions_per_sec": self.invocations / self.seconds if self.seconds > 0 else None,
            }
