"""The tick loop, its state, events, hooks and the environment protocol."""

from swarm_engine.core.config import ManagementStrategy, SwarmConfig, TerminationConfig, kernel_kwargs, make_kernel
from swarm_engine.core.environment import (
                                           OUTCOME_ERROR,
                                           OUTCOME_FAIL,
                                           OUTCOME_OK,
                                           ActionBatch,
                                           BatchedEnvironment,
                                           EnvironmentBinding,
                                           StepResult,
)
from swarm_engine.core.events import EventBatch, EventSubscriber, event_id
from swarm_engine.core.hooks import Assignments, Hook, HookedSwarm
from swarm_engine.core.orchestrator import AsyncSource, RunResult, Swarm
from swarm_engine.core.state import SharedState, Verdict, WorkerStates, WorkResult

__all__ = ["ManagementStrategy", "SwarmConfig", "TerminationConfig", "make_kernel", "kernel_kwargs",
           "ActionBatch", "BatchedEnvironment",
           "EnvironmentBinding", "StepResult", "OUTCOME_ERROR", "OUTCOME_FAIL", "OUTCOME_OK",
           "EventBatch", "EventSubscriber", "event_id", "Assignments", "Hook", "HookedSwarm", "AsyncSource",
           "RunResult", "Swarm", "SharedState", "Verdict", "WorkerStates", "WorkResult"]
