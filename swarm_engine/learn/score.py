"""ScoreModel: confidences learned from :class:`LearnStats`, and the dense
bonus table the native kernel's selectors add (UCB1 / Thompson with
``learning_weight``, Greedy with ``greedy_weight``).

Formulas (s = count in success episodes, f = count in failure episodes;
every rate is Laplace-smoothed, ``rate(s, f) = (s + 1) / (s + f + 2)``):

* ``ngram["pp->p->a"]      = rate(*trigrams["pp->p->a"])``
* ``transition["p->a"]     = rate(*transitions["p->a"])``
* ``action[a]              = rate(sum_p transitions["p->a"])`` (episode success
  rate of the episodes that used ``a``, counted per occurrence)
* ``contextual["p->a"]     = rate(*contextual["p->a"])`` (the action's own ok/fail)

``confidence(a, prev, prev_prev)`` (``None`` = no previous action, i.e. START):

1. ``fallback`` = ``transition[prev->a]`` if seen, else ``action[a]`` if seen,
   else ``unseen`` (0.0 by default);
2. if ``prev`` is not None and the trigram ``prev_prev->prev->a`` was seen
   (``prev_prev`` None is START), the result is
   ``ngram_weight * ngram + (1 - ngram_weight) * fallback`` (pure n-gram at the
   default ``ngram_weight = 1.0``); otherwise ``fallback``.

All values lie in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from swarm_engine.learn.stats import SEP, START, LearnStats

__all__ = ["ScoreModel", "rate"]


def rate(s: int, f: int) -> float:
    """Laplace-smoothed success rate (s + 1) / (s + f + 2)."""
    return (s + 1.0) / (s + f + 2.0)


class ScoreModel:
    def __init__(self, action: dict[str, float], transition: dict[str, float],
                 contextual: dict[str, float], ngram: dict[str, float], *,
                 ngram_weight: float = 1.0, unseen: float = 0.0) -> None:
        if not 0.0 <= ngram_weight <= 1.0:
            raise ValueError("ngram_weight must lie in [0, 1]")
        self.action = action
        self.transition = transition
        self.contextual = contextual
        self.ngram = ngram
        self.ngram_weight = float(ngram_weight)
        self.unseen = float(unseen)

    @classmethod
    def from_stats(cls, stats: LearnStats, ngram_weight: float = 1.0, unseen: float = 0.0) -> ScoreModel:
        per_action: dict[str, list[int]] = {}
        for key, (s, f) in stats.transitions.items():
            a = key.rsplit(SEP, 1)[1]
            v = per_action.setdefault(a, [0, 0])
            v[0] += s
            v[1] += f
        return cls(action={a: rate(s, f) for a, (s, f) in per_action.items()},
                   transition={k: rate(s, f) for k, (s, f) in stats.transitions.items()},
                   contextual={k: rate(s, f) for k, (s, f) in stats.contextual.items()},
                   ngram={k: rate(s, f) for k, (s, f) in stats.trigrams.items()},
                   ngram_weight=ngram_weight, unseen=unseen)

    def confidence(self, action: str, prev: str | None = None, prev_prev: str | None = None) -> float:
        p = START if prev is None else prev
        fallback = self.transition.get(p + SEP + action)
        if fallback is None:
            fallback = self.action.get(action, self.unseen)
        if prev is not None:
            pp = START if prev_prev is None else prev_prev
            ng = self.ngram.get(pp + SEP + prev + SEP + action)
            if ng is not None:
                return self.ngram_weight * ng + (1.0 - self.ngram_weight) * fallback
        return fallback

    def bonus_table(self, action_names: Sequence[str]) -> np.ndarray:
        """The kernel's dense bonus table, shape ((A+1)**2 * A,), float64.

        Entry ``[((pp+1)*(A+1) + (p+1))*A + a]`` = ``confidence(names[a],
        names[p], names[pp])``; index -1 (stored at 0) = no previous action.
        A table row with no previous action but a prev_prev (unreachable) gets
        the no-previous-action values.
        """
        names = list(action_names)
        A = len(names)
        table = np.zeros((A + 1, A + 1, A), dtype=np.float64)
        for pi in range(A + 1):
            prev = names[pi - 1] if pi else None
            for ppi in range(A + 1):
                pp = names[ppi - 1] if (ppi and prev is not None) else None
                for a in range(A):
                    table[ppi, pi, a] = self.confidence(names[a], prev, pp)
        return table.ravel()
