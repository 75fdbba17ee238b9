"""Suite ``llm``: decisions per second through a running llama-server.

The workload is a troubleshooting swarm's steady state: every worker asks
once per tick with the shared prompt (rules, task, action catalogue) first
and its own part (a history that grows by a step per tick, the candidates
with their statistics) last. Each row has its own workers, so a row starts
with only the shared prefix cached (put in every slot by a warm-up tick) and
rows do not feed each other's caches beyond that. Rows take turns tick by
tick (the order rotating), so a noisy neighbour on the machine hits them alike.

Row names are ``KIND-MODE``. KIND ``invoker``: ``LlamaServerInvoker.decide``
per tick; ``bare``: a plain httpx loop posting the same JSON bodies at the
same concurrency and reading only ``content`` (engine overhead = bare rate /
invoker rate - 1). MODE ``concurrent``: one request per decision with
``id_slot``; ``free``: the same without ``id_slot`` (the server picks the
slot by longest common prefix); ``array``: one prompt-array request per
choice set; ``sequential``: one request at a time.

Prefix-cache hit rate = cached prompt tokens / prompt tokens (the server's
``timings.cache_n`` over ``tokens_evaluated``). :func:`client_cost` times the
invoker alone against canned server answers: its own CPU time per decision.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from swarm_engine.llm.backends.llama_server import LlamaServerInvoker
from swarm_engine.llm.backends.server_answers import label_grammar
from swarm_engine.llm.grammar import gbnf_for
from swarm_engine.llm.prompts import (
    LABELS,
    answer_json,
    label_shared_prompt,
    label_worker_prompt,
    shared_prompt,
    worker_prompt,
)
from swarm_engine.llm.protocol import Choice, Decision, DecisionRequest, Sampling

__all__ = ["ACTIONS", "SERVICES", "ROWS", "LABEL_ROWS", "tick_requests", "Result", "run_rows", "client_cost"]

ACTIONS = [("CheckStatus", "Check the status of every service (Running, Degraded, Down)"),
           ("ReadLogs", "Read the recent logs of a service"),
           ("AnalyzeMetrics", "Analyze CPU, memory, disk and latency metrics of a service"),
           ("Diagnose", "Name the problem of a service from the evidence gathered"),
           ("Restart", "Restart a diagnosed service")]
SERVICES = ["api-gateway", "user-service", "db-primary", "cache"]
GOAL = ("One service is failing. Find it, find out why from its logs or metrics, diagnose the problem "
        "and restart the service.")
SAMPLING = Sampling(temperature=0.0, max_tokens=32, seed=42)
ROWS = ("invoker-concurrent", "bare-concurrent", "invoker-free", "invoker-array", "bare-array",
        "invoker-sequential", "bare-sequential")
LABEL_ROWS = ("invoker-label", "bare-label")     # one-token answers: run apart from the JSON rows


def _choices(worker: int, tick: int, same_choices: bool) -> tuple[Choice, ...]:
    k = tick if same_choices else tick + worker
    acts = [ACTIONS[1 + (k + j) % 3][0] for j in range(2)]
    return tuple(Choice(a, s, visits=tick, successes=tick // 2, score=0.5) for a in acts for s in SERVICES)


def tick_requests(workers: Sequence[int], tick: int, *, same_choices: bool = True, grow: bool = True,
                  sampling: Sampling = SAMPLING, answer: str = "json") -> list[DecisionRequest]:
    """One request per worker at ``tick``; the worker's history has ``tick`` steps.

    ``grow=False`` asks the same question every tick (tick 1's), so after
    the first tick every prompt is fully cached and only generation costs.
    ``answer="label"``: the manager's label prompts (one-token answers)."""
    if not grow:
        tick = 1
    label = answer == "label"
    shared = (label_shared_prompt if label else shared_prompt)(GOAL, "Four services; one is faulty.", ACTIONS)
    out = []
    for w in workers:
        history = [f"{ACTIONS[1 + (w + t) % 3][0]} {SERVICES[(w + t) % 4]} -> ok" for t in range(tick)]
        choices = _choices(w, tick, same_choices)
        body = label_worker_prompt(w, history, choices) if label else worker_prompt(w, history, "", choices)
        out.append(DecisionRequest(w, shared, body, choices, sampling, slot=w, answer=answer))
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
    tick_rates: list[float] = field(default_factory=list)   # decisions/s of every counted tick
    # bare rows: the server's own time per counted tick (the slowest request's
    # timings.prompt_ms + predicted_ms: a tick's requests are decoded together)
    server_seconds: float = 0.0

    @property
    def decisions_per_s(self) -> float:
        return self.decisions / self.seconds if self.seconds > 0 else 0.0

    @property
    def cache_hit_rate(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def server_decisions_per_s(self) -> float | None:
        """Decisions per second of the server's own compute: the limit a client can reach."""
        return self.decisions / self.server_seconds if self.server_seconds > 0 else None

    def row(self) -> dict[str, Any]:
        limit = self.server_decisions_per_s
        return {"label": self.label, "server_decisions_per_s": None if limit is None else round(limit, 3),
                "decisions": self.decisions, "valid": self.valid,
                "errors": self.errors, "seconds": round(self.seconds, 3),
                "decisions_per_s": round(self.decisions_per_s, 3),
                "cache_hit_rate": round(self.cache_hit_rate, 3), "prompt_tokens": self.prompt_tokens,
                "cached_tokens": self.cached_tokens, "completion_tokens": self.completion_tokens,
                "mean_confidence": (round(sum(self.confidences) / len(self.confidences), 3)
                                    if self.confidences else None),
                "tick_decisions_per_s": [round(x, 4) for x in self.tick_rates]}

    def add(self, req: DecisionRequest, *, raw: str, error: bool, prompt: int, cached: int, completion: int,
            confidence: float | None = None) -> None:
        self.decisions += 1
        self.errors += error
        allowed = set(LABELS[:len(req.choices)]) if req.answer == "label" else {answer_json(c) for c in req.choices}
        self.valid += not error and raw.strip() in allowed
        self.prompt_tokens += prompt
        self.cached_tokens += cached
        self.completion_tokens += completion
        if confidence is not None:
            self.confidences.append(confidence)


class _InvokerRow:
    def __init__(self, url: str, label: str, mode: str, concurrency: int, **kwargs: Any) -> None:
        self.result = Result(label)
        self.invoker = LlamaServerInvoker(url, mode="array" if mode == "array" else "concurrent",
                                          concurrency=concurrency, timeout=300.0, affinity=mode != "free",
                                          **kwargs)

    async def tick(self, reqs: list[DecisionRequest], count: bool) -> None:
        t0 = time.perf_counter()
        decisions = await self.invoker.decide(reqs)
        dt = time.perf_counter() - t0
        if count:
            self.result.seconds += dt
            self.result.tick_rates.append(len(reqs) / dt)
            for r, d in zip(reqs, decisions):
                self.result.add(r, raw=d.raw, error=not d.ok or d.repaired, prompt=d.prompt_tokens,
                                cached=d.cached_tokens, completion=d.completion_tokens, confidence=d.confidence)

    async def aclose(self) -> None:
        await self.invoker.aclose()


def _bare_body(prompt: Any, req: DecisionRequest, slot: int | None) -> dict[str, Any]:
    s = req.sampling
    if req.answer == "label":               # what the invoker posts for a label answer
        n = len(req.choices)
        body = {"prompt": prompt, "n_predict": 1, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
                "grammar": label_grammar(n), "n_probs": n, "post_sampling_probs": True, "cache_prompt": True,
                "stream": False, "seed": s.seed}
        if slot is not None:
            body["id_slot"] = slot
        return body
    body = {"prompt": prompt, "n_predict": s.max_tokens, "temperature": s.temperature, "top_k": s.top_k,
            "top_p": s.top_p, "seed": s.seed, "cache_prompt": True, "stream": False,
            "grammar": gbnf_for(req.choices), "n_probs": 8, "post_sampling_probs": False}
    if slot is not None:
        body["id_slot"] = slot
    return body


class _BareRow:
    def __init__(self, url: str, label: str, mode: str, concurrency: int, n_slots: int) -> None:
        self.result = Result(label)
        self.url, self.mode, self.n_slots = url, mode, n_slots
        self.sem = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.AsyncClient(timeout=300.0, limits=limits, trust_env=False)

    async def _post(self, body: dict) -> Any:
        async with self.sem:
            r = await self.client.post(self.url + "/completion", json=body)
            r.raise_for_status()
            return r.json()

    async def tick(self, reqs: list[DecisionRequest], count: bool) -> None:
        t0 = time.perf_counter()
        if self.mode == "array":
            groups: dict[tuple, list[DecisionRequest]] = {}
            for r in reqs:
                groups.setdefault(tuple(answer_json(c) for c in r.choices), []).append(r)
            bodies = [_bare_body([r.prompt for r in g] if len(g) > 1 else g[0].prompt, g[0], None)
                      for g in groups.values()]
            answers = await asyncio.gather(*(self._post(b) for b in bodies))
            pairs = []
            for g, a in zip(groups.values(), answers):
                items = a if isinstance(a, list) else [a]
                by_index = {x.get("index", k): x for k, x in enumerate(items)}
                pairs += [(r, by_index[k]) for k, r in enumerate(g)]
        else:
            slot = (lambda r: None) if self.mode == "free" else (lambda r: r.slot % self.n_slots)
            answers = await asyncio.gather(*(self._post(_bare_body(r.prompt, r, slot(r))) for r in reqs))
            pairs = list(zip(reqs, answers))
        dt = time.perf_counter() - t0
        if count:
            self.result.seconds += dt
            self.result.tick_rates.append(len(reqs) / dt)
            self.result.server_seconds += max(
                (float((a.get("timings") or {}).get("prompt_ms") or 0) +
                 float((a.get("timings") or {}).get("predicted_ms") or 0) for _, a in pairs), default=0.0) / 1e3
            for r, a in pairs:
                timings = a.get("timings") or {}
                self.result.add(r, raw=a["content"], error=False, prompt=int(a.get("tokens_evaluated") or 0),
                                cached=int(timings.get("cache_n") or 0),
                                completion=int(timings.get("predicted_n") or 0))

    async def aclose(self) -> None:
        await self.client.aclose()


async def _run_rows(url: str, rows: Sequence[str], *, n_slots: int, workers: int, ticks: int, skip: int,
                    same_choices: bool, grow: bool, first_worker: int, interleave: bool, rounds: int,
                    say: Callable[[str], None]) -> list[Result]:
    # the warm-up puts the rows' shared prefix in every slot: run label rows and JSON
    # rows in separate calls (their system prompts differ, and a row that met slots
    # holding the other one would pay its whole prefix: an ordering artifact)
    kinds = {"label" if row.endswith("-label") else "json" for row in rows}
    if len(kinds) > 1:
        raise ValueError("run label rows and JSON rows in separate run_rows calls (each warms its own prefix)")
    answer = kinds.pop()
    warm = _InvokerRow(url, "warm", "concurrent", n_slots, confidence=False)
    await warm.tick([dataclasses.replace(r, slot=k) for k, r in
                     enumerate(tick_requests(range(10_000, 10_000 + n_slots), 0, answer=answer))], False)
    await warm.aclose()
    runners: list[tuple[_InvokerRow | _BareRow, range]] = []
    for k, row in enumerate(rows):
        kind, mode = row.split("-")
        conc = 1 if mode == "sequential" else workers
        base = first_worker + workers * (k + 1)
        ids = range(base, base + workers)                 # own workers; slots are id % n_slots
        runner = (_InvokerRow(url, row, mode, conc) if kind == "invoker"
                  else _BareRow(url, row, mode, conc, n_slots))
        runners.append((runner, ids))
    try:
        if interleave:
            for t in range(ticks):
                shift = t % len(runners)
                for runner, ids in runners[shift:] + runners[:shift]:
                    await runner.tick(tick_requests(ids, t, same_choices=same_choices, grow=grow,
                                                    answer=answer), t >= skip)
                say(f"tick {t + 1}/{ticks} done")
        else:
            for rnd in range(rounds):
                for runner, ids in (runners if rnd % 2 == 0 else runners[::-1]):
                    for t in range(ticks):
                        await runner.tick(tick_requests(ids, t, same_choices=same_choices, grow=grow,
                                                        answer=answer), t >= skip)
                    say(f"round {rnd + 1}: {runner.result.label} done")
    finally:
        for runner, _ in runners:
            await runner.aclose()
    return [runner.result for runner, _ in runners]


def run_rows(url: str, *, n_slots: int, rows: Sequence[str] = ROWS, workers: int = 4, ticks: int = 3,
             skip: int = 0, same_choices: bool = True, grow: bool = True, first_worker: int = 0,
             interleave: bool = True, rounds: int = 2,
             say: Callable[[str], None] = lambda _m: None) -> list[Result]:
    """Run ``rows`` (see the module docstring) for ``ticks`` ticks each after a
    warm-up tick that puts the shared prefix in every slot; the first
    ``skip`` ticks are run but not counted.

    ``interleave``: rows take turns tick by tick (the order rotating), so
    load from other processes hits them alike; but then each row's prompts
    leave the slots between its ticks (the server's RAM prompt cache brings
    most back). Otherwise each row runs its ticks back to back, ``rounds``
    times, the row order reversed every other round: the way to measure a
    steady state where a row's prompts stay in their slots."""
    return asyncio.run(_run_rows(url, rows, n_slots=n_slots, workers=workers, ticks=ticks, skip=skip,
                                 same_choices=same_choices, grow=grow, first_worker=first_worker,
                                 interleave=interleave, rounds=rounds, say=say))


def _canned(req: DecisionRequest, index: int) -> dict[str, Any]:
    """What llama-server answers for ``req`` choosing ``index``: content,
    timings and per-token probabilities (one token per 3 characters, 8
    alternatives each), the shape the invoker parses."""
    text = answer_json(req.choices[index])
    pieces = [text[i:i + 3] for i in range(0, len(text), 3)]
    probs = [{"id": k, "token": p, "logprob": -0.1,
              "top_logprobs": [{"id": 1000 + j, "token": p if j == 0 else f"x{j}", "logprob": -1.0 - j}
                               for j in range(8)]} for k, p in enumerate(pieces)]
    return {"index": 0, "content": text, "tokens_evaluated": 550, "tokens_cached": 560,
            "timings": {"cache_n": 500, "prompt_n": 50, "predicted_n": len(pieces)},
            "completion_probabilities": probs}


def client_cost(*, workers: int = 16, ticks: int = 50, mode: str = "concurrent") -> dict[str, float]:
    """The invoker's own time per decision, against an in-process transport
    that answers at once with canned llama-server answers: payload and
    grammar, JSON both ways, parsing, confidence. Returns microseconds per
    decision for the invoker and for a bare client posting the same bodies."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if isinstance(body["prompt"], list):
            return httpx.Response(200, json=[{**_canned(reqs[0], 0), "index": i}
                                             for i in range(len(body["prompt"]))])
        return httpx.Response(200, json=_canned(reqs[0], 0))

    reqs = tick_requests(range(workers), 3)

    async def go() -> dict[str, float]:
        inv = LlamaServerInvoker("http://bench", mode=mode, concurrency=workers,
                                 transport=httpx.MockTransport(handler))
        bare = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        out: dict[str, list[Decision] | None] = {}
        try:
            await inv.decide(reqs)                          # grammar cache, client start
            t0 = time.perf_counter()
            for _ in range(ticks):
                out["invoker"] = await inv.decide(reqs)
            t_inv = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(ticks):
                rs = await asyncio.gather(*(bare.post("http://bench/completion", json=_bare_body(r.prompt, r, None))
                                            for r in reqs))
                [r.json()["content"] for r in rs]
            t_bare = time.perf_counter() - t0
        finally:
            await inv.aclose()
            await bare.aclose()
        assert out["invoker"] is not None and all(d.ok and d.confidence is not None for d in out["invoker"])
        n = workers * ticks
        return {"invoker_us": t_inv / n * 1e6, "bare_us": t_bare / n * 1e6}

    return asyncio.run(go())
