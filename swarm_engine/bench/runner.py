"""Run the chosen suites and gather one JSON-ready document."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from swarm_engine.bench import exploration, learn, llm_suite, peers, pyenv
from swarm_engine.bench.machine import machine_info
from swarm_engine.bench.measure import peak_rss_bytes
from swarm_engine.bench.settings import Settings
from swarm_engine.errors import ConfigError

__all__ = ["SUITES", "PARTS", "SCHEMA_VERSION", "run_suites", "resolve"]

SCHEMA_VERSION = 2

# In the order `--suite all` runs them: the kernel first, the minutes-long
# LLM suite last, so a crash or a missing extra late does not hide the rest.
SUITES: dict[str, Callable[..., dict]] = {
    "exploration": exploration.run,
    "peers": peers.run,
    "python-env": pyenv.run,
    "learn": learn.run,
    "llm": llm_suite.run,
}
# Parts of the exploration suite, selectable on their own.
PARTS: tuple[str, ...] = tuple(exploration.PARTS)


def resolve(names: list[str] | None) -> dict[str, list[str] | None]:
    """``{suite: parts or None (all parts)}`` for suite and part names, in
    run order; ``all`` or nothing means every suite. Unknown names raise
    ConfigError."""
    names = list(names or ["all"])
    if "all" in names:
        return {name: None for name in SUITES}
    unknown = [n for n in names if n not in SUITES and n not in PARTS]
    if unknown:
        raise ConfigError(f"unknown suite {unknown[0]!r}; choose from all, {', '.join(SUITES)}, "
                          f"or a part of exploration: {', '.join(PARTS)}")
    chosen: dict[str, list[str] | None] = {}
    for suite in SUITES:
        if suite in names:
            chosen[suite] = None
        elif suite == "exploration" and any(n in PARTS for n in names):
            chosen[suite] = [p for p in PARTS if p in names]
    return chosen


def run_suites(settings: Settings, names: list[str] | None = None,
               say: Callable[[str], None] = lambda _msg: None) -> dict:
    """Run ``names`` (suites or exploration parts; default all) with
    ``settings``; returns the report ``{schema_version, created, machine,
    settings, suites {name: result}, suite_seconds, seconds, peak_rss_bytes}``."""
    settings.validate()
    chosen = resolve(names)
    t0 = time.perf_counter()
    results, seconds = {}, {}
    for name, parts in chosen.items():
        t1 = time.perf_counter()
        if name == "exploration":
            results[name] = exploration.run(settings, say, parts)
        else:
            results[name] = SUITES[name](settings, say)
        seconds[name] = time.perf_counter() - t1
    return {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "settings": dataclasses.asdict(settings),
        "suites": results,
        "suite_seconds": seconds,
        "seconds": time.perf_counter() - t0,
        "peak_rss_bytes": peak_rss_bytes(),
    }
