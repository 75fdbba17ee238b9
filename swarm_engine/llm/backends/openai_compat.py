"""OpenAI-compatible backend: POST {base}/v1/chat/completions.

Works against any server speaking the OpenAI chat-completions API: vLLM,
SGLang, llama-server's /v1, Ollama's /v1, hosted endpoints. Each request is
constrained by ``response_format``:

- "json_schema" (default): ``{"type": "json_schema", "json_schema": {"name":
  "decision", "schema": json_schema_for(choices), "strict": true}}`` (vLLM,
  SGLang and llama-server enforce it; OpenAI's hosted API wants an object at
  the schema root and may refuse the ``anyOf`` root, use "json_object" there);
- "json_object": any JSON object, the prompt and repair do the rest;
- None: unconstrained.

The shared prompt is the system message and the worker's part the user
message, so servers with prefix caching (vLLM APC, SGLang radix cache,
llama-server slots) reuse the shared part; ``usage.prompt_tokens_details.
cached_tokens``, where the server reports it, becomes
``Decision.cached_tokens``. Server-specific knobs (``top_k``, llama-server's
``id_slot`` or ``cache_prompt``, vLLM's ``guided_decoding_backend``) go in
``extra_body``.

Tested against a local fake server (``tests/fake_ollama.py``) that follows the
documented request and response shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from swarm_engine.errors import ConfigError, LlmPermanentError
from swarm_engine.llm.grammar import json_schema_for, response_format_for
from swarm_engine.llm.http import HttpInvoker, int_field
from swarm_engine.llm.prompts import chat_messages
from swarm_engine.llm.protocol import DecisionRequest, Sampling

__all__ = ["OpenAIInvoker"]

_RESPONSE_FORMATS = ("json_schema", "json_object", None)


class OpenAIInvoker(HttpInvoker):
    """The Invoker protocol over an OpenAI-compatible /v1/chat/completions.

    Parameters
    ----------
    base_url:
        Server root, with or without the trailing ``/v1``
        (``http://127.0.0.1:8000`` and ``http://127.0.0.1:8000/v1`` are the same).
    model:
        The served model name (vLLM ``--served-model-name``; llama-server
        accepts any).
    api_key:
        Sent as ``Authorization: Bearer ...`` when given.
    concurrency:
        Calls in flight at most; the server batches them (continuous batching).
    timeout:
        Seconds per attempt.
    response_format:
        "json_schema", "json_object" or None (see the module docstring).
    extra_body:
        Merged into every request body last (server-specific parameters).
    retries, backoff, max_backoff, seed, client, trust_env:
        See :class:`~swarm_engine.llm.http.HttpInvoker`.
    """

    name = "openai"
    decide_path = "/v1/chat/completions"
    health_path = "/v1/models"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, concurrency: int = 8,
                 timeout: float = 60.0, response_format: str | None = "json_schema",
                 extra_body: Mapping[str, Any] | None = None, retries: int = 3, backoff: float = 0.2,
                 max_backoff: float = 2.0, seed: int = 0, client: httpx.AsyncClient | None = None,
                 trust_env: bool | None = None) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"openai: model must be a non-empty name, got {model!r}")
        if response_format not in _RESPONSE_FORMATS:
            raise ConfigError(f"openai: response_format must be 'json_schema', 'json_object' or None, "
                              f"got {response_format!r}")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        if isinstance(base_url, str):
            base_url = base_url.rstrip("/").removesuffix("/v1")
        super().__init__(base_url, concurrency=concurrency, timeout=timeout, retries=retries, backoff=backoff,
                         max_backoff=max_backoff, seed=seed, headers=headers, client=client, trust_env=trust_env)
        self.model = model
        self.response_format = response_format
        self.extra_body = dict(extra_body or {})

    def _body(self, messages: list[dict[str, str]], sampling: Sampling,
              response_format: dict[str, Any] | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "stream": False,
                                   "temperature": sampling.temperature, "top_p": sampling.top_p,
                                   "max_tokens": sampling.max_tokens}
        if sampling.seed is not None:
            payload["seed"] = sampling.seed
        if response_format is not None:
            payload["response_format"] = response_format
        payload.update(self.extra_body)
        return payload

    def _decision_payload(self, request: DecisionRequest) -> dict[str, Any]:
        schema = json_schema_for(request.choices) if self.response_format == "json_schema" else None
        return self._body(chat_messages(request), request.sampling,
                          response_format_for(schema, self.response_format, name="decision"))

    def _content(self, body: dict[str, Any]) -> str:
        choices = body.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if content is None and isinstance(message, dict) and message.get("refusal"):
            return ""            # a refusal maps onto no choice: a parse error, not a server fault
        if not isinstance(content, str):
            raise LlmPermanentError(f"POST {self.url(self.decide_path)}: the answer has no "
                                    f"choices[0].message.content (keys: {', '.join(sorted(body)) or 'none'})")
        return content

    def _decision_answer(self, body: dict[str, Any]) -> tuple[str, int, int, int]:
        usage = body.get("usage")
        details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
        return (self._content(body), int_field(usage, "prompt_tokens"), int_field(usage, "completion_tokens"),
                int_field(details, "cached_tokens"))

    async def complete_json(self, prompt: str, schema: dict, sampling: Sampling) -> str:
        """One schema-constrained completion (dependency planning); the prompt
        is sent as a single user message. Raises LlmTransientError /
        LlmPermanentError."""
        kind = self.response_format
        fmt = response_format_for(schema if kind == "json_schema" else None, kind, name="plan")
        body, _ = await self._post(self.decide_path,
                                   self._body([{"role": "user", "content": prompt}], sampling, fmt))
        return self._content(body)

    async def models(self) -> list[str]:
        """Model ids the server serves (GET /v1/models)."""
        body = await self._get("/v1/models")
        entries = body.get("data")
        if not isinstance(entries, list):
            return []
        return [str(m.get("id")) for m in entries if isinstance(m, dict) and m.get("id") is not None]
