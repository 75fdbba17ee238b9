"""OpenAIInvoker against the local fake /v1/chat/completions."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest

from swarm_engine.errors import ConfigError, LlmPermanentError
from swarm_engine.llm.backends.openai_compat import OpenAIInvoker
from swarm_engine.llm.grammar import json_schema_for
from swarm_engine.llm.prompts import PLAN_SCHEMA, plan_prompt
from swarm_engine.llm.protocol import Invoker, Sampling
from tests.llm.fake_ollama import FakeServer, InvokerContract, requests_for


class TestOpenAIContract(InvokerContract):
    @staticmethod
    def make(url: str, model: str, **kwargs):
        return OpenAIInvoker(url, model, **kwargs)


def run(url: str, requests, model: str = InvokerContract.model, **kwargs):
    async def go():
        async with OpenAIInvoker(url, model, **kwargs) as invoker:
            return await invoker.decide(requests)
    return asyncio.run(go())


def test_is_an_invoker():
    invoker = OpenAIInvoker("http://127.0.0.1:8000", "m")
    assert isinstance(invoker, Invoker) and invoker.name == "openai"
    asyncio.run(invoker.aclose())


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_base_url_with_or_without_v1(suffix):
    with FakeServer() as server:
        (decision,) = run(server.url + suffix, requests_for(1))
        ((path, _),) = server.requests
    assert path == "/v1/chat/completions" and decision.ok


def test_request_shape_json_schema():
    request = requests_for(1, sampling=Sampling(temperature=0.2, max_tokens=40, seed=3, top_p=0.9))[0]
    with FakeServer() as server:
        (decision,) = run(server.url, [request], extra_body={"top_k": 20, "cache_prompt": True})
        ((_, body),) = server.requests
    assert decision.ok and not decision.repaired
    assert body["messages"] == [{"role": "system", "content": request.shared_prompt},
                                {"role": "user", "content": request.worker_prompt}]
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "decision", "schema": json_schema_for(request.choices),
                                                       "strict": True}}
    assert (body["temperature"], body["max_tokens"], body["seed"], body["top_p"]) == (0.2, 40, 3, 0.9)
    assert body["top_k"] == 20 and body["cache_prompt"] is True and body["stream"] is False


@pytest.mark.parametrize("kind, expected", [("json_object", {"type": "json_object"}), (None, None)])
def test_request_shape_other_formats(kind, expected):
    with FakeServer(pick=1) as server:
        (decision,) = run(server.url, requests_for(1), response_format=kind)
        ((_, body),) = server.requests
    assert body.get("response_format") == expected
    assert decision.ok and decision.choice == 1        # copied from the prompt's candidate list


def test_usage_tokens_and_prefix_cache():
    with FakeServer() as server:
        first, second = run(server.url, requests_for(2), concurrency=1)
    assert first.prompt_tokens > 0 and first.completion_tokens == 4 and first.cached_tokens == 0
    # the second worker shares the system message: the fake's prefix cache reports it
    assert 0 < second.cached_tokens < second.prompt_tokens


def test_api_key_sent_as_bearer():
    with FakeServer(api_key="sk-test") as server:
        (ok,) = run(server.url, requests_for(1), api_key="sk-test")
        (bad,) = run(server.url, requests_for(1), api_key="sk-wrong")
        (missing,) = run(server.url, requests_for(1))
        assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert ok.ok
    assert bad.error == "permanent" and "HTTP 401" in bad.message and "sk-wrong" not in bad.message
    assert missing.error == "permanent"


def test_unknown_parameter_is_permanent():
    with FakeServer() as server:
        (decision,) = run(server.url, requests_for(1), extra_body={"bogus": 1})
    assert decision.error == "permanent" and "HTTP 400" in decision.message and "bogus" in decision.message


def test_refusal_is_a_parse_error():
    def refuse(path, body):
        return ""

    with FakeServer(answer=refuse) as server:
        (decision,) = run(server.url, requests_for(1))
    assert decision.error == "parse"


@pytest.mark.parametrize("kind", ["json_schema", "json_object", None])
def test_complete_json(kind):
    actions = [("CheckStatus", "check"), ("ReadLogs", "read")]

    async def go(url):
        async with OpenAIInvoker(url, "smollm2:135m", response_format=kind) as invoker:
            return await invoker.complete_json(plan_prompt("fix it", actions), PLAN_SCHEMA, Sampling(max_tokens=300))

    def plan(path, body):
        return json.dumps({"edges": [{"from": "CheckStatus", "to": "ReadLogs", "confidence": 0.8}],
                           "start": ["CheckStatus"], "terminal": ["ReadLogs"]})

    with FakeServer(answer=None if kind == "json_schema" else plan) as server:
        text = asyncio.run(go(server.url))
        ((_, body),) = server.requests
    jsonschema.validate(json.loads(text), PLAN_SCHEMA)
    assert body["messages"] == [{"role": "user", "content": plan_prompt("fix it", actions)}]
    if kind == "json_schema":
        assert body["response_format"]["json_schema"]["name"] == "plan"
        assert body["response_format"]["json_schema"]["schema"] == PLAN_SCHEMA


def test_complete_json_missing_model_raises():
    async def go(url):
        async with OpenAIInvoker(url, "absent") as invoker:
            return await invoker.complete_json("p", PLAN_SCHEMA, Sampling())

    with FakeServer() as server, pytest.raises(LlmPermanentError, match="HTTP 404.*does not exist"):
        asyncio.run(go(server.url))


def test_models():
    async def go(url):
        async with OpenAIInvoker(url, "a") as invoker:
            return await invoker.models()

    with FakeServer(models=["a", "b"]) as server:
        assert asyncio.run(go(server.url)) == ["a", "b"]


@pytest.mark.parametrize("kwargs, match", [
    ({"model": " "}, "model"),
    ({"model": "m", "response_format": "grammar"}, "response_format"),
    ({"model": "m", "concurrency": 1.5}, "concurrency"),
    ({"model": "m", "base_url": "ftp://x"}, "base_url"),
])
def test_bad_config(kwargs, match):
    kwargs.setdefault("base_url", "http://127.0.0.1:8000")
    with pytest.raises(ConfigError, match=match):
        OpenAIInvoker(**kwargs)
