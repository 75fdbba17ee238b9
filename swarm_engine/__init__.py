"""swarm-engine: swarms of AI agents in a compiled tick loop.

The public API::

    from swarm_engine import load_scenario, run_eval, Swarm

    scenario = load_scenario("scenarios/troubleshooting.toml")
    swarm = scenario.swarm(seed=7)
    result = swarm.run()
    report = run_eval(scenario, runs=1000)
"""

from swarm_engine._version import __version__
from swarm_engine.core import (
                               ActionBatch,
                               Assignments,
                               BatchedEnvironment,
                               EnvironmentBinding,
                               EventBatch,
                               Hook,
                               RunResult,
                               SharedState,
                               StepResult,
                               Swarm,
                               SwarmConfig,
                               Verdict,
                               WorkerStates,
                               WorkResult,
)
from swarm_engine.errors import ConfigError, EnvironmentError_, LlmError, ScenarioError, StoreError, SwarmError
from swarm_engine.eval import EvalResult, Scenario, build_report, load_scenario, parse_scenario, run_eval
from swarm_engine.exploration import DependencyGraph, SelectorConfig

__all__ = [
    "__version__",
    "ActionBatch", "Assignments", "BatchedEnvironment", "EnvironmentBinding", "EventBatch", "Hook",
    "RunResult", "SharedState", "StepResult", "Swarm", "SwarmConfig", "Verdict", "WorkerStates",
    "WorkResult", "ConfigError", "EnvironmentError_", "LlmError", "ScenarioError", "StoreError",
    "SwarmError", "EvalResult", "Scenario", "build_report", "load_scenario", "parse_scenario", "run_eval",
    "DependencyGraph", "SelectorConfig",
]
