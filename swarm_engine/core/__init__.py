"""The tick loop, its state, events, hooks and the environment protocol."""

from swarm_engine.core.config import ManagementStrategy, SwarmConfig, TerminationConfig
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
from swarm_engine.core.hooks import Assignments, Hook
from swarm_engine.core.orchestrator import AsyncSource, RunResult, Swarm
from swarm_engine.core.state import SharedState, Verdict, WorkerStates, WorkResult

__all__ = ["ManagementStrategy", "SwarmConfig", "TerminationConfig", "ActionBatch", "BatchedEnvironment",
           "EnvironmentBinding", "StepResult", "OUTCOME_ERROR", "OUTCOME_FAIL", "OUTCOME_OK",
           "EventBatch", "EventSubscriber", "event_id", "Assignments", "Hook", "AsyncSource",
           "RunResult", "Swarm", "SharedState", "Verdict", "WorkerStates", "WorkResult"]
