"""Run configuration of a swarm: workers, ticks, management, termination."""

from __future__ import annotations

from dataclasses import dataclass, field

from swarm_engine._native import _kernel
from swarm_engine.errors import ConfigError
from swarm_engine.exploration.selectors import SelectorConfig

__all__ = ["ManagementStrategy", "TerminationConfig", "SwarmConfig",
           "MANAGE_KINDS", "TERM_STRATEGIES", "ON_EXHAUSTED"]

MANAGE_KINDS = {
    "every_tick": _kernel.MANAGE_EVERY_TICK,
    "fixed_interval": _kernel.MANAGE_FIXED_INTERVAL,
    "completion_based": _kernel.MANAGE_COMPLETION_BASED,
}
TERM_STRATEGIES = {
    "first_success": _kernel.TERM_FIRST_SUCCESS,
    "all_complete": _kernel.TERM_ALL_COMPLETE,
    "all_succeed": _kernel.TERM_ALL_SUCCEED,
}
ON_EXHAUSTED = {
    "fail": _kernel.EXHAUSTED_FAIL,
    "success": _kernel.EXHAUSTED_SUCCESS,
    "wait": _kernel.EXHAUSTED_WAIT,
}


def _check(value: str, table: dict, what: str) -> None:
    if value not in table:
        raise ConfigError(f"unknown {what} '{value}' (expected one of: {', '.join(table)})")


@dataclass(frozen=True)
class ManagementStrategy:
    """When the manager assigns work.

    every_tick: every tick (LLM-free exploration). fixed_interval: every
    ``interval`` ticks; workers without work wait idle in between.
    completion_based: when no worker is busy, or after ``max_wait_ticks``.
    """

    kind: str = "every_tick"
    interval: int = 10
    max_wait_ticks: int = 10

    def __post_init__(self) -> None:
        _check(self.kind, MANAGE_KINDS, "management strategy")

    @property
    def param(self) -> int:
        return self.interval if self.kind == "fixed_interval" else self.max_wait_ticks


@dataclass(frozen=True)
class TerminationConfig:
    """The termination judge's settings (defaults are the original's)."""

    strategy: str = "first_success"
    on_exhausted: str = "fail"
    max_consecutive_errors: int = 0
    graceful_shutdown_ticks: int = 0
    max_retries: int = 1
    escalate_after: int = 3

    def __post_init__(self) -> None:
        _check(self.strategy, TERM_STRATEGIES, "termination strategy")
        _check(self.on_exhausted, ON_EXHAUSTED, "on_exhausted")
        if self.max_retries > 255:
            raise ConfigError("max_retries must be at most 255")


@dataclass(frozen=True)
class SwarmConfig:
    """Everything about a run that is not the rules or the environment."""

    workers: int = 1
    max_ticks: int = 1000
    tick_duration_ms: float = 0.0
    management: ManagementStrategy = field(default_factory=ManagementStrategy)
    termination: TerminationConfig = field(default_factory=TerminationConfig)
    selector: SelectorConfig = field(default_factory=SelectorConfig)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if self.max_ticks < 0:
            raise ConfigError(f"max_ticks must be >= 0, got {self.max_ticks}")
        if self.tick_duration_ms < 0:
            raise ConfigError(f"tick_duration_ms must be >= 0, got {self.tick_duration_ms}")
