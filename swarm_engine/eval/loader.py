"""``load_scenario()``: TOML file -> validated, compiled :class:`Scenario`.

Steps: read the file (regular files only, at most 4 MiB of UTF-8), parse
TOML (syntax errors keep their line; nesting is bounded), pick a variant and
deep-merge its overrides (replacing the tables it lists in ``replace``),
convert to the msgspec schema (errors name the field path, its line, the
value and the range), check names and cross-field rules, bind the
environment, build and validate the dependency graph, derive the
SwarmConfig, and check that a run fits the memory limit. Every failure is
one ScenarioError line.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm_engine.core.config import ManagementStrategy, SwarmConfig, TerminationConfig
from swarm_engine.core.environment import EnvironmentBinding
from swarm_engine.core.orchestrator import Swarm
from swarm_engine.errors import ConfigError, ScenarioError
from swarm_engine.eval import checks, schema
from swarm_engine.eval.conditions import check_metrics
from swarm_engine.eval.env_params import check_param_combinations, check_raw_params
from swarm_engine.eval.environments import bind_environment, default_graph
from swarm_engine.eval.memory import check_memory, estimate, memory_limit
from swarm_engine.exploration.rules import CompiledRules, DependencyGraph
from swarm_engine.exploration.selectors import SelectorConfig
from swarm_engine.inputs import convert, limits, locate, parse_path, parse_toml, read_text

__all__ = ["Scenario", "load_scenario", "parse_scenario", "deep_merge", "list_variants"]

_STATIC_PATTERNS = {"", "code_search", "file_exploration"}


@dataclass
class Scenario:
    """A loaded scenario: the validated file, its environment and compiled rules."""

    spec: schema.ScenarioFile
    path: str | None
    sha256: str
    variant: str | None
    graph: DependencyGraph | None         # None until planned (dependency_graph.type = "llm")
    binding: EnvironmentBinding
    config: SwarmConfig
    rules: CompiledRules | None
    # what it was built from, so another process or node can rebuild it
    # (parse_scenario(text, path, variant, overrides)) and check its sha256
    text: str = ""
    overrides: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.spec.meta.name

    @property
    def id(self) -> str:
        return self.spec.meta.id or Path(self.path or "scenario").stem

    @property
    def actions(self) -> list[str]:
        return [a.name for a in self.spec.actions.actions]

    @property
    def llm_managed(self) -> bool:
        return self.spec.llm.provider != "none"

    def plan(self, runner) -> None:
        """Plan the dependency graph with the LLM (type "llm"; once, at task start)."""
        if self.graph is not None:
            return
        from swarm_engine.llm.planner import plan_graph

        actions = [(a.name, a.description) for a in self.spec.actions.actions]
        self.graph = plan_graph(runner, self.spec.task.goal, actions, source=self.path)
        self.rules = self.graph.compile()

    def planned_rules(self) -> CompiledRules:
        """The compiled rules; a ScenarioError while the LLM has yet to plan them."""
        if self.rules is None:
            raise ScenarioError("the dependency graph is planned by the LLM: call Scenario.plan(runner) "
                                "first (swarm eval does)", path=self.path, field="dependency_graph.type")
        return self.rules

    def swarm(self, seed: int = 42, *, record_events: bool = False, config: SwarmConfig | None = None) -> Swarm:
        """A :class:`swarm_engine.core.orchestrator.Swarm` ready to run this scenario."""
        return Swarm(self.planned_rules(), self.binding, config or self.config, seed=seed,
                     record_events=record_events, action_names=self.actions)


def deep_merge(base: dict, override: dict, replace: Collection[str] = ()) -> dict:
    """Tables merge key by key; any other value (arrays too) replaces, and so
    does a table whose dotted path is in ``replace`` (``"dependency_graph"``)."""
    return _merge(base, override, set(replace), "")


def _merge(base: dict, override: dict, replace: set[str], prefix: str) -> dict:
    out = dict(base)
    for key, value in override.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict) and path not in replace:
            out[key] = _merge(out[key], value, replace, path + ".")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _located(exc: ScenarioError, text: str, source: str | None) -> ScenarioError:
    """``exc`` with its file and, when it names a field, that field's line."""
    line = exc.line or (locate(text, parse_path(exc.field)) if exc.field else None)
    return ScenarioError(exc.message, path=source, line=line, field=exc.field)


def list_variants(raw: dict) -> list[tuple[str, str]]:
    return [(v.get("name", "?"), v.get("description", "")) for v in raw.get("variants", []) or []
            if isinstance(v, dict)]


def _replace_paths(v: dict, index: int, overrides: dict, source: str | None) -> list[str]:
    """A variant's ``replace`` list: dotted paths of tables its overrides give."""
    paths = v.get("replace", [])
    field = f"variants[{index}].replace"
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ScenarioError("expected a list of dotted table names, e.g. [\"dependency_graph\"]", path=source,
                            field=field)
    for j, path in enumerate(paths):
        node: object = overrides
        for key in path.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ScenarioError(f"'{path}' is not a table of this variant's overrides (replace names tables "
                                "that overrides gives in full)", path=source, field=f"{field}[{j}]")
    return paths


def _apply_variant(raw: dict, variant: str | None, source: str | None) -> dict:
    if variant is None:
        return raw
    found = [(i, v) for i, v in enumerate(raw.get("variants", []) or [])
             if isinstance(v, dict) and v.get("name") == variant]
    if len(found) > 1:
        raise ScenarioError(f"variant '{variant}' is defined twice (variants[{found[0][0]}] and "
                            f"variants[{found[1][0]}])", path=source, field=f"variants[{found[1][0]}].name")
    for i, v in found:
        overrides = v.get("overrides", {})
        if not isinstance(overrides, dict):
            raise ScenarioError("variant overrides must be a table", path=source,
                                field=f"variants[{variant}].overrides")
        bad = [k for k in overrides if k in ("variants", "meta")]
        if bad:
            raise ScenarioError(f"a variant cannot override [{bad[0]}]", path=source,
                                field=f"variants[{variant}].overrides.{bad[0]}")
        return deep_merge(raw, overrides, _replace_paths(v, i, overrides, source))
    names = [n for n, _ in list_variants(raw)]
    raise ScenarioError(f"unknown variant '{variant}' (available: {', '.join(names) or 'none'})",
                        path=source, field="variants")


def _graph(spec: schema.ScenarioFile, binding: EnvironmentBinding, text: str,
           source: str | None) -> DependencyGraph | None:
    actions = [a.name for a in spec.actions.actions]
    g = spec.dependency_graph
    if isinstance(g, schema.StaticGraph):
        if g.pattern not in _STATIC_PATTERNS and g.pattern != binding.name:
            raise ScenarioError(f"unknown static pattern '{g.pattern}' (expected '' or '{binding.name}')",
                                path=source, line=locate(text, ["dependency_graph", "pattern"]),
                                field="dependency_graph.pattern")
        return default_graph(binding, actions, source)
    if isinstance(g, schema.LlmGraph):
        if spec.llm.provider == "none":
            raise ScenarioError("dependency_graph type 'llm' needs an [llm] provider to plan the graph "
                                "(or use type = \"static\" / \"custom\")",
                                path=source, line=locate(text, ["dependency_graph", "type"]),
                                field="dependency_graph.type")
        return None                      # planned by the LLM at task start: Scenario.plan()
    variants = {}
    for i, pv in enumerate(g.param_variants):
        if pv.action in variants:
            raise ScenarioError(f"action '{pv.action}' has param_variants twice", path=source,
                                line=locate(text, ["dependency_graph", "param_variants", i, "action"]),
                                field=f"dependency_graph.param_variants[{i}].action")
        variants[pv.action] = (pv.key, [str(v) for v in pv.values])
    graph = DependencyGraph(actions=actions, edges=[(e.from_, e.to, e.confidence) for e in g.edges],
                            start=list(g.start), terminal=list(g.terminal), param_variants=variants)
    try:
        graph.validate(source)
    except ScenarioError as exc:
        exc.line = locate(text, parse_path(exc.field or ""))
        raise ScenarioError(exc.message, path=source, line=exc.line, field=exc.field) from None
    cycle = graph.find_cycle()
    if cycle and not g.allow_cycles:
        raise ScenarioError(f"the graph has a cycle: {' -> '.join(cycle)} (set allow_cycles = true "
                            "if that is intended; dedup then ends the search)", path=source,
                            line=locate(text, ["dependency_graph", "edges"]), field="dependency_graph.edges")
    return graph


def _config(spec: schema.ScenarioFile, source: str | None) -> SwarmConfig:
    app = spec.app_config
    sel, term, man = app.selection, app.termination, app.management
    try:
        return SwarmConfig(
            workers=spec.agents.worker_count(), max_ticks=app.max_ticks,
            tick_duration_ms=app.tick_duration_ms,
            management=ManagementStrategy(man.type, man.interval, man.max_wait_ticks),
            termination=TerminationConfig(term.strategy, term.on_exhausted, term.max_consecutive_errors,
                                          term.graceful_shutdown_ticks, term.max_retries,
                                          term.escalate_after),
            selector=SelectorConfig(sel.strategy, sel.ucb1_c, sel.learning_weight, sel.greedy_weight,
                                    sel.ngram_weight, sel.maturity_threshold, sel.error_rate_threshold,
                                    sel.granularity))
    except ConfigError as exc:
        raise ScenarioError(str(exc), path=source, field="app_config") from None


def parse_scenario(text: str, source: str | None = None, variant: str | None = None,
                   overrides: dict[str, Any] | None = None, *, memory: str | None = None) -> Scenario:
    """Load a scenario from TOML text (``source`` names it in errors).

    ``memory`` is the memory limit a run must fit (``"8G"``, ``"75%"``,
    ``"off"``; None: $SWARM_MEMORY_LIMIT, else 50% of RAM)."""
    raw = parse_toml(text, source, ScenarioError)
    raw = _apply_variant(raw, variant, source)
    if overrides:
        raw = deep_merge(raw, overrides)
    checks.check_llm_numbers(raw, text, source)      # first: the whole range, not the LLM struct's lower end
    spec = convert(raw, schema.ScenarioFile, text=text, source=source, error=ScenarioError)
    try:
        checks.check_spec(spec, source)
    except ScenarioError as exc:
        raise _located(exc, text, source) from None
    actions = [a.name for a in spec.actions.actions]
    seen: dict[str, int] = {}
    for i, name in enumerate(actions):
        if name in seen:
            raise ScenarioError(f"action '{name}' is defined twice", path=source,
                                line=locate(text, ["actions", "actions", i, "name"]),
                                field=f"actions.actions[{i}].name")
        seen[name] = i
    env_type, params = spec.environment.env_type, dict(spec.environment.params)
    try:
        check_raw_params(env_type, params, source)
        binding = bind_environment(env_type, params, actions, source)
        if isinstance(binding.extra.get("params"), dict):
            check_param_combinations(binding.name, binding.extra["params"], source)
        checks.check_bound(spec, binding, source)
        check_metrics(spec, source)
    except ScenarioError as exc:
        raise _located(exc, text, source) from None
    graph = _graph(spec, binding, text, source)
    config = _config(spec, source)
    rules = graph.compile() if graph is not None else None
    try:
        check_memory(estimate(binding, config, rules, len(actions)), memory_limit(memory), source=source)
    except ScenarioError as exc:
        raise _located(exc, text, source) from None
    return Scenario(spec=spec, path=source, sha256=hashlib.sha256(text.encode()).hexdigest(),
                    variant=variant, graph=graph, binding=binding, config=config, rules=rules,
                    text=text, overrides=copy.deepcopy(overrides) if overrides else None)


def load_scenario(path: str | Path, variant: str | None = None,
                  overrides: dict[str, Any] | None = None, *, memory: str | None = None) -> Scenario:
    """Load and validate a scenario file; every problem is one ScenarioError line.

    Only regular files are read, at most 4 MiB (``inputs.limits.MAX_SCENARIO_BYTES``)."""
    text = read_text(path, limit=limits.MAX_SCENARIO_BYTES, error=ScenarioError)
    return parse_scenario(text, str(path), variant, overrides, memory=memory)
