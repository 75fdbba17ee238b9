"""Suite ``exploration``: the native kernel at scale, next to the reference.

Six parts, each also selectable on its own (``--suite troubleshooting``):

``troubleshooting``
    The eval path (``run_eval``) at 10^3 .. 10^6 runs against the reference
    on the first seeds, run for run (:mod:`swarm_engine.bench.troubleshooting`).
``selectors``
    The kernel alone, every selector kind (:mod:`swarm_engine.bench.selectors`).
``swarm``
    10^4 workers on a 10^6-cell grid, one ``step(1)`` per tick: tick latency,
    memory, and the small-grid reference pair (:mod:`swarm_engine.bench.swarm`).
``jobs``
    The eval on 1 .. N cores (``run_eval(..., jobs=j)``): runs/s, speed-up
    and efficiency, the same runs on every row (:mod:`swarm_engine.bench.cores`).
``workers`` / ``graph``
    Scaling curves: cost vs workers (10^2 .. 10^6) and vs graph size
    (10^4 .. 10^7 nodes) (:mod:`swarm_engine.bench.scaling`).
"""

from __future__ import annotations

from collections.abc import Callable

from swarm_engine.bench import cores, scaling, selectors, swarm, troubleshooting
from swarm_engine.bench.settings import Settings

__all__ = ["PARTS", "run"]

# In the order the suite runs them: the cheap ones first, so a crash in a
# large case does not hide them.
PARTS: dict[str, Callable[..., dict]] = {
    "troubleshooting": troubleshooting.curve,
    "jobs": cores.run,
    "selectors": selectors.run,
    "swarm": swarm.run,
    "workers": scaling.workers_curve,
    "graph": scaling.graph_curve,
}


def run(settings: Settings, say: Callable[[str], None] = lambda _m: None,
        parts: list[str] | None = None) -> dict:
    """The chosen parts (default all), ``{part: result}``."""
    return {name: PARTS[name](settings, say) for name in (parts or list(PARTS))}
