"""How much memory a run and an eval will take, estimated before allocating,
and the guard that refuses an estimate over the limit.

``workers = 10^9`` used to die in a MemoryError after 14 s of zeroing, and
``-n 10^12`` asked numpy for terabytes. The estimate is an upper bound from
the sizes the kernel allocates (see _kernel_buffers.pxi): per worker, its
columns and the discoveries of one action; per tick, room for every worker's
children (nodes and frontier groups, grown 1.5x, old and new alive while
copied); the graph map, bounded by the ticks and by the node keys the
environment can form; and per run, the result columns and the report (about
2 KiB a run, measured on troubleshooting with 20,000 runs: report dicts and
the JSON text at their peak).

The limit is 50% of physical RAM unless ``SWARM_MEMORY_LIMIT`` (or ``swarm
eval --memory-limit``) says otherwise: bytes (``8G``, ``512M``, ``1.5GiB``,
``1000000``), a share of RAM (``75%``) or ``off``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from swarm_engine.core.config import SwarmConfig
from swarm_engine.core.environment import EnvironmentBinding
from swarm_engine.errors import ConfigError, ScenarioError
from swarm_engine.exploration.rules import CompiledRules

__all__ = ["MemoryEstimate", "estimate", "memory_limit", "parse_size", "check_memory", "fmt_bytes",
           "DEFAULT_LIMIT", "ENV_VAR"]

ENV_VAR = "SWARM_MEMORY_LIMIT"
DEFAULT_LIMIT = "50%"

WORKER_BYTES = 48          # w_*, as_* columns of one worker
DISC_BYTES = 5             # as_disc (int32) + as_disc_kind (int8) per discovery slot
NODE_BYTES = 40            # n_* columns (22 B) and the dedup keyset slot
GROUP_BYTES = 100          # g_* columns, active, heap (84 B) and the group index slot
GROWTH = 2.5               # 1.5x growth with the old column alive during the copy
RUN_BYTES = 2048           # one run's results and report entry (measured, see above)
EVENT_BYTES = 35 * (1 << 16)    # the event log when a trace or a recorder asks for it

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


def fmt_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit, div in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} B"


def physical_memory() -> int | None:
    """Bytes of RAM, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def parse_size(text: str, where: str) -> tuple[int | None, str]:
    """('8G' | '75%' | 'off', where it came from) -> (bytes or None for no limit, how it reads)."""
    s = text.strip().lower()
    if s in ("off", "none", "0", "unlimited"):
        return None, "no limit"
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%|[kmgt]?i?b?)", s)
    if m and m.group(2) == "%":
        share = float(m.group(1))
        ram = physical_memory()
        if 0 < share <= 100 and ram:
            return int(ram * share / 100), f"{m.group(1)}% of {fmt_bytes(ram)} RAM"
        if not ram:
            return None, "no limit (RAM size unknown)"
    elif m and m.group(2) in _UNITS:
        n = int(float(m.group(1)) * _UNITS[m.group(2)])
        if n > 0:
            return n, fmt_bytes(n)
    raise ConfigError(f"got {text!r}, expected a size (8G, 512M, 1.5GiB), a share of RAM in 1..100% or off",
                      path=where)


def memory_limit(setting: str | None = None) -> tuple[int | None, str]:
    """(limit in bytes or None, how it reads): ``setting`` (a flag), else $SWARM_MEMORY_LIMIT, else 50% of RAM."""
    if setting is not None:
        return parse_size(setting, "--memory-limit")
    if os.environ.get(ENV_VAR):
        return parse_size(os.environ[ENV_VAR], f"${ENV_VAR}")
    return parse_size(DEFAULT_LIMIT, "default")


def _max_children(rules: CompiledRules | None, n_actions: int, disc: int) -> int:
    """The most children one success can add (what _recompute_fanout computes)."""
    if rules is None:
        return n_actions * disc
    ptr, succ, var = rules.succ_ptr, rules.succ_act, rules.var_ptr
    best = 0
    for a in range(len(ptr) - 1):
        fan = sum(disc * max(1, int(var[b + 1] - var[b])) for b in succ[ptr[a]:ptr[a + 1]])
        best = max(best, fan)
    return best


def _key_space(binding: EnvironmentBinding, rules: CompiledRules | None, n_actions: int) -> int | None:
    """How many distinct nodes the environment's targets allow (None: unknown, a Python environment)."""
    p = binding.extra.get("params")
    if not isinstance(p, dict):
        return None
    targets = {"troubleshooting": lambda: p["services"], "search": lambda: p["files"],
               "internal_diagnosis": lambda: p["sections"], "cascade": lambda: p["services"],
               "grid": lambda: p["width"] * p["height"],
               "code_exploration": lambda: 2 * p["files"]}.get(binding.name)
    if targets is None:
        return None
    args = max(1, len(rules.var_val)) if rules is not None else 1
    return n_actions * (int(targets()) + 1) * args


@dataclass(frozen=True)
class MemoryEstimate:
    """Upper bounds, in bytes, of what one run's kernel and an eval's results hold."""

    workers: int
    kernel: int          # one run: worker columns, a tick's room, the graph map
    environment: int     # the environment's state
    results: int         # every run's results and report entry
    runs: int
    jobs: int = 1        # kernels alive at once (one per thread or process of ``-j``)

    @property
    def run(self) -> int:
        return self.jobs * (self.kernel + self.environment)

    @property
    def total(self) -> int:
        return self.run + self.results

    def describe(self) -> str:
        plural = "s" if self.workers != 1 else ""
        parts = [f"{self.workers} worker{plural} and their graph {fmt_bytes(self.kernel)}"
                 + (f" on each of {self.jobs} jobs" if self.jobs > 1 else "")]
        if self.environment >= 2**20:
            parts.append(f"environment state {fmt_bytes(self.environment)}")
        if self.runs > 1:
            parts.append(f"{self.runs} runs' results {fmt_bytes(self.results)}")
        return f"about {fmt_bytes(self.total)} ({', '.join(parts)})"


def estimate(binding: EnvironmentBinding, config: SwarmConfig, rules: CompiledRules | None, n_actions: int,
             runs: int = 1, *, record_events: bool = False, jobs: int = 1) -> MemoryEstimate:
    """The memory ``runs`` runs need at most (runs share one kernel per job);
    a Scenario's ``binding``, ``config``, ``rules`` and number of actions."""
    from swarm_engine._native import _envs

    W, disc = config.workers, max(1, int(binding.max_discoveries))
    room = W * max(1, _max_children(rules, n_actions, disc))
    per_node = NODE_BYTES + (GROUP_BYTES if config.selector.granularity == "action_target" else 0)
    bounds = [config.max_ticks * room] if config.max_ticks else []
    space = _key_space(binding, rules, n_actions)
    if space is not None:
        bounds.append(space)
    graph = room + n_actions + 16 + (min(bounds) if bounds else 0)
    kernel = W * (WORKER_BYTES + disc * DISC_BYTES) + int(GROWTH * graph * per_node)
    if record_events:
        kernel += EVENT_BYTES + 35 * W
    env = 4 * int(_envs.state_size(binding.kind, binding.params)) if binding.python is None else 0
    results = runs * (RUN_BYTES + 16 * n_actions)
    return MemoryEstimate(W, kernel, env, results, runs, max(1, min(jobs, runs)))


def check_memory(est: MemoryEstimate, limit: tuple[int | None, str] | None = None, *,
                 source: str | None = None) -> None:
    """One error when ``est`` is over the limit (``limit``: from :func:`memory_limit`;
    None reads $SWARM_MEMORY_LIMIT or the default)."""
    cap, how = limit if limit is not None else memory_limit()
    if cap is None or est.total <= cap:
        return
    advice = f"raise the limit with --memory-limit or ${ENV_VAR} (e.g. 80%, 64G, off)"
    if est.jobs > 1:
        advice = f"run on fewer --jobs, or {advice}"
    if est.runs > 1 and est.results > est.run:
        raise ConfigError(f"got {est.runs}: the runs need {est.describe()}, over the memory limit of {how}; "
                          f"run fewer or {advice}", path="--runs")
    field = "environment.params" if est.environment > est.kernel else "agents.workers"
    raise ScenarioError(f"a run needs {est.describe()}, over the memory limit of {how}; lower it or {advice}",
                        path=source, field=field)
