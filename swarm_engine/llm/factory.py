"""Builds the invoker a scenario's [llm] section (or CLI flags) asks for."""

from __future__ import annotations

import os

from swarm_engine.errors import ConfigError
from swarm_engine.llm.lora_spec import lora_pairs
from swarm_engine.llm.protocol import Invoker
from swarm_engine.llm.spec import Llm

__all__ = ["make_invoker", "lora_pairs", "PROVIDERS", "DEFAULT_ENDPOINTS"]

PROVIDERS = ("llama-server", "llama-cpp", "ollama", "openai")
DEFAULT_ENDPOINTS = {"llama-server": "http://127.0.0.1:8080", "ollama": "http://127.0.0.1:11434",
                     "openai": "http://127.0.0.1:8080"}


def make_invoker(llm: Llm) -> Invoker:
    """The backend for ``llm.provider`` with ``llm.answer`` applied; imports it
    lazily (extras are optional).

    Raises
    ------
    ConfigError
        An unknown provider, missing extras, ``answer = "label"`` on a backend
        without logits.
    """
    inv = _make(llm)
    if llm.answer != "auto":
        if llm.answer not in getattr(inv, "answers", ("json",)):
            raise ConfigError(f"[llm] answer = {llm.answer!r}: provider '{llm.provider}' answers "
                              f"{' or '.join(getattr(inv, 'answers', ('json',)))}")
        inv.answer = llm.answer  # type: ignore[attr-defined]
    return inv


def _make(llm: Llm) -> Invoker:
    provider = llm.provider
    endpoint = llm.endpoint or DEFAULT_ENDPOINTS.get(provider, "")
    extra = dict(llm.extra)
    try:
        if provider == "llama-server":
            from swarm_engine.llm.backends.llama_server import LlamaServerInvoker

            endpoints = [endpoint] if llm.endpoint or not llm.endpoints else list(llm.endpoints)
            return LlamaServerInvoker(endpoints if len(endpoints) > 1 else endpoints[0], timeout=llm.timeout,
                                      concurrency=llm.parallel, **extra)
        if provider == "llama-cpp":
            from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker

            return LlamaCppInvoker(llm.model or None, n_gpu_layers=llm.n_gpu_layers, n_ctx=llm.n_ctx,
                                   n_seq_max=llm.parallel, lora=lora_pairs(llm.lora), **extra)
        if provider == "ollama":
            from swarm_engine.llm.backends.ollama import OllamaInvoker

            if not llm.model:
                raise ConfigError("provider 'ollama' needs [llm] model (e.g. \"smollm2:135m\")")
            return OllamaInvoker(endpoint, llm.model, timeout=llm.timeout, concurrency=llm.parallel, **extra)
        if provider == "openai":
            from swarm_engine.llm.backends.openai_compat import OpenAIInvoker

            key = os.environ.get(llm.api_key_env) if llm.api_key_env else None
            return OpenAIInvoker(endpoint, llm.model or "default", api_key=key, timeout=llm.timeout,
                                 concurrency=llm.parallel, **extra)
    except ImportError as exc:
        raise ConfigError(f"provider '{provider}' needs the optional dependencies: "
                          f"pip install 'swarm-engine[llm]' ({exc})") from None
    except TypeError as exc:
        raise ConfigError(f"[llm] extra options do not fit provider '{provider}': {exc}") from None
    raise ConfigError(f"unknown LLM provider '{provider}' (expected one of: {', '.join(PROVIDERS)})")
