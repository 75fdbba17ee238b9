"""Selector configuration: the Python names of the native selection kinds.

Scores (REFERENCE.md, per (action, target) statistics, else per action):

- fifo: frontier order
- ucb1: rate + c * sqrt(ln N / n) + learning_weight * bonus; unvisited first
- thompson: (s + 1) / (n + 2) + learning_weight * bonus (the original, no sampling)
- thompson_sampled: a Beta(s + 1, f + 1) draw + learning_weight * bonus
- greedy: greedy_weight * bonus (ties in frontier order)
- adaptive: ucb1 below maturity_threshold visits, then greedy while the error
  rate is under error_rate_threshold, else thompson
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarm_engine._native import _kernel
from swarm_engine.errors import ConfigError

__all__ = ["SelectorConfig", "SELECTOR_KINDS"]

SELECTOR_KINDS: dict[str, int] = {
    "fifo": _kernel.SEL_FIFO,
    "ucb1": _kernel.SEL_UCB1,
    "thompson": _kernel.SEL_THOMPSON,
    "thompson_sampled": _kernel.SEL_THOMPSON_SAMPLED,
    "greedy": _kernel.SEL_GREEDY,
    "adaptive": _kernel.SEL_ADAPTIVE,
}


@dataclass(frozen=True)
class SelectorConfig:
    """Which selector and its parameters (defaults are the original's)."""

    strategy: str = "ucb1"
    ucb1_c: float = 2.0 ** 0.5
    learning_weight: float = 0.3
    greedy_weight: float = 1.0
    ngram_weight: float = 1.0
    maturity_threshold: int = 10
    error_rate_threshold: float = 0.3
    granularity: str = "action_target"
    bonus: np.ndarray | None = None   # ((A+1)^2 * A,) learned bonus table; None = zero
    prior: tuple | None = None        # (target (A, T) | None, arg (A, V) | None) child-ordering scores

    def __post_init__(self) -> None:
        if self.strategy not in SELECTOR_KINDS:
            raise ConfigError(f"unknown selection strategy '{self.strategy}' "
                              f"(expected one of: {', '.join(SELECTOR_KINDS)})")
        if self.granularity not in ("action_target", "action"):
            raise ConfigError(f"unknown granularity '{self.granularity}' (expected action_target or action)")

    @property
    def kind(self) -> int:
        return SELECTOR_KINDS[self.strategy]
