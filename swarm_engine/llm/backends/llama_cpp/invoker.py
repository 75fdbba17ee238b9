"""The in-process invoker: one llama.cpp model and context, decisions batched
across workers (the design is in the package docstring,
:mod:`swarm_engine.llm.backends.llama_cpp`).

This module drives the C API: model and context, tokenization and the chat
template, waves of sequences over the unified KV cache, chunked prefill and
one-token steps, the grammar sampler per sequence. The arithmetic of a step
(candidates, the choice, the confidence, the shared prefix) is
:mod:`.sampling`, in numpy only; the adapters are :mod:`.lora`.

llama.cpp aborts the process (no error code) on some misuse: a batch over
n_batch, a partial ``llama_memory_seq_cp`` on a non-unified cache, accepting a
token the grammar rejects. The code below keeps clear of all three.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from swarm_engine.errors import ConfigError, LlmError, LlmPermanentError, LlmTransientError
from swarm_engine.llm.backends.llama_cpp.batch import TOKEN_DATA, Batch, Seq, TreeBatch
from swarm_engine.llm.backends.llama_cpp.decisions import decision_of, failed_decision
from swarm_engine.llm.backends.llama_cpp.library import LogTap, lib
from swarm_engine.llm.backends.llama_cpp.lora import Adapters
from swarm_engine.llm.backends.llama_cpp.sampling import (
    LineTrie,
    answer_mass,
    answer_prefixes,
    answer_tokens,
    cells_needed,
    choose,
    common_prefix_len,
    label_choice,
    label_tokens,
    line_choice,
    line_scores,
    line_trie,
    reachable,
    shared_prefix,
    window,
)
from swarm_engine.llm.backends.llama_cpp.text import Vocab
from swarm_engine.llm.cpu import safe_model_params
from swarm_engine.llm.grammar import gbnf_for
from swarm_engine.llm.models import resolve_model
from swarm_engine.llm.prompts import LABELS, answer_json, chat_messages, choice_text
from swarm_engine.llm.protocol import (
    ERROR_PERMANENT,
    ERROR_TRANSIENT,
    Choice,
    Decision,
    DecisionRequest,
    Sampling,
)

__all__ = ["LlamaCppInvoker"]

_log = logging.getLogger("swarm_engine.llm.backends.llama_cpp")

# candidate lines a text answer scores per llama_decode (one sequence each)
SCORE_LINES = 35           # = len(LABELS), the most candidates the manager shows


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
    # the answer format the manager asks for by default: one label token, read
    # from the prefill's logits (see swarm_engine.llm.prompts); "json" also works
    answer = "label"
    answers = ("label", "json", "text")

    def __init__(self, model_path: str | os.PathLike | None = None, *, n_gpu_layers: int = 0, n_ctx: int = 4096,
                 n_batch: int = 512, n_threads: int | None = None, n_seq_max: int = 8,
                 lora: Iterable[tuple[str | os.PathLike, float]] = (), seed: int = 0, verbose: bool = False,
                 keep_prefix: bool = True, chat_template: bool = True, kv_unified: bool = True) -> None:
        self._model = self._ctx = None
        self._lora: Adapters | None = None
        self._closed = True
        for what, v, lo in (("n_ctx", n_ctx, 16), ("n_batch", n_batch, 1), ("n_seq_max", n_seq_max, 1)):
            if not isinstance(v, int) or v < lo:
                raise ConfigError(f"{what} must be an integer >= {lo}, got {v!r}")
        if n_threads is not None and (not isinstance(n_threads, int) or n_threads < 1):
            raise ConfigError(f"n_threads must be a positive integer, got {n_threads!r}")
        L = self._L = lib()
        if n_seq_max > L.llama_max_parallel_sequences():
            raise ConfigError(f"n_seq_max must be <= {L.llama_max_parallel_sequences()}, got {n_seq_max}")
        path = resolve_model(model_path)
        self.model_path = str(path)
        self._verbose = bool(verbose)
        LogTap.verbose += self._verbose
        self._n_threads = n_threads or max(len(os.sched_getaffinity(0)), 1)
        self._n_gpu_layers = int(n_gpu_layers)
        self._keep_prefix = keep_prefix
        self._seed = int(seed)
        self._lock = threading.Lock()
        self._calls = 0

        mp = safe_model_params(L.llama_model_default_params())
        mp.n_gpu_layers = self._n_gpu_layers
        LogTap.errors.clear()
        self._model = L.llama_model_load_from_file(self.model_path.encode(), mp)
        if not self._model:
            self._model = None
            self._unverbose()
            raise LlmPermanentError(f"{path}: llama.cpp cannot load this model{LogTap.reason()}")
        cp = L.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = cp.n_ubatch = n_batch
        # text answers score up to SCORE_LINES candidate lines per llama_decode, each in
        # a sequence of its own: a unified cache holds them at no cost beyond their cells
        # (llama.cpp aborts a context whose n_seq_max exceeds n_ubatch: held below it)
        cp.n_seq_max = max(n_seq_max, min(1 + SCORE_LINES, n_batch, L.llama_max_parallel_sequences())) \
            if kv_unified else n_seq_max
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
                                    f"{LogTap.reason()}")
        self._closed = False
        self._n_ctx = L.llama_n_ctx(self._ctx)
        self._n_batch = L.llama_n_batch(self._ctx)
        self._n_seq_max = min(n_seq_max, L.llama_n_seq_max(self._ctx))     # sequences of one wave
        self._n_score = max(1, L.llama_n_seq_max(self._ctx) - 1)           # lines of one scoring decode
        self._n_ctx_seq = L.llama_n_ctx_seq(self._ctx)
        self._mem = L.llama_get_memory(self._ctx)
        tmpl = L.llama_model_chat_template(self._model, None) if chat_template else None
        self._text = Vocab(L, self._model, tmpl or None)
        self._vocab = self._text.vocab
        self._n_vocab = self._text.n_vocab
        self._batch = Batch(L, self._n_batch)
        self._tree: TreeBatch | None = None      # text answers' line trees, made on first use
        self._cand = np.zeros(self._n_vocab, dtype=TOKEN_DATA)
        self._cand_arr = L.llama_token_data_array(data=self._cand.ctypes.data_as(L.llama_token_data_p),
                                                  size=0, selected=-1, sorted=False)
        self._cached: list[int] = []          # tokens held by sequence 0 between calls
        self._label_ids: np.ndarray | None = None
        self._lora = Adapters(L, self._model, self._ctx, self._clear_memory)
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
        seqs: list[Seq | None] = [None] * len(requests)
        decisions: list[Decision | None] = [None] * len(requests)
        try:
            with self._lock:
                self._check_open()
                self._calls += 1
                groups: dict[tuple, list[Seq]] = {}
                for i, r in enumerate(requests):
                    try:
                        if not r.choices:
                            raise LlmPermanentError("the request has no choices")
                        if r.answer == "label":
                            s = Seq(index=i, tokens=self._text.tokenize(self._format(r)), grammar=None,
                                    sampling=dataclasses.replace(r.sampling, max_tokens=1),
                                    rng=self._rng(r.sampling, r.worker), answers=None,
                                    labels=self._labels(len(r.choices)))
                        elif r.answer == "text":
                            prompt = self._format(r)
                            s = Seq(index=i, tokens=self._text.tokenize(prompt), grammar=None,
                                    sampling=r.sampling, rng=self._rng(r.sampling, r.worker), answers=None,
                                    lines=self._lines(prompt, r.choices))
                        else:
                            answers = [answer_json(c).encode() for c in r.choices]
                            s = Seq(index=i, tokens=self._text.tokenize(self._format(r)),
                                    grammar=gbnf_for(r.choices).encode(), sampling=r.sampling,
                                    rng=self._rng(r.sampling, r.worker), answers=frozenset(answers),
                                    prefixes=answer_prefixes(answers))
                        seqs[i] = s
                        groups.setdefault(self._adapters().key(r.lora), []).append(s)
                    except LlmError as e:
                        decisions[i] = failed_decision(r, e, t0)
                lora = self._adapters()
                for key, group in sorted(groups.items(), key=lambda kv: kv[0] != lora.applied):
                    try:
                        lora.apply(key)
                    except LlmError as e:
                        for s in group:
                            s.fail(ERROR_PERMANENT, str(e))
                        continue
                    self._run([s for s in group if s.lines is None])
                    self._score([s for s in group if s.lines is not None])
        except LlmError as e:
            for i, r in enumerate(requests):
                if decisions[i] is None and ((seq := seqs[i]) is None or seq.done_at == 0.0):
                    decisions[i] = failed_decision(r, e, t0)
        except Exception as e:       # a bug: logged with its traceback, never fatal to a run
            _log.exception("llama_cpp decide failed")
            for i, r in enumerate(requests):
                if decisions[i] is None:
                    decisions[i] = Decision(worker=r.worker, choice=None, error=ERROR_TRANSIENT,
                                            message=f"{type(e).__name__}: {e}")
        for i, r in enumerate(requests):
            if decisions[i] is None:
                decisions[i] = decision_of(r, seqs[i], t0)
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
            s = Seq(index=0, tokens=self._text.tokenize(self._text.chat([("user", prompt)], prompt)),
                    grammar=gbnf.encode(), sampling=sampling, rng=self._rng(sampling, -1), answers=None)
            lora = self._adapters()
            lora.apply(lora.active)
            self._run([s])
        if s.error is not None:
            cls = LlmTransientError if s.error == ERROR_TRANSIENT else LlmPermanentError
            raise cls(s.message)
        return s.text.decode("utf-8", "replace")

    def prompt_tokens(self, request: DecisionRequest) -> list[int]:
        """The tokens ``request``'s prompt is decoded as (chat template applied),
        and for label answers the allowed labels' tokens: what a bare
        ``llama_decode`` loop needs to decode the same prompts (swarm-bench)."""
        with self._lock:
            self._check_open()
            return self._text.tokenize(self._format(request))

    def label_token_ids(self, n: int) -> list[int]:
        """The tokens of the first ``n`` labels (see :data:`~swarm_engine.llm.prompts.LABELS`)."""
        with self._lock:
            self._check_open()
            return [int(t) for t in self._labels(n)]

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
            self._adapters().set_active(scales)

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
            "lora": dict(self._lora.active) if self._lora else {},
            "adapters": list(self._lora.order) if self._lora else [],
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
            if self._lora is not None:
                self._lora.free()                # kept: info() still names the last set
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
        LogTap.verbose -= self._verbose
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
        return self._text.chat([(m["role"], m["content"]) for m in chat_messages(r)], r.prompt)

    def _labels(self, n: int) -> np.ndarray:
        """The tokens of the first ``n`` labels (checked once against the vocabulary).

        Raises
        ------
        LlmPermanentError
            More choices than labels, or a label that is not one token here.
        """
        if n > len(LABELS):
            raise LlmPermanentError(f"{n} choices: label answers allow at most {len(LABELS)}")
        if self._label_ids is None:
            try:
                self._label_ids = label_tokens(list(LABELS), self._text.piece_index()[0])
            except ValueError as e:
                raise LlmPermanentError(f"label answers need one token per label: {e}") from e
        return self._label_ids[:n]

    def _adapters(self) -> Adapters:
        """The LoRA adapters (open invokers only: callers check first)."""
        if self._lora is None:
            raise LlmPermanentError("the llama_cpp invoker is closed")
        return self._lora

    def _clear_memory(self) -> None:
        self._L.llama_memory_clear(self._mem, True)
        self._cached = []

    def _lines(self, prompt: str, choices: Sequence[Choice]) -> list[list[int]]:
        """Each candidate's line as the tokens that follow ``prompt`` when it is
        the answer, ending with the end-of-turn token (so a line that is a
        prefix of another is scored as a whole answer, not as a beginning)."""
        base = self._text.tokenize(prompt)
        end = int(self._L.llama_vocab_eot(self._vocab))
        if end < 0:
            end = int(self._L.llama_vocab_eos(self._vocab))
        out = []
        for c in choices:
            full = self._text.tokenize(prompt + choice_text(c))
            if full[:len(base)] != base:      # the line merged with the prompt's last token
                raise LlmPermanentError(f"the candidate line {choice_text(c)!r} does not tokenize apart "
                                        f"from the prompt")
            out.append(full[len(base):] + ([end] if end >= 0 else []))
        return out

    # batches

    def _score(self, seqs: list[Seq]) -> None:
        """Text answers: prefill each prompt in sequence 0 (after what it
        shares with the cached prefix), then decode every candidate line after
        it in sequences 1.. (copies of sequence 0), as many lines per
        ``llama_decode`` as fit, and score each line by the sum of its tokens'
        log-probabilities (:func:`.sampling.line_choice`)."""
        L = self._L
        for s in seqs:
            if s.done_at:
                continue
            assert s.lines is not None
            longest = max(map(len, s.lines))
            if len(s.tokens) + longest > self._n_ctx_seq:
                s.fail(ERROR_PERMANENT, f"prompt of {len(s.tokens)} tokens + a candidate line of {longest} "
                                        f"exceeds the context of a sequence ({self._n_ctx_seq} tokens)")
                continue
            try:
                reuse = common_prefix_len(self._cached, s.tokens[:-1]) if self._keep_prefix else 0
                if reuse < len(self._cached) and not L.llama_memory_seq_rm(self._mem, 0, reuse, -1):
                    self._clear_memory()
                    reuse = 0
                self._cached = self._cached[:reuse]
                s.seq_id = 0
                self._decode([(s, s.tokens[reuse:], reuse, True)])
                self._cached = list(s.tokens)
                s.cached = reuse
                assert s.logits is not None
                scores = self._line_logprobs(len(s.tokens), s.logits, s.lines)
            except LlmError as e:
                self._clear_memory()
                s.fail(ERROR_TRANSIENT if isinstance(e, LlmTransientError) else ERROR_PERMANENT, str(e))
                continue
            j, _, p = line_choice(scores, s.sampling, s.rng)
            s.choice, s.probs = j, p
            s.logprob = float(np.log(p[j])) if p[j] > 0 else -np.inf
            s.out = list(s.lines[j])
            s.text = bytearray(b"".join(self._text.piece(t) for t in s.lines[j] if not self._text.is_eog(t)))
            s.done_at = time.perf_counter()
        if not self._keep_prefix:
            self._clear_memory()

    def _line_logprobs(self, n_past: int, first: np.ndarray, lines: list[list[int]]) -> list[float]:
        """log p(line) of each line after the ``n_past`` tokens sequence 0 holds
        (``first``: the logits of its last position). The lines go as a prefix
        tree (:func:`.sampling.line_trie`), ``SCORE_LINES`` lines at a time, one
        sequence each (copies of sequence 0), searched best first
        (:func:`.sampling.line_scores`): only nodes that could still beat the
        best whole line are decoded, so the choice is exact and a line the
        model finds unlikely costs nothing past its first unlikely token."""
        L = self._L
        out: list[float] = []
        for lo in range(0, len(lines), self._n_score):
            chunk = lines[lo:lo + self._n_score]
            trie = line_trie(chunk)
            for k in range(len(chunk)):
                L.llama_memory_seq_cp(self._mem, 0, k + 1, -1, -1)
            try:
                scores, _ = line_scores(trie, first, functools.partial(self._decode_tree, n_past, trie))
            finally:
                for k in range(len(chunk)):
                    L.llama_memory_seq_rm(self._mem, k + 1, -1, -1)
            out += scores
        return out

    def _decode_tree(self, n_past: int, trie: LineTrie, nodes: list[int]) -> dict[int, np.ndarray]:
        """Decode trie ``nodes`` (each in the sequences of the lines through it,
        at position ``n_past + depth``; their parents are decoded already or come
        first) in chunks of n_batch tokens; their logits by node."""
        L = self._L
        if self._tree is None or self._tree.width < self._n_score:
            self._tree = TreeBatch(L, self._n_batch, self._n_score)
        b = self._tree
        rows: dict[int, np.ndarray] = {}
        for lo in range(0, len(nodes), self._n_batch):
            part = nodes[lo:lo + self._n_batch]
            n = len(part)
            for j, v in enumerate(part):
                seqs = trie.lines[v]
                b.token[j] = trie.token[v]
                b.pos[j] = n_past + trie.depth[v]
                b.n_seq_id[j] = len(seqs)
                b.seq[j, :len(seqs)] = [i + 1 for i in seqs]
            b.logits[:n] = 1
            b.struct.n_tokens = n
            rc = L.llama_decode(self._ctx, b.struct)
            if rc != 0:
                what = {1: "no KV slot for the batch (n_ctx too small)", 2: "aborted"}.get(rc, "invalid batch")
                raise LlmTransientError(f"llama_decode failed ({rc}: {what}){LogTap.reason()}")
            for j, v in enumerate(part):
                rows[v] = np.ctypeslib.as_array(L.llama_get_logits_ith(self._ctx, j), shape=(self._n_vocab,)).copy()
        return rows

    def _run(self, seqs: list[Seq]) -> None:
        """Run sequences in waves that fit ``n_seq_max`` and the KV cache."""
        wave: list[Seq] = []
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
                                                          _cells(wave + [s]) > self._n_ctx)):
                self._wave(wave)
                wave = []
            wave.append(s)
        if wave:
            self._wave(wave)

    def _wave(self, seqs: list[Seq]) -> None:
        L = self._L
        live: list[Seq] = []
        try:
            for s in seqs:
                if s.grammar is not None:
                    s.smpl = L.llama_sampler_init_grammar(self._vocab, s.grammar, b"root")
                    if not s.smpl:
                        s.smpl = None
                        s.fail(ERROR_PERMANENT, f"the grammar does not parse{LogTap.reason()}")
                        continue
                live.append(s)
            if not live:
                return
            for k, s in enumerate(live):
                s.seq_id = k
            common = shared_prefix([s.tokens for s in live])
            first = live[0].tokens
            reuse = common_prefix_len(self._cached, first[:common]) if self._keep_prefix else 0
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

    def _decode(self, parts: list[tuple[Seq, Sequence[int], int, bool]]) -> None:
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
        owner: dict[int, Seq] = {}
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
                raise LlmTransientError(f"llama_decode failed ({rc}: {what}){LogTap.reason()}")
            for i in np.flatnonzero(want[lo:hi]):
                ptr = L.llama_get_logits_ith(self._ctx, int(i))
                owner[lo + int(i)].logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).copy()

    def _generate(self, live: list[Seq]) -> None:
        L = self._L
        rest = []
        for s in live:
            if s.labels is None:
                rest.append(s)
                continue
            assert s.logits is not None
            j, conf, p = label_choice(s.logits[s.labels], s.sampling, s.rng)
            s.choice, s.probs, s.logprob = j, p, float(np.log(conf)) if conf > 0 else -np.inf
            s.out.append(int(s.labels[j]))
            s.text += LABELS[j].encode()
            s.done_at = time.perf_counter()
        live = rest
        while live:
            step: list[tuple[Seq, int]] = []
            for s in live:
                tok = self._pick(s)
                if tok is None:
                    s.fail(ERROR_PERMANENT, "the grammar allows no token")
                    continue
                if self._text.is_eog(tok):
                    s.done_at = time.perf_counter()
                    continue
                if s.smpl is not None:
                    L.llama_sampler_accept(s.smpl, tok)
                s.out.append(tok)
                s.text += self._text.piece(tok)
                if len(s.out) >= s.sampling.max_tokens or (
                        s.answers is not None and bytes(s.text) in s.answers and bytes(s.text) not in s.prefixes):
                    s.done_at = time.perf_counter()   # a complete answer no longer answer extends: EOG is forced
                    continue
                step.append((s, tok))
            if not step:
                return
            self._decode([(s, (tok,), s.n_past, True) for s, tok in step])
            live = [s for s, _ in step]

    def _allowed(self, s: Seq, idx: np.ndarray) -> np.ndarray:
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

    def _pick(self, s: Seq) -> int | None:
        """Choose the next token of ``s`` from its logits (see :mod:`.sampling`);
        None when nothing is allowed."""
        lg = s.logits
        assert lg is not None, "a sequence is picked from after its logits are decoded"
        idx = None
        if s.answers is not None and s.smpl is not None:
            by_piece, eog, longest = self._text.piece_index()
            idx = self._allowed(s, answer_tokens(bytes(s.text), s.answers, by_piece, eog, longest))
            idx = idx[np.isfinite(lg[idx])]
        if idx is None or not len(idx):
            idx = window(lg, None if s.smpl is None else lambda ids: self._allowed(s, ids))
            if idx is None:
                return None
        j, p = choose(lg[idx], s.sampling, s.rng)
        s.logprob += float(np.log(answer_mass(p, j, self._reach(s, idx))))
        return int(idx[j])

    def _reach(self, s: Seq, idx: np.ndarray) -> Callable[[int], frozenset[bytes]] | None:
        """Candidate i -> the answers of ``s`` still reachable after token
        ``idx[i]``; None when ``s`` has no answer list (``complete_json``)."""
        answers = s.answers
        if answers is None:
            return None
        text = bytes(s.text)
        alive = frozenset(a for a in answers if a.startswith(text))
        vocab = self._text

        def reach(i: int) -> frozenset[bytes]:
            tok = int(idx[i])
            if vocab.is_eog(tok):
                return reachable(text, None, answers)
            return reachable(text, vocab.piece(tok), alive)

        return reach


def _cells(seqs: list[Seq]) -> int:
    return cells_needed([s.tokens for s in seqs], [s.sampling.max_tokens for s in seqs])
