"""Suite ``llm``: decisions per second through a running llama-server.

The workload is a troubleshooting swarm's steady state: every worker asks
once per tick with the shared prompt (rules, task, action catalogue) first
and its own part (a history that grows by a step per tick, the candidates)
last. Each phase uses fresh worker ids, so a phase starts with only the
shared prefix cached (as after a warm-up tick) and phases do not feed each
other's caches beyond that.

Rows, each over the same ticks:

``invoker``
    ``LlamaServerInvoker.decide`` per tick (mode "concurrent" with id_slot
    affinity, "array" with one prompt-array request per choice set, or
    concurrent with ``concurrency=1``, i.e. one request at a time).
``invoker-free``
    Mode "concurrent" without ``id_slot``: the server picks the slot by
    longest common prefix.
``bare``
    A plain httpx loop posting the same JSON bodies at the same concurrency
    and reading only ``content``: the floor the invoker is compared with
    (engine overhead = invoker seconds / bare seconds - 1).

Prefix-cache hit rate = cached prompt tokens / prompt tokens (the server's
``timings.cache_n`` over ``tokens_evaluated``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import httpx

from swarm_engine.llm.backends.llama_server import LlamaServerInvoker
from swarm_engine.llm.grammar import gbnf_for
from swarm_engine.llm.prompts import answer_json, shared_prompt, worker_prompt
from swarm_engine.llm.protocol import Choice, DecisionRequest, Sampling

__all__ = ["ACTIONS", "SERVICES", "tick_requests", "Result", "run_invoker", "run_bare", "run_phases"]

ACTIONS = [("CheckStatus", "Check the status of every service (Running, Degraded, Down)"),
           ("ReadLogs", "Read the recent logs of a service"),
           ("AnalyzeMetrics", "Analyze CPU, memory, disk and latency metrics of a service"),
           ("Diagnose", "Name the problem of a service from the evidence gathered"),
           ("Restart", "Restart a diagnosed service")]
SERVICES = ["api-gateway", "user-service", "db-primary", "cache"]
GOAL = ("One service is failing. Find it, find out why from its logs or metrics, diagnose the problem "
        "and restart the service.")
SAMPLING = Sampling(temperature=0.0, max_tokens=32, seed=42)


def _choices(worker: int, tick: int, same_choices: bool) -> tuple[Choice, ...]:
    k = tick if same_choices else tick + worker
    acts = [ACTIONS[1 + (k + j) % 3][0] for j in range(2)]
    return tuple(Choice(a, s, visits=tick, successes=tick // 2, score=0.5) for a in acts for s in SERVICES)


def tick_requests(workers: Sequence[int], tick: int, *, same_choices: bool = True,
                  sampling: Sampling = SAMPLING) -> list[DecisionRequest]:
    """One request per worker at ``tick``; the worker's history has ``tick`` steps."""
    shared = shared_prompt(GOAL, "Four services; one is faulty.", ACTIONS)
    out = []
    for w in workers:
        history = [f"{ACTIONS[1 + (w + t) % 3][0]} {SERVICES[(w + t) % 4]} -> ok" for t in range(tick)]
        choices = _choices(w, tick, same_choices)
        out.append(DecisionRequest(w, shared, worker_prompt(w, history, "", choices), choices, sampling, slot=w))
    return out


@dataclass
class Result:
    """One row: what ran, how long, what the server reported."""

    label: str
    decisions: int = 0
    valid: int = 0               # answers that are exactly one of the allowed choices
    seconds: float = 0.0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    confidences: list[float] = field(default_factory=list)

    @property
    def decisions_per_s(self) -> float:
        return self.decisions / self.seconds if self.seconds > 0 else 0.0

    @property
    def cache_hit_rate(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def row(self) -> dict[str, Any]:
        return {"label": self.label, "decisions": self.decisions, "valid": self.valid,
                "errors": self.errors, "seconds": round(self.seconds, 3),
                "decisions_per_s": round(self.decisions_per_s, 3),
                "cache_hit_rate": round(self.cache_hit_rate, 3), "prompt_tokens": self.prompt_tokens,
                "cached_tokens": self.cached_tokens, "completion_tokens": self.completion_tokens,
                "mean_confidence": (round(sum(self.confidences) / len(self.confidences), 3)
                                    if self.confidences else None)}


async def run_invoker(url: str, workers: Sequence[int], ticks: int, *, mode: str, concurrency: int,
                      label: str, same_choices: bool = True, **kwargs: Any) -> Result:
    """``ticks`` ticks of ``decide`` through one LlamaServerInvoker."""
    res = Result(label)
    inv = LlamaServerInvoker(url, mode=mode, concurrency=concurrency, timeout=300.0, **kwargs)
    try:
        for t in range(ticks):
            reqs = tick_requests(workers, t, same_choices=same_choices)
            t0 = time.perf_counter()
            decisions = await inv.decide(reqs)
            res.seconds += time.perf_counter() - t0
            for r, d in zip(reqs, decisions):
                res.decisions += 1
                res.errors += d.error is not None
                res.valid += d.ok and not d.repaired and d.raw.strip() == answer_json(r.choices[d.choice])
                res.prompt_tokens += d.prompt_tokens
                res.cached_tokens += d.cached_tokens
                res.completion_tokens += d.completion_tokens
                if d.confidence is not None:
                    res.confidences.append(d.confidence)
    finally:
        await inv.aclose()
    return res


def _bare_body(prompt: Any, req: DecisionRequest, slot: int | None) -> dict[str, Any]:
    s = req.sampling
    body = {"prompt": prompt, "n_predict": s.max_tokens, "temperature": s.temperature, "top_k": s.top_k,
            "top_p": s.top_p, "seed": s.seed, "cache_prompt": True, "stream": False,
            "grammar": gbnf_for(req.choices), "n_probs": 8, "post_sampling_probs": False}
    if slot is not None:
        body["id_slot"] = slot
    return body


async def run_bare(url: str, workers: Sequence[int], ticks: int, *, array: bool, concurrency: int, label: str,
                   n_slots: int, same_choices: bool = True) -> Result:
    """The same bodies as the invoker sends, from a plain httpx loop."""
    res = Result(label)
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=300.0, limits=limits, trust_env=False) as client:

        async def post(body: dict) -> Any:
            async with sem:
                r = await client.post(url + "/completion", json=body)
                r.raise_for_status()
                return r.json()

        for t in range(ticks):
            reqs = tick_requests(workers, t, same_choices=same_choices)
            t0 = time.perf_counter()
            if array:
                groups: dict[tuple, list[DecisionRequest]] = {}
                for r in reqs:
                    groups.setdefault(tuple(answer_json(c) for c in r.choices), []).append(r)
                bodies = [_bare_body([r.prompt for r in g] if len(g) > 1 else g[0].prompt, g[0], None)
                          for g in groups.values()]
                answers = await asyncio.gather(*(post(b) for b in bodies))
                pairs = []
                for g, a in zip(groups.values(), answers):
                    items = a if isinstance(a, list) else [a]
                    by_index = {x.get("index", k): x for k, x in enumerate(items)}
                    pairs += [(r, by_index[k]) for k, r in enumerate(g)]
            else:
                answers = await asyncio.gather(*(post(_bare_body(r.prompt, r, r.slot % n_slots)) for r in reqs))
                pairs = list(zip(reqs, answers))
            res.seconds += time.perf_counter() - t0
            for r, a in pairs:
                res.decisions += 1
                res.valid += a["content"].strip() in {answer_json(c) for c in r.choices}
                timings = a.get("timings") or {}
                res.prompt_tokens += int(a.get("tokens_evaluated") or 0)
                res.cached_tokens += int(timings.get("cache_n") or 0)
                res.completion_tokens += int(timings.get("predicted_n") or 0)
    return res


async def _warm(url: str, n_slots: int) -> None:
    """Fill every slot's cache with the shared prefix (one pinned request per slot)."""
    reqs = tick_requests(range(10_000, 10_000 + n_slots), 0)
    inv = LlamaServerInvoker(url, mode="concurrent", concurrency=n_slots, timeout=300.0, confidence=False)
    try:
        await inv.decide([DecisionRequest(r.worker, r.shared_prompt, r.worker_prompt, r.choices, r.sampling,
                                          slot=k) for k, r in enumerate(reqs)])
    finally:
        await inv.aclose()


def run_phases(url: str, *, n_slots: int, workers: int = 4, ticks: int = 3,
               rows: Sequence[str] = ("invoker-concurrent", "bare-concurrent", "invoker-array", "bare-array",
                                      "invoker-sequential", "bare-sequential"),
               same_choices: bool = True, say: Callable[[str], None] = lambda _m: None) -> list[Result]:
    """Run each row over ``ticks`` ticks of ``workers`` workers (fresh ids per row)."""
    asyncio.run(_warm(url, n_slots))
    out = []
    for k, row in enumerate(rows):
        ids = range(workers * (k + 1), workers * (k + 2))     # fresh workers, same slots (id % n_slots)
        kind, mode = row.split("-")
        conc = 1 if mode == "sequential" else workers
        if kind == "invoker":
            coro = run_invoker(url, ids, ticks, mode="array" if mode == "array" else "concurrent",
                               concurrency=conc, label=row, same_choices=same_choices,
                               affinity=mode != "free")
        else:
            coro = run_bare(url, ids, ticks, array=mode == "array", concurrency=conc, label=row,
                            n_slots=n_slots, same_choices=same_choices)
        res = asyncio.run(coro)
        say(f"{row}: {res.decisions_per_s:.2f} decisions/s, cache hit {res.cache_hit_rate:.2f}")
        out.append(res)
    return out
