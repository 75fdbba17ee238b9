"""What one ``llama_decode`` call is made of: the ``llama_batch`` struct over
numpy buffers, and the sequences of a wave.

llama-cpp-python has no batch API above ``llama_decode``; :class:`Batch`
owns the struct's arrays as numpy buffers (one seq id per token), so a chunk
is filled with slice assignments instead of per-element ctypes writes.
``llama_decode`` only reads them during the call.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarm_engine.llm.protocol import Sampling

__all__ = ["Batch", "TreeBatch", "Seq", "TOKEN_DATA"]

# llama_token_data: {int32 id; float logit; float p}
TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


class Batch:
    """A ``llama_batch`` of up to ``capacity`` tokens whose arrays live here."""

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


class TreeBatch:
    """A ``llama_batch`` whose tokens may each belong to up to ``width``
    sequences: a prefix tree of candidate lines, one sequence per line, where
    a token the lines share is decoded once for all of them."""

    def __init__(self, lib: Any, capacity: int, width: int) -> None:
        self.capacity, self.width = capacity, width
        self.token = np.zeros(capacity, dtype=np.int32)
        self.pos = np.zeros(capacity, dtype=np.int32)
        self.n_seq_id = np.zeros(capacity, dtype=np.int32)
        self.seq = np.zeros((capacity, width), dtype=np.int32)
        self.logits = np.zeros(capacity, dtype=np.int8)
        ip = ctypes.POINTER(ctypes.c_int32)
        base = self.seq.ctypes.data
        self._seq_ptrs = (ip * capacity)(*[ctypes.cast(base + 4 * width * i, ip) for i in range(capacity)])
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
class Seq:
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
    labels: np.ndarray | None = None   # answer "label": the allowed labels' tokens; prefill alone decides
    choice: int | None = None          # ... the chosen label's position
    probs: np.ndarray | None = None    # ... and every label's (or line's) probability
    lines: list[list[int]] | None = None   # answer "text": each candidate line's tokens, scored

    def fail(self, kind: str, message: str) -> None:
        if self.error is None:
            self.error, self.message = kind, message
        self.done_at = time.perf_counter()
