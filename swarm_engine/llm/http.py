"""Shared HTTP plumbing for the server backends: POST JSON with bounded retries.

Transient failures (timeouts, refused or dropped connections, HTTP 5xx
except 501/505, 408, 425, 429) are retried with exponential backoff
``min(max_backoff, backoff * 2**k)`` and "equal jitter" (half fixed, half
drawn from the caller's ``random.Random``, so runs stay reproducible and
workers that failed together do not retry in lockstep); a ``Retry-After``
header, capped at ``max_backoff``, wins over the computed delay. After the
budget the error is :class:`LlmTransientError`. Everything else (other 4xx, a
body that is not a JSON object, a malformed URL) is :class:`LlmPermanentError`
at once. Messages are one line naming the method, URL and status. httpx
exceptions are mapped here, at the boundary, with ``raise ... from``.
"""

from __future__ import annotations

import abc
import asyncio
import json
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx

from swarm_engine.errors import ConfigError, LlmError, LlmPermanentError, LlmTransientError
from swarm_engine.llm.health import Breaker, describe_failure, probe
from swarm_engine.llm.protocol import ERROR_PARSE, ERROR_PERMANENT, ERROR_TRANSIENT, Decision, DecisionRequest
from swarm_engine.llm.repair import parse_decision

__all__ = ["post_json", "get_json", "backoff_delay", "is_transient_status", "server_message", "is_loopback",
           "HttpInvoker", "int_field"]

_TRANSIENT_STATUS = frozenset({408, 425, 429})
_PERMANENT_5XX = frozenset({501, 505})
_SNIPPET = 200


def is_transient_status(status: int) -> bool:
    """True for statuses worth retrying: 408, 425, 429 and 5xx but 501/505."""
    return status in _TRANSIENT_STATUS or (status >= 500 and status not in _PERMANENT_5XX)


def backoff_delay(attempt: int, *, backoff: float, max_backoff: float, rng: random.Random | None) -> float:
    """Seconds to wait before retry ``attempt`` (0 = the first retry): half of
    ``min(max_backoff, backoff * 2**attempt)`` fixed, half uniform jitter
    (none without ``rng``)."""
    ceiling = min(max_backoff, backoff * (2.0 ** min(attempt, 62)))
    if rng is None:
        return ceiling
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


def server_message(response: httpx.Response) -> str:
    """The server's own error text, one line, at most 200 characters:
    ``{"error": "..."}`` (Ollama, llama-server), ``{"error": {"message":
    ...}}`` (OpenAI, vLLM), ``{"detail": ...}`` or the raw body."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    text = None
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            text = err if isinstance(err, str) else json.dumps(err)
    if text is None:
        try:
            text = response.text
        except (UnicodeDecodeError, httpx.ResponseNotRead):
            text = ""
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[:_SNIPPET - 3] + "..."


def _status_line(method: str, url: str, response: httpx.Response) -> str:
    reason = response.reason_phrase or ""
    msg = f"{method} {url}: HTTP {response.status_code}{' ' + reason if reason else ''}"
    detail = server_message(response)
    return f"{msg}: {detail}" if detail else msg


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None            # an HTTP date: fall back to our own backoff
    return seconds if seconds >= 0 else None


_E = TypeVar("_E", bound=LlmError)


def _describe(exc: httpx.HTTPError, timeout: Any) -> str:
    if isinstance(exc, httpx.TimeoutException):
        phase = type(exc).__name__.removesuffix("Timeout").lower()      # read, connect, write, pool
        secs = getattr(timeout, phase, None) if isinstance(timeout, httpx.Timeout) else timeout
        kind = f"{phase} timeout" if phase else "timeout"
        return f"{kind} after {secs} s" if secs is not None else kind
    if isinstance(exc, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return f"{type(exc).__name__}: {describe_failure(exc)}"       # "connection refused", not "All ... failed"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _error(kind: type[_E], message: str, retries: int) -> _E:
    err = kind(message)
    err.retries = retries                 # the callers' Decision.retries
    return err


async def _request_json(client: httpx.AsyncClient, method: str, url: str, payload: Any, *, timeout: Any,
                        retries: int, backoff: float, max_backoff: float, rng: random.Random | None,
                        headers: Mapping[str, str] | None, allow_list: bool = False) -> tuple[Any, int]:
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    attempt = 0
    while True:
        response: httpx.Response | None = None
        cause: BaseException | None = None
        try:
            response = await client.request(method, url, json=payload, timeout=timeout, headers=headers)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            failure = f"{method} {url}: {_describe(exc, timeout)}"
            cause = exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise _error(LlmPermanentError, f"{method} {url}: {text}", attempt) from exc
        else:
            status = response.status_code
            if 200 <= status < 300:
                try:
                    body = response.json()
                except (ValueError, UnicodeDecodeError) as exc:
                    raise _error(LlmPermanentError, f"{method} {url}: HTTP {status} but the body is not JSON: "
                                                    f"{server_message(response)!r}", attempt) from exc
                if not isinstance(body, dict) and not (allow_list and isinstance(body, list)):
                    raise _error(LlmPermanentError, f"{method} {url}: HTTP {status} but the body is a JSON "
                                                    f"{type(body).__name__}, not an object", attempt)
                return body, attempt
            failure = _status_line(method, url, response)
            if not is_transient_status(status):
                raise _error(LlmPermanentError, failure, attempt)
        if attempt >= retries:
            tries = "1 attempt" if attempt == 0 else f"{attempt + 1} attempts"
            raise _error(LlmTransientError, f"{failure} (gave up after {tries})", attempt) from cause
        delay = backoff_delay(attempt, backoff=backoff, max_backoff=max_backoff, rng=rng)
        hint = _retry_after(response)
        if hint is not None:
            delay = min(hint, max_backoff)
        attempt += 1
        await asyncio.sleep(delay)


async def post_json(client: httpx.AsyncClient, url: str, payload: Any, *, timeout: float | httpx.Timeout,
                    retries: int = 3, backoff: float = 0.2, max_backoff: float = 2.0,
                    rng: random.Random | None = None, headers: Mapping[str, str] | None = None,
                    allow_list: bool = False) -> tuple[Any, int]:
    """POST ``payload`` as JSON and return the decoded JSON object.

    Parameters
    ----------
    client:
        The backend's shared client.
    url:
        Absolute URL.
    payload:
        Anything ``json`` can encode.
    timeout:
        Per attempt, seconds or an ``httpx.Timeout``.
    retries:
        Retries after the first attempt for transient failures (0 = one try).
    backoff, max_backoff:
        First delay and cap, seconds; see :func:`backoff_delay`.
    rng:
        Source of jitter (the backend's own seeded generator); None: no jitter.
    headers:
        Extra request headers (e.g. Authorization).
    allow_list:
        Also accept a JSON array body (llama-server /completion with a
        prompt array answers one); otherwise only an object is accepted.

    Returns
    -------
    (body, retries_used)
        ``body`` is a dict (or a list with ``allow_list``).

    Raises
    ------
    LlmTransientError
        Still failing after ``retries`` retries.
    LlmPermanentError
        A non-retryable status, a body that is not a JSON object, a bad URL.

    Both carry ``retries`` (int): the retries spent before giving up.
    """
    return await _request_json(client, "POST", url, payload, timeout=timeout, retries=retries, backoff=backoff,
                               max_backoff=max_backoff, rng=rng, headers=headers, allow_list=allow_list)


async def get_json(client: httpx.AsyncClient, url: str, *, timeout: float | httpx.Timeout, retries: int = 0,
                   backoff: float = 0.2, max_backoff: float = 2.0, rng: random.Random | None = None,
                   headers: Mapping[str, str] | None = None) -> tuple[dict[str, Any], int]:
    """GET ``url`` and return the decoded JSON object; as :func:`post_json`."""
    return await _request_json(client, "GET", url, None, timeout=timeout, retries=retries, backoff=backoff,
                               max_backoff=max_backoff, rng=rng, headers=headers)


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (no proxy should ever be used)."""
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, TypeError):
        return False
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


class HttpInvoker(abc.ABC):
    """What the HTTP backends share: one ``httpx.AsyncClient``, a semaphore
    bounding requests in flight, retry settings, a seeded jitter generator,
    and the decide loop that turns every failure into a :class:`Decision`.

    Subclasses set ``name`` and ``decide_path`` and implement
    :meth:`_decision_payload` and :meth:`_decision_answer`.

    Parameters
    ----------
    base_url:
        Server root, e.g. ``http://127.0.0.1:11434``; a trailing slash is dropped.
    concurrency:
        Requests in flight at most (>= 1); the connection pool is sized to it.
    timeout:
        Seconds per attempt (> 0).
    retries, backoff, max_backoff:
        See :func:`post_json`.
    seed:
        Seeds the jitter generator (reproducible retry timing).
    headers:
        Sent with every request.
    client:
        An existing client to share; it is not closed by :meth:`aclose`.
    trust_env:
        Let httpx read proxy settings from the environment; default: yes,
        except for loopback servers, which must never go through a proxy.
    """

    name = "http"
    decide_path = "/"

    def __init__(self, base_url: str, *, concurrency: int = 4, timeout: float = 60.0, retries: int = 3,
                 backoff: float = 0.2, max_backoff: float = 2.0, seed: int = 0,
                 headers: Mapping[str, str] | None = None, client: httpx.AsyncClient | None = None,
                 trust_env: bool | None = None) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{self.name}: base_url must start with http:// or https://, got {base_url!r}")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"{self.name}: concurrency must be an integer >= 1, got {concurrency!r}")
        if not timeout or timeout <= 0:
            raise ConfigError(f"{self.name}: timeout must be > 0 seconds, got {timeout!r}")
        if not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"{self.name}: retries must be an integer >= 0, got {retries!r}")
        if backoff < 0 or max_backoff < 0:
            raise ConfigError(f"{self.name}: backoff and max_backoff must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._rng = random.Random(seed)
        self._headers = dict(headers or {})
        self._sem = asyncio.Semaphore(concurrency)
        self._owns_client = client is None
        if client is None:
            client = httpx.AsyncClient(
                timeout=self.timeout,
                limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
                trust_env=not is_loopback(self.base_url) if trust_env is None else trust_env)
        self._client = client
        self._closed = False
        self._breaker = Breaker(f"{self.name} at {self.base_url}")

    health_path = "/"

    async def health(self) -> None:
        """GET ``health_path`` answers 200, once, without retries; else
        LlmUnavailableError naming the URL and why (refused, timed out, HTTP status)."""
        await probe(self._client, self.url(self.health_path), timeout=min(5.0, self.timeout),
                    headers=self._headers or None)

    def url(self, path: str) -> str:
        return self.base_url + path

    async def _post(self, path: str, payload: Any) -> tuple[dict[str, Any], int]:
        return await post_json(self._client, self.url(path), payload, timeout=self.timeout, retries=self.retries,
                               backoff=self.backoff, max_backoff=self.max_backoff, rng=self._rng,
                               headers=self._headers or None)

    async def _get(self, path: str) -> dict[str, Any]:
        body, _ = await get_json(self._client, self.url(path), timeout=self.timeout, retries=self.retries,
                                 backoff=self.backoff, max_backoff=self.max_backoff, rng=self._rng,
                                 headers=self._headers or None)
        return body

    # -- the decision path -------------------------------------------------

    @abc.abstractmethod
    def _decision_payload(self, request: DecisionRequest) -> dict[str, Any]:
        """The request body a backend sends for one decision."""

    @abc.abstractmethod
    def _decision_answer(self, body: dict[str, Any]) -> tuple[str, int, int, int]:
        """(content, prompt_tokens, completion_tokens, cached_tokens) from a
        response body; LlmPermanentError when the body has no answer."""

    async def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """One Decision per request, in order; at most ``concurrency`` calls in
        flight. Never raises for a failed call."""
        return list(await asyncio.gather(*(self._decide_one(r) for r in requests)))

    async def _decide_one(self, request: DecisionRequest) -> Decision:
        if self._closed:
            return Decision(request.worker, None, error=ERROR_PERMANENT, message=f"{self.name}: invoker is closed")
        if not request.choices:
            return Decision(request.worker, None, error=ERROR_PERMANENT,
                            message=f"{self.name}: request for worker {request.worker} has no choices")
        async with self._sem:
            start = time.perf_counter()
            try:
                self._breaker.check()
                body, retries = await self._post(self.decide_path, self._decision_payload(request))
                self._breaker.success()
                content, prompt_tokens, completion_tokens, cached = self._decision_answer(body)
            except LlmTransientError as exc:
                self._breaker.failure(exc)
                return Decision(request.worker, None, error=ERROR_TRANSIENT, message=str(exc),
                                retries=exc.retries, latency_ms=_ms(start))
            except LlmPermanentError as exc:
                return Decision(request.worker, None, error=ERROR_PERMANENT, message=str(exc),
                                retries=exc.retries, latency_ms=_ms(start))
            latency = _ms(start)
        index, repaired = parse_decision(content, request.choices)
        decision = Decision(request.worker, index, raw=content, repaired=repaired, latency_ms=latency,
                            retries=retries, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                            cached_tokens=cached)
        if index is None:
            decision.error = ERROR_PARSE
            snippet = " ".join(content.split())[:80]
            decision.message = (f"{self.name}: could not map the answer onto one of "
                                f"{len(request.choices)} choices: {snippet!r}")
        return decision

    async def aclose(self) -> None:
        """Close the client (when this invoker made it); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def int_field(mapping: Any, key: str) -> int:
    """A token count from a usage block: missing, null or malformed -> 0."""
    if not isinstance(mapping, dict):
        return 0
    value = mapping.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
