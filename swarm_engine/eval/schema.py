"""The scenario file format as msgspec Structs (TOML -> dict -> these).

Section and field names follow the original SwarmEngine's scenario files, so
a file written for it loads unchanged where the sections mean the same thing.
Every struct is frozen, keyword-only and rejects unknown fields: a typo is an
error with its field path, never a silently ignored setting. Each subclass
repeats ``frozen=True``: msgspec inherits it from Base, but type checkers read
class options per class (a subclass without it is "non-frozen" to mypy).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from swarm_engine.inputs import limits
from swarm_engine.llm.spec import Llm  # the [llm] section belongs to the LLM layer (re-exported)

__all__ = [
    "Base",
    "Meta_",
    "TaskContext",
    "Task",
    "Llm",
    "Manager",
    "ActionParam",
    "ActionDef",
    "Actions",
    "Management",
    "Selection",
    "Termination",
    "AppConfig",
    "Environment",
    "WorkerTemplate",
    "Agents",
    "Condition",
    "Conditions",
    "Edge",
    "ParamVariant",
    "StaticGraph",
    "CustomGraph",
    "LlmGraph",
    "Milestone",
    "Variant",
    "ScenarioFile",
    "CompareOp",
]

# Every number has both bounds (swarm_engine.inputs.limits says why each is what
# it is; docs/scenarios.md lists them): a value out of range is a load error
# naming the field and the range, never an OverflowError in the kernel.
PositiveInt = limits.PositiveCount32
NonNegInt = limits.Count32
Probability = limits.Probability
Name = Annotated[str, Meta(min_length=1)]
CompareOp = Literal["eq", "ne", "gt", "gte", "lt", "lte"]


class Base(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Common options of every section."""


class Meta_(Base, frozen=True):
    name: Name
    id: str = ""
    version: str = "1.0.0"
    description: str = ""
    tags: list[str] = []


class TaskContext(Base, frozen=True):
    target_path: str | None = None
    # free-form extra context shown to LLM managers
    notes: str | None = None
    data: dict[str, Any] = {}


class Task(Base, frozen=True):
    goal: Name
    expected: str | None = None
    context: TaskContext = TaskContext()


class Manager(Base, frozen=True):
    process_every_tick: bool = False
    process_interval_ticks: PositiveInt = 5
    immediate_on_escalation: bool = True
    confidence_threshold: Probability = 0.3


class ActionParam(Base, frozen=True):
    name: Name
    description: str = ""
    required: bool = False


class ActionDef(Base, frozen=True):
    name: Name
    description: str = ""
    category: Literal["node_expand", "node_state_change"] = "node_expand"
    params: list[ActionParam] = []


class Actions(Base, frozen=True):
    actions: Annotated[list[ActionDef], Meta(min_length=1)]


class Management(Base, frozen=True):
    type: Literal["every_tick", "fixed_interval", "completion_based"] = "every_tick"
    interval: PositiveInt = 10          # fixed_interval
    max_wait_ticks: PositiveInt = 10    # completion_based


class Selection(Base, frozen=True):
    strategy: Literal["fifo", "ucb1", "thompson", "thompson_sampled", "greedy", "adaptive"] = "ucb1"
    ucb1_c: limits.Weight = 1.4142135623730951
    learning_weight: limits.Weight = 0.3
    greedy_weight: limits.Weight = 1.0
    ngram_weight: limits.Weight = 1.0
    maturity_threshold: NonNegInt = 10
    error_rate_threshold: Probability = 0.3
    # statistics and frontier groups per (action, target) or per action
    granularity: Literal["action_target", "action"] = "action_target"


class Termination(Base, frozen=True):
    strategy: Literal["first_success", "all_complete", "all_succeed"] = "first_success"
    on_exhausted: Literal["fail", "success", "wait"] = "fail"
    max_consecutive_errors: limits.Consecutive = 0   # 0 = no limit
    graceful_shutdown_ticks: NonNegInt = 0
    max_retries: Annotated[int, Meta(ge=0, le=255)] = 1   # of a node after a transient error
    escalate_after: limits.Consecutive = 3      # consecutive failures before a worker escalates


class AppConfig(Base, frozen=True):
    tick_duration_ms: limits.TickMs = 0.0       # 0 = free-running
    max_ticks: limits.Ticks = 1000              # 0 = unlimited
    management: Management = Management()
    selection: Selection = Selection()
    termination: Termination = Termination()


class Environment(Base, frozen=True):
    env_type: Name
    params: dict[str, Any] = {}


class WorkerTemplate(Base, frozen=True):
    count: limits.Workers = 1
    id_prefix: str = "worker"
    role: str = ""


class Agents(Base, frozen=True):
    workers: limits.Workers | list[WorkerTemplate] = 1
    managers: Annotated[int, Meta(ge=0, le=65_535)] | list[dict[str, Any]] = 1

    def worker_count(self) -> int:
        if isinstance(self.workers, int):
            return self.workers
        return sum(t.count for t in self.workers)


class Condition(Base, frozen=True):
    metric: Name
    op: CompareOp
    value: bool | limits.Int64 | limits.FiniteFloat | str
    name: str = ""


class Conditions(Base, frozen=True):
    success: list[Condition] = []
    failure: list[Condition] = []
    on_timeout: Literal["fail", "success", "partial"] = "fail"


class Edge(Base, rename={"from_": "from"}, kw_only=True, frozen=True):
    from_: Name
    to: Name
    confidence: Probability = 1.0


class ParamVariant(Base, frozen=True):
    action: Name
    key: Name
    values: Annotated[list[str | limits.Int64], Meta(min_length=1)]


class StaticGraph(Base, tag="static", tag_field="type", kw_only=True, frozen=True):
    pattern: str = ""          # "" = the environment's own graph


class CustomGraph(Base, tag="custom", tag_field="type", kw_only=True, frozen=True):
    edges: list[Edge] = []
    start: Annotated[list[Name], Meta(min_length=1)]
    terminal: list[Name] = []
    param_variants: list[ParamVariant] = []
    allow_cycles: bool = False


class LlmGraph(Base, tag="llm", tag_field="type", kw_only=True, frozen=True):
    hint: str = ""


class Milestone(Base, frozen=True):
    name: Name
    condition: Condition
    weight: limits.Weight = 1.0
    description: str = ""
    partial: bool = False
    partial_config: dict[str, Any] = {}


class Variant(Base, frozen=True):
    name: Name
    description: str = ""
    overrides: dict[str, Any] = {}
    # dotted tables of ``overrides`` that replace the file's table instead of
    # merging into it (e.g. ["dependency_graph"] to switch its type)
    replace: list[Name] = []


class ScenarioFile(Base, frozen=True):
    meta: Meta_
    task: Task
    actions: Actions
    environment: Environment
    llm: Llm = Llm()
    manager: Manager = Manager()
    batch_processor: dict[str, Any] = {}
    app_config: AppConfig = AppConfig()
    agents: Agents = Agents()
    conditions: Conditions = Conditions()
    dependency_graph: StaticGraph | CustomGraph | LlmGraph = StaticGraph()
    milestones: list[Milestone] = []
    variants: list[Variant] = []
