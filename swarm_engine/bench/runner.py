"""Run the chosen suites and gather one JSON-ready document."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

from swarm_engine.bench import exploration, swarm, troubleshooting
from swarm_engine.bench.machine import machine_info
from swarm_engine.bench.measure import peak_rss_bytes
from swarm_engine.bench.settings import Settings

__all__ = ["SUITES", "SCHEMA_VERSION", "run_suites"]

SCHEMA_VERSION = 1

# In the order `--suite all` runs them: the cheap ones first, so a crash in
# the big swarm does not hide them.
SUITES: dict[str, Callable[..., dict]] = {
    "troubleshooting": troubleshooting.run,
    "exploration": exploration.run,
    "swarm": swarm.run,
}


def run_suites(settings: Settings, names: list[str] | None = None,
               say: Callable[[str], None] = lambda _msg: None) -> dict:
    """Run ``names`` (default: all) with ``settings``; returns the report
    ``{schema_version, machine, settings, suites {name: result}, seconds, peak_rss_bytes}``."""
    settings.validate()
    names = list(SUITES) if not names else names
    t0 = time.perf_counter()
    results = {}
    for name in names:
        results[name] = SUITES[name](settings, say)
    return {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "settings": dataclasses.asdict(settings),
        "suites": results,
        "seconds": time.perf_counter() - t0,
        "peak_rss_bytes": peak_rss_bytes(),
    }
