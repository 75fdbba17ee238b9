"""dependency_graph.type = "llm": the graph is planned once, at task start.

The model answers a JSON schema that only admits the scenario's action names;
the result is validated like a custom graph (known actions, a start, every
terminal reachable). A graph that cannot be planned is one clear error.
"""

from __future__ import annotations

import json

from swarm_engine.errors import ScenarioError
from swarm_engine.exploration.rules import DependencyGraph
from swarm_engine.llm import prompts
from swarm_engine.llm.protocol import Sampling
from swarm_engine.llm.runner import InvokerRunner

__all__ = ["plan_graph"]


def plan_graph(runner: InvokerRunner, task: str, actions: list[tuple[str, str]], *,
               source: str | None = None, attempts: int = 3, timeout: float = 120.0) -> DependencyGraph:
    names = [a for a, _ in actions]
    prompt = prompts.plan_prompt(task, actions)
    schema = prompts.plan_schema(names)
    problems = []
    for attempt in range(attempts):
        sampling = Sampling(temperature=0.0 if attempt == 0 else 0.7, max_tokens=512, seed=attempt)
        try:
            text = runner.run(runner.invoker.complete_json(prompt, schema, sampling), timeout)
            data = json.loads(text)
            graph = DependencyGraph(
                actions=names,
                edges=[(e["from"], e["to"], float(e.get("confidence", 1.0))) for e in data.get("edges", [])],
                start=list(dict.fromkeys(data.get("start", []))),
                terminal=list(dict.fromkeys(data.get("terminal", []))))
            graph.validate(source)
            return graph
        except ScenarioError as exc:
            problems.append(exc.message)
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"unusable answer ({type(exc).__name__}: {exc})")
        except Exception as exc:  # a backend failure is reported as one line
            problems.append(f"{type(exc).__name__}: {exc}")
    raise ScenarioError(f"the LLM could not plan a dependency graph in {attempts} attempts: "
                        f"{problems[-1]}", path=source, field="dependency_graph.type")
