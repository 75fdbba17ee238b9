"""Options shared by several commands, and how each resolves against the
user's settings (one function per option, so that ``swarm eval`` and
``swarm run`` cannot drift apart)."""

from __future__ import annotations

from typing import Any

import typer

from swarm_engine.errors import ConfigError
from swarm_engine.inputs import limits
from swarm_engine.settings import Settings

__all__ = ["RUNS", "SEED", "JOBS", "VERBOSE", "QUIET", "VARIANT", "PROVIDER", "MODEL", "ENDPOINT",
           "LEARNING", "LEARNING_KEY", "NO_LEARNED_MODEL", "LLM_FALLBACK", "MEMORY_LIMIT", "CLUSTER", "HOSTS_PER_NODE",
           "CHUNK_CPUS",
           "resolve_runs", "resolve_seed", "resolve_jobs", "check_seeds", "resolve_learning", "resolve_llm_fallback",
           "llm_overrides", "scenario_overrides"]

RUNS = typer.Option(None, "-n", "--runs", min=1, max=limits.MAX_RUNS,
                    help=f"Number of seeded runs, 1..{limits.MAX_RUNS} \\[config eval.runs, 1].")
SEED = typer.Option(None, "-s", "--seed", min=0, max=limits.UINT64_MAX,
                    help="Seed of the first run; run i uses seed + i, and the last must be below 2^64 "
                         "\\[config eval.seed, 42].")
JOBS = typer.Option(None, "-j", "--jobs", min=0, max=limits.MAX_JOBS,
                    help="Threads (native environments) or processes (Python ones) to run on; the report is "
                         "the same as with -j 1. 0 = every core this process may use \\[config eval.jobs, 0].")
MEMORY_LIMIT = typer.Option(None, "--memory-limit",
                            help="Refuse a run or eval estimated to need more memory: bytes (8G, 512M), a share "
                                 "of RAM (75%) or off \\[env SWARM_MEMORY_LIMIT, 50%].")
CLUSTER = typer.Option(None, "--cluster",
                       help="Run the evals on a Ray cluster: ray (start one on this machine), auto (join "
                            "$RAY_ADDRESS) or ray://HOST:PORT (Ray Client); needs the cluster extra.")
HOSTS_PER_NODE = typer.Option(1, "--hosts-per-node", min=0, max=64,
                              help="With --cluster and a model in process (llama-cpp): model hosts per node, "
                                   "each with its own copy of the model and its [llm] n_threads CPUs (or one "
                                   "GPU); 0 = as many as fit.")
CHUNK_CPUS = typer.Option(0, "--chunk-cpus", min=0, max=limits.MAX_JOBS,
                          help="With --cluster: the CPUs (and threads) of each chunk of runs; 0 = a whole node "
                               "per chunk, pinned to it \\[0].")
VERBOSE = typer.Option(False, "-v", "--verbose", help="Print tick snapshots of the first run.")
QUIET = typer.Option(False, "-q", "--quiet", help="No progress bar and no table.")
VARIANT = typer.Option(None, "--variant", help="Apply the named [[variants]] overrides.")
PROVIDER = typer.Option(None, "--provider",
                        help="LLM provider: llama-server, llama-cpp, ollama, openai or none (overrides [llm]).")
MODEL = typer.Option(None, "--model", help="Model name or GGUF path (overrides [llm] model).")
ENDPOINT = typer.Option(None, "--endpoint", help="Server base URL (overrides [llm] endpoint).")
LLM_FALLBACK = typer.Option(None, "--llm-fallback/--no-llm-fallback",
                            help="When the LLM backend does not answer before the first run: warn and run on "
                                 "the bandit alone (the report says the LLM was unavailable) instead of "
                                 "exiting 1 \\[config eval.llm_fallback, off].")


LEARNING = typer.Option(None, "--learning/--no-learning",
                        help="Record episodes into the learning store (default: config learning.enabled).")
LEARNING_KEY = typer.Option(None, "--learning-key", help="Learning store key (default: meta.id without its version).")
NO_LEARNED_MODEL = typer.Option(False, "--no-learned-model", help="Do not load the scenario's offline model.")


def resolve_runs(runs: int | None, settings: Settings) -> int:
    """``--runs``, else config ``eval.runs``."""
    return int(settings.get("eval", "runs")) if runs is None else runs


def resolve_seed(seed: int | None, settings: Settings) -> int:
    """``--seed``, else config ``eval.seed``."""
    return int(settings.get("eval", "seed")) if seed is None else seed


def resolve_jobs(jobs: int | None, settings: Settings) -> tuple[int, bool]:
    """``--jobs``, else config ``eval.jobs`` (0 = every core), and whether
    either asked for it (an eval that then runs on one core says why)."""
    value = int(settings.get("eval", "jobs")) if jobs is None else jobs
    return value, value != 0


def check_seeds(seed: int, runs: int) -> None:
    """Seeds ``seed .. seed + runs - 1`` fit the kernel's uint64, else one ConfigError naming --seed."""
    problem = limits.seeds_error(seed, runs)
    if problem:
        raise ConfigError(problem, path="--seed")


def resolve_learning(learning: bool | None, settings: Settings) -> bool:
    """``--learning/--no-learning``, else config ``learning.enabled``."""
    return bool(settings.get("learning", "enabled")) if learning is None else learning


def resolve_llm_fallback(fallback: bool | None, settings: Settings) -> bool:
    """``--llm-fallback/--no-llm-fallback``, else config ``eval.llm_fallback``."""
    return bool(settings.get("eval", "llm_fallback")) if fallback is None else fallback


def llm_overrides(provider: str | None, model: str | None, endpoint: str | None) -> dict[str, Any] | None:
    """``--provider/--model/--endpoint`` as a scenario override of [llm] (None: no flag given)."""
    llm = {k: v for k, v in (("provider", provider), ("model", model), ("endpoint", endpoint)) if v is not None}
    return {"llm": llm} if llm else None


def scenario_overrides(provider: str | None, model: str | None, endpoint: str | None, *,
                       task: str | None = None) -> dict[str, Any] | None:
    """Every scenario override the command line gives: [llm] flags and ``--task`` (None: none)."""
    overrides: dict[str, Any] = {"task": {"goal": task}} if task else {}
    overrides.update(llm_overrides(provider, model, endpoint) or {})
    return overrides or None
