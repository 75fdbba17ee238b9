"""Ollama backend: POST /api/chat with a JSON-schema ``format``.

Ollama has no batch API, no prompt arrays, no GBNF and no per-request LoRA: a
tick's requests go out as concurrent /api/chat calls bounded by a semaphore
(``concurrency``; size it to the server's ``OLLAMA_NUM_PARALLEL``), each
constrained by ``format`` = :func:`~swarm_engine.llm.grammar.json_schema_for`
its choices, so answers are valid objects and repair is only the fallback.
Token counts come from ``prompt_eval_count`` / ``eval_count`` (Ollama leaves
the first out when the whole prompt was cached, hence 0); there is no
probability to report, so ``confidence`` is None. ``request.lora`` and
``request.slot`` are ignored: adapters are baked into an Ollama model with a
Modelfile ``ADAPTER`` line.

No Ollama server can be installed on the machines this project is built on,
so this client is tested against ``tests/fake_ollama.py``, a local fake that
follows the documented API (request shape, answers, errors such as 404 for a
model that was not pulled).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from swarm_engine.errors import ConfigError, LlmPermanentError
from swarm_engine.llm.grammar import json_schema_for
from swarm_engine.llm.http import HttpInvoker, int_field
from swarm_engine.llm.prompts import chat_messages
from swarm_engine.llm.protocol import DecisionRequest, Sampling

__all__ = ["OllamaInvoker", "DEFAULT_URL", "sampling_options"]

DEFAULT_URL = "http://127.0.0.1:11434"
_FORMATS = ("schema", "json", None)


def sampling_options(sampling: Sampling) -> dict[str, Any]:
    """Ollama ``options`` for a request's sampling settings."""
    opts: dict[str, Any] = {"temperature": sampling.temperature, "num_predict": sampling.max_tokens,
                            "top_k": sampling.top_k, "top_p": sampling.top_p}
    if sampling.seed is not None:
        opts["seed"] = sampling.seed
    return opts


class OllamaInvoker(HttpInvoker):
    """The Invoker protocol over Ollama's /api/chat.

    Parameters
    ----------
    base_url:
        Server root.
    model:
        An Ollama model name, e.g. ``"smollm2:135m"`` (pulled beforehand);
        required (Ollama has no default model).
    keep_alive:
        How long Ollama keeps the model loaded after a call ("5m", "-1", 0...).
    options:
        Ollama ``options`` (num_ctx, num_gpu, temperature, ...); they win
        over the values derived from each request's :class:`Sampling`.
    concurrency:
        Calls in flight at most.
    timeout:
        Seconds per attempt.
    format:
        "schema" (default): ``format`` is the choices' JSON schema; "json":
        any JSON object; None: unconstrained (repair does all the work).
    retries, backoff, max_backoff, seed, client, trust_env:
        See :class:`~swarm_engine.llm.http.HttpInvoker`.
    """

    name = "ollama"
    decide_path = "/api/chat"
    health_path = "/api/version"

    async def health(self) -> None:
        """GET /api/version answers, then the model is pulled (:meth:`check`)."""
        await super().health()
        await self.check()

    def __init__(self, base_url: str = DEFAULT_URL, model: str | None = None, *,
                 keep_alive: str | int | float | None = "5m", options: Mapping[str, Any] | None = None,
                 concurrency: int = 4, timeout: float = 60.0, format: str | None = "schema", retries: int = 3,
                 backoff: float = 0.2, max_backoff: float = 2.0, seed: int = 0,
                 client: httpx.AsyncClient | None = None, trust_env: bool | None = None) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"ollama: a model name is required (e.g. \"smollm2:135m\"), got {model!r}")
        if format not in _FORMATS:
            raise ConfigError(f"ollama: format must be 'schema', 'json' or None, got {format!r}")
        if options is not None and not isinstance(options, Mapping):
            raise ConfigError(f"ollama: options must be a table of Ollama options, got {type(options).__name__}")
        super().__init__(base_url, concurrency=concurrency, timeout=timeout, retries=retries, backoff=backoff,
                         max_backoff=max_backoff, seed=seed, client=client, trust_env=trust_env)
        self.model = model
        self.keep_alive = keep_alive
        self.options = dict(options or {})
        self.format = format

    def _options(self, sampling: Sampling) -> dict[str, Any]:
        return {**sampling_options(sampling), **self.options}

    def _common(self, sampling: Sampling) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "stream": False, "options": self._options(sampling)}
        if self.keep_alive is not None:
            payload["keep_alive"] = self.keep_alive
        return payload

    def _decision_payload(self, request: DecisionRequest) -> dict[str, Any]:
        payload = self._common(request.sampling)
        payload["messages"] = chat_messages(request)
        if self.format == "schema":
            payload["format"] = json_schema_for(request.choices)
        elif self.format == "json":
            payload["format"] = "json"
        return payload

    def _decision_answer(self, body: dict[str, Any]) -> tuple[str, int, int, int]:
        message = body.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise LlmPermanentError(f"POST {self.url(self.decide_path)}: the answer has no message.content "
                                    f"(keys: {', '.join(sorted(body)) or 'none'})")
        return content, int_field(body, "prompt_eval_count"), int_field(body, "eval_count"), 0

    async def complete_json(self, prompt: str, schema: dict, sampling: Sampling) -> str:
        """One schema-constrained completion via /api/generate (dependency
        planning). Raises LlmTransientError / LlmPermanentError."""
        payload = self._common(sampling)
        payload.update(prompt=prompt, format=schema)
        body, _ = await self._post("/api/generate", payload)
        text = body.get("response")
        if not isinstance(text, str):
            raise LlmPermanentError(f"POST {self.url('/api/generate')}: the answer has no 'response' text")
        return text

    async def models(self) -> list[str]:
        """Names of the models the server has pulled (GET /api/tags)."""
        body = await self._get("/api/tags")
        entries = body.get("models")
        if not isinstance(entries, list):
            return []
        return [str(m.get("name") or m.get("model")) for m in entries if isinstance(m, dict)]

    async def check(self) -> None:
        """Fail early with one clear line when the model is not pulled.

        Raises LlmPermanentError (missing model, bad answer) or
        LlmTransientError (server unreachable)."""
        names = await self.models()
        wanted = self.model if ":" in self.model else f"{self.model}:latest"
        if self.model not in names and wanted not in names:
            have = ", ".join(names[:8]) or "none"
            raise LlmPermanentError(f"ollama at {self.base_url}: model {self.model!r} not found "
                                    f"(pulled: {have}); run `ollama pull {self.model}`")
