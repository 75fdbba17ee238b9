"""The invoker protocol: many decision requests in, decisions out, asynchronously.

A decision request is one worker's question "which of these candidates next?"
with a prompt split in two: the part every worker shares (rules, task, action
catalogue; first, so a server's prefix cache hits) and the worker's own part
(its history, the team summary, the candidates with their statistics; last).
Backends are shaped like httpx transports: one async method per request kind
and a ``aclose()`` that is safe to call twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Choice", "Sampling", "LoraScale", "DecisionRequest", "Decision", "PlanRequest",
           "Invoker", "ERROR_TRANSIENT", "ERROR_PERMANENT", "ERROR_PARSE"]

ERROR_TRANSIENT = "transient"      # timeouts, 5xx, refused connections: retried, then fallback
ERROR_PERMANENT = "permanent"      # 4xx, missing model: not retried
ERROR_PARSE = "parse"              # an answer that no repair could map onto a choice


@dataclass(frozen=True)
class Choice:
    """One allowed answer: an action on a target (names as the model sees them)."""

    action: str
    target: str | None = None
    arg: str | None = None
    # opaque to backends: the frontier node the engine assigns when this is chosen
    node: int = -1
    score: float = 0.0          # the bandit's score, shown to the model as a statistic
    visits: int = 0
    successes: int = 0

    def label(self) -> str:
        parts = [self.action]
        if self.target:
            parts.append(self.target)
        if self.arg:
            parts.append(self.arg)
        return " ".join(parts)


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    max_tokens: int = 64
    seed: int | None = None
    top_k: int = 40
    top_p: float = 0.95


@dataclass(frozen=True)
class LoraScale:
    """A LoRA adapter by server id (llama-server) or path (in-process) with its scale."""

    adapter: int | str
    scale: float


@dataclass(frozen=True)
class DecisionRequest:
    worker: int
    shared_prompt: str                      # identical for every worker of a run
    worker_prompt: str                      # this worker's part, appended last
    choices: tuple[Choice, ...]
    sampling: Sampling = Sampling()
    lora: tuple[LoraScale, ...] | None = None
    slot: int | None = None                 # server slot affinity (id_slot), usually the worker
    # "json": the answer is the chosen candidate's canonical JSON (prompts.answer_json);
    # "label": its label alone (prompts.label_of: "1".."9", "A".."Z"), one token, read from
    # one forward pass's logits by backends that have them
    answer: str = "json"

    @property
    def prompt(self) -> str:
        return self.shared_prompt + self.worker_prompt


@dataclass
class Decision:
    """The answer to one request. ``choice`` indexes ``request.choices``; None
    when the call failed (``error`` says how) or the answer could not be mapped."""

    worker: int
    choice: int | None
    confidence: float | None = None         # probability of the chosen answer, when known
    raw: str = ""
    error: str | None = None                # ERROR_* kind
    message: str = ""
    repaired: bool = False                  # the answer needed repair or fuzzy matching
    latency_ms: float = 0.0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    # answer "label": the probability of every choice (the softmax over the allowed
    # labels' logits, summing to 1); None when the backend does not expose it
    probs: tuple[float, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.choice is not None and self.error is None


@dataclass(frozen=True)
class PlanRequest:
    """Ask for a dependency graph: edges between the named actions, a start and
    terminal actions (dependency_graph.type = "llm")."""

    task: str
    actions: tuple[tuple[str, str], ...]    # (name, description)
    sampling: Sampling = Sampling(max_tokens=512)
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Invoker(Protocol):
    """An LLM backend. ``decide`` takes a whole tick's requests at once and
    returns one Decision per request, in order; it never raises for a failed
    call (the Decision carries the error) so one bad call never kills a run."""

    name: str

    async def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]: ...

    async def complete_json(self, prompt: str, schema: dict, sampling: Sampling) -> str:
        """One JSON-schema-constrained completion (dependency planning)."""

    async def aclose(self) -> None: ...
