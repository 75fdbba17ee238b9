"""OllamaInvoker against the local fake (no Ollama server can be installed
here), plus the shared HTTP retry helpers in swarm_engine.llm.http."""

from __future__ import annotations

import asyncio
import random

import httpx
import jsonschema
import pytest

from swarm_engine.errors import ConfigError, LlmPermanentError, LlmTransientError
from swarm_engine.llm.backends.ollama import OllamaInvoker
from swarm_engine.llm.grammar import json_schema_for
from swarm_engine.llm.http import backoff_delay, is_loopback, is_transient_status, post_json
from swarm_engine.llm.prompts import PLAN_SCHEMA, plan_prompt
from swarm_engine.llm.protocol import Invoker, Sampling
from tests.llm.fake_ollama import FakeServer, InvokerContract, requests_for


class TestOllamaContract(InvokerContract):
    @staticmethod
    def make(url: str, model: str, **kwargs):
        return OllamaInvoker(url, model, **kwargs)


def run_one(server: FakeServer, request, **kwargs):
    async def go():
        async with OllamaInvoker(server.url, InvokerContract.model, **kwargs) as invoker:
            return (await invoker.decide([request]))[0]
    return asyncio.run(go())


def test_is_an_invoker():
    invoker = OllamaInvoker(model="m")
    assert isinstance(invoker, Invoker) and invoker.name == "ollama"
    asyncio.run(invoker.aclose())


def test_request_shape():
    request = requests_for(1, sampling=Sampling(temperature=0.3, max_tokens=32, seed=7))[0]
    with FakeServer() as server:
        decision = run_one(server, request, keep_alive="10m", options={"num_ctx": 2048, "temperature": 0.1})
        ((path, body),) = server.requests
    assert decision.ok
    assert path == "/api/chat" and body["stream"] is False and body["model"] == "smollm2:135m"
    assert body["keep_alive"] == "10m"
    assert body["messages"] == [{"role": "system", "content": request.shared_prompt},
                                {"role": "user", "content": request.worker_prompt}]
    assert body["format"] == json_schema_for(request.choices)
    # the invoker's explicit options win over the request's sampling
    assert body["options"] == {"temperature": 0.1, "num_predict": 32, "top_k": 40, "top_p": 0.95, "seed": 7,
                               "num_ctx": 2048}


@pytest.mark.parametrize("fmt, expected", [("json", "json"), (None, None)])
def test_format_modes(fmt, expected):
    with FakeServer() as server:
        decision = run_one(server, requests_for(1)[0], format=fmt)
        ((_, body),) = server.requests
    assert body.get("format") == expected
    # without a schema the fake copies the first candidate line of the prompt
    assert decision.ok and decision.choice == 0


def test_tokens_from_eval_counts():
    reqs = requests_for(2)

    async def go(url):
        async with OllamaInvoker(url, "smollm2:135m", concurrency=1) as invoker:
            return await invoker.decide(reqs)

    with FakeServer() as server:
        first, second = asyncio.run(go(server.url))
    assert first.prompt_tokens > 0 and first.completion_tokens == 4 and first.cached_tokens == 0
    # Ollama omits prompt_eval_count for a fully cached prompt: counted as 0, not an error
    assert second.ok and second.prompt_tokens == 0


def test_single_quoted_answer_is_repaired():
    with FakeServer(behaviour="single_quotes", pick=3, ) as server:
        decision = run_one(server, requests_for(1)[0], format=None)
    assert decision.ok and decision.repaired and decision.choice == 3


def test_complete_json_uses_generate():
    actions = [("CheckStatus", "check"), ("ReadLogs", "read")]

    async def go(url):
        async with OllamaInvoker(url, "smollm2:135m") as invoker:
            return await invoker.complete_json(plan_prompt("fix it", actions), PLAN_SCHEMA, Sampling(max_tokens=256))

    with FakeServer() as server:
        text = asyncio.run(go(server.url))
        ((path, body),) = server.requests
    assert path == "/api/generate" and body["format"] == PLAN_SCHEMA and body["options"]["num_predict"] == 256
    jsonschema.validate(__import__("json").loads(text), PLAN_SCHEMA)


def test_complete_json_raises_permanent_for_missing_model():
    async def go(url):
        async with OllamaInvoker(url, "nope") as invoker:
            return await invoker.complete_json("p", PLAN_SCHEMA, Sampling())

    with FakeServer() as server, pytest.raises(LlmPermanentError, match="404"):
        asyncio.run(go(server.url))


@pytest.mark.parametrize("model, ok", [("smollm2:135m", True), ("smollm2", False), ("tiny", True)])
def test_check_model(model, ok):
    async def go(url):
        async with OllamaInvoker(url, model) as invoker:
            await invoker.check()
            return await invoker.models()

    with FakeServer(models=["smollm2:135m", "tiny:latest"]) as server:
        if ok:
            assert asyncio.run(go(server.url)) == ["smollm2:135m", "tiny:latest"]
        else:
            with pytest.raises(LlmPermanentError, match="ollama pull smollm2"):
                asyncio.run(go(server.url))


@pytest.mark.parametrize("kwargs, match", [
    ({"model": ""}, "model"),
    ({}, "model"),
    ({"model": "m", "concurrency": 0}, "concurrency"),
    ({"model": "m", "timeout": 0}, "timeout"),
    ({"model": "m", "retries": -1}, "retries"),
    ({"model": "m", "format": "xml"}, "format"),
    ({"model": "m", "base_url": "localhost:11434"}, "base_url"),
    ({"model": "m", "options": ["temperature"]}, "options"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        OllamaInvoker(**kwargs)


class TestPostJson:
    def post(self, server: FakeServer, **kwargs):
        async def go():
            async with httpx.AsyncClient(trust_env=False) as client:
                return await post_json(client, server.url + "/api/generate",
                                       {"model": "smollm2:135m", "prompt": "hi", "stream": False}, **kwargs)
        return asyncio.run(go())

    def test_success_returns_body_and_retries(self):
        with FakeServer(fail_first=1) as server:
            body, retries = self.post(server, timeout=5, backoff=0.001)
        assert body["done"] is True and isinstance(body["response"], str) and retries == 1

    @pytest.mark.parametrize("status", [400, 401, 404, 422, 501])
    def test_permanent_statuses(self, status):
        with FakeServer(fail_first=1, fail_status=status) as server:
            with pytest.raises(LlmPermanentError) as info:
                self.post(server, timeout=5)
            assert server.calls == 1
        message = str(info.value)
        assert message.startswith(f"POST {server.url}/api/generate: HTTP {status}")
        assert "injected failure" in message and info.value.retries == 0

    def test_budget_exhausted(self):
        with FakeServer(fail_first=10, fail_status=502) as server:
            with pytest.raises(LlmTransientError, match=r"HTTP 502 .* \(gave up after 2 attempts\)") as info:
                self.post(server, timeout=5, retries=1, backoff=0.001)
        assert info.value.retries == 1

    def test_invalid_json_body(self):
        with FakeServer(behaviour="invalid_body") as server:
            with pytest.raises(LlmPermanentError, match="not JSON"):
                self.post(server, timeout=5)

    @pytest.mark.parametrize("status, transient", [(408, True), (425, True), (429, True), (500, True),
                                                   (502, True), (503, True), (504, True), (501, False),
                                                   (505, False), (400, False), (404, False), (409, False)])
    def test_transient_statuses(self, status, transient):
        assert is_transient_status(status) is transient

    @pytest.mark.parametrize("attempt", range(8))
    def test_backoff_is_bounded_and_jittered(self, attempt):
        ceiling = min(1.0, 0.1 * 2 ** attempt)
        assert backoff_delay(attempt, backoff=0.1, max_backoff=1.0, rng=None) == pytest.approx(ceiling)
        a = [backoff_delay(attempt, backoff=0.1, max_backoff=1.0, rng=random.Random(5)) for _ in range(2)]
        assert a[0] == a[1] and ceiling / 2 <= a[0] <= ceiling

    @pytest.mark.parametrize("url, loop", [("http://127.0.0.1:11434", True), ("http://localhost:8080/v1", True),
                                           ("http://[::1]:80", True), ("https://api.example.com", False)])
    def test_loopback(self, url, loop):
        assert is_loopback(url) is loop
