"""In-process inference with llama-cpp-python's low-level API, batched across workers.

llama-cpp-python has no batch API above ``llama_decode``, so this backend
drives the C API through its ctypes bindings (0.3.36 names):

- ``llama_model_load_from_file`` / ``llama_init_from_model`` with
  ``n_seq_max`` sequences over one unified KV cache (``kv_unified``; without
  it each sequence gets n_ctx / n_seq_max cells);
- one ``decide()`` call is one batch: every request becomes a sequence (seq_id
  0..n-1, in waves of ``n_seq_max``). The token prefix the wave's prompts share
  is decoded once into sequence 0 and shared with ``llama_memory_seq_cp`` (with
  a unified cache the cells are shared, not copied); the rest of each prompt is
  prefilled in chunks of at most ``n_batch`` tokens (``llama_decode`` aborts the
  process on a larger batch), then every step decodes one token per live
  sequence in one ``llama_decode``;
- each sequence owns a GBNF grammar sampler (``llama_sampler_init_grammar``,
  grammar from ``gbnf_for(choices)``), applied with ``llama_sampler_apply`` to
  a short candidate list rather than the whole 49k vocabulary (4.7 ms per
  token on SmolLM2): for decisions, the tokens whose text continues one of the
  canonical answers (found through a piece -> token index; the grammar's
  language is exactly those answers, so the list is the allowed set, exact);
  for ``complete_json``, the tokens within ``_WINDOW`` nats of the best logit
  (the same greedy choice). Selection (greedy, or temperature/top-k/top-p from a
  seeded numpy generator) and the confidence are computed here, then
  ``llama_sampler_accept`` advances the grammar. The confidence is the chosen
  answer's probability under the grammar-constrained distribution: per step,
  the mass of the allowed tokens that keep the same answers reachable (one
  answer has several tokenizations, ``{"`` or ``{`` then ``"``: a product of
  the chosen tokens' probabilities gave 0.42 for a single-choice request),
  multiplied over the steps;
- the prefix stays in sequence 0 between calls (``keep_prefix``), so the rules
  every worker shares are decoded once per run, not once per tick;
- LoRA adapters (``llama_adapter_lora_init``) are switched with
  ``llama_set_adapters_lora``; the KV memory is cleared on every switch because
  cached keys/values computed under the old set would silently be reused.

Threads: ``decide`` runs the whole batch in ``asyncio.to_thread`` under one
lock per context; the context is never used from two threads at once.

Measured (SmolLM2-135M Q4_1, 2-vCPU machine, 1 thread): prefill ~180 tok/s
whether 8 prompts share a batch or not, generation 56-63 tok/s for one
sequence and 80-90 tok/s for 8; the CPU is compute-bound (each generated token
pays the 49k x 576 output layer), so batching gains 1.3-1.8x where generation
dominates and nothing where per-worker prefill does (see
benchmarks/test_llm_inprocess.py). Logits depend slightly on how tokens are
grouped into ``llama_decode`` calls (splitting one prompt's prefill in two
moved them by up to 0.5 on this build): batched and one-at-a-time answers
agree in the tests, but are not guaranteed bit-identical near a tie.

llama.cpp aborts the process (no error code) on some misuse: a batch over
n_batch, a partial ``llama_memory_seq_cp`` on a non-unified cache, accepting a
token the grammar rejects. The code below keeps clear of all three.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swarm_engine.errors import ConfigError, LlmError, LlmPermanentError, LlmTransientError
from swarm_engine.llm.cpu import safe_model_params
from swarm_engine.llm.grammar import gbnf_for
from swarm_engine.llm.models import resolve_model
from swarm_engine.llm.prompts import answer_json, chat_messages
from swarm_engine.llm.protocol import (
    ERROR_PARSE,
    ERROR_PERMANENT,
    ERROR_TRANSIENT,
    Decision,
    DecisionRequest,
    LoraScale,
    Sampling,
)
from swarm_engine.llm.repair import parse_decision

__all__ = ["LlamaCppInvoker"]

_log = logging.getLogger(__name__)

# complete_json (no answer list): candidates within this many nats of the best
# logit get the grammar check; when the best allowed one is below the best
# logit, the tokens within this many nats of it are checked too (the whole
# vocabulary when none was allowed). Every token left out carries < e^-12 =
# 6e-6 of the best allowed one's weight: the greedy choice is exact. Measured
# on SmolLM2 JSON answers: 20 nats checked ~10,000 tokens per step, 12 nats
# ~1,000 (8x less grammar time) with the same choices.
_WINDOW = 12.0
# llama_token_data: {int32 id; float logit; float p}
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
_GGML_LOG_ERROR = 3
_GGML_LOG_CONT = 5


# ---------------------------------------------------------------- the library

_backend_lock = threading.Lock()
_backend_ready = False


def _lib() -> Any:
    """llama_cpp with the backend initialised once per process."""
    global _backend_ready
    try:
        import llama_cpp
    except ImportError as e:
        raise LlmPermanentError("in-process inference needs llama-cpp-python: pip install llama-cpp-python") from e
    with _backend_lock:
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _LogTap.install(llama_cpp)
            _backend_ready = True
    return llama_cpp


class _LogTap:
    """One process-wide llama.cpp log callback: prints when some invoker asked
    for ``verbose``, and keeps the last error lines so a failed load or adapter
    can say why in one line (llama.cpp only logs the reason)."""

    verbose = 0                       # how many live invokers asked for verbose
    errors: deque = deque(maxlen=8)
    _last_level = 0
    _cb: Any = None                   # the ctypes callback must outlive the process's use of it

    @classmethod
    def install(cls, lib: Any) -> None:
        @lib.llama_log_callback
        def cb(level: int, text: bytes, _user: Any) -> None:
            lvl = cls._last_level if level == _GGML_LOG_CONT else level
            cls._last_level = lvl
            msg = text.decode("utf-8", "replace") if text else ""
            if lvl == _GGML_LOG_ERROR and msg.strip():
                cls.errors.append(msg.strip())
            if cls.verbose > 0:
                os.write(2, text or b"")
        cls._cb = cb
        lib.llama_log_set(cb, None)

    @classmethod
    def reason(cls) -> str:
        return f": {cls.errors[-1]}" if cls.errors else ""


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = np.asarray(a[:n], dtype=np.int64) != np.asarray(b[:n], dtype=np.int64)
    i = int(np.argmax(x))
    return i if x[i] else n


# ------------------------------------------------------------------- batches

class _Batch:
    """A ``llama_batch`` whose arrays are numpy buffers owned here (one seq id
    per token), so a chunk is filled with slice assignments instead of
    per-element ctypes writes. ``llama_decode`` only reads them during the call."""

    def __init__(self, lib: Any, capacity: int) -> None:
        self.capacity = capacity
        self.token = np.zeros(capacity, dtype=np.int32)
        self.pos = np.zeros(capacity, dtype=np.int32)
        self.n_seq_id = np.ones(capacity, dtype=np.int32)
        self.seq = np.zeros(capacity, dtype=np.int32)
        self.logits = np.zeros(capacity, dtype=np.int8)
        ip = ctypes.POINTER(ctypes.c_int32)
        base = self.seq.ctypes.data
        self._seq_ptrs = (ip * capacity)(*[ctypes.cast(base + 4 * i, ip) for i in range(capacity)])
        self.struct = lib.llama_batch(
            n_tokens=0,
            token=self.token.ctypes.data_as(ctypes.POINTER(lib.llama_token)),
            embd=None,
            pos=self.pos.ctypes.data_as(ctypes.POINTER(lib.llama_pos)),
            n_seq_id=self.n_seq_id.ctypes.data_as(ip),
            seq_id=ctypes.cast(self._seq_ptrs, ctypes.POINTER(ip)),
            logits=self.logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
        )


@dataclass(eq=False)
class _Seq:
    """One sequence of a batch: a request's prompt and what it generated."""

    index: int                         # position in the caller's list
    tokens: list[int]
    grammar: bytes | None
    sampling: Sampling
    rng: np.random.Generator | None
    answers: frozenset[bytes] | None   # complete answers (stop as soon as one is produced ...)
    prefixes: frozenset[bytes] = frozenset()   # ... unless it is a proper prefix of another
    seq_id: int = 0
    n_past: int = 0
    smpl: Any = None
    logits: np.ndarray | None = None
    out: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    logprob: float = 0.0
    cached: int = 0
    error: str | None = None
    message: str = ""
    done_at: float = 0.0

    def fail(self, kind: str, message: str) -> None:
        if self.error is None:
            self.error, self.message = kind, message
        self.done_at = time.perf_counter()


# ------------------------------------------------------------------ invoker

class LlamaCppInvoker:
    """An in-process Invoker: one llama.cpp model and context, batched decisions.

    Parameters
    ----------
    model_path:
        A GGUF model; the bundled SmolLM2-135M-Instruct when None.
    n_gpu_layers:
        Layers to offload (-1 = all); needs a GPU build (``info()["gpu_offload"]``).
    n_ctx:
        KV cells shared by all sequences (unified cache): the shared prefix once,
        plus every sequence's own prompt tail and answer.
    n_batch:
        Most tokens one ``llama_decode`` takes; prefill is chunked to it.
    n_threads:
        CPU threads; default half the CPUs this process may use (at least 1),
        as llama-cpp-python does. On the 2-vCPU development machine, shared
        with other jobs, 1 thread gave 116 tok/s prefill and 90 tok/s for 8
        sequences against 73 and 26 with 2 (OpenMP threads wait on each other
        when a core is taken).
    n_seq_max:
        Sequences decoded together; more requests are run in waves.
    lora:
        ``(path, scale)`` adapters loaded and applied at start.
    seed:
        Derives the sampling streams of requests without their own seed.
    verbose:
        Let llama.cpp's log through to stderr.
    keep_prefix:
        Keep the shared prompt prefix in the KV cache between calls.
    chat_template:
        Format requests with the model's chat template (shared part as the
        system message, worker part as the user message, as chat backends do);
        False, or a model without a template, feeds ``request.prompt`` raw.

    Raises
    ------
    LlmPermanentError
        llama-cpp-python missing, model file missing or not loadable, a LoRA
        adapter refused; one line each.
    ConfigError
        A parameter out of range.
    """

    name = "llama_cpp"

    def __init__(self, model_path: str | os.PathLike | None = None, *, n_gpu_layers: int = 0, n_ctx: int = 4096,
                 n_batch: int = 512, n_threads: int | None = None, n_seq_max: int = 8,
                 lora: Iterable[tuple[str | os.PathLike, float]] = (), seed: int = 0, verbose: bool = False,
                 keep_prefix: bool = True, chat_template: bool = True, kv_unified: bool = True) -> None:
        self._model = self._ctx = None
        self._adapters: dict[str, Any] = {}
        self._closed = True
        for what, v, lo in (("n_ctx", n_ctx, 16), ("n_batch", n_batch, 1), ("n_seq_max", n_seq_max, 1)):
            if not isinstance(v, int) or v < lo:
                raise ConfigError(f"{what} must be an integer >= {lo}, got {v!r}")
        if n_threads is not None and (not isinstance(n_threads, int) or n_threads < 1):
            raise ConfigError(f"n_threads must be a positive integer, got {n_threads!r}")
        L = self._L = _lib()
        if n_seq_max > L.llama_max_parallel_sequences():
            raise ConfigError(f"n_seq_max must be <= {L.llama_max_parallel_sequences()}, got {n_seq_max}")
        path = resolve_model(model_path)
        self.model_path = str(path)
        self._verbose = bool(verbose)
        _LogTap.verbose += self._verbose
        self._n_threads = n_threads or max(len(os.sched_getaffinity(0)) // 2, 1)
        self._n_gpu_layers = int(n_gpu_layers)
        self._keep_prefix = keep_prefix
        self._seed = int(seed)
        self._lock = threading.Lock()
        self._calls = 0

        mp = safe_model_params(L.llama_model_default_params())
        mp.n_gpu_layers = self._n_gpu_layers
        _LogTap.errors.clear()
        self._model = L.llama_model_load_from_file(self.model_path.encode(), mp)
        if not self._model:
            self._model = None
            self._unverbose()
            raise LlmPermanentError(f"{path}: llama.cpp cannot load this model{_LogTap.reason()}")
        cp = L.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = cp.n_ubatch = n_batch
        cp.n_seq_max = n_seq_max
        cp.n_threads = cp.n_threads_batch = self._n_threads
        cp.kv_unified = bool(kv_unified)
        cp.no_perf = True
        self._ctx = L.llama_init_from_model(self._model, cp)
        if not self._ctx:
            self._ctx = None
            L.llama_model_free(self._model)
            self._model = None
            self._unverbose()
            raise LlmPermanentError(f"{path}: cannot create a context (n_ctx={n_ctx}, n_seq_max={n_seq_max})"
                                    f"{_LogTap.reason()}")
        self._closed = False
        self._n_ctx = L.llama_n_ctx(self._ctx)
        self._n_batch = L.llama_n_batch(self._ctx)
        self._n_seq_max = L.llama_n_seq_max(self._ctx)
        self._n_ctx_seq = L.llama_n_ctx_seq(self._ctx)
        self._mem = L.llama_get_memory(self._ctx)
        self._vocab = L.llama_model_get_vocab(self._model)
        self._n_vocab = L.llama_vocab_n_tokens(self._vocab)
        self._batch = _Batch(L, self._n_batch)
        self._cand = np.zeros(self._n_vocab, dtype=_TOKEN_DATA)
        self._cand_arr = L.llama_token_data_array(data=self._cand.ctypes.data_as(L.llama_token_data_p),
                                                  size=0, selected=-1, sorted=False)
        self._pieces: dict[int, bytes] = {}
        self._by_piece: tuple[dict[bytes, list[int]], list[int], int] | None = None
        tmpl = L.llama_model_chat_template(self._model, None) if chat_template else None
        self._template: bytes | None = tmpl or None
        self._cached: list[int] = []          # tokens held by sequence 0 between calls
        self._applied: tuple[tuple[str, float], ...] = ()
        self._active: tuple[tuple[str, float], ...] = ()
        self._lora_order: list[str] = []
        try:
            self.set_lora({p: s for p, s in lora})
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- public

    async def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """One Decision per request, in order; failures are carried, never raised."""
        if not requests:
            return []
        return await asyncio.to_thread(self.decide_sync, list(requests))

    async def complete_json(self, prompt: str, schema: dict, sampling: Sampling) -> str:
        """One completion constrained to ``schema`` (JSON schema -> GBNF).

        Raises
        ------
        LlmPermanentError / LlmTransientError
        """
        return await asyncio.to_thread(self.complete_json_sync, prompt, schema, sampling)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def decide_sync(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """``decide`` in the calling thread (the async method wraps this)."""
        t0 = time.perf_counter()
        seqs: list[_Seq | None] = [None] * len(requests)
        decisions: list[Decision | None] = [None] * len(requests)
        try:
            with self._lock:
                self._check_open()
                self._calls += 1
                groups: dict[tuple, list[_Seq]] = {}
                for i, r in enumerate(requests):
                    try:
                        if not r.choices:
                            raise LlmPermanentError("the request has no choices")
                        answers = [answer_json(c).encode() for c in r.choices]
                        s = _Seq(index=i, tokens=self._tokenize(self._format(r)),
                                 grammar=gbnf_for(r.choices).encode(), sampling=r.sampling,
                                 rng=self._rng(r.sampling, r.worker), answers=frozenset(answers),
                                 prefixes=frozenset(a[:k] for a in answers for k in range(len(a))))
                        seqs[i] = s
                        groups.setdefault(self._lora_key(r.lora), []).append(s)
                    except LlmError as e:
                        decisions[i] = self._failed(r, e, t0)
                for key, group in sorted(groups.items(), key=lambda kv: kv[0] != self._applied):
                    try:
                        self._apply_lora(key)
                    except LlmError as e:
                        for s in group:
                            s.fail(ERROR_PERMANENT, str(e))
                        continue
                    self._run(group)
        except LlmError as e:
            for i, r in enumerate(requests):
                if decisions[i] is None and (seqs[i] is None or seqs[i].done_at == 0.0):
                    decisions[i] = self._failed(r, e, t0)
        except Exception as e:       # a bug: logged with its traceback, never fatal to a run
            _log.exception("llama_cpp decide failed")
            for i, r in enumerate(requests):
                if decisions[i] is None:
                    decisions[i] = Decision(worker=r.worker, choice=None, error=ERROR_TRANSIENT,
                                            message=f"{type(e).__name__}: {e}")
        for i, r in enumerate(requests):
            if decisions[i] is None:
                decisions[i] = self._decision(r, seqs[i], t0)
        return decisions  # type: ignore[return-value]

    def complete_json_sync(self, prompt: str, schema: dict, sampling: Sampling) -> str:
        """``complete_json`` in the calling thread."""
        try:
            from llama_cpp.llama_grammar import json_schema_to_gbnf
            gbnf = json_schema_to_gbnf(json.dumps(schema))
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            raise LlmPermanentError(f"cannot turn the JSON schema into a grammar: {e}") from e
        with self._lock:
            self._check_open()
            self._calls += 1
            s = _Seq(index=0, tokens=self._tokenize(self._chat([("user", prompt)], prompt)), grammar=gbnf.encode(),
                     sampling=sampling,
                     rng=self._rng(sampling, -1), answers=None)
            self._apply_lora(self._active)
            self._run([s])
        if s.error is not None:
            cls = LlmTransientError if s.error == ERROR_TRANSIENT else LlmPermanentError
            raise cls(s.message)
        return s.text.decode("utf-8", "replace")

    def set_lora(self, scales: Mapping[str | os.PathLike, float]) -> None:
        """Make ``scales`` (adapter path -> scale) the active adapter set,
        loading adapters not seen before; an empty mapping runs the base model.

        The KV memory is cleared when the set changes (no stale cache is reused).

        Raises
        ------
        LlmPermanentError
            An adapter file is missing or llama.cpp refuses it.
        """
        with self._lock:
            self._check_open()
            key = []
            for p, scale in scales.items():
                path = self._load_adapter(p)
                if path not in self._lora_order:
                    self._lora_order.append(path)
                if float(scale) != 0.0:
                    key.append((path, float(scale)))
            self._active = tuple(sorted(key))
            self._apply_lora(self._active)

    def info(self) -> dict[str, Any]:
        """What this invoker runs: model, context, build and adapter facts.

        Reads only the (immutable) model and values kept at start, so it does
        not wait for a batch in flight."""
        L = self._L
        d: dict[str, Any] = {
            "backend": self.name, "model_path": self.model_path, "closed": self._closed,
            "llama_cpp_version": getattr(__import__("llama_cpp"), "__version__", "?"),
            "gpu_offload": bool(L.llama_supports_gpu_offload()), "n_gpu_layers": self._n_gpu_layers,
            "mmap": bool(L.llama_supports_mmap()),
            "system_info": L.llama_print_system_info().decode("utf-8", "replace").strip(),
            "n_threads": self._n_threads, "keep_prefix": self._keep_prefix,
            "lora": dict(self._active), "adapters": list(self._lora_order),
        }
        if not self._closed:
            buf = ctypes.create_string_buffer(256)
            L.llama_model_desc(self._model, buf, 256)
            d.update(model_desc=buf.value.decode("utf-8", "replace"),
                     n_params=int(L.llama_model_n_params(self._model)),
                     n_layer=int(L.llama_model_n_layer(self._model)), n_vocab=self._n_vocab,
                     n_ctx=self._n_ctx, n_ctx_seq=self._n_ctx_seq, n_batch=self._n_batch,
                     n_seq_max=self._n_seq_max, cached_prefix_tokens=len(self._cached))
        return d

    def close(self) -> None:
        """Free the context, adapters and model; safe to call twice."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if self._closed and self._model is None:
                return
            L = self._L
            self._closed = True
            if self._ctx is not None:
                L.llama_free(self._ctx)           # the context references the adapters: free it first
                self._ctx = None
            for ptr in self._adapters.values():
                L.llama_adapter_lora_free(ptr)
            self._adapters.clear()
            if self._model is not None:
                L.llama_model_free(self._model)
                self._model = None
            self._unverbose()

    def __enter__(self) -> LlamaCppInvoker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn llama_cpp down already
            pass

    # ------------------------------------------------------------- internals

    def _unverbose(self) -> None:
        _LogTap.verbose -= self._verbose
        self._verbose = False

    def _check_open(self) -> None:
        if self._closed:
            raise LlmPermanentError("the llama_cpp invoker is closed")

    def _rng(self, sampling: Sampling, worker: int) -> np.random.Generator | None:
        if sampling.temperature <= 0:
            return None
        if sampling.seed is not None:
            return np.random.default_rng([int(sampling.seed) & 0xFFFFFFFF, worker & 0xFFFFFFFF])
        return np.random.default_rng([self._seed & 0xFFFFFFFF, self._calls, worker & 0xFFFFFFFF])

    def _format(self, r: DecisionRequest) -> str:
        return self._chat([(m["role"], m["content"]) for m in chat_messages(r)], r.prompt)

    def _chat(self, messages: list[tuple[str, str]], raw: str) -> str:
        """``messages`` through the model's chat template, ending with the
        assistant's turn; ``raw`` when there is no template."""
        if self._template is None:
            return raw
        L = self._L
        enc = [(role.encode(), text.encode("utf-8")) for role, text in messages]
        chat = (L.llama_chat_message * len(enc))(*[L.llama_chat_message(role=r, content=c) for r, c in enc])
        size = 2 * sum(len(c) for _, c in enc) + 256
        for _ in range(2):
            buf = ctypes.create_string_buffer(size)
            n = L.llama_chat_apply_template(self._template, chat, len(enc), True, buf, size)
            if n < 0:
                raise LlmPermanentError("the model's chat template is not supported by llama.cpp")
            if n <= size:
                return buf.raw[:n].decode("utf-8", "replace")
            size = n
        raise LlmPermanentError("the chat template output does not fit")  # pragma: no cover

    def _tokenize(self, text: str) -> list[int]:
        b = text.encode("utf-8")
        n_max = len(b) + 8
        buf = (self._L.llama_token * n_max)()
        n = self._L.llama_tokenize(self._vocab, b, len(b), buf, n_max, True, True)
        if n < 0:
            raise LlmPermanentError(f"cannot tokenize the prompt ({-n} tokens)")
        if n == 0:
            raise LlmPermanentError("the prompt is empty")
        return list(buf[:n])

    def _piece(self, tok: int) -> bytes:
        p = self._pieces.get(tok)
        if p is None:
            buf = ctypes.create_string_buffer(64)
            n = self._L.llama_token_to_piece(self._vocab, tok, buf, 64, 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = self._L.llama_token_to_piece(self._vocab, tok, buf, -n, 0, False)
            p = self._pieces[tok] = buf.raw[:n]
        return p

    # LoRA

    def _load_adapter(self, p: str | os.PathLike) -> str:
        path = str(Path(p).resolve())
        if path in self._adapters:
            return path
        if not Path(path).is_file():
            raise LlmPermanentError(f"{p}: LoRA adapter not found")
        _LogTap.errors.clear()
        ptr = self._L.llama_adapter_lora_init(self._model, path.encode())
        if not ptr:
            raise LlmPermanentError(f"{p}: llama.cpp refused the LoRA adapter{_LogTap.reason()}")
        self._adapters[path] = ptr
        return path

    def _lora_key(self, lora: tuple[LoraScale, ...] | None) -> tuple[tuple[str, float], ...]:
        if lora is None:
            return self._active
        key = []
        for ls in lora:
            if isinstance(ls.adapter, int):
                if not 0 <= ls.adapter < len(self._lora_order):
                    raise LlmPermanentError(f"no LoRA adapter with id {ls.adapter} "
                                            f"({len(self._lora_order)} loaded)")
                path = self._lora_order[ls.adapter]
            else:
                path = self._load_adapter(ls.adapter)
            if float(ls.scale) != 0.0:
                key.append((path, float(ls.scale)))
        return tuple(sorted(key))

    def _apply_lora(self, key: tuple[tuple[str, float], ...]) -> None:
        if key == self._applied:
            return
        L = self._L
        n = len(key)
        adapters = (L.llama_adapter_lora_p_ctypes * n)(*[self._adapters[p] for p, _ in key]) if n else None
        scales = (ctypes.c_float * n)(*[s for _, s in key]) if n else None
        rc = L.llama_set_adapters_lora(self._ctx, adapters, n, scales)
        self._clear_memory()                   # KV computed under the old set must not be reused
        if rc != 0:
            self._applied = ()
            L.llama_set_adapters_lora(self._ctx, None, 0, None)
            raise LlmPermanentError(f"llama_set_adapters_lora failed ({rc}){_LogTap.reason()}")
        self._applied = key

    def _clear_memory(self) -> None:
        self._L.llama_memory_clear(self._mem, True)
        self._cached = []

    # batches

    def _run(self, seqs: list[_Seq]) -> None:
        """Run sequences in waves that fit ``n_seq_max`` and the KV cache."""
        wave: list[_Seq] = []
        for s in seqs:
            if s.done_at:
                continue
            need_alone = len(s.tokens) + s.sampling.max_tokens
            if need_alone > self._n_ctx_seq:
                s.fail(ERROR_PERMANENT, f"prompt of {len(s.tokens)} tokens + max_tokens "
                                        f"{s.sampling.max_tokens} exceeds the context of a sequence "
                                        f"({self._n_ctx_seq} tokens)")
                continue
            if wave and (len(wave) == self._n_seq_max or (self._n_ctx_seq == self._n_ctx and
                                                          self._cells(wave + [s]) > self._n_ctx)):
                self._wave(wave)
                wave = []
            wave.append(s)
        if wave:
            self._wave(wave)

    def _common(self, seqs: list[_Seq]) -> int:
        """Tokens shared by every prompt of the wave, leaving each sequence at
        least one token of its own (its last token's logits start generation)."""
        c = min(len(s.tokens) for s in seqs) - 1
        first = seqs[0].tokens
        for s in seqs[1:]:
            c = min(c, _lcp(first, s.tokens))
        return max(c, 0)

    def _cells(self, seqs: list[_Seq]) -> int:
        c = self._common(seqs)
        return c + sum(len(s.tokens) - c + s.sampling.max_tokens for s in seqs)

    def _wave(self, seqs: list[_Seq]) -> None:
        L = self._L
        live: list[_Seq] = []
        try:
            for s in seqs:
                if s.grammar is not None:
                    s.smpl = L.llama_sampler_init_grammar(self._vocab, s.grammar, b"root")
                    if not s.smpl:
                        s.smpl = None
                        s.fail(ERROR_PERMANENT, f"the grammar does not parse{_LogTap.reason()}")
                        continue
                live.append(s)
            if not live:
                return
            for k, s in enumerate(live):
                s.seq_id = k
            common = self._common(live)
            first = live[0].tokens
            reuse = _lcp(self._cached, first[:common]) if self._keep_prefix else 0
            if reuse < len(self._cached) and not L.llama_memory_seq_rm(self._mem, 0, reuse, -1):
                self._clear_memory()
                reuse = 0
            self._cached = self._cached[:reuse]
            if common > reuse:
                self._decode([(live[0], first[reuse:common], reuse, False)])
            self._cached = first[:common]
            for s in live:
                s.cached = reuse if s.seq_id == 0 else common
                if s.seq_id and common:
                    # sequence 0 holds exactly the prefix now: copy all of it. A
                    # partial range ABORTS the process when the cache is not
                    # unified (GGML_ASSERT "seq_cp() is only supported for full
                    # KV buffers", 0.3.36)
                    L.llama_memory_seq_cp(self._mem, 0, s.seq_id, -1, -1)
            self._decode([(s, s.tokens[common:], common, True) for s in live])
            self._generate(live)
        except LlmError as e:
            self._clear_memory()
            kind = ERROR_TRANSIENT if isinstance(e, LlmTransientError) else ERROR_PERMANENT
            for s in live:
                if not s.done_at:
                    s.fail(kind, str(e))
        finally:
            for s in seqs:
                if s.smpl is not None:
                    L.llama_sampler_free(s.smpl)
                    s.smpl = None
            if self._keep_prefix and self._cached:
                for s in live[1:]:
                    L.llama_memory_seq_rm(self._mem, s.seq_id, -1, -1)
                if not L.llama_memory_seq_rm(self._mem, 0, len(self._cached), -1):
                    self._clear_memory()
            else:
                self._clear_memory()

    def _decode(self, parts: list[tuple[_Seq, Sequence[int], int, bool]]) -> None:
        """Decode ``(seq, tokens, first position, want logits of the last)``
        parts in chunks of at most n_batch tokens; the wanted logits are copied
        into ``seq.logits`` and ``seq.n_past`` advances."""
        parts = [p for p in parts if len(p[1])]
        if not parts:
            return
        tok = np.concatenate([np.asarray(t, dtype=np.int32) for _, t, _, _ in parts])
        pos = np.concatenate([np.arange(p0, p0 + len(t), dtype=np.int32) for _, t, p0, _ in parts])
        seq = np.concatenate([np.full(len(t), s.seq_id, dtype=np.int32) for s, t, _, _ in parts])
        want = np.zeros(len(tok), dtype=np.int8)
        owner: dict[int, _Seq] = {}
        end = 0
        for s, t, p0, w in parts:
            end += len(t)
            s.n_past = p0 + len(t)
            if w:
                want[end - 1] = 1
                owner[end - 1] = s
        b, L = self._batch, self._L
        for lo in range(0, len(tok), self._n_batch):
            hi = min(lo + self._n_batch, len(tok))
            n = hi - lo
            b.token[:n] = tok[lo:hi]
            b.pos[:n] = pos[lo:hi]
            b.seq[:n] = seq[lo:hi]
            b.logits[:n] = want[lo:hi]
            b.struct.n_tokens = n
            rc = L.llama_decode(self._ctx, b.struct)
            if rc != 0:
                what = {1: "no KV slot for the batch (n_ctx too small)", 2: "aborted"}.get(rc, "invalid batch")
                raise LlmTransientError(f"llama_decode failed ({rc}: {what}){_LogTap.reason()}")
            for i in np.flatnonzero(want[lo:hi]):
                ptr = L.llama_get_logits_ith(self._ctx, int(i))
                owner[lo + int(i)].logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).copy()

    def _generate(self, live: list[_Seq]) -> None:
        L = self._L
        while live:
            step: list[tuple[_Seq, int]] = []
            for s in live:
                tok = self._pick(s)
                if tok is None:
                    s.fail(ERROR_PERMANENT, "the grammar allows no token")
                    continue
                if L.llama_vocab_is_eog(self._vocab, tok):
                    s.done_at = time.perf_counter()
                    continue
                if s.smpl is not None:
                    L.llama_sampler_accept(s.smpl, tok)
                s.out.append(tok)
                s.text += self._piece(tok)
                if len(s.out) >= s.sampling.max_tokens or (
                        s.answers is not None and bytes(s.text) in s.answers and bytes(s.text) not in s.prefixes):
                    s.done_at = time.perf_counter()   # a complete answer no longer answer extends: EOG is forced
                    continue
                step.append((s, tok))
            if not step:
                return
            self._decode([(s, (tok,), s.n_past, True) for s, tok in step])
            live = [s for s, _ in step]

    def _allowed(self, s: _Seq, idx: np.ndarray) -> np.ndarray:
        """The grammar-allowed subset of token ids ``idx``."""
        n = len(idx)
        if n == 0:
            return idx
        c = self._cand[:n]
        c["id"] = idx
        c["logit"] = 0.0
        a = self._cand_arr
        a.size, a.selected, a.sorted = n, -1, False
        self._L.llama_sampler_apply(s.smpl, ctypes.byref(a))
        return idx[np.isfinite(c["logit"])]

    def _pick(self, s: _Seq) -> int | None:
        """Choose the next token of ``s`` from its logits; None when nothing is allowed."""
        lg = s.logits
        idx = self._answer_tokens(s) if s.answers is not None and s.smpl is not None else None
        if idx is not None:
            idx = self._allowed(s, idx)
            idx = idx[np.isfinite(lg[idx])]
        if idx is None or not len(idx):
            idx = self._window(s, lg)
            if idx is None:
                return None
        x = lg[idx].astype(np.float64)
        x -= x.max()
        p = np.exp(x)
        p /= p.sum()
        sp = s.sampling
        if sp.temperature <= 0 or s.rng is None:
            j = int(np.argmax(x))
        else:
            order = np.argsort(-x, kind="stable")
            if sp.top_k > 0:
                order = order[:sp.top_k]
            q = np.exp((x[order] - x[order[0]]) / sp.temperature)
            q /= q.sum()
            if 0.0 < sp.top_p < 1.0:
                keep = int(np.searchsorted(np.cumsum(q), sp.top_p)) + 1
                order, q = order[:keep], q[:keep] / q[:keep].sum()
            j = int(order[s.rng.choice(len(order), p=q)])
        s.logprob += float(np.log(self._answer_mass(s, idx, p, j)))
        return int(idx[j])

    def _answer_tokens(self, s: _Seq) -> np.ndarray:
        """Every token that can extend ``s.text`` toward one of its answers:
        pieces that are prefixes of a remaining answer suffix, plus the EOG
        tokens when the text is a complete answer. The grammar's language is
        exactly the answers, so this is the grammar-allowed set (the grammar
        sampler still checks it) found by a few hundred dict look-ups instead
        of scanning the vocabulary."""
        by_piece, eog, longest = self._piece_index()
        text = bytes(s.text)
        n = len(text)
        found: set[int] = set()
        for a in s.answers:
            if len(a) > n and a.startswith(text):
                rest = a[n:n + longest]
                for k in range(1, len(rest) + 1):
                    toks = by_piece.get(rest[:k])
                    if toks:
                        found.update(toks)
        if text in s.answers:
            found.update(eog)
        return np.fromiter(sorted(found), dtype=np.int64, count=len(found))

    def _piece_index(self) -> tuple[dict[bytes, list[int]], list[int], int]:
        """(piece -> tokens, EOG tokens, longest piece), built on first use
        (~0.1 s for a 49k vocabulary)."""
        if self._by_piece is None:
            by_piece: dict[bytes, list[int]] = {}
            eog: list[int] = []
            is_eog = self._L.llama_vocab_is_eog
            for tok in range(self._n_vocab):
                if is_eog(self._vocab, tok):
                    eog.append(tok)
                    continue
                piece = self._piece(tok)
                if piece:
                    by_piece.setdefault(piece, []).append(tok)
            self._by_piece = (by_piece, eog, max(map(len, by_piece), default=1))
        return self._by_piece

    def _window(self, s: _Seq, lg: np.ndarray) -> np.ndarray | None:
        """The allowed tokens near the top of ``lg`` (all tokens without a
        grammar); None when nothing is allowed. See ``_WINDOW``."""
        fin = np.isfinite(lg)
        if not fin.any():
            return None
        m = float(lg[fin].max())
        checked = lg >= m - _WINDOW
        idx = np.flatnonzero(checked)
        if s.smpl is not None:
            idx = self._allowed(s, idx)
            best = float(lg[idx].max()) if len(idx) else -np.inf
            if best < m:                       # widen to everything within the window of the best allowed
                more = np.flatnonzero(~checked & (lg >= best - _WINDOW) & fin)
                if len(more):
                    idx = np.concatenate([idx, self._allowed(s, more)])
            if not len(idx):
                return None
        return idx

    def _answer_mass(self, s: _Seq, idx: np.ndarray, p: np.ndarray, j: int) -> float:
        """The probability of the allowed tokens that leave the same answers
        reachable as token ``idx[j]`` (``p[j]`` when the answers are unknown)."""
        if s.answers is None:
            return float(p[j])
        text = bytes(s.text)
        alive = [a for a in s.answers if a.startswith(text)]
        is_eog = self._L.llama_vocab_is_eog

        def reach(i: int) -> frozenset[bytes]:
            tok = int(idx[i])
            if is_eog(self._vocab, tok):
                return frozenset((text,)) if text in s.answers else frozenset()
            u = text + self._piece(tok)
            return frozenset(a for a in alive if a.startswith(u))

        mine = reach(j)
        mass = float(p[j])
        for i in np.flatnonzero(p > 1e-7):     # smaller ones are below the window's error anyway
            if i != j and reach(int(i)) == mine:
                mass += float(p[i])
        return min(mass, 1.0)

    # decisions

    def _failed(self, r: DecisionRequest, e: LlmError, t0: float) -> Decision:
        kind = ERROR_TRANSIENT if isinstance(e, LlmTransientError) else ERROR_PERMANENT
        return Decision(worker=r.worker, choice=None, error=kind, message=str(e),
                        latency_ms=(time.perf_counter() - t0) * 1e3)

    def _decision(self, r: DecisionRequest, s: _Seq | None, t0: float) -> Decision:
        assert s is not None
        latency = ((s.done_at or time.perf_counter()) - t0) * 1e3
        text = s.text.decode("utf-8", "replace")
        d = Decision(worker=r.worker, choice=None, raw=text, latency_ms=latency, prompt_tokens=len(s.tokens),
                     completion_tokens=len(s.out), cached_tokens=s.cached)
        if s.error is not None:
            d.error, d.message = s.error, s.message
            return d
        choice, repaired = parse_decision(text, r.choices)
        if choice is None:
            d.error = ERROR_PARSE
            d.message = (f"no answer within max_tokens={r.sampling.max_tokens}"
                         if len(s.out) >= r.sampling.max_tokens else "the answer matches no choice")
            return d
        d.choice, d.repaired = choice, bool(repaired)
        d.confidence = float(np.exp(s.logprob))
        return d
