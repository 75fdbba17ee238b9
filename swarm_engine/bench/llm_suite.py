"""Suite ``llm``: decisions per second with a real model, in three settings.

1. **llama-server** (a server of its own, started and stopped by the suite,
   the bundled SmolLM2-135M, one thread, ``-np`` = workers): the rows of
   :mod:`swarm_engine.bench.llm`: the engine's ``LlamaServerInvoker`` vs a
   bare httpx loop posting the same bodies at the same concurrency (engine
   overhead), concurrent and prompt-array requests vs one at a time
   (batched vs sequential), label answers vs JSON and vs the server's own
   compute (``timings``: the limit a client can reach), and the prefix-cache
   hit rate. Two workloads:
   *prefill* (histories grow every tick: the steady state of a swarm) and
   *cached* (the same question every tick: only generation costs, where
   client overhead would show).
2. **client cost**: the invoker's own time per decision against canned
   answers (no model).
3. **in process** (llama-cpp-python, :mod:`swarm_engine.bench.llm_inprocess`):
   label and JSON answers, batched and one call per worker, beside a bare
   ``llama_decode`` loop over the same tokens (the physical limit).

Every answer must be one of the allowed choices, or the suite fails. A
server that dies or stops answering (this llama-server build has been seen
to segfault under load) or a model that cannot load is recorded as
``{"failed": reason}`` for that part and the others still run; ``swarm-bench``
then exits 1 after printing and writing everything else. Without
the LLM extras the suite is skipped with the reason
(``swarm_engine.llm.models.server_unavailable``); the in-process part also
needs llama-cpp-python. Spread: over the counted ticks (server), over the
rounds (in process).
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from swarm_engine.bench import llm_inprocess
from swarm_engine.bench.measure import spread
from swarm_engine.bench.settings import Settings

__all__ = ["run", "skip_reason", "failures", "SERVER_ROWS"]

# engine vs bare at the same concurrency; batched (concurrent, array) vs sequential
JSON_ROWS = ("invoker-concurrent", "bare-concurrent", "invoker-array", "invoker-sequential", "bare-sequential")
LABEL_ROWS = ("invoker-label", "bare-label")
SERVER_ROWS = JSON_ROWS + LABEL_ROWS


def skip_reason() -> str | None:
    """Why the suite cannot run here (None when it can)."""
    if importlib.util.find_spec("httpx") is None:
        return "needs the 'llm' and 'server' extras: httpx is not installed"
    from swarm_engine.llm.models import server_unavailable

    return server_unavailable()


def _check(results) -> None:
    for r in results:
        if r.errors or r.valid != r.decisions or r.decisions == 0:
            raise AssertionError(f"llm: row {r.label}: {r.valid} valid answers of {r.decisions}, {r.errors} errors")


def _rows(results) -> list[dict]:
    out = []
    for r in results:
        row = r.row()
        row["tick_decisions_per_s"] = spread(r.tick_rates) if r.tick_rates else None
        out.append(row)
    return out


def _server(settings: Settings, say: Callable[[str], None]) -> dict:
    from swarm_engine.bench.llm import run_rows
    from swarm_engine.llm.server import start_server

    slots = workers = settings.llm_workers
    ticks = settings.llm_ticks
    out: dict = {"slots": slots, "workers": workers, "threads": 1}
    with tempfile.TemporaryDirectory(prefix="swarm-bench-llm-") as home:
        say("llm: starting llama-server")
        t0 = time.perf_counter()
        with start_server(home=Path(home), parallel=slots, kvu=False, threads=1, ctx_size=4096 * slots,
                          timeout=120) as srv:
            out["server_start_s"] = time.perf_counter() - t0
            for workload, grow in (("prefill", True), ("cached", False)):
                say(f"llm: llama-server, {workload} workload")

                def say_row(message: str, w: str = workload) -> None:
                    say(f"llm: {w}: {message}")

                results = []
                for rows in (JSON_ROWS, LABEL_ROWS):     # each with its own warm prefix
                    results += run_rows(srv.url, rows=rows, n_slots=slots, workers=workers, grow=grow,
                                        ticks=ticks if grow else ticks + 1, skip=0 if grow else 1,
                                        first_worker=0 if grow else 1000, interleave=grow, rounds=2,
                                        say=say_row)
                _check(results)
                rate = {r.label: r.decisions_per_s for r in results}
                limit = {r.label: r.server_decisions_per_s for r in results}
                out[workload] = {
                    "rows": _rows(results),
                    "engine_overhead": {m: rate[f"bare-{m}"] / rate[f"invoker-{m}"] - 1
                                        for m in ("concurrent", "sequential")},
                    "batched_over_sequential": {m: rate[f"invoker-{m}"] / rate["invoker-sequential"]
                                                for m in ("concurrent", "array")},
                    # label answers: the engine vs a bare client, and vs the server's own compute
                    "label_engine_overhead": rate["bare-label"] / rate["invoker-label"] - 1,
                    "label_of_limit": rate["invoker-label"] / lim if (lim := limit["bare-label"]) else None,
                    "label_over_json": rate["invoker-label"] / rate["invoker-concurrent"],
                    "cache_hit_rate": {r.label: r.cache_hit_rate for r in results},
                }
    return out


def run(settings: Settings, say: Callable[[str], None] = lambda _m: None) -> dict:
    """The three parts; ``{"skipped": reason}`` without the LLM extras."""
    reason = skip_reason()
    if reason is not None:
        return {"skipped": reason}
    import httpx

    from swarm_engine.bench.llm import client_cost
    from swarm_engine.errors import SwarmError

    def guarded(part: str, fn) -> dict:
        try:
            return fn(settings, say)
        except (httpx.HTTPError, SwarmError, OSError) as exc:
            return {"failed": f"{part}: {type(exc).__name__}: {exc}"}

    out = {"server": guarded("llama-server", _server)}
    say("llm: client cost")
    out["client_cost_us"] = {m: client_cost(mode=m) for m in ("concurrent", "array")}
    out["inprocess"] = guarded("in process", llm_inprocess.run)
    return out


def failures(result: dict) -> list[str]:
    """The failure lines of an llm result (empty when every part ran)."""
    return [part["failed"] for part in (result.get("server"), result.get("inprocess"))
            if isinstance(part, dict) and "failed" in part]
