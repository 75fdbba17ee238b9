"""Options shared by several commands."""

from __future__ import annotations

import typer

__all__ = ["RUNS", "SEED", "VERBOSE", "QUIET", "VARIANT", "PROVIDER", "MODEL", "ENDPOINT", "llm_overrides",
           "LEARNING", "LEARNING_KEY", "NO_LEARNED_MODEL"]

RUNS = typer.Option(None, "-n", "--runs", min=1, help="Number of seeded runs \\[config eval.runs, 1].")
SEED = typer.Option(None, "-s", "--seed", min=0,
                    help="Seed of the first run; run i uses seed + i \\[config eval.seed, 42].")
VERBOSE = typer.Option(False, "-v", "--verbose", help="Print tick snapshots of the first run.")
QUIET = typer.Option(False, "-q", "--quiet", help="No progress bar and no table.")
VARIANT = typer.Option(None, "--variant", help="Apply the named [[variants]] overrides.")
PROVIDER = typer.Option(None, "--provider",
                        help="LLM provider: llama-server, llama-cpp, ollama, openai or none (overrides [llm]).")
MODEL = typer.Option(None, "--model", help="Model name or GGUF path (overrides [llm] model).")
ENDPOINT = typer.Option(None, "--endpoint", help="Server base URL (overrides [llm] endpoint).")


def llm_overrides(provider: str | None, model: str | None, endpoint: str | None) -> dict | None:
    """CLI flags as a scenario override of [llm]."""
    llm = {k: v for k, v in (("provider", provider), ("model", model), ("endpoint", endpoint)) if v is not None}
    return {"llm": llm} if llm else None

LEARNING = typer.Option(None, "--learning/--no-learning",
                        help="Record episodes into the learning store (default: config learning.enabled).")
LEARNING_KEY = typer.Option(None, "--learning-key", help="Learning store key (default: meta.id without its version).")
NO_LEARNED_MODEL = typer.Option(False, "--no-learned-model", help="Do not load the scenario's offline model.")
