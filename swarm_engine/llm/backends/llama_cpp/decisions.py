"""A finished sequence (or a failure) as the :class:`Decision` the manager reads.

Label answers carry the whole distribution over the labels (the choice, its
confidence, ``probs`` for the fall-through); JSON answers are parsed against
the choices (a repaired answer is marked) and their confidence is the
probability of the generated answer.
"""

from __future__ import annotations

import time

import numpy as np

from swarm_engine.errors import LlmError, LlmTransientError
from swarm_engine.llm.backends.llama_cpp.batch import Seq
from swarm_engine.llm.protocol import ERROR_PARSE, ERROR_PERMANENT, ERROR_TRANSIENT, Decision, DecisionRequest
from swarm_engine.llm.repair import parse_decision

__all__ = ["failed_decision", "decision_of"]


def failed_decision(r: DecisionRequest, e: LlmError, t0: float) -> Decision:
    """The decision of a request that failed before or while it ran."""
    kind = ERROR_TRANSIENT if isinstance(e, LlmTransientError) else ERROR_PERMANENT
    return Decision(worker=r.worker, choice=None, error=kind, message=str(e),
                    latency_ms=(time.perf_counter() - t0) * 1e3)


def decision_of(r: DecisionRequest, s: Seq | None, t0: float) -> Decision:
    """The decision of request ``r`` from its finished sequence ``s``."""
    assert s is not None
    latency = ((s.done_at or time.perf_counter()) - t0) * 1e3
    text = s.text.decode("utf-8", "replace")
    d = Decision(worker=r.worker, choice=None, raw=text, latency_ms=latency, prompt_tokens=len(s.tokens),
                 completion_tokens=len(s.out), cached_tokens=s.cached)
    if s.error is not None:
        d.error, d.message = s.error, s.message
        return d
    if s.labels is not None or s.lines is not None:   # one distribution over the choices
        assert s.choice is not None and s.probs is not None
        d.choice = s.choice
        d.confidence = float(s.probs[s.choice])
        d.probs = tuple(float(x) for x in s.probs)
        return d
    choice, repaired = parse_decision(text, r.choices)
    if choice is None:
        d.error = ERROR_PARSE
        d.message = (f"no answer within max_tokens={r.sampling.max_tokens}"
                     if len(s.out) >= r.sampling.max_tokens else "the answer matches no choice")
        return d
    d.choice, d.repaired = choice, bool(repaired)
    d.confidence = float(np.exp(s.logprob))
    return d
