"""What the schema cannot say about a scenario: cross-field rules, names,
uniqueness, and the kernel's limits that depend on more than one field.

Each check raises one :class:`~swarm_engine.errors.ScenarioError` with the
field it is about; the loader adds the line. They run after the msgspec
conversion (types and ranges are right by then) and, for the ones that need
the environment, after binding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from swarm_engine._native import _envs, _kernel
from swarm_engine.core.environment import EnvironmentBinding
from swarm_engine.errors import ScenarioError
from swarm_engine.eval import schema
from swarm_engine.inputs import bad_name_char, convert, limits

__all__ = ["check_spec", "check_llm_numbers", "check_bound", "names"]


class _LlmNumbers(msgspec.Struct, kw_only=True, frozen=True):
    """The numeric fields of ``[llm]`` with their ranges (the section's struct
    belongs to the LLM layer and bounds them below only)."""

    temperature: Annotated[float, Meta(ge=0.0, le=100.0)] = 0.0
    max_tokens: Annotated[int, Meta(ge=1, le=2**20)] = 64
    timeout: Annotated[float, Meta(gt=0.0, le=86_400.0)] = 30.0
    seed: Annotated[int, Meta(ge=0, le=limits.INT32_MAX)] | None = None
    n_ctx: Annotated[int, Meta(ge=1, le=2**24)] = 4096
    n_gpu_layers: Annotated[int, Meta(ge=-1, le=65_535)] = 0
    parallel: Annotated[int, Meta(ge=1, le=1024)] = 8


class _LlmSection(msgspec.Struct, kw_only=True, frozen=True):
    llm: _LlmNumbers = _LlmNumbers()


def check_llm_numbers(raw: dict[str, Any], text: str, source: str | None) -> None:
    """``[llm]``'s numbers in range (before the schema: its struct bounds them below only)."""
    convert({"llm": raw.get("llm", {})}, _LlmSection, text=text, source=source, error=ScenarioError)


def names(spec: schema.ScenarioFile) -> Iterator[tuple[str, str]]:
    """(field, value) of every name in the scenario: what tables, reports and
    matching show or compare."""
    yield "meta.name", spec.meta.name
    yield "meta.id", spec.meta.id
    for i, tag in enumerate(spec.meta.tags):
        yield f"meta.tags[{i}]", tag
    for i, a in enumerate(spec.actions.actions):
        yield f"actions.actions[{i}].name", a.name
        for j, p in enumerate(a.params):
            yield f"actions.actions[{i}].params[{j}].name", p.name
    for kind in ("success", "failure"):
        for i, c in enumerate(getattr(spec.conditions, kind)):
            yield f"conditions.{kind}[{i}].name", c.name
            yield f"conditions.{kind}[{i}].metric", c.metric
    for i, m in enumerate(spec.milestones):
        yield f"milestones[{i}].name", m.name
    for i, v in enumerate(spec.variants):
        yield f"variants[{i}].name", v.name
    if isinstance(spec.agents.workers, list):
        for i, t in enumerate(spec.agents.workers):
            yield f"agents.workers[{i}].id_prefix", t.id_prefix
            yield f"agents.workers[{i}].role", t.role
    g = spec.dependency_graph
    if isinstance(g, schema.CustomGraph):
        for i, pv in enumerate(g.param_variants):
            yield f"dependency_graph.param_variants[{i}].key", pv.key
            for j, value in enumerate(pv.values):
                if isinstance(value, str):
                    yield f"dependency_graph.param_variants[{i}].values[{j}]", value


def _unique(items: list[tuple[str, str]], what: str, source: str | None) -> None:
    seen: dict[str, str] = {}
    for field, name in items:
        if name in seen:
            raise ScenarioError(f"{what} '{name}' is defined twice (first at {seen[name]})", path=source,
                                field=field)
        seen[name] = field


def check_spec(spec: schema.ScenarioFile, source: str | None) -> None:
    """Names, uniqueness and counts: everything that needs no environment."""
    for field, value in names(spec):
        bad = bad_name_char(value)
        if bad:
            raise ScenarioError(f"contains {bad}: invisible and bidi control characters are not allowed in "
                                "names", path=source, field=field)
    n_actions = len(spec.actions.actions)
    if n_actions > _kernel.LIMITS["actions"]:
        raise ScenarioError(f"got {n_actions} actions, expected at most {_kernel.LIMITS['actions']} (the packed "
                            "node key)", path=source, field="actions.actions")
    workers = spec.agents.worker_count()
    if workers > limits.MAX_WORKERS:
        raise ScenarioError(f"the templates add up to {workers} workers, expected at most {limits.MAX_WORKERS}",
                            path=source, field="agents.workers")
    _unique([(f"variants[{i}].name", v.name) for i, v in enumerate(spec.variants)], "variant", source)
    _unique([(f"milestones[{i}].name", m.name) for i, m in enumerate(spec.milestones)], "milestone", source)
    labels = [(f"conditions.{kind}[{i}].name", c.name or f"{kind}[{i}]")
              for kind in ("success", "failure") for i, c in enumerate(getattr(spec.conditions, kind))]
    _unique(labels, "condition", source)


def check_bound(spec: schema.ScenarioFile, binding: EnvironmentBinding, source: str | None) -> None:
    """Rules between the run settings and the bound environment."""
    term = spec.app_config.termination
    if term.on_exhausted == "wait" and spec.app_config.max_ticks == 0 and binding.kind != _envs.ENV_PYTHON:
        raise ScenarioError("on_exhausted = \"wait\" needs max_ticks > 0 with a built-in environment (nothing can "
                            "add work, so the run would never end)", path=source,
                            field="app_config.termination.on_exhausted")
    workers = spec.agents.worker_count()
    disc = max(1, int(binding.max_discoveries))
    if workers * disc > limits.INT32_MAX:
        raise ScenarioError(f"{workers} workers x {disc} discoveries per action = {workers * disc} overflows the "
                            f"kernel's int32 discovery buffer (at most {limits.INT32_MAX // disc} workers with "
                            "these environment params)", path=source, field="agents.workers")
