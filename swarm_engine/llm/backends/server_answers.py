"""What llama-server's token probabilities say about an answer: the
confidence of a JSON answer (``choice_confidence``) and the distribution over
the candidate labels of a one-token answer (``label_probs``, ``label_grammar``).

Pure functions of the response's ``completion_probabilities``, kept apart from
the HTTP client (:mod:`swarm_engine.llm.backends.llama_server`) so they can be
read and tested without a server.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from swarm_engine.llm.prompts import LABELS, answer_json
from swarm_engine.llm.protocol import DecisionRequest

__all__ = ["choice_confidence", "label_probs", "label_grammar", "answers_of"]

_GRAMMAR_CACHE = 512


def _squash(text: str) -> str:
    return "".join(text.split())


def _prob(entry: dict) -> float:
    if "prob" in entry:
        return float(entry["prob"])
    if "logprob" in entry:
        return math.exp(float(entry["logprob"]))
    return 0.0


@functools.lru_cache(maxsize=_GRAMMAR_CACHE)
def _answer_prefixes(answers: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str], int]:
    """The answers without whitespace, every prefix of them, the shortest length:
    a candidate text stays on some answer iff it is a prefix of one (or runs
    past the end of one)."""
    allowed = frozenset(_squash(a) for a in answers)
    return allowed, frozenset(a[:i] for a in allowed for i in range(len(a) + 1)), min(map(len, allowed))


def choice_confidence(probs: Sequence[dict], answers: Sequence[str], chosen: int) -> float | None:
    """P(answers[chosen] | one of answers), from llama-server's per-token
    ``completion_probabilities``; None when the text left the chosen answer
    (an unconstrained or repaired answer) or there is nothing to measure.

    Each entry has the generated token (``token``, ``prob`` or ``logprob``)
    and its alternatives (``top_probs`` or ``top_logprobs``).
    """
    target = _squash(answers[chosen])
    allowed, prefixes, shortest = _answer_prefixes(tuple(answers))
    text = ""
    confidence = 1.0
    measured = False
    for step in probs:
        if len(text) >= len(target):
            break
        if not target.startswith(text):
            return None
        token = str(step.get("token", ""))
        candidates = {step.get("id", token): (token, _prob(step))}
        for alt in step.get("top_probs") or step.get("top_logprobs") or ():
            candidates.setdefault(alt.get("id", alt.get("token")), (str(alt.get("token", "")), _prob(alt)))
        on_choice = on_any = 0.0
        for tok, p in candidates.values():
            cand = text + _squash(tok)
            if target.startswith(cand) or cand.startswith(target):
                on_choice += p
                on_any += p
            elif cand in prefixes or (len(cand) > shortest and any(cand.startswith(a) for a in allowed)):
                on_any += p
        if on_choice > 0.0 and on_any > 0.0:
            confidence *= min(1.0, on_choice / on_any)
            measured = True
        text += _squash(token)
    if not measured or not (target.startswith(text) or text.startswith(target)):
        return None
    return confidence


@functools.lru_cache(maxsize=64)
def label_grammar(n: int) -> str:
    """GBNF for the first ``n`` labels (one character each: one token)."""
    return "root ::= " + " | ".join(f'"{c}"' for c in LABELS[:n]) + "\n"


def label_probs(probs: Sequence[dict], n: int) -> list[float] | None:
    """The probability of each of the first ``n`` labels from llama-server's
    ``completion_probabilities`` of a one-token, label-grammar answer sent
    with ``post_sampling_probs``, temperature 1, ``top_k`` 0, ``top_p`` 1 and
    ``min_p`` 0 (the grammar-constrained softmax, nothing cut), renormalised
    to sum to 1 (labels missing from the list get 0); None without any."""
    if not probs:
        return None
    first = probs[0]
    index = {c: i for i, c in enumerate(LABELS[:n])}
    p = [0.0] * n
    for alt in first.get("top_probs") or first.get("top_logprobs") or [first]:
        i = index.get(str(alt.get("token", "")).strip())
        if i is not None:
            p[i] = max(p[i], _prob(alt))
    total = sum(p)
    return [x / total for x in p] if total > 0 else None


def answers_of(req: DecisionRequest) -> tuple[str, ...]:
    return tuple(answer_json(c) for c in req.choices)
