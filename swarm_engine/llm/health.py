"""Is the backend there? The preflight an LLM eval runs before its first run,
and the circuit breaker that makes calls to a dead server fail at once.

Each backend has an ``async health()`` that returns None when it answers and
raises :class:`LlmUnavailableError` (one line: which endpoint, why) when not:

==============  =====================================================
llama-server    GET /health is 200 (503 "loading model": wait, bounded)
ollama          GET /api/version, then the model is pulled
openai          GET /v1/models
llama-cpp       the model loaded when the invoker was made
==============  =====================================================

:func:`preflight` runs it on the invoker runner's loop and adds how to start
a server. The :class:`Breaker` opens when a call finds the connection refused
or closed; while open, calls fail without touching the network except one
probe every ``probe_every`` seconds, which closes it again when it gets
through.
"""

from __future__ import annotations

import asyncio
import errno
import time
from typing import Any

import httpx

from swarm_engine.errors import LlmError, LlmTransientError

__all__ = ["LlmUnavailableError", "probe", "describe_failure", "preflight", "Breaker", "is_connection_loss",
           "START_HINT"]

START_HINT = {"llama-server": "start one with `swarm llama start`",
              "openai": "start one with `swarm llama start` (or point --endpoint at a running server)",
              "ollama": "start it with `ollama serve`"}


class LlmUnavailableError(LlmTransientError):
    """The backend does not answer at all (refused, timed out, not healthy)."""


def describe_failure(exc: BaseException, timeout: float | None = None) -> str:
    """refused / timed out after N s / connection closed / the httpx text, one line."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g} s" if timeout else "timed out"
    if isinstance(exc, httpx.ConnectError):
        if _refused(exc):
            return "connection refused"
        return f"cannot connect: {' '.join(str(exc).split()) or type(exc).__name__}"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return "connection closed by the server"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _refused(exc: BaseException) -> bool:
    """ECONNREFUSED anywhere in the chain (httpx says "All connection attempts failed")."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower() \
                or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_connection_loss(exc: BaseException) -> bool:
    """The error (or what it was raised from) is a refused or dropped connection."""
    seen = 0
    while exc is not None and seen < 4:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                            httpx.ReadError, httpx.WriteError)):
            return True
        exc = exc.__cause__   # type: ignore[assignment]
        seen += 1
    return False


async def probe(client: httpx.AsyncClient, url: str, *, timeout: float = 5.0, ready: tuple[int, ...] = (200,),
                loading: tuple[int, ...] = (), wait: float = 0.0, headers: dict[str, str] | None = None,
                what: str = "") -> httpx.Response:
    """GET ``url`` once (a status in ``loading`` is polled again for at most
    ``wait`` seconds); the response, or LlmUnavailableError naming the URL."""
    deadline = time.monotonic() + wait
    label = f"{what} at " if what else ""
    while True:
        try:
            r = await client.get(url, timeout=timeout, headers=headers)
        except httpx.HTTPError as exc:
            raise LlmUnavailableError(f"{label}GET {url}: {describe_failure(exc, timeout)}") from exc
        if r.status_code in ready:
            return r
        if r.status_code in loading and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            continue
        reason = r.reason_phrase or ""
        extra = f" for {wait:g} s (still loading the model?)" if r.status_code in loading and wait else ""
        raise LlmUnavailableError(f"{label}GET {url}: HTTP {r.status_code}{' ' + reason if reason else ''}{extra}")


def preflight(runner: Any, provider: str, timeout: float = 60.0) -> None:
    """Check ``runner.invoker`` answers before the first run; an
    LlmUnavailableError with one line (endpoint, why, how to start one) if not."""
    health = getattr(runner.invoker, "health", None)
    if health is None:
        return
    try:
        runner.run(health(), timeout=timeout)
    except LlmUnavailableError as exc:
        hint = START_HINT.get(provider)
        raise LlmUnavailableError(f"{provider} is not answering: {exc}" + (f"; {hint}" if hint else "")) from None
    except LlmError:
        raise
    except Exception as exc:      # the future timed out or the loop failed: still one line
        raise LlmUnavailableError(f"{provider} health check failed: {type(exc).__name__}: {exc}") from None


class Breaker:
    """Fail fast once the server is known dead (refused or closed connections).

    ``check()`` raises LlmUnavailableError while open, except once every
    ``probe_every`` seconds, when it lets a call through as the probe;
    ``success()`` closes it, ``failure(exc)`` opens it on a connection loss.
    """

    def __init__(self, what: str, probe_every: float = 2.0) -> None:
        self.what = what
        self.probe_every = float(probe_every)
        self.opened_at: float | None = None
        self.reason = ""
        self._last_probe = 0.0

    @property
    def open(self) -> bool:
        return self.opened_at is not None

    @property
    def probe_due(self) -> bool:
        """Open, and the next ``check()`` would let its call through as the probe."""
        return self.opened_at is not None and time.monotonic() - self._last_probe >= self.probe_every

    def check(self) -> None:
        if self.opened_at is None:
            return
        now = time.monotonic()
        if now - self._last_probe >= self.probe_every:
            self._last_probe = now
            return                      # this call is the probe
        raise LlmUnavailableError(f"{self.what}: circuit open since a call failed "
                                  f"{now - self.opened_at:.1f} s ago ({self.reason}); "
                                  f"next probe within {self.probe_every:g} s")

    def success(self) -> None:
        self.opened_at = None

    def failure(self, exc: BaseException) -> None:
        if is_connection_loss(exc):
            if self.opened_at is None:
                self.opened_at = self._last_probe = time.monotonic()
            self.reason = " ".join(str(exc).split())[:160]
