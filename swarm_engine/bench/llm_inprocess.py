"""The in-process part of suite ``llm``: the engine beside a bare ``llama_decode`` loop.

One tick of ``workers`` decisions over the same candidates (a troubleshooting
swarm's steady state: the shared system prompt cached, each worker's history
different) is decided five ways, interleaved round by round so noise hits all
alike:

- ``label-batched``: ``LlamaCppInvoker.decide`` of the whole tick with label
  answers, the engine's default in process (one forward pass per decision, the
  tick's common prefix prefilled once and copied across sequences);
- ``label-sequential``: the same requests one call each;
- ``json-batched`` / ``json-sequential``: JSON answers (a constrained sampling
  loop of ~15 tokens per decision, what the engine did before label answers);
- ``bare-decode``: the physical limit on this machine: a second context on the
  same model decodes exactly the same tokens with nothing else (the cached
  system prompt kept, the tick's common prefix decoded once and copied with
  ``llama_memory_seq_cp``, every suffix in one batch, the argmax over the label
  tokens read from the logits).

Ratios: ``of_limit`` = label-batched / bare-decode (target >= 0.7),
``batched_over_sequential`` (target >= 1.5), ``label_over_json_sequential``
(the label path vs the one-call-per-worker JSON path it replaced). Every
answer must be valid and bare-decode must choose what label-batched chose on
most decisions (batched float sums may differ in the last bits).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from swarm_engine.bench.measure import spread
from swarm_engine.bench.settings import Settings

__all__ = ["run", "BareDecoder", "ROWS"]

ROWS = ("label-batched", "label-sequential", "json-batched", "json-sequential", "bare-decode")

_SERVICES = ("api-gateway", "user-service", "db-primary", "cache", "web", "queue")


def requests(workers: int, answer: str, tick: int = 0) -> list:
    """Tick ``tick``'s requests: the same candidates for every worker (their
    statistics change with the tick, as a swarm's do), each worker's own
    two-step history; label or JSON prompts as the manager builds them."""
    from swarm_engine.bench.llm import ACTIONS, GOAL  # the server rows' task and catalogue
    from swarm_engine.llm import prompts
    from swarm_engine.llm.protocol import Choice, DecisionRequest, Sampling

    choices = tuple(Choice(a, s, visits=tick + v, successes=(tick + v) // 2)
                    for v, a in enumerate(("ReadLogs", "AnalyzeMetrics")) for s in _SERVICES[:4]) + (
        Choice("Diagnose", "db-primary"),)
    out = []
    for w in range(workers):
        hist = [f"CheckStatus -> ok: {_SERVICES[w % 6]}: Degraded; {_SERVICES[(w + 1) % 6]}: Running",
                f"ReadLogs {_SERVICES[w % 6]} -> ok: {_SERVICES[w % 6]} logs: WARN slow responses ({100 + w} ms)"]
        if answer == "label":
            shared = prompts.label_shared_prompt(GOAL, "Six services; one is faulty.", ACTIONS)
            body = prompts.label_worker_prompt(w, hist, choices)
        else:
            shared = prompts.shared_prompt(GOAL, "Six services; one is faulty.", ACTIONS)
            body = prompts.worker_prompt(w, hist, "", choices)
        out.append(DecisionRequest(w, shared, body, choices, Sampling(temperature=0.0, max_tokens=32),
                                   slot=w, answer=answer))
    return out


class BareDecoder:
    """The least work a tick of label decisions needs: a context of its own on
    the model, the system prompt cached once, then per tick the common prefix
    on sequence 0, copied to the others, every suffix in one ``llama_decode``
    batch, and an argmax over the label tokens. Nothing else."""

    def __init__(self, model_path: str, *, n_ctx: int, n_seq: int, n_threads: int) -> None:
        from swarm_engine.llm.backends.llama_cpp.batch import Batch
        from swarm_engine.llm.backends.llama_cpp.library import lib
        from swarm_engine.llm.cpu import safe_model_params

        L = self.L = lib()
        mp = safe_model_params(L.llama_model_default_params())
        self.model = L.llama_model_load_from_file(model_path.encode(), mp)
        if not self.model:
            raise RuntimeError(f"{model_path}: cannot load")
        cp = L.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = n_ctx, 512, 512, n_seq
        cp.n_threads = cp.n_threads_batch = n_threads
        cp.kv_unified = True
        cp.no_perf = True
        self.ctx = L.llama_init_from_model(self.model, cp)
        self.mem = L.llama_get_memory(self.ctx)
        self.batch = Batch(L, 512)          # the engine's numpy-backed llama_batch: filled by slices
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.cached: list[int] = []      # what sequence 0 holds between ticks

    def _decode(self, parts: Sequence[tuple[int, Sequence[int], int]]) -> list[np.ndarray]:
        """Decode (seq, tokens, first pos) parts in chunks of 512; the logits
        of each part's last token."""
        L, b = self.L, self.batch
        tok = np.concatenate([np.asarray(t, dtype=np.int32) for _, t, _ in parts])
        pos = np.concatenate([np.arange(p0, p0 + len(t), dtype=np.int32) for _, t, p0 in parts])
        seq = np.concatenate([np.full(len(t), s, dtype=np.int32) for s, t, _ in parts])
        last = np.zeros(len(tok), dtype=np.int8)
        last[np.cumsum([len(t) for _, t, _ in parts]) - 1] = 1
        out: list[np.ndarray] = []
        for lo in range(0, len(tok), 512):
            hi = min(lo + 512, len(tok))
            n = hi - lo
            b.token[:n], b.pos[:n], b.seq[:n], b.logits[:n] = tok[lo:hi], pos[lo:hi], seq[lo:hi], last[lo:hi]
            b.struct.n_tokens = n
            if L.llama_decode(self.ctx, b.struct) != 0:
                raise RuntimeError("llama_decode failed")
            for i in np.flatnonzero(last[lo:hi]):
                ptr = L.llama_get_logits_ith(self.ctx, int(i))
                out.append(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy())
        return out

    def tick(self, token_lists: Sequence[Sequence[int]], labels: Sequence[int]) -> list[int]:
        """One tick of label decisions; the chosen label index of each. What
        sequence 0 held from the last tick is reused as far as it matches (the
        engine keeps its prefix the same way)."""
        L = self.L
        n = min(len(t) for t in token_lists)
        common = next((i for i in range(n) if len({t[i] for t in token_lists}) > 1), n)
        common = min(common, n - 1)                      # every sequence decodes at least its last token
        first = token_lists[0]
        reuse = next((i for i in range(min(len(self.cached), common)) if self.cached[i] != first[i]),
                     min(len(self.cached), common))
        L.llama_memory_seq_rm(self.mem, 0, reuse, -1)
        for s in range(1, len(token_lists)):
            L.llama_memory_seq_rm(self.mem, s, -1, -1)
        if common > reuse:
            self._decode([(0, first[reuse:common], reuse)])
        self.cached = list(first[:common])
        for s in range(1, len(token_lists)):
            L.llama_memory_seq_cp(self.mem, 0, s, -1, -1)
        logits = self._decode([(s, t[common:], common) for s, t in enumerate(token_lists)])
        ids = np.asarray(labels)
        return [int(np.argmax(lg[ids])) for lg in logits]

    def close(self) -> None:
        L = self.L
        L.llama_free(self.ctx)
        L.llama_model_free(self.model)


def _valid(decisions: list, reqs: list, answer: str) -> None:
    from swarm_engine.llm.prompts import answer_json

    for d, r in zip(decisions, reqs):
        ok = d.ok and d.choice is not None and (answer == "label" or d.raw == answer_json(r.choices[d.choice]))
        if not ok:
            raise AssertionError(f"llm: in process, {answer}: invalid decision {d!r}")


def run(settings: Settings, say: Callable[[str], None]) -> dict[str, Any]:
    """The five rows (module docstring); ``{"skipped": reason}`` without llama-cpp-python."""
    if importlib.util.find_spec("llama_cpp") is None:
        return {"skipped": "llama-cpp-python is not installed (pip install 'swarm-engine[llm]')"}
    from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker
    from swarm_engine.llm.models import default_model_path

    workers = max(2, 2 * settings.llm_workers)
    say("llm: loading the model in process (engine and bare contexts)")
    inv = LlamaCppInvoker(default_model_path(), n_ctx=8192, n_batch=512, n_seq_max=workers)
    info = inv.info()
    bare = BareDecoder(str(default_model_path()), n_ctx=8192, n_seq=workers, n_threads=int(info["n_threads"]))
    try:
        warm = requests(workers, "label", -1)
        labels = inv.label_token_ids(len(warm[0].choices))
        system = inv.prompt_tokens(warm[0])[:_system_len(inv, warm[0])]
        inv.decide_sync(warm[:2])                          # warm: the system prompt cached, allocations made
        bare.tick([inv.prompt_tokens(r) for r in warm[:2]], labels)
        times: dict[str, list[float]] = {r: [] for r in ROWS}
        agree = total = 0
        chosen: dict[str, list[int]] = {}
        new_tokens: list[int] = []
        for rnd in range(settings.repeat):
            # a new tick every round: the candidates' statistics changed, as in a swarm
            reqs = {a: requests(workers, a, rnd) for a in ("label", "json")}
            toks = [inv.prompt_tokens(r) for r in reqs["label"]]
            new_tokens += [len(t) - len(system) for t in toks]
            order = ROWS if rnd % 2 == 0 else ROWS[::-1]
            for row in order:
                say(f"llm: in process, {row}, round {rnd + 1}/{settings.repeat}")
                answer = row.split("-")[0]
                t0 = time.perf_counter()
                if row == "bare-decode":
                    chosen[row] = bare.tick(toks, labels)
                else:
                    rs = reqs[answer]
                    out = inv.decide_sync(rs) if row.endswith("batched") else [inv.decide_sync([r])[0] for r in rs]
                times[row].append(time.perf_counter() - t0)
                if row != "bare-decode":
                    _valid(out, reqs[answer], answer)
                    chosen[row] = [-1 if d.choice is None else d.choice for d in out]
            agree += sum(a == b for a, b in zip(chosen["label-batched"], chosen["bare-decode"]))
            total += workers
        if agree < 0.75 * total:
            raise AssertionError(f"llm: in process: bare decode chose like the engine on {agree} of {total}")
        rate = {r: spread([workers / t for t in v]) for r, v in times.items()}

        def ratio(a: str, b: str) -> dict:
            return spread([tb / ta for ta, tb in zip(times[a], times[b])])

        return {"workers": workers, "threads": info.get("n_threads"), "model": default_model_path().name,
                "decisions_per_s": rate,
                "of_limit": ratio("label-batched", "bare-decode"),
                "batched_over_sequential": ratio("label-batched", "label-sequential"),
                "json_batched_over_sequential": ratio("json-batched", "json-sequential"),
                "label_over_json_sequential": ratio("label-batched", "json-sequential"),
                "prompt_tokens_per_decision": round(len(system) + sum(new_tokens) / len(new_tokens), 1),
                "tokens_after_system_prompt": round(sum(new_tokens) / len(new_tokens), 1),
                "bare_agreement": round(agree / total, 3)}
    finally:
        bare.close()
        inv.close()


def _system_len(inv: Any, req: Any) -> int:
    """Tokens of the prompt that every request of a run shares (the system
    message): the common prefix of ``req`` and the same request with another
    worker part."""
    import dataclasses

    a = inv.prompt_tokens(req)
    b = inv.prompt_tokens(dataclasses.replace(req, worker_prompt="x"))
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n
