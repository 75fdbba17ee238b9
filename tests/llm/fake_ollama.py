"""A local fake LLM server: Ollama's /api/* and OpenAI's /v1/chat/completions.

No Ollama server can be installed on the machines this project is built on,
so the HTTP backends are tested against this fake. It follows the documented
APIs (Ollama: POST /api/chat, POST /api/generate, GET /api/tags; OpenAI: POST
/v1/chat/completions, GET /v1/models): it checks the request shape and
answers with the documented response fields. It is stricter than the real
servers on purpose: unknown top-level fields, unknown Ollama options and
streaming requests get HTTP 400, so a client bug shows up as a failed test.

Answers are deterministic. In the default ``behaviour="schema"`` the fake
"model" emits the ``pick``-th alternative of the request's JSON schema
(Ollama ``format``, OpenAI ``response_format.json_schema.schema``), or, with
no schema, copies the ``pick``-th numbered candidate line of the prompt.
Other behaviours: "garbage" (prose with no answer), "fenced" (the answer in a
```json fence), "single_quotes" (a Python-ish dict), "empty" and
"invalid_body" (HTTP 200 with a non-JSON body); ``answer`` (a callable) gives
any text. Failure injection: ``fail_first`` calls answer ``fail_status``
(with ``retry_after`` as a Retry-After header), ``delay`` seconds before each
answer, a model not in ``models`` gets the documented 404, and a wrong
``api_key`` 401.

Bound to 127.0.0.1 on an ephemeral port; ``http.server`` in a daemon thread
(no aiohttp here). Use as a context manager::

    with FakeServer(models=["smollm2:135m"]) as server:
        OllamaInvoker(server.url, "smollm2:135m")
"""

from __future__ import annotations

import abc
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeServer", "OLLAMA_OPTIONS", "instance_of"]

OLLAMA_OPTIONS = frozenset({
    "num_keep", "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p", "repeat_last_n", "temperature",
    "repeat_penalty", "presence_penalty", "frequency_penalty", "penalize_newline", "stop", "numa", "num_ctx",
    "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread"})
_CHAT_KEYS = frozenset({"model", "messages", "tools", "think", "format", "options", "stream", "keep_alive"})
_GENERATE_KEYS = frozenset({"model", "prompt", "suffix", "images", "think", "format", "options", "system",
                            "template", "stream", "raw", "keep_alive", "context"})
_OPENAI_KEYS = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stream",
    "response_format", "stop", "n", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "user",
    # server extensions vLLM, SGLang and llama-server accept
    "top_k", "min_p", "repetition_penalty", "id_slot", "cache_prompt", "n_probs", "grammar", "json_schema"})
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_CANDIDATE = re.compile(r"^\d+\. (\{.*\}) \(", re.M)
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class BadRequest(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def instance_of(schema: dict[str, Any], pick: int = 0) -> Any:
    """A value valid for the small JSON-schema subset the engine emits; ``pick``
    chooses among the top-level anyOf/oneOf/enum alternatives."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][pick % len(schema["enum"])]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return instance_of(schema[key][pick % len(schema[key])])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        return {k: instance_of(v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [instance_of(schema.get("items", {}))]
    if kind == "number":
        return schema.get("minimum", 0) + 0.5 if "maximum" in schema else 0.5
    return {"integer": 1, "boolean": True, "null": None}.get(kind, "x")


def _words(text: str) -> int:
    return len(text.split())


class FakeServer:
    """The fake; see the module docstring. Counters are read under ``lock``."""

    def __init__(self, *, models: Iterable[str] = ("smollm2:135m",), behaviour: str = "schema", pick: int = 0,
                 fail_first: int = 0, fail_status: int = 500, retry_after: float | None = None,
                 delay: float = 0.0, api_key: str | None = None,
                 answer: Callable[[str, dict[str, Any]], str] | None = None) -> None:
        self.models = list(models)
        self.behaviour = behaviour
        self.pick = pick
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.retry_after = retry_after
        self.delay = delay
        self.api_key = api_key
        self.answer = answer
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, Any]]] = []    # (path, body) of every model call
        self.headers: list[dict[str, str]] = []
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._seen_prefixes: set[str] = set()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> FakeServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="fake-llm-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- the fake model ----------------------------------------------------

    def _enter_call(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> int:
        with self.lock:
            self.calls += 1
            self.requests.append((path, body))
            self.headers.append(headers)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.calls

    def _leave_call(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def _text(self, path: str, body: dict[str, Any], schema: dict[str, Any] | None, prompt: str) -> str:
        if self.answer is not None:
            return self.answer(path, body)
        if self.behaviour == "garbage":
            return "I am not sure which action is best here, let me think about it."
        if self.behaviour == "empty":
            return ""
        if schema is not None:
            value = json.dumps(instance_of(schema, self.pick))
        else:
            found = _CANDIDATE.findall(prompt)
            value = found[self.pick % len(found)] if found else "{}"
        if self.behaviour == "fenced":
            return f"Here is my answer:\n```json\n{value}\n```\n"
        if self.behaviour == "single_quotes":
            obj = json.loads(value)
            inner = ", ".join(f"'{k}': '{v}'" for k, v in obj.items()) if isinstance(obj, dict) else value
            return "{" + inner + ",}"
        return value


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that timed out and hung up is part of the tests, not an error
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _require(cond: bool, status: int, message: str, openai: bool = False) -> None:
    if not cond:
        body = ({"error": {"message": message, "type": "invalid_request_error"}} if openai
                else {"error": message})
        raise BadRequest(status, body)


def _check_options(options: Any) -> None:
    _require(isinstance(options, dict), 400, "options must be an object")
    unknown = sorted(set(options) - OLLAMA_OPTIONS)
    _require(not unknown, 400, f"unknown options: {', '.join(unknown)}")
    for key in ("temperature", "top_p", "top_k", "num_predict", "num_ctx", "seed"):
        if key in options:
            _require(isinstance(options[key], (int, float)) and not isinstance(options[key], bool), 400,
                     f"option {key} must be a number")


def _check_ollama_common(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    _require(not unknown, 400, f"unknown fields: {', '.join(unknown)}")
    _require(isinstance(body.get("model"), str) and body["model"] != "", 400, "model is required")
    _require(body.get("stream") is False, 400, "stream must be false (the fake answers only non-streaming)")
    fmt = body.get("format")
    _require(fmt is None or fmt == "json" or isinstance(fmt, dict), 400, "format must be \"json\" or a schema")
    if "options" in body:
        _check_options(body["options"])
    if "keep_alive" in body:
        _require(isinstance(body["keep_alive"], (str, int, float)), 400, "keep_alive must be a duration")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"
    timeout = 10          # idle keep-alive connections end on their own

    def log_message(self, format: str, *args: Any) -> None:   # the base class's name
        pass

    def _send(self, status: int, body: Any, *, raw: bytes | None = None,
              headers: dict[str, str] | None = None) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if raw is None else "text/html")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True          # the client gave up (timeout): nothing to tell it

    def do_GET(self) -> None:   # http.server's naming
        fake = self.fake
        if self.path == "/api/tags":
            models = [{"name": m, "model": m, "modified_at": "2025-01-01T00:00:00Z", "size": 1, "digest": "0",
                       "details": {"format": "gguf", "family": "llama"}} for m in fake.models]
            self._send(200, {"models": models})
        elif self.path == "/v1/models":
            self._send(200, {"object": "list",
                             "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in fake.models]})
        elif self.path == "/api/version":
            self._send(200, {"version": "0.0.0-fake"})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        openai = self.path.startswith("/v1/")
        if self.path not in ("/api/chat", "/api/generate", "/v1/chat/completions"):
            self._send(404, {"error": f"no route {self.path}"})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": "invalid JSON body"})
            return
        if not isinstance(body, dict):
            self._send(400, {"error": "body must be an object"})
            return
        call = fake._enter_call(self.path, body, dict(self.headers.items()))
        try:
            self._answer(call, body, openai)
        except BadRequest as exc:
            self._send(exc.status, exc.body)
        finally:
            fake._leave_call()

    def _answer(self, call: int, body: dict[str, Any], openai: bool) -> None:
        fake = self.fake
        if openai:
            schema, prompt, system = self._check_openai(body)
        elif self.path == "/api/chat":
            schema, prompt, system = self._check_chat(body)
        else:
            schema, prompt, system = self._check_generate(body)
        if call <= fake.fail_first:
            headers = {"Retry-After": str(fake.retry_after)} if fake.retry_after is not None else None
            message = f"injected failure {call} of {fake.fail_first}"
            self._send(fake.fail_status, {"error": {"message": message}} if openai else {"error": message},
                       headers=headers)
            return
        if fake.delay:
            fake._stopping.wait(fake.delay)
        if fake.behaviour == "invalid_body":
            self._send(200, None, raw=b"<html>upstream proxy error</html>")
            return
        text = fake._text(self.path, body, schema, prompt)
        prompt_tokens = _words(system) + _words(prompt)
        with fake.lock:
            cached = _words(system) if system and system in fake._seen_prefixes else 0
            if system:
                fake._seen_prefixes.add(system)
        if openai:
            self._send(200, {
                "id": f"chatcmpl-{call}", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": _words(text),
                          "total_tokens": prompt_tokens + _words(text),
                          "prompt_tokens_details": {"cached_tokens": cached}}})
            return
        reply: dict[str, Any] = {
            "model": body["model"], "created_at": "2025-01-01T00:00:00.000000Z", "done": True,
            "done_reason": "stop", "total_duration": 1_000_000, "load_duration": 1000,
            "prompt_eval_duration": 1000, "eval_count": _words(text), "eval_duration": 1000}
        if not cached:
            # Ollama leaves prompt_eval_count out when the prompt came from its cache
            reply["prompt_eval_count"] = prompt_tokens
        if self.path == "/api/chat":
            reply["message"] = {"role": "assistant", "content": text}
        else:
            reply["response"] = text
            reply["context"] = [1, 2, 3]
        self._send(200, reply)

    def _check_model(self, model: str, openai: bool) -> None:
        if model not in self.fake.models:
            if openai:
                raise BadRequest(404, {"error": {"message": f"The model `{model}` does not exist.",
                                                 "type": "invalid_request_error", "code": "model_not_found"}})
            raise BadRequest(404, {"error": f"model \"{model}\" not found, try pulling it first"})

    def _check_chat(self, body: dict[str, Any]) -> tuple[dict | None, str, str]:
        _check_ollama_common(body, _CHAT_KEYS)
        messages = body.get("messages")
        _require(isinstance(messages, list) and len(messages) > 0, 400, "messages must be a non-empty list")
        for m in messages:
            _require(isinstance(m, dict) and m.get("role") in _ROLES and isinstance(m.get("content"), str), 400,
                     "each message needs a role (system, user, assistant, tool) and a string content")
        self._check_model(body["model"], openai=False)
        fmt = body.get("format")
        system = "".join(m["content"] for m in messages if m["role"] == "system")
        return (fmt if isinstance(fmt, dict) else None), messages[-1]["content"], system

    def _check_generate(self, body: dict[str, Any]) -> tuple[dict | None, str, str]:
        _check_ollama_common(body, _GENERATE_KEYS)
        _require(isinstance(body.get("prompt"), str), 400, "prompt must be a string")
        self._check_model(body["model"], openai=False)
        fmt = body.get("format")
        return (fmt if isinstance(fmt, dict) else None), body["prompt"], body.get("system") or ""

    def _check_openai(self, body: dict[str, Any]) -> tuple[dict | None, str, str]:
        fake = self.fake
        if fake.api_key is not None and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            raise BadRequest(401, {"error": {"message": "Incorrect API key provided.",
                                             "type": "invalid_request_error", "code": "invalid_api_key"}})
        unknown = sorted(set(body) - _OPENAI_KEYS)
        _require(not unknown, 400, f"Unrecognized request argument supplied: {', '.join(unknown)}", openai=True)
        _require(isinstance(body.get("model"), str) and body["model"] != "", 400, "model is required", True)
        _require(body.get("stream", False) is False, 400, "the fake answers only non-streaming requests", True)
        messages = body.get("messages")
        _require(isinstance(messages, list) and len(messages) > 0, 400, "messages must be a non-empty list", True)
        for m in messages:
            _require(isinstance(m, dict) and m.get("role") in _ROLES and isinstance(m.get("content"), str), 400,
                     "each message needs a role and a string content", True)
        schema = None
        fmt = body.get("response_format")
        if fmt is not None:
            _require(isinstance(fmt, dict) and fmt.get("type") in ("text", "json_object", "json_schema"), 400,
                     "response_format.type must be text, json_object or json_schema", True)
            if fmt["type"] == "json_schema":
                spec = fmt.get("json_schema")
                _require(isinstance(spec, dict) and isinstance(spec.get("schema"), dict), 400,
                         "response_format.json_schema.schema must be an object", True)
                _require(isinstance(spec.get("name"), str) and bool(_SCHEMA_NAME.match(spec["name"])), 400,
                         "response_format.json_schema.name must match ^[a-zA-Z0-9_-]{1,64}$", True)
                _require(isinstance(spec.get("strict", False), bool), 400, "strict must be a boolean", True)
                schema = spec["schema"]
        for key in ("temperature", "top_p"):
            if key in body:
                _require(isinstance(body[key], (int, float)), 400, f"{key} must be a number", True)
        if "max_tokens" in body:
            _require(isinstance(body["max_tokens"], int) and body["max_tokens"] > 0, 400,
                     "max_tokens must be a positive integer", True)
        self._check_model(body["model"], openai=True)
        system = "".join(m["content"] for m in messages if m["role"] == "system")
        return schema, messages[-1]["content"], system


# -- the contract every HTTP invoker passes against the fake -----------------

def choices_for(worker: int = 0) -> tuple:
    from swarm_engine.llm.protocol import Choice

    return (Choice("CheckStatus", "api-gateway", visits=3, successes=3, score=0.9),
            Choice("ReadLogs", "api-gateway", visits=1, successes=0, score=0.4),
            Choice("ReadLogs", f"db-{worker}"),
            Choice("Restart", "db-replica", arg="graceful"))


def requests_for(n: int, **kwargs: Any) -> list:
    """``n`` decision requests sharing one shared prompt, one per worker."""
    from swarm_engine.llm.prompts import shared_prompt, worker_prompt
    from swarm_engine.llm.protocol import DecisionRequest

    shared = shared_prompt("Find and fix the faulty service.", "Four services behind a gateway.",
                           [("CheckStatus", "Check a service"), ("ReadLogs", "Read its logs"),
                            ("Restart", "Restart a service")])
    out = []
    for w in range(n):
        choices = choices_for(w)
        out.append(DecisionRequest(w, shared, worker_prompt(w, [f"step {w}"], "nothing yet", choices), choices,
                                   **kwargs))
    return out


class InvokerContract(abc.ABC):
    """Behaviour every HTTP invoker shows against :class:`FakeServer`.

    A test module subclasses it as ``TestXxxContract`` and sets ``make``:
    ``make(url, model, **kwargs) -> invoker`` for the server root ``url``.
    """

    model = "smollm2:135m"

    @staticmethod
    @abc.abstractmethod
    def make(url: str, model: str, **kwargs: Any) -> Any:
        """The invoker under test for the server root ``url``."""

    def decide(self, url: str, requests: list, **kwargs: Any) -> list:
        import asyncio

        async def go() -> list:
            invoker = self.make(url, kwargs.pop("model", self.model), **kwargs)
            try:
                return await invoker.decide(requests)
            finally:
                await invoker.aclose()

        return asyncio.run(go())

    def test_valid_decisions_in_order(self) -> None:
        # each request's answer is its own last candidate: order and mapping checked at once
        def last(path: str, body: dict[str, Any]) -> str:
            prompt = body["messages"][-1]["content"]
            return _CANDIDATE.findall(prompt)[-1]

        with FakeServer(answer=last) as server:
            reqs = requests_for(6)
            decisions = self.decide(server.url, reqs)
        assert [d.worker for d in decisions] == list(range(6))
        assert all(d.ok and d.choice == 3 and not d.repaired for d in decisions)
        assert all(d.retries == 0 and d.latency_ms > 0 and d.confidence is None for d in decisions)
        assert all(d.completion_tokens > 0 for d in decisions)

    def test_schema_pick_maps_to_choice(self) -> None:
        with FakeServer(pick=2) as server:
            (decision,) = self.decide(server.url, requests_for(1))
        assert decision.ok and decision.choice == 2
        assert decision.raw == '{"tool": "ReadLogs", "target": "db-0"}'

    def test_retries_on_500_then_success(self) -> None:
        with FakeServer(fail_first=2, fail_status=500) as server:
            (decision,) = self.decide(server.url, requests_for(1), retries=3, backoff=0.001)
            assert server.calls == 3
        assert decision.ok and decision.retries == 2

    def test_429_honours_retry_after(self) -> None:
        with FakeServer(fail_first=1, fail_status=429, retry_after=0.01) as server:
            (decision,) = self.decide(server.url, requests_for(1), retries=1, backoff=5.0, max_backoff=0.05)
        # a 5 s backoff would have blown the test's budget: Retry-After (capped) was used
        assert decision.ok and decision.retries == 1 and decision.latency_ms < 2000

    def test_transient_after_budget(self) -> None:
        with FakeServer(fail_first=100, fail_status=503) as server:
            (decision,) = self.decide(server.url, requests_for(1), retries=2, backoff=0.001)
            assert server.calls == 3
        assert decision.error == "transient" and decision.choice is None and decision.retries == 2
        assert "HTTP 503" in decision.message and server.url in decision.message
        assert "gave up after 3 attempts" in decision.message and "\n" not in decision.message

    def test_timeout_is_transient(self) -> None:
        with FakeServer(delay=2.0) as server:
            (decision,) = self.decide(server.url, requests_for(1), timeout=0.1, retries=1, backoff=0.001)
        # the client gave up on its own timeout (the server would have answered after 2 s)
        assert decision.error == "transient" and decision.retries == 1
        assert "timeout" in decision.message and server.url in decision.message

    def test_connection_refused_is_transient(self) -> None:
        import socket

        with socket.socket() as sock:         # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        decisions = self.decide(f"http://127.0.0.1:{port}", requests_for(2), retries=1, backoff=0.001)
        assert all(d.error == "transient" and d.retries == 1 for d in decisions)
        assert all("ConnectError" in d.message for d in decisions)

    def test_missing_model_is_permanent(self) -> None:
        with FakeServer(models=["other"]) as server:
            (decision,) = self.decide(server.url, requests_for(1), retries=3)
            assert server.calls == 1          # not retried
        assert decision.error == "permanent" and decision.retries == 0
        assert "HTTP 404" in decision.message and "not" in decision.message and server.url in decision.message

    def test_garbage_is_a_parse_error(self) -> None:
        with FakeServer(behaviour="garbage") as server:
            (decision,) = self.decide(server.url, requests_for(1))
        assert decision.error == "parse" and decision.choice is None
        assert decision.raw.startswith("I am not sure") and "could not map" in decision.message

    def test_fenced_answer_is_repaired(self) -> None:
        with FakeServer(behaviour="fenced", pick=1) as server:
            (decision,) = self.decide(server.url, requests_for(1))
        assert decision.ok and decision.choice == 1 and decision.repaired

    def test_invalid_body_is_permanent(self) -> None:
        with FakeServer(behaviour="invalid_body") as server:
            (decision,) = self.decide(server.url, requests_for(1))
        assert decision.error == "permanent" and "not JSON" in decision.message

    def test_concurrency_bound(self) -> None:
        with FakeServer(delay=0.05) as server:
            decisions = self.decide(server.url, requests_for(12), concurrency=3)
            assert server.calls == 12
            assert server.max_in_flight == 3
        assert all(d.ok for d in decisions)

    def test_no_choices_is_permanent_without_a_call(self) -> None:
        from dataclasses import replace

        with FakeServer() as server:
            (decision,) = self.decide(server.url, [replace(requests_for(1)[0], choices=())])
            assert server.calls == 0
        assert decision.error == "permanent" and "no choices" in decision.message

    def test_aclose_twice_and_decide_after_close(self) -> None:
        import asyncio

        async def go(server: FakeServer) -> list:
            invoker = self.make(server.url, self.model)
            await invoker.aclose()
            await invoker.aclose()
            return await invoker.decide(requests_for(1))

        with FakeServer() as server:
            (decision,) = asyncio.run(go(server))
        assert decision.error == "permanent" and "closed" in decision.message

    def test_shared_client_is_not_closed(self) -> None:
        import asyncio

        import httpx

        async def go(server: FakeServer) -> bool:
            async with httpx.AsyncClient(trust_env=False) as client:
                invoker = self.make(server.url, self.model, client=client)
                (decision,) = await invoker.decide(requests_for(1))
                await invoker.aclose()
                assert decision.ok
                return client.is_closed

        with FakeServer() as server:
            assert asyncio.run(go(server)) is False
