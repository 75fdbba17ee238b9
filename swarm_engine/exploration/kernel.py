"""Builds the native kernel from rules, an environment binding and a config."""

from __future__ import annotations

from typing import Any

from swarm_engine._native import _kernel
from swarm_engine.core.environment import EnvironmentBinding
from swarm_engine.exploration.rules import CompiledRules

__all__ = ["make_kernel", "kernel_kwargs", "Kernel"]

Kernel = _kernel.Kernel


def kernel_kwargs(rules: CompiledRules, env: EnvironmentBinding, config, *,
                  record_events: bool = False) -> dict[str, Any]:
    """The Kernel constructor's arguments for ``config`` (a SwarmConfig); the
    pure-Python reference kernel takes the same ones."""
    from swarm_engine.core.config import MANAGE_KINDS, ON_EXHAUSTED, TERM_STRATEGIES

    sel = config.selector
    term = config.termination
    return dict(
        n_actions=len(rules.is_terminal), succ_ptr=rules.succ_ptr, succ_act=rules.succ_act,
        is_terminal=rules.is_terminal, var_ptr=rules.var_ptr, var_val=rules.var_val,
        start_act=rules.start_act, start_tgt=rules.start_tgt, start_arg=rules.start_arg,
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
    )


def make_kernel(rules: CompiledRules, env: EnvironmentBinding, config, *, record_events: bool = False,
                node_capacity: int = 1024, event_capacity: int = 4096) -> Kernel:
    """One Kernel for ``config`` (a :class:`swarm_engine.core.config.SwarmConfig`), with
    its learned child ordering (``config.selector.prior``) installed."""
    k = _kernel.Kernel(**kernel_kwargs(rules, env, config, record_events=record_events),
                       node_capacity=node_capacity, event_capacity=event_capacity)
    if config.selector.prior is not None:
        k.set_prior(*config.selector.prior)
    return k
