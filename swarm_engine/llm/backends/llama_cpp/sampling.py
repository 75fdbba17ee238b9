"""The in-process backend's arithmetic, in numpy only: which tokens are
candidates, which one is chosen, how confident the choice is, and how much
of a wave's prompts is shared.

No llama.cpp here (the grammar check and the token texts come in as
arguments), so every rule can be tested without a model or llama-cpp-python:

- **candidates** for a decision are the tokens whose text continues one of the
  canonical answers (:func:`answer_tokens`, from a piece -> token index); the
  grammar's language is exactly those answers, so the list is the allowed
  set. For ``complete_json`` they are the allowed tokens within
  :data:`WINDOW` nats of the best logit (:func:`window`);
- **the choice** (:func:`choose`): the softmax over the candidates only (the
  grammar-constrained distribution), then the first highest candidate when
  greedy (ties go to the earlier candidate: the lower token id), or a draw
  from the temperature / top-k / top-p distribution with the request's
  seeded generator;
- **the confidence** of a decision is the chosen answer's probability under
  that distribution: per step, the mass of the candidates that keep the same
  answers reachable (:func:`answer_mass`: one answer has several
  tokenizations, ``{"`` or ``{`` then ``"``, and a product of the chosen
  tokens' probabilities alone gave 0.42 for a request with one choice),
  multiplied over the steps;
- **the shared prefix** of a wave (:func:`shared_prefix`) is decoded once and
  copied to every sequence; :func:`cells_needed` is the KV cells a wave takes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["WINDOW", "MASS_FLOOR", "common_prefix_len", "shared_prefix", "cells_needed", "softmax", "choose",
           "window", "answer_tokens", "reachable", "answer_mass", "answer_prefixes", "label_tokens",
           "label_choice", "token_logprob", "line_choice", "LineTrie", "line_trie",
           "line_scores"]

# complete_json (no answer list): candidates within this many nats of the best
# logit get the grammar check; when the best allowed one is below the best
# logit, the tokens within this many nats of it are checked too (the whole
# vocabulary when none was allowed). Every token left out carries < e^-12 =
# 6e-6 of the best allowed one's weight: the greedy choice is exact. Measured
# on SmolLM2 JSON answers: 20 nats checked ~10,000 tokens per step, 12 nats
# ~1,000 (8x less grammar time) with the same choices.
WINDOW = 12.0
# candidates below this probability are left out of an answer's mass (below the window's error anyway)
MASS_FLOOR = 1e-7


class SamplingParams(Protocol):
    """What :func:`choose` reads of a request's ``Sampling``."""

    @property
    def temperature(self) -> float: ...
    @property
    def top_k(self) -> int: ...
    @property
    def top_p(self) -> float: ...


# ---------------------------------------------------------------- prefixes

def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = np.asarray(a[:n], dtype=np.int64) != np.asarray(b[:n], dtype=np.int64)
    i = int(np.argmax(x))
    return i if x[i] else n


def shared_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens every prompt starts with, leaving each at least one token of its
    own (its last token's logits start generation); 0 for no prompts."""
    if not prompts:
        return 0
    c = min(len(t) for t in prompts) - 1
    first = prompts[0]
    for t in prompts[1:]:
        c = min(c, common_prefix_len(first, t))
    return max(c, 0)


def cells_needed(prompts: Sequence[Sequence[int]], max_tokens: Sequence[int]) -> int:
    """KV cells a wave takes in a unified cache: the shared prefix once, then
    each sequence's own prompt tail and up to ``max_tokens`` answer tokens."""
    c = shared_prefix(prompts)
    return c + sum(len(t) - c + m for t, m in zip(prompts, max_tokens, strict=True))


# ---------------------------------------------------------------- the choice

def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the candidates only (float64): the grammar-constrained
    distribution, every token outside the candidates having probability 0."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max()
    p = np.exp(x)
    p /= p.sum()
    return p


def choose(logits: np.ndarray, sampling: SamplingParams, rng: np.random.Generator | None
           ) -> tuple[int, np.ndarray]:
    """``(j, p)``: the chosen candidate's position in ``logits`` (the candidates'
    logits) and the candidates' probabilities (:func:`softmax`).

    Greedy (``temperature <= 0`` or no generator): the first highest logit.
    Otherwise a draw from the candidates sorted by logit (stable: ties keep
    their order), cut to ``top_k`` (0 = all), tempered by ``temperature`` and
    cut to the smallest head whose mass reaches ``top_p`` (when 0 < top_p < 1).
    """
    x = np.asarray(logits).astype(np.float64)
    x -= x.max()
    p = softmax(x)
    if sampling.temperature <= 0 or rng is None:
        return int(np.argmax(x)), p
    order = np.argsort(-x, kind="stable")
    if sampling.top_k > 0:
        order = order[:sampling.top_k]
    q = np.exp((x[order] - x[order[0]]) / sampling.temperature)
    q /= q.sum()
    if 0.0 < sampling.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(q), sampling.top_p)) + 1
        order, q = order[:keep], q[:keep] / q[:keep].sum()
    return int(order[rng.choice(len(order), p=q)]), p


# ---------------------------------------------------------------- candidates

def window(logits: np.ndarray, allowed: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray | None:
    """Token ids near the top of ``logits`` that ``allowed`` keeps (every finite
    one within :data:`WINDOW` of the best when there is no grammar); None when
    nothing is allowed. ``allowed(ids)`` returns the allowed subset of ``ids``.

    When the best allowed token is below the best logit, the tokens within
    the window of the best *allowed* one are checked too, so the greedy choice
    is the same as over the whole vocabulary.
    """
    lg = logits
    fin = np.isfinite(lg)
    if not fin.any():
        return None
    m = float(lg[fin].max())
    checked = lg >= m - WINDOW
    idx = np.flatnonzero(checked)
    if allowed is not None:
        idx = allowed(idx)
        best = float(lg[idx].max()) if len(idx) else -np.inf
        if best < m:                       # widen to everything within the window of the best allowed
            more = np.flatnonzero(~checked & (lg >= best - WINDOW) & fin)
            if len(more):
                idx = np.concatenate([idx, allowed(more)])
        if not len(idx):
            return None
    return idx


def answer_prefixes(answers: Iterable[bytes]) -> frozenset[bytes]:
    """Every proper prefix of the answers: a text in it may still grow into a
    longer answer, so generation does not stop there."""
    return frozenset(a[:k] for a in answers for k in range(len(a)))


def answer_tokens(text: bytes, answers: Collection[bytes], by_piece: Mapping[bytes, Sequence[int]],
                  eog: Sequence[int], longest: int) -> np.ndarray:
    """Every token that can extend ``text`` toward one of ``answers``, sorted:
    the tokens whose piece is a prefix of a remaining answer suffix (at most
    ``longest`` bytes, the longest piece), plus the end-of-generation tokens
    ``eog`` when ``text`` is a complete answer. A few hundred dict look-ups
    instead of a scan of the vocabulary."""
    n = len(text)
    found: set[int] = set()
    for a in answers:
        if len(a) > n and a.startswith(text):
            rest = a[n:n + longest]
            for k in range(1, len(rest) + 1):
                toks = by_piece.get(rest[:k])
                if toks:
                    found.update(toks)
    if text in answers:
        found.update(eog)
    return np.fromiter(sorted(found), dtype=np.int64, count=len(found))


def reachable(text: bytes, piece: bytes | None, answers: Collection[bytes]) -> frozenset[bytes]:
    """The answers still reachable after ``text`` is followed by ``piece``
    (None: an end-of-generation token, which reaches ``text`` itself when it
    is an answer, nothing otherwise)."""
    if piece is None:
        return frozenset((text,)) if text in answers else frozenset()
    u = text + piece
    return frozenset(a for a in answers if a.startswith(u))


def answer_mass(p: np.ndarray, j: int, reach: Callable[[int], frozenset[bytes]] | None) -> float:
    """The probability of the candidates that leave the same answers reachable
    as candidate ``j`` (``reach(i)``: candidate i's reachable answers), capped
    at 1; ``p[j]`` alone when the answers are unknown (``reach`` None).
    Candidates under :data:`MASS_FLOOR` are not looked at."""
    if reach is None:
        return float(p[j])
    mine = reach(j)
    mass = float(p[j])
    for i in np.flatnonzero(p > MASS_FLOOR):
        if i != j and reach(int(i)) == mine:
            mass += float(p[i])
    return min(mass, 1.0)


# ---------------------------------------------------------------- label answers

def label_tokens(labels: Sequence[str], by_piece: Mapping[bytes, Sequence[int]]) -> np.ndarray:
    """The one token of each label (``by_piece``: piece -> tokens, the label's
    text without a leading space, as it follows the prompt's line break).

    Raises
    ------
    ValueError
        A label that is not exactly one token of the vocabulary (an answer
        would then need a sampling loop), or two labels on one token.
    """
    out = []
    for lab in labels:
        toks = by_piece.get(lab.encode("utf-8")) or ()
        if len(toks) != 1:
            raise ValueError(f"label {lab!r} is {len(toks)} tokens of this vocabulary, not one")
        out.append(int(toks[0]))
    if len(set(out)) != len(out):
        raise ValueError("two labels share a token")
    return np.asarray(out, dtype=np.int64)


def label_choice(label_logits: np.ndarray, sampling: SamplingParams, rng: np.random.Generator | None
                 ) -> tuple[int, float, np.ndarray]:
    """``(j, confidence, p)`` of a one-token label answer: ``label_logits`` are
    the logits of the allowed labels' tokens (one forward pass, the prompt's
    last position); ``p`` is their softmax (the constrained distribution: every
    other token has probability 0, so ``p`` sums to 1), ``j`` the greedy
    (first highest) or sampled label (:func:`choose`), ``confidence = p[j]``."""
    j, p = choose(label_logits, sampling, rng)
    return j, float(p[j]), p


def token_logprob(logits: np.ndarray, token: int) -> float:
    """log p(``token``) under the softmax of one position's ``logits``."""
    top = float(logits.max())
    return float(logits[token]) - top - float(np.log(np.exp(logits - top).sum()))


def line_choice(line_logprobs: Sequence[float], sampling: SamplingParams, rng: np.random.Generator | None
                ) -> tuple[int, float, np.ndarray]:
    """``(j, confidence, p)`` of a text answer: each candidate line scored by
    its log-probability as the answer (the sum over its tokens, the end of turn
    included); ``p`` is the softmax over the lines, i.e. p(line | prompt)
    renormalised over the candidates, and ``j`` is chosen from it as a label
    is (:func:`choose`: greedy, or sampled at the request's temperature)."""
    return label_choice(np.asarray(line_logprobs, dtype=np.float64), sampling, rng)


@dataclass(frozen=True)
class LineTrie:
    """Candidate lines (token lists) as a prefix tree, so a token that several
    lines share is decoded once, in the sequences of all of them.

    ``token[v]``, ``depth[v]`` (0 = the first token after the prompt),
    ``parent[v]`` (-1: the prompt's last position) and ``lines[v]`` (the line
    indices through node v) describe node v, parents before children.
    ``decode`` lists the nodes whose logits are needed (those with children):
    a line's last token is scored from its parent's logits and never decoded.
    ``path[i]`` is line i's nodes, first to last."""

    token: list[int]
    depth: list[int]
    parent: list[int]
    lines: list[list[int]]
    decode: list[int]
    path: list[list[int]]


def line_trie(lines: Sequence[Sequence[int]]) -> LineTrie:
    """The prefix tree of ``lines`` (see :class:`LineTrie`), nodes breadth first."""
    index: dict[tuple[int, int], int] = {}
    token: list[int] = []
    depth: list[int] = []
    parent: list[int] = []
    through: list[list[int]] = []
    path: list[list[int]] = []
    for i, line in enumerate(lines):
        up, nodes = -1, []
        for d, t in enumerate(line):
            v = index.get((up, int(t)))
            if v is None:
                v = index[(up, int(t))] = len(token)
                token.append(int(t))
                depth.append(d)
                parent.append(up)
                through.append([])
            through[v].append(i)
            nodes.append(v)
            up = v
        path.append(nodes)
    order = sorted(range(len(token)), key=lambda v: (depth[v], v))          # breadth first
    new = {v: k for k, v in enumerate(order)}
    has_child = set(parent) - {-1}
    return LineTrie(token=[token[v] for v in order], depth=[depth[v] for v in order],
                    parent=[new[parent[v]] if parent[v] >= 0 else -1 for v in order],
                    lines=[through[v] for v in order],
                    decode=sorted(new[v] for v in has_child),
                    path=[[new[v] for v in p] for p in path])


def line_scores(trie: LineTrie, first: np.ndarray, decode: Callable[[list[int]], dict[int, np.ndarray]],
                batch: int = 8) -> tuple[list[float], list[bool]]:
    """Each line's log-probability, found best first with branch and bound.

    A node's *partial* score (the log-probability of the tokens down to it)
    only falls as a line goes on, so it bounds every line below it. The
    frontier's best ``batch`` nodes are decoded together (``decode(nodes)``:
    their logits), their children scored, and the search stops when no
    frontier node beats the best whole line: that line is the exact argmax.
    Lines never reached keep their bound. Returns the scores and, per line,
    whether its score is exact."""
    n = len(trie.path)
    children: dict[int, list[int]] = {}
    for v, up in enumerate(trie.parent):
        children.setdefault(up, []).append(v)
    end_of = {p[-1]: i for i, p in enumerate(trie.path)}        # the node a line ends at
    partial: dict[int, float] = {}
    for v in children.get(-1, []):
        partial[v] = token_logprob(first, trie.token[v])
    score = [-np.inf] * n
    exact = [False] * n
    best = -np.inf
    for v, s in partial.items():
        if v in end_of:
            score[end_of[v]], exact[end_of[v]] = s, True
            best = max(best, s)
    frontier = [v for v in partial if v in children]
    while True:
        frontier = [v for v in frontier if partial[v] > best]
        if not frontier:
            break
        frontier.sort(key=lambda v: -partial[v])
        take, frontier = frontier[:batch], frontier[batch:]
        rows = decode(take)
        for u in take:
            row = rows[u]
            top = float(row.max())
            lse = top + float(np.log(np.exp(row - top).sum()))
            for v in children[u]:
                s = partial[u] + float(row[trie.token[v]]) - lse
                partial[v] = s
                if v in end_of:
                    score[end_of[v]], exact[end_of[v]] = s, True
                    best = max(best, s)
                if v in children:
                    frontier.append(v)
    for i, p in enumerate(trie.path):
        if not exact[i]:
            score[i] = min(partial[v] for v in p if v in partial)      # the deepest bound reached
    return score, exact
