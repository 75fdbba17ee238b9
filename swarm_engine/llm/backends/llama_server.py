"""The llama.cpp server backend: many decisions per tick over one connection pool.

Two ways to send a tick's requests (``mode``), both through one shared
``httpx.AsyncClient``:

``"concurrent"``
    One ``POST /completion`` per request, up to ``concurrency`` in flight.
    With ``affinity=True`` each is pinned to a server slot with ``id_slot``
    (the request's ``slot`` modulo the server's slot count: out-of-range ids
    are silently ignored by the server); without, the server picks the idle
    slot with the longest common prefix, which is the worker's own slot.
``"array"``
    One ``POST /completion`` whose ``prompt`` is an array; the server spreads
    the prompts over its slots and answers a list whose items carry ``index``.
    Grammar, sampling and LoRA are per request, not per prompt, so requests
    are grouped by (allowed choices, sampling, LoRA set): one array request
    per group. ``id_slot`` is not sent (with it, every prompt of the array
    queues on that one slot).

Per request: ``cache_prompt``, ``n_cache_reuse``, the choice grammar
(``gbnf_for``) or JSON schema, ``n_probs`` for a confidence, explicit LoRA
scales for every adapter the server has (an empty ``lora`` list is ignored by
llama-server, so "no adapter" is every adapter at scale 0). llama-server does
not key its KV cache on the LoRA set, so ``cache_prompt`` is turned off for a
request whose slot last ran under another set.

Confidence: the probability of the chosen answer among the allowed answers,
the product over generated tokens of (mass of the candidate tokens that keep
the text on the chosen answer) / (mass of those that keep it on any allowed
answer), whitespace ignored. With temperature > 0 the candidates are the
sampler's (``post_sampling_probs``); with temperature 0 the post-sampling
probabilities are all 1.0 (greedy), so the model's own (pre-sampling)
probabilities are used instead. Renormalising over allowed continuations
matters: with grammar-constrained sampling the server's post-sampling list is
the grammar-filtered one only when the unconstrained draw was rejected, and
one answer has several tokenisations ('{' + '"' vs '{"'), so the bare product
of the chosen tokens' probabilities is far below the choice's probability.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from swarm_engine.errors import ConfigError, LlmError, LlmPermanentError, LlmTransientError
from swarm_engine.llm.backends.llama_cpp.sampling import label_choice
from swarm_engine.llm.backends.server_answers import (
    answers_of,
    choice_confidence,
    label_grammar,
    label_probs,
)
from swarm_engine.llm.grammar import gbnf_for, json_schema_for
from swarm_engine.llm.health import Breaker, describe_failure, probe
from swarm_engine.llm.http import backoff_delay, get_json, is_transient_status, post_json, server_message
from swarm_engine.llm.prompts import LABELS
from swarm_engine.llm.protocol import (
    ERROR_PARSE,
    ERROR_PERMANENT,
    ERROR_TRANSIENT,
    Choice,
    Decision,
    DecisionRequest,
    LoraScale,
    Sampling,
)
from swarm_engine.llm.repair import parse_decision

__all__ = ["LlamaServerInvoker", "choice_confidence", "label_probs", "label_grammar", "CHATML"]

MODES = ("concurrent", "array")
CONSTRAINTS = ("grammar", "json_schema", None)

# SmolLM2-Instruct's chat template, for template=CHATML: the shared part is
# the system message (first, so the prefix cache still hits).
CHATML = ("<|im_start|>system\n{shared}<|im_end|>\n<|im_start|>user\n{worker}<|im_end|>\n"
          "<|im_start|>assistant\n")

_GRAMMAR_CACHE = 512                    # grammars / schemas kept per invoker (LRU)

class LlamaServerInvoker:
    """Decisions from a running llama-server (``swarm llama start``).

    Parameters
    ----------
    base_url:
        e.g. ``http://127.0.0.1:8080``.
    mode:
        ``"concurrent"`` (one request per decision) or
        ``"array"`` (one prompt-array request per group of identical choice
        sets); see the module docstring and ``benchmarks/test_llm_server.py``.
    concurrency:
        Requests in flight at once (and the connection pool size); size it
        to the server's ``-np``.
    timeout:
        Seconds per attempt (read timeout; connecting gets at most 5 s).
    retries, backoff, max_backoff:
        Transient failures (refused, timeouts, 5xx) are retried this many
        times with exponential backoff and jitter; then the decision carries
        ``ERROR_TRANSIENT`` and the engine falls back to its selector.
    cache_prompt, n_cache_reuse:
        The server's prefix cache; ``n_cache_reuse`` (e.g. 32-64) also reuses
        chunks after a divergence.
    constrain:
        ``"grammar"`` (GBNF, exact canonical answers), ``"json_schema"``, or
        None (free text, mapped by repair).
    confidence, n_probs:
        Ask for ``n_probs`` alternatives per token and compute
        ``Decision.confidence`` (see :func:`choice_confidence`).
    lora:
        Default LoRA scales for requests that carry none: LoraScale items or
        (adapter id or path, scale) pairs; None leaves the server's global
        scales alone. Adapters not named get scale 0.
    affinity:
        Mode "concurrent": send ``id_slot`` (request.slot modulo the server's
        slots). Off by default: without it the server picks the idle slot
        whose cached prompt shares the longest prefix, which finds a worker's
        slot as well (same hit rate, measured), while with ``-kvu`` pinning
        loses the cache (this build moves idle slots out of a unified KV
        buffer whenever another slot starts: hit rate 0.12 vs 0.46).
    template:
        A format string with ``{shared}`` and ``{worker}`` (e.g. ``CHATML``);
        None sends ``shared + worker`` as is.
    seed:
        Seeds the retry jitter.
    transport:
        An httpx transport for the shared client (tests pass a MockTransport).
    """

    name = "llama-server"
    # the answer format the manager asks for by default. "label" (one token, its
    # distribution from post_sampling_probs, see label_probs) works and is tested, but
    # is opt-in ([llm] answer = "label") on this backend: with label requests in
    # flight, the 0.10068 llama-server build once served a plain completion from a slot
    # that still held another prompt's KV (tokens_cached 238 for a 5-token prompt; the
    # text continued the label prompt; tests/llm/test_bluegreen.py). Until that is
    # understood the server path keeps the JSON answer, which never showed it.
    answer = "json"
    answers = ("label", "json")

    def __init__(self, base_url: str | Sequence[str] = "http://127.0.0.1:8080", *, mode: str = "concurrent",
                 concurrency: int = 8, timeout: float = 30.0, retries: int = 2, backoff: float = 0.2,
                 max_backoff: float = 2.0, cache_prompt: bool = True, n_cache_reuse: int | None = None,
                 constrain: str | None = "grammar", confidence: bool = True, n_probs: int = 8,
                 lora: Sequence[LoraScale | tuple[int | str, float]] | None = None,
                 template: str | None = None, affinity: bool = False, seed: int | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if mode not in MODES:
            raise ConfigError(f"llama-server mode {mode!r}: expected one of {', '.join(MODES)}")
        if constrain not in CONSTRAINTS:
            raise ConfigError(f"llama-server constrain {constrain!r}: expected 'grammar', 'json_schema' or None")
        if int(concurrency) < 1:
            raise ConfigError(f"llama-server concurrency {concurrency}: expected >= 1")
        if timeout <= 0 or retries < 0 or n_probs < 1:
            raise ConfigError("llama-server: timeout > 0, retries >= 0 and n_probs >= 1 expected")
        if template is not None and not 0 <= template.find("{shared}") < template.find("{worker}"):
            raise ConfigError("llama-server template: needs {shared} and then {worker}")
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ConfigError("llama-server: no endpoint")
        # a pool of servers: worker (request.slot) k goes to endpoint k % n, slot k // n there
        self.endpoints = [u.rstrip("/") for u in urls]
        self.base_url = self.endpoints[0]
        self.mode = mode
        self.concurrency = int(concurrency)
        self.timeout = httpx.Timeout(float(timeout), connect=min(5.0, float(timeout)))
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.cache_prompt = bool(cache_prompt)
        self.n_cache_reuse = n_cache_reuse
        self.constrain = constrain
        self.confidence = bool(confidence)
        self.n_probs = int(n_probs)
        self.lora = None if lora is None else tuple(
            x if isinstance(x, LoraScale) else LoraScale(x[0], float(x[1])) for x in lora)
        # split once; str.format would trip over other braces in a template
        self._template = None if template is None else (
            template.split("{shared}", 1)[0], *template.split("{shared}", 1)[1].split("{worker}", 1))
        self.affinity = bool(affinity)
        self._rng = random.Random(seed)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._closed = False
        self._sem: asyncio.Semaphore | None = None
        self._constraints: OrderedDict[tuple, Any] = OrderedDict()
        self._n_slots: int | None = None
        self._slots_at: dict[str, int] = {}                      # endpoint -> its slots (pool)
        self._adapters: list[dict] | None = None
        self._slot_lora: dict[Any, tuple | None] = {}    # slot -> LoRA set it last ran under
        self._lora_sets: set[tuple | None] = set()
        # one breaker per endpoint: a dead server of a pool fails fast, and its workers fail over (_route)
        self._breakers = {u: Breaker(f"llama-server at {u}") for u in self.endpoints}
        self.failovers = 0                  # requests sent to another endpoint while their own was dead
        self._breaker = self._breakers[self.base_url]

    # -- plumbing

    def _http(self) -> httpx.AsyncClient:
        if self._closed:
            raise LlmPermanentError("llama-server invoker is closed")
        if self._client is None:
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=limits, trust_env=False,
                                             transport=self._transport)
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._client

    async def health(self, wait: float = 60.0) -> None:
        """GET /health is 200; a 503 (loading the model) is polled for at most
        ``wait`` seconds. LlmUnavailableError naming the URL and why, if not."""
        await probe(self._http(), self.base_url + "/health", timeout=min(5.0, self.timeout.read or 5.0),
                    loading=(503,), wait=wait)

    async def aclose(self) -> None:
        """Close the connection pool; safe to call twice."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _prompt(self, req: DecisionRequest) -> str:
        if self._template is None:
            return req.prompt
        head, middle, tail = self._template
        return head + req.shared_prompt + middle + req.worker_prompt + tail

    def _constraint(self, choices: Sequence[Choice], answers: tuple[str, ...]) -> tuple[str, Any] | None:
        if self.constrain is None:
            return None
        key = (self.constrain, answers)
        hit = self._constraints.get(key)
        if hit is None:
            hit = gbnf_for(choices) if self.constrain == "grammar" else json_schema_for(choices)
            self._constraints[key] = hit
            if len(self._constraints) > _GRAMMAR_CACHE:
                self._constraints.popitem(last=False)
        else:
            self._constraints.move_to_end(key)
        return self.constrain, hit

    def _route(self, req: DecisionRequest) -> tuple[str, int | None]:
        """(endpoint, index among its workers) of a request: the pool's
        round-robin by ``slot`` (the worker), slot affinity within an endpoint.

        Failover: while a worker's own endpoint is known dead (its breaker is
        open and no probe is due), the worker goes to the next live endpoint of
        the pool, unpinned (its slot there belongs to that server's own
        workers); when a probe is due it goes home, so a server that came back
        gets its workers back."""
        n = len(self.endpoints)
        k = req.slot if req.slot is not None else req.worker
        home = self.endpoints[k % n]
        breaker = self._breakers[home]
        if n > 1 and breaker.open and not breaker.probe_due:
            for step in range(1, n):
                url = self.endpoints[(k + step) % n]
                if not self._breakers[url].open:
                    self.failovers += 1
                    return url, None
        return home, (k // n if req.slot is not None else None)

    async def _slots_of(self, url: str) -> int | None:
        if url == self.base_url:
            return await self._server_slots()
        if url not in self._slots_at:
            try:
                props, _ = await get_json(self._http(), url + "/props", timeout=self.timeout)
                self._slots_at[url] = int(props.get("total_slots") or 0) or 0
            except (LlmError, ValueError, TypeError):
                return None
        return self._slots_at[url] or None

    async def _server_slots(self) -> int | None:
        if self._n_slots is None:
            try:
                props, _ = await get_json(self._http(), self.base_url + "/props", timeout=self.timeout)
                self._n_slots = int(props.get("total_slots") or 0) or None
            except (LlmError, ValueError, TypeError):
                return None                     # no affinity this time; ask again next tick
        return self._n_slots

    async def _lora_field(self, lora: tuple[LoraScale, ...] | None) -> list[dict] | None:
        """Explicit scales for every adapter the server loaded, or None (server globals)."""
        lora = self.lora if lora is None else lora
        if lora is None:
            return None
        if self._adapters is None:
            try:
                r = await self._http().get(self.base_url + "/lora-adapters")
            except httpx.HTTPError as exc:
                raise LlmTransientError(f"GET {self.base_url}/lora-adapters: {type(exc).__name__}") from exc
            try:
                adapters = r.json() if r.status_code == 200 else None
            except ValueError:
                adapters = None
            if not isinstance(adapters, list):
                raise LlmPermanentError(f"GET {self.base_url}/lora-adapters: HTTP {r.status_code}: "
                                        f"{server_message(r)}")
            self._adapters = adapters
        scales = {int(a["id"]): 0.0 for a in self._adapters}
        by_path = {str(Path(a.get("path", "")).resolve()): int(a["id"]) for a in self._adapters}
        for item in lora:
            if isinstance(item.adapter, int):
                ident = item.adapter
            else:
                ident = by_path.get(str(Path(item.adapter).expanduser().resolve()), -1)
            if ident not in scales:
                raise LlmPermanentError(f"LoRA adapter {item.adapter!r} is not loaded by the server at "
                                        f"{self.base_url} (start it with --lora)")
            scales[ident] = float(item.scale)
        return [{"id": i, "scale": s} for i, s in sorted(scales.items())]

    def _use_cache(self, slot: Any, lora_key: tuple | None) -> bool:
        """False when this slot (or, unpinned, any slot) may hold KV from another LoRA set."""
        if not self.cache_prompt:
            return False
        self._lora_sets.add(lora_key)
        if slot is None:
            return len(self._lora_sets) == 1
        prev = self._slot_lora.get(slot, lora_key)
        self._slot_lora[slot] = lora_key
        return prev == lora_key

    def _payload(self, prompt: str | list[str], req: DecisionRequest, answers: tuple[str, ...],
                 lora: list[dict] | None, cache: bool) -> dict[str, Any]:
        s = req.sampling
        p: dict[str, Any] = {"prompt": prompt, "n_predict": s.max_tokens, "temperature": s.temperature,
                             "top_k": s.top_k, "top_p": s.top_p, "cache_prompt": cache, "stream": False}
        if s.seed is not None:
            p["seed"] = s.seed
        if self.n_cache_reuse:
            p["n_cache_reuse"] = int(self.n_cache_reuse)
        constraint = self._constraint(req.choices, answers)
        if constraint is not None:
            p[constraint[0]] = constraint[1]
        if self.confidence:
            p["n_probs"] = self.n_probs
            # temperature 0 samples greedily: post-sampling probabilities are all 1.0
            p["post_sampling_probs"] = s.temperature > 0
        if lora is not None:
            p["lora"] = lora
        return p

    def _decision(self, req: DecisionRequest, answers: tuple[str, ...], res: Any, latency_ms: float,
                  retries: int) -> Decision:
        if not isinstance(res, dict) or not isinstance(res.get("content"), str):
            return Decision(req.worker, None, error=ERROR_PERMANENT, latency_ms=latency_ms, retries=retries,
                            message=f"{self.base_url}/completion: unexpected result {str(res)[:120]!r}")
        text = res["content"]
        timings = res.get("timings") or {}
        cached = int(timings.get("cache_n", 0) or 0)
        prompt_tokens = int(res.get("tokens_evaluated") or (int(timings.get("prompt_n", 0) or 0) + cached))
        completion = int(timings.get("predicted_n", res.get("tokens_predicted", 0)) or 0)
        index, repaired = parse_decision(text, req.choices)
        d = Decision(req.worker, index, raw=text, repaired=repaired, latency_ms=latency_ms, retries=retries,
                     prompt_tokens=prompt_tokens, completion_tokens=completion, cached_tokens=cached)
        if index is None:
            d.error = ERROR_PARSE
            d.message = f"no allowed choice in the answer {text[:80]!r}"
        elif self.confidence and res.get("completion_probabilities"):
            d.confidence = choice_confidence(res["completion_probabilities"], answers, index)
        return d

    @staticmethod
    def _failed(req: DecisionRequest, exc: LlmError, latency_ms: float) -> Decision:
        kind = ERROR_TRANSIENT if isinstance(exc, LlmTransientError) else ERROR_PERMANENT
        return Decision(req.worker, None, error=kind, message=str(exc), latency_ms=latency_ms,
                        retries=exc.retries)

    # -- the protocol

    async def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """One Decision per request, in order; never raises for a failed call."""
        if not requests:
            return []
        try:
            self._http()
        except LlmError as exc:
            return [self._failed(r, exc, 0.0) for r in requests]
        if self.mode == "concurrent":
            return list(await asyncio.gather(*(self._one(r, answers_of(r)) for r in requests)))
        groups: dict[tuple, list[int]] = {}
        out: list[Decision | None] = [None] * len(requests)
        labels = [i for i, r in enumerate(requests) if r.answer == "label"]   # one slot per worker, one wave
        for i, d in zip(labels, await asyncio.gather(*(self._one(requests[i], ()) for i in labels))):
            out[i] = d
        for i, r in enumerate(requests):
            if r.answer == "label":
                continue
            groups.setdefault((answers_of(r), r.sampling, r.lora), []).append(i)
        results = await asyncio.gather(*(self._array(key[0], [requests[i] for i in idx])
                                         for key, idx in groups.items()))
        for idx, decisions in zip(groups.values(), results):
            for i, d in zip(idx, decisions):
                out[i] = d
        return out  # type: ignore[return-value]

    def _label_payload(self, prompt: str, req: DecisionRequest, lora: list[dict] | None,
                       cache: bool) -> dict[str, Any]:
        """One token, constrained to the labels; the server's own draw (at
        temperature 1, nothing cut) is ignored: the choice is made here from
        the distribution it returns (:func:`label_probs`)."""
        n = len(req.choices)
        p: dict[str, Any] = {"prompt": prompt, "n_predict": 1, "temperature": 1.0, "top_k": 0, "top_p": 1.0,
                             "min_p": 0.0, "grammar": label_grammar(n), "n_probs": n, "post_sampling_probs": True,
                             "cache_prompt": cache, "stream": False}
        if req.sampling.seed is not None:
            p["seed"] = req.sampling.seed
        if self.n_cache_reuse:
            p["n_cache_reuse"] = int(self.n_cache_reuse)
        if lora is not None:
            p["lora"] = lora
        return p

    def _label_decision(self, req: DecisionRequest, res: Any, latency_ms: float, retries: int,
                        url: str) -> Decision:
        if not isinstance(res, dict):
            return Decision(req.worker, None, error=ERROR_PERMANENT, latency_ms=latency_ms, retries=retries,
                            message=f"{url}/completion: unexpected result {str(res)[:120]!r}")
        timings = res.get("timings") or {}
        cached = int(timings.get("cache_n", 0) or 0)
        d = Decision(req.worker, None, raw=str(res.get("content", "")), latency_ms=latency_ms, retries=retries,
                     prompt_tokens=int(timings.get("prompt_n", 0) or 0) + cached, completion_tokens=1,
                     cached_tokens=cached)
        p = label_probs(res.get("completion_probabilities") or (), len(req.choices))
        if p is None:
            # seen about once in ten waves on the 0.10068 build: the token obeyed the
            # grammar but top_probs came back unconstrained (no label among them). The
            # label itself is still the model's answer; its confidence is unknown.
            allowed = tuple(LABELS[:len(req.choices)])          # one character each
            if d.raw.strip() in allowed:
                d.choice, d.raw, d.repaired = allowed.index(d.raw.strip()), d.raw.strip(), True
            else:
                d.error, d.message = ERROR_PARSE, f"no label probabilities in the answer {d.raw[:40]!r}"
            return d
        s = req.sampling
        rng = None
        if s.temperature > 0:
            rng = np.random.default_rng([int(s.seed or 0) & 0xFFFFFFFF, req.worker & 0xFFFFFFFF])
        with np.errstate(divide="ignore"):
            j, conf, probs = label_choice(np.log(np.asarray(p)), s, rng)
        d.choice, d.confidence, d.probs, d.raw = j, conf, tuple(float(x) for x in probs), LABELS[j]
        return d

    async def _one(self, req: DecisionRequest, answers: tuple[str, ...]) -> Decision:
        label = req.answer == "label"
        assert self._sem is not None
        async with self._sem:
            t0 = time.perf_counter()
            url, k = self._route(req)
            breaker = self._breakers[url]
            try:
                breaker.check()
                lora = await self._lora_field(req.lora)
                key = None if lora is None else tuple((a["id"], a["scale"]) for a in lora)
                slot = None
                # a label request is always pinned: its slot keeps the worker's prefix warm
                if k is not None and (label or self.affinity):
                    n = await self._slots_of(url)
                    slot = k % n if n else None
                use_cache = self._use_cache(slot if len(self.endpoints) == 1 else (url, slot), key)
                if label:
                    # raw prompts end "Answer:": the label follows a line break (" 1" is two tokens)
                    prompt = self._prompt(req) + ("\n" if self._template is None else "")
                    payload = self._label_payload(prompt, req, lora, use_cache)
                else:
                    payload = self._payload(self._prompt(req), req, answers, lora, use_cache)
                if slot is not None:
                    payload["id_slot"] = slot
                body, retries = await post_json(self._http(), url + "/completion", payload,
                                                timeout=self.timeout, retries=self.retries, backoff=self.backoff,
                                                max_backoff=self.max_backoff, rng=self._rng)
            except LlmError as exc:
                breaker.failure(exc)
                return self._failed(req, exc, (time.perf_counter() - t0) * 1e3)
            breaker.success()
            ms = (time.perf_counter() - t0) * 1e3
            if label:
                return self._label_decision(req, body, ms, retries, url)
            return self._decision(req, answers, body, ms, retries)

    async def _array(self, answers: tuple[str, ...], group: list[DecisionRequest]) -> list[Decision]:
        assert self._sem is not None
        async with self._sem:
            t0 = time.perf_counter()
            try:
                self._breaker.check()
                lora = await self._lora_field(group[0].lora)
                key = None if lora is None else tuple((a["id"], a["scale"]) for a in lora)
                prompts = [self._prompt(r) for r in group]
                payload = self._payload(prompts if len(prompts) > 1 else prompts[0], group[0], answers, lora,
                                        self._use_cache(None, key))
                body, retries = await self._post_any(payload)
            except LlmError as exc:
                self._breaker.failure(exc)
                ms = (time.perf_counter() - t0) * 1e3
                return [self._failed(r, exc, ms) for r in group]
            self._breaker.success()
            ms = (time.perf_counter() - t0) * 1e3
            items = body if isinstance(body, list) else [body]
            by_index = {int(x.get("index", k)): x for k, x in enumerate(items) if isinstance(x, dict)}
            return [self._decision(r, answers, by_index.get(k), ms, retries) for k, r in enumerate(group)]

    async def _post_any(self, payload: dict) -> tuple[Any, int]:
        """POST /completion accepting a JSON list (prompt arrays), with the same
        retry policy as ``http.post_json`` (which only accepts objects)."""
        url = self.base_url + "/completion"
        client = self._http()
        attempt = 0
        cause: BaseException | None
        err: LlmError
        while True:
            try:
                r = await client.post(url, json=payload)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                failure, cause = f"POST {url}: {type(exc).__name__}: {describe_failure(exc)}", exc
            except httpx.HTTPError as exc:
                err = LlmPermanentError(f"POST {url}: {type(exc).__name__}: {exc}")
                err.retries = attempt
                raise err from exc
            else:
                if 200 <= r.status_code < 300:
                    try:
                        return r.json(), attempt
                    except ValueError as exc:
                        err = LlmPermanentError(f"POST {url}: HTTP {r.status_code} but the body is not JSON")
                        err.retries = attempt
                        raise err from exc
                failure, cause = f"POST {url}: HTTP {r.status_code}: {server_message(r)}", None
                if not is_transient_status(r.status_code):
                    err = LlmPermanentError(failure)
                    err.retries = attempt
                    raise err
            if attempt >= self.retries:
                err = LlmTransientError(f"{failure} (gave up after {attempt + 1} attempts)")
                err.retries = attempt
                raise err from cause
            await asyncio.sleep(backoff_delay(attempt, backoff=self.backoff, max_backoff=self.max_backoff,
                                              rng=self._rng))
            attempt += 1

    async def complete_json(self, prompt: str, schema: dict, sampling: Sampling) -> str:
        """One JSON-schema-constrained completion (dependency planning).

        Raises
        ------
        LlmTransientError, LlmPermanentError
            After the retry budget, or at once for a permanent failure.
        """
        payload: dict[str, Any] = {"prompt": prompt, "json_schema": schema, "n_predict": sampling.max_tokens,
                                   "temperature": sampling.temperature, "top_k": sampling.top_k,
                                   "top_p": sampling.top_p, "cache_prompt": self.cache_prompt, "stream": False}
        if sampling.seed is not None:
            payload["seed"] = sampling.seed
        body, _ = await post_json(self._http(), self.base_url + "/completion", payload, timeout=self.timeout,
                                  retries=self.retries, backoff=self.backoff, max_backoff=self.max_backoff,
                                  rng=self._rng)
        text = body.get("content")
        if not isinstance(text, str):
            raise LlmPermanentError(f"POST {self.base_url}/completion: no 'content' in the answer")
        return text
