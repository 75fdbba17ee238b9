"""How good an adapter is, measured the way the engine uses it: llama.cpp in process.

- :func:`decision_accuracy`: the held-out decisions asked again through
  :class:`~swarm_engine.llm.backends.llama_cpp.LlamaCppInvoker` (grammar-
  constrained, greedy, as an LLM-managed run asks), with or without the
  adapter; a decision is correct when the model picks a candidate known to
  succeed in that run (:attr:`Example.good`).
- :func:`llama_logprobs` and :func:`agreement`: per-token log-probs of the
  answers under llama.cpp with the converted adapter, against the trained PEFT
  model's (``LoraTrainer.answer_logprobs``) on the same token ids. A wrong
  conversion (e.g. without the q/k RoPE permutation of ``lora_B``) shows here
  long before it shows in answers. The check runs llama.cpp on a float32 copy
  of the base (:func:`~swarm_engine.learn.lora.convert.write_f32_model`):
  measured on SmolLM2-135M, PEFT and llama.cpp then agree within 0.02 nats
  per answer with and without the adapter (1.7 nats off without the RoPE
  permutation), while the Q4_1 model itself differs from its own dequantized
  weights by up to ~0.3 nats (quantized activations), adapter or not.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from swarm_engine.errors import LlmPermanentError
from swarm_engine.learn.lora.data import Example, choice_of
from swarm_engine.llm.protocol import DecisionRequest, Sampling

__all__ = ["requests_for", "decision_accuracy", "llama_logprobs", "agreement"]


def requests_for(examples: Sequence[Example], *, max_tokens: int = 64) -> list[DecisionRequest]:
    """The decision requests the examples were recorded from (same messages, same choices)."""
    out = []
    for i, e in enumerate(examples):
        sys_msg = next((m["content"] for m in e.messages if m["role"] == "system"), "")
        user = next((m["content"] for m in e.messages if m["role"] == "user"), "")
        out.append(DecisionRequest(worker=i, shared_prompt=sys_msg, worker_prompt=user,
                                   choices=tuple(choice_of(c) for c in e.choices),
                                   sampling=Sampling(temperature=0.0, max_tokens=max_tokens), slot=None,
                                   answer=e.answer_format))
    return out


def decision_accuracy(examples: Sequence[Example], *, model_path: str | os.PathLike | None = None,
                      adapter: str | os.PathLike | None = None, invoker: Any = None, batch: int = 4,
                      n_ctx: int = 4096, n_threads: int | None = None,
                      progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Ask ``examples`` again and score the answers.

    Parameters
    ----------
    examples:
        Held-out examples (see :func:`~swarm_engine.learn.lora.data.split_by_seed`).
    model_path, adapter:
        The base GGUF (default model when None) and a LoRA GGUF (None: base only).
    invoker:
        An open :class:`LlamaCppInvoker` to reuse instead (its adapter set is
        switched to ``adapter`` and left so).
    batch:
        Requests per ``decide`` call (one llama.cpp batch).

    Returns
    -------
    dict
        ``n``, ``correct`` (picked a good candidate), ``accuracy``, ``exact``
        (picked the example's target), ``failed`` (no valid answer),
        ``by_action`` {target action: {n, correct}}, ``picks`` (index per
        example, None when failed).
    """
    from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker

    own = invoker is None
    if own:
        invoker = LlamaCppInvoker(model_path, n_ctx=n_ctx, n_seq_max=max(1, batch), n_threads=n_threads,
                                  lora=[(str(adapter), 1.0)] if adapter else ())
    else:
        invoker.set_lora({str(adapter): 1.0} if adapter else {})
    reqs = requests_for(examples)
    picks: list[int | None] = []
    try:
        for i in range(0, len(reqs), max(1, batch)):
            for d in invoker.decide_sync(reqs[i:i + batch]):
                picks.append(d.choice if d.ok else None)
            if progress is not None:
                progress(len(picks), len(reqs))
    finally:
        if own:
            invoker.close()
    by_action: dict[str, dict[str, int]] = {}
    correct = exact = failed = 0
    for e, pick in zip(examples, picks):
        ok = pick is not None and pick in e.good
        correct += ok
        exact += pick == e.target
        failed += pick is None
        row = by_action.setdefault(e.action, {"n": 0, "correct": 0})
        row["n"] += 1
        row["correct"] += ok
    n = len(picks)
    return {"n": n, "correct": correct, "accuracy": correct / n if n else None, "exact": exact, "failed": failed,
            "by_action": by_action, "picks": picks}


def llama_logprobs(sequences: Sequence[tuple[Sequence[int], int]], *, model_path: str | os.PathLike | None = None,
                   adapter: str | os.PathLike | None = None, n_threads: int | None = None,
                   stepwise: bool = False) -> list[np.ndarray]:
    """Per-token log-probs of each sequence's tail under llama.cpp.

    Parameters
    ----------
    sequences:
        (token ids, prompt length) pairs; the log-probs of ``ids[n_prompt:]``
        are returned, each given everything before it.
    model_path, adapter:
        The base GGUF and an optional LoRA GGUF (applied with scale 1).
    stepwise:
        Decode the answer one token per call, as generation does (with a
        quantized model the numbers depend slightly on how tokens are batched);
        else the prompt's tail and the answer go in one batch.

    Raises
    ------
    LlmPermanentError
        llama-cpp-python missing, or the model / adapter refused.
    """
    try:
        from llama_cpp import Llama
    except ImportError as e:
        raise LlmPermanentError("the log-prob check needs llama-cpp-python: pip install 'swarm-engine[llm]'") from e
    from swarm_engine.llm.models import resolve_model

    longest = max((len(ids) for ids, _ in sequences), default=16)
    n_ctx = int(2 ** np.ceil(np.log2(longest + 8)))
    threads = n_threads or max(1, len(os.sched_getaffinity(0)) // 2)
    from swarm_engine.llm.cpu import safe_default_params

    try:
        with safe_default_params():
            llm = Llama(model_path=str(resolve_model(model_path)), lora_path=str(adapter) if adapter else None,
                        logits_all=True, n_ctx=n_ctx, n_batch=min(512, n_ctx), n_threads=threads,
                        verbose=False)
    except (ValueError, RuntimeError) as e:
        raise LlmPermanentError(f"llama.cpp cannot load {Path(adapter) if adapter else 'the model'}: {e}") from e
    # the prompts share the system part: decode it once and keep its cache
    # (Llama.eval drops every cached position from n_tokens on)
    common = min(_common_prefix([list(ids) for ids, _ in sequences]), min(n for _, n in sequences) - 1)
    out = []
    try:
        llm.reset()
        if common > 0:
            llm.eval(list(sequences[0][0][:common]))
        for ids, n_prompt in sequences:
            llm.n_tokens = common
            if stepwise:
                llm.eval(list(ids[common:n_prompt]))
                for tok in ids[n_prompt:-1]:
                    llm.eval([tok])
            else:
                llm.eval(list(ids[common:]))
            logits = np.asarray(llm.scores[n_prompt - 1:len(ids) - 1], dtype=np.float64)
            m = logits.max(axis=1, keepdims=True)
            lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
            tgt = np.asarray(ids[n_prompt:])
            out.append(logits[np.arange(len(tgt)), tgt] - lse)
    finally:
        llm.close()
    return out


def _common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    if not seqs:
        return 0
    n = min(len(x) for x in seqs)
    for i in range(n):
        t = seqs[0][i]
        if any(x[i] != t for x in seqs):
            return i
    return n


def agreement(peft: Sequence[np.ndarray], llama: Sequence[np.ndarray]) -> dict[str, float]:
    """How far two sets of per-token answer log-probs are apart (nats):
    ``max_seq`` (largest difference of a whole answer's log-prob),
    ``max_token`` (largest per-token difference), ``mean_token``."""
    seq = [abs(float(a.sum() - b.sum())) for a, b in zip(peft, llama)]
    tok = np.concatenate([np.abs(a - b) for a, b in zip(peft, llama)]) if peft else np.zeros(0)
    return {"n": len(seq), "max_seq": max(seq, default=0.0), "max_token": float(tok.max()) if tok.size else 0.0,
            "mean_token": float(tok.mean()) if tok.size else 0.0}
