"""Run configuration of a swarm: workers, ticks, management, termination; and
its translation into the native kernel (:func:`make_kernel`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarm_engine._native import _kernel
from swarm_engine.core.environment import EnvironmentBinding
from swarm_engine.errors import ConfigError
from swarm_engine.exploration.kernel import Kernel
from swarm_engine.exploration.rules import CompiledRules
from swarm_engine.exploration.selectors import SelectorConfig

__all__ = ["ManagementStrategy", "TerminationConfig", "SwarmConfig", "make_kernel", "kernel_kwargs",
           "start_targets", "MANAGE_KINDS", "TERM_STRATEGIES", "ON_EXHAUSTED"]

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


def start_targets(rules: CompiledRules, env: EnvironmentBinding) -> np.ndarray:
    """The start nodes' targets: a start node that names none gets the
    environment's documented start target for its action (the grid's cell 0,
    the code tree's root), whichever graph (static, custom, planned) made it."""
    tgt = np.asarray(rules.start_tgt, np.int32)
    if env.start_targets is None or tgt.shape[0] == 0:
        return tgt
    own = np.asarray(env.start_targets, np.int32)[np.asarray(rules.start_act, np.intp)]
    return np.where(tgt < 0, own, tgt).astype(np.int32)


def kernel_kwargs(rules: CompiledRules, env: EnvironmentBinding, config: SwarmConfig, *,
                  record_events: bool = False) -> dict[str, Any]:
    """The Kernel constructor's arguments for ``config``; the pure-Python
    reference kernel takes the same ones."""
    sel = config.selector
    term = config.termination
    return dict(
        n_actions=len(rules.is_terminal), succ_ptr=rules.succ_ptr, succ_act=rules.succ_act,
        is_terminal=rules.is_terminal, var_ptr=rules.var_ptr, var_val=rules.var_val,
        start_act=rules.start_act, start_tgt=start_targets(rules, env), start_arg=rules.start_arg,
        n_workers=config.workers, max_ticks=config.max_ticks,
        term_strategy=TERM_STRATEGIES[term.strategy], on_exhausted=ON_EXHAUSTED[term.on_exhausted],
        max_consec_errors=term.max_consecutive_errors, max_retries=term.max_retries,
        escalate_after=term.escalate_after, manage_kind=MANAGE_KINDS[config.management.kind],
        manage_param=config.management.param, granular=sel.granularity == "action_target",
        selector=sel.kind, ucb1_c=sel.ucb1_c, learning_weight=sel.learning_weight,
        greedy_weight=sel.greedy_weight, maturity_threshold=sel.maturity_threshold,
        error_rate_threshold=sel.error_rate_threshold, bonus3=sel.bonus,
        env_kind=env.kind, env_params=env.params, env_ops=env.ops,
        env_max_disc=env.max_discoveries, record_events=record_events,
        act_kind=env.act_kind, env_args=env.arg_ops(rules.args.values) if env.arg_names else None,
        env_completes=env.completes,
    )


def make_kernel(rules: CompiledRules, env: EnvironmentBinding, config: SwarmConfig, *,
                record_events: bool = False, node_capacity: int = 1024, event_capacity: int = 4096) -> Kernel:
    """One native :class:`~swarm_engine.exploration.Kernel` for ``config``, with
    its learned child ordering (``config.selector.prior``) installed."""
    k = Kernel(**kernel_kwargs(rules, env, config, record_events=record_events),
               node_capacity=node_capacity, event_capacity=event_capacity)
    if config.selector.prior is not None:
        k.set_prior(*config.selector.prior)
    return k
