"""The ``[llm]`` section of a scenario: which backend, model and sampling.

It lives in the LLM layer, not in :mod:`swarm_engine.eval.schema` where the
rest of the scenario format is, because :func:`swarm_engine.llm.factory.make_invoker`
builds an invoker from it and the LLM layer sits below the evaluation layer
(llm must not import eval). ``eval.schema`` imports it from here and keeps
``schema.Llm`` as a name, so a scenario loads exactly as before: the same
struct options as every other section (frozen, keyword-only, unknown fields
rejected with their path).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

__all__ = ["Llm"]


class Llm(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """``[llm]``: the backend (``provider``, "none" = no LLM) and how it is called.

    ``lora`` holds ``PATH[:SCALE]`` specs (:mod:`swarm_engine.llm.lora_spec`);
    ``extra`` goes to the backend's constructor as keyword arguments.
    """

    provider: Literal["llama-server", "llama-cpp", "ollama", "openai", "none"] = "none"
    model: str | None = None
    endpoint: str | None = None
    temperature: Annotated[float, Meta(ge=0.0)] = 0.0
    max_tokens: Annotated[int, Meta(gt=0)] = 64
    timeout: Annotated[float, Meta(gt=0.0)] = 30.0
    seed: int | None = None
    n_ctx: Annotated[int, Meta(gt=0)] = 4096
    n_gpu_layers: int = 0
    parallel: Annotated[int, Meta(gt=0)] = 8
    lora: list[str] = []
    api_key_env: str | None = None
    extra: dict[str, Any] = {}
    # how decisions are answered: "label" (one token per decision: llama-cpp,
    # llama-server), "text" (the candidate's line, copied under a constraint: llama-cpp),
    # "json" (the canonical JSON answer: every backend), "auto" (each backend's
    # default: label in process, json on llama-server, see docs/llm.md)
    answer: Literal["auto", "label", "json", "text"] = "auto"
    # llama-server: several servers, workers dealt round-robin (endpoint overrides it when given)
    endpoints: list[str] = []
