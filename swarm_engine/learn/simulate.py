"""Simulated evals: run a scenario with a given selector on given seeds, fast.

``swarm learn once`` compares candidate models this way. The engine runs the
scenario's environment itself (native batches, or one swarm per seed for a
Python environment); an LLM-managed scenario runs with its bandit alone, so
the search tunes the selector the model falls back to.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from swarm_engine.eval.loader import Scenario
from swarm_engine.exploration.selectors import SelectorConfig

__all__ = ["SimResult", "simulate", "with_selector"]


@dataclass(frozen=True)
class SimResult:
    runs: int
    success_rate: float
    mean_actions: float          # mean actions of the successful runs (inf when none)
    actions_se: float            # its standard error
    seconds: float

    def better_than(self, other: SimResult, tol: float = 0.005) -> bool:
        """Strictly better: a clearly higher success rate, or the same one
        (within ``tol``) with fewer actions to success."""
        if self.success_rate > other.success_rate + tol:
            return True
        if self.success_rate < other.success_rate - tol:
            return False
        return self.mean_actions < other.mean_actions

    def not_worse_than(self, other: SimResult, tol: float = 0.005) -> bool:
        return self.success_rate >= other.success_rate - tol and self.mean_actions <= other.mean_actions

    def ci95(self) -> tuple[float, float]:
        return self.mean_actions - 1.96 * self.actions_se, self.mean_actions + 1.96 * self.actions_se

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.ci95()
        return {"runs": self.runs, "success_rate": round(self.success_rate, 6),
                "mean_actions_to_success": round(self.mean_actions, 4) if math.isfinite(self.mean_actions) else None,
                "mean_actions_ci95": [round(lo, 4), round(hi, 4)] if math.isfinite(self.mean_actions) else None,
                "seconds": round(self.seconds, 4)}


def with_selector(scenario: Scenario, selector: SelectorConfig) -> Scenario:
    return dataclasses.replace(scenario, config=dataclasses.replace(scenario.config, selector=selector))


def simulate(scenario: Scenario, selector: SelectorConfig, seed: int, runs: int, jobs: int | None = 1,
             evaluate: Callable[..., Any] | None = None) -> SimResult:
    """Run ``runs`` seeds from ``seed`` with ``selector`` (bandit only, no LLM)
    on ``jobs`` threads or processes (0 or None: every core; the same runs).

    ``evaluate`` runs the eval instead of :func:`run_eval`, with its arguments
    (``learn once --cluster`` passes a Ray cluster's)."""
    from swarm_engine.eval.runner import run_eval

    sc = with_selector(scenario, selector)
    res = evaluate(sc, runs, seed, llm=False) if evaluate is not None else run_eval(sc, runs, seed, llm=False,
                                                                                    jobs=jobs)
    ok = res.success
    acts = res.actions[ok].astype(np.float64)
    n = int(acts.shape[0])
    mean = float(acts.mean()) if n else math.inf
    se = float(acts.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return SimResult(runs=res.runs, success_rate=float(ok.mean()) if res.runs else 0.0, mean_actions=mean,
                     actions_se=se, seconds=res.engine_seconds)
