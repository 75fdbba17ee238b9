"""The ranges and sizes every input is held to, in one place.

Scenario fields, config keys and CLI flags take their bounds from here, so a
number is checked where it is parsed and never reaches the kernel (C ints,
int32 tick and node columns, uint64 seeds) or the OS (``time.sleep``) out of
range. docs/scenarios.md lists each field's range; a change here is a change
there.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

__all__ = ["INT32_MAX", "UINT64_MAX", "MAX_WORKERS", "MAX_RUNS", "MAX_JOBS", "MAX_WEIGHT", "MAX_TICK_MS",
           "MAX_SCENARIO_BYTES", "MAX_CONFIG_BYTES", "MAX_DEPTH", "Count32", "PositiveCount32",
           "Ticks", "PositiveTicks", "Probability", "Weight", "TickMs", "Workers", "Jobs", "Seed", "Port",
           "Int64", "FiniteFloat", "seeds_error", "Consecutive", "MAX_CONSECUTIVE", "INT64_MIN", "INT64_MAX"]

INT32_MAX = 2**31 - 1            # tick numbers, node ids and kernel counters are int32 / C int
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1           # run seeds are uint64: base seed + runs - 1 must not pass it
MAX_WORKERS = 2**24              # worker ids are int32 and W x discoveries indexes an int32 column
MAX_RUNS = 10**9                 # runs of one eval; memory is checked separately (eval.memory)
MAX_JOBS = 1024                  # threads or processes of one eval (-j); 0 = every core
MAX_WEIGHT = 1e6                 # selector weights and milestone weights: finite, generous
MAX_TICK_MS = 86_400_000.0       # one day: longer ticks overflow time.sleep on some platforms
MAX_CONSECUTIVE = 65_535         # the kernel counts a worker's failures in a saturating uint16

MAX_SCENARIO_BYTES = 4 * 2**20   # a scenario file (the shipped ones are under 16 KiB)
MAX_CONFIG_BYTES = 2**20         # a config.toml
MAX_DEPTH = 32                   # nested arrays / tables of a TOML document

Count32 = Annotated[int, Meta(ge=0, le=INT32_MAX)]
PositiveCount32 = Annotated[int, Meta(ge=1, le=INT32_MAX)]
Ticks = Count32
PositiveTicks = PositiveCount32
Consecutive = Annotated[int, Meta(ge=0, le=MAX_CONSECUTIVE)]
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
Weight = Annotated[float, Meta(ge=0.0, le=MAX_WEIGHT)]
TickMs = Annotated[float, Meta(ge=0.0, le=MAX_TICK_MS)]
Workers = Annotated[int, Meta(ge=1, le=MAX_WORKERS)]
Jobs = Annotated[int, Meta(ge=0, le=MAX_JOBS)]
# msgspec bounds must fit an int64: the upper bound of a seed is checked by check_seed
Seed = Annotated[int, Meta(ge=0)]
Port = Annotated[int, Meta(ge=0, le=65_535)]
Int64 = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
FiniteFloat = Annotated[float, Meta(ge=-1e300, le=1e300)]


def seeds_error(seed: int, runs: int = 1) -> str | None:
    """Why ``runs`` seeds from ``seed`` do not fit the kernel's uint64 (None: they fit)."""
    if not 0 <= seed <= UINT64_MAX:
        return f"got {seed}, expected an int in 0..{UINT64_MAX} (a uint64 seed)"
    last = seed + runs - 1
    if last > UINT64_MAX:
        return (f"{runs} runs from seed {seed} use seeds up to {last}, past the largest seed {UINT64_MAX} "
                f"(2^64 - 1); use a seed <= {UINT64_MAX - runs + 1} or fewer runs")
    return None
