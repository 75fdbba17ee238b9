"""Train a LoRA adapter on decision examples, on the CPU (or a GPU when there is one).

The base weights come from the GGUF model the engine runs (transformers'
``gguf_file=`` loader dequantizes it to float32); nothing is downloaded
(``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` are set before transformers
is imported). Needs the ``train`` extra: torch, transformers, peft,
accelerate, safetensors.

Why the training step is not ``model(input_ids).loss``: a decision prompt is
~650 tokens (SmolLM2 template) of which ~320 are the system message every
example shares, and the answer is ~25. A plain forward and backward of 4 such
examples took ~11 s on the 2-core machine, so 150 steps would take half an
hour. Three things cut it, none of which changes the forward pass:

1. **Frozen lower blocks.** LoRA goes on the top ``layers`` blocks only
   (default 10 of SmolLM2's 30). The blocks below never change, so each
   example's hidden state entering the first adapted block is computed once
   (no grad) and cached.
2. **The shared prefix once per step.** The system message's keys and values
   in the adapted blocks are recomputed once per step under the current
   adapter, without grad, and every example of the batch attends to them. The
   forward is exact; the gradient that would flow through the prefix's keys
   and values is left out (the prefix still shapes every answer).
3. **Logits only where there is a label** (the answer tokens), not over the
   49k vocabulary at every position.

Measured on the 2-core machine (others' jobs running): 4 examples x ~340
worker tokens through 10 adapted blocks, ~2.2 s per step against ~11 s for the
plain step; caching an example's lower blocks costs ~0.45 s, once.

:meth:`LoraTrainer.answer_logprobs` is the plain full forward (no shortcuts):
it is what the llama.cpp agreement check compares against. What a training
is told and reports (:class:`TrainConfig`, :class:`TrainStats`, the extra
check) is in :mod:`swarm_engine.learn.lora.config`, importable without torch.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swarm_engine import fsio
from swarm_engine.errors import ConfigError
from swarm_engine.learn.lora.config import (
    TARGET_ALIASES,
    TRAIN_PACKAGES,
    TrainConfig,
    TrainStats,
    parse_targets,
    require_train,
    train_unavailable,
)
from swarm_engine.learn.lora.data import Example, choice_of
from swarm_engine.llm import prompts

# the configuration names are re-exported: ``from ...lora.train import TrainConfig`` keeps working
__all__ = ["TRAIN_PACKAGES", "TARGET_ALIASES", "train_unavailable", "require_train", "parse_targets",
           "TrainConfig", "TrainStats", "LoraTrainer", "decision_weights"]

@contextlib.contextmanager
def _quiet_third_party() -> Iterator[None]:
    """transformers / peft deprecation chatter, which is theirs to fix, not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\b")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(transformers|peft|torch)\b")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"(transformers|peft)\b")
        yield


@contextlib.contextmanager
def _no_gguf_progress_bar() -> Iterator[None]:
    """transformers' GGUF loader draws its own tqdm bar (disable_progress_bar()
    does not reach it), which would tear through rich's progress display."""
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # pragma: no cover - moved in some transformers version: the bar shows, nothing breaks
        yield
        return
    old = getattr(gguf_utils, "tqdm", None)
    if old is not None:
        gguf_utils.tqdm = lambda iterable=None, *args, **kwargs: iterable
    try:
        yield
    finally:
        if old is not None:
            gguf_utils.tqdm = old


@functools.cache
def _cache_kwarg(layer_type: Any) -> str:      # a transformers decoder layer class
    """The decoder layer's KV-cache argument: ``cache`` from transformers 5.24
    (``past_key_values`` is deprecated there, a FutureWarning), before that
    ``past_key_values``."""
    import inspect

    params = inspect.signature(layer_type.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


class _KV:
    """A stand-in for transformers' KV cache (attention layers only call
    ``update``): keys/values of earlier segments that new tokens attend to.

    ``update`` returns ``prior ++ new`` per layer (``prior`` expanded to the
    batch when it has one row); while ``recording`` it also keeps that
    concatenation, so the next segment can attend to it. Our own class, so no
    dependence on transformers' cache API, which changes between versions."""

    def __init__(self, prior: _KV | None = None) -> None:
        self.prior = prior
        self.kv: dict[int, tuple[Any, Any]] = {}
        self.recording = True

    def update(self, key: Any, value: Any, layer_idx: int, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        if self.recording and self.prior is None:
            self.kv[layer_idx] = (key, value)
            return key, value
        base = self.kv if not self.recording else self.prior.kv if self.prior is not None else {}
        pk, pv = base[layer_idx]
        import torch

        b = key.shape[0]
        if pk.shape[0] != b:
            pk, pv = pk.expand(b, -1, -1, -1), pv.expand(b, -1, -1, -1)
        k, v = torch.cat([pk, key], dim=2), torch.cat([pv, value], dim=2)
        if self.recording:
            self.kv[layer_idx] = (k, v)
        return k, v


@dataclass
class _Encoded:
    prefix: str                  # the shared system part (template text)
    worker: list[int]            # tokens after the prefix up to the assistant turn
    answer: list[int]            # the answer and the end-of-turn token
    weights: list[float]         # loss weight per answer token: 1 at a decision, format_weight elsewhere
    hidden: Any = None           # cached input of the first adapted block (worker + answer positions)


def decision_weights(answer: Sequence[int], others: Sequence[Sequence[int]], format_weight: float) -> list[float]:
    """Loss weights for the tokens of ``answer``: 1.0 where it parts from
    another candidate's answer (a token the model must choose), ``format_weight``
    where every candidate still agreeing so far has the same next token (the
    grammar forces it at decoding time)."""
    out = []
    live = [list(o) for o in others if list(o) != list(answer)]
    for t, tok in enumerate(answer):
        branch = any(len(o) > t and o[t] != tok for o in live)
        out.append(1.0 if branch else format_weight)
        live = [o for o in live if len(o) > t and o[t] == tok]
    return out


class LoraTrainer:
    """Loads the base model from its GGUF file, wraps it with PEFT LoRA, trains
    on :class:`Example` s, saves the adapter (safetensors and GGUF) and scores
    answers (for the llama.cpp agreement check).

    Parameters
    ----------
    base_model:
        The GGUF model; the default model (SmolLM2-135M-Instruct) when None.
    config:
        Hyper-parameters.
    log:
        Called with one-line status messages (loading, caching).

    Raises
    ------
    ConfigError
        The ``train`` extra is missing, or the model is not one transformers
        can load from GGUF.
    """

    def __init__(self, base_model: str | os.PathLike | None = None, config: TrainConfig = TrainConfig(), *,
                 log: Callable[[str], None] | None = None) -> None:
        require_train()
        os.environ["HF_HUB_OFFLINE"] = "1"            # never reach for a model hub
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch

        from swarm_engine.llm.models import resolve_model

        self.config = config
        self.log = log or (lambda s: None)
        self.model_path = Path(resolve_model(base_model))
        self._torch = torch
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._threads_before = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(config.threads or max(1, len(os.sched_getaffinity(0))))
        torch.manual_seed(config.seed)
        t0 = time.perf_counter()
        self.log(f"loading {self.model_path.name} (dequantized to float32)")
        with _quiet_third_party():
            from peft import LoraConfig, get_peft_model
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
            d, name = str(self.model_path.parent), self.model_path.name
            try:
                with _no_gguf_progress_bar():
                    self.tokenizer = AutoTokenizer.from_pretrained(d, gguf_file=name)
                    base = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
            except (ValueError, OSError, KeyError, RuntimeError) as e:
                raise ConfigError(f"{self.model_path}: transformers cannot load this GGUF model "
                                  f"({type(e).__name__}: {e})") from e
            cfg = base.config
            self.n_layer = int(cfg.num_hidden_layers)
            self.n_head = int(cfg.num_attention_heads)
            self.n_head_kv = int(getattr(cfg, "num_key_value_heads", None) or self.n_head)
            self.architecture = str(getattr(cfg, "model_type", "llama"))
            self._head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_head)
            if config.layers > self.n_layer:
                raise ConfigError(f"layers must be <= {self.n_layer} (the model's blocks), got {config.layers}")
            self.first = 0 if config.layers == 0 else self.n_layer - config.layers
            # peft annotates lora_alpha as int, but scales by lora_alpha / r and takes a float
            lcfg = LoraConfig(r=config.rank, lora_alpha=config.alpha,  # type: ignore[arg-type]
                              target_modules=list(config.targets),
                              lora_dropout=0.0, bias="none",
                              layers_to_transform=list(range(self.first, self.n_layer)) if self.first else None)
            self.model: Any = get_peft_model(base, lcfg).to(self.device)
        self.model.eval()                                # no dropout anywhere; LoRA weights still train
        # LlamaModel (embed_tokens, layers, norm, rotary_emb) and the output layer: Any, because torch
        # types a Module's submodule attributes as ``Tensor | Module``
        self._core: Any = self.model.get_base_model().model
        self._head: Any = self.model.get_base_model().lm_head
        self._prefixes: dict[str, tuple[list[int], Any, _KV]] = {}
        self._encoded: dict[int, tuple[Example, _Encoded]] = {}
        self.load_seconds = time.perf_counter() - t0
        self.stats = TrainStats()

    # ------------------------------------------------------------ encoding

    def prompt_text(self, messages: Sequence[dict[str, str]]) -> str:
        """The chat-template text of a decision prompt, ending with the
        assistant's turn (what llama.cpp's template makes of it too)."""
        return self._template(list(messages), add_generation_prompt=True)

    def _template(self, messages: list[dict[str, str]], **kwargs: Any) -> str:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)
        if not isinstance(text, str):          # tokenize=False returns the text
            raise TypeError(f"apply_chat_template returned {type(text).__name__}, expected str")
        return text

    def _tok(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, example: Example) -> tuple[list[int], int]:
        """(prompt + answer tokens, prompt length): the exact sequence trained on."""
        e = self._encode(example)
        prefix_ids = self._prefix(e.prefix)[0]
        return prefix_ids + e.worker + e.answer, len(prefix_ids) + len(e.worker)

    def _encode(self, example: Example) -> _Encoded:
        got = self._encoded.get(id(example))
        if got is not None and got[0] is example:
            return got[1]
        msgs = example.messages
        full = self.prompt_text(msgs)
        prefix = self._template(list(msgs[:1])) if len(msgs) > 1 else ""
        if not full.startswith(prefix):
            prefix = ""
        end = self.tokenizer.eos_token if self.tokenizer.eos_token else ""
        answer = self._tok(example.answer + end)
        others = [self._tok(prompts.answer_json(choice_of(c)) + end) for i, c in enumerate(example.choices)
                  if i != example.target]
        e = _Encoded(prefix=prefix, worker=self._tok(full[len(prefix):]), answer=answer,
                     weights=decision_weights(answer, others, self.config.format_weight))
        self._encoded[id(example)] = (example, e)      # the example is kept so its id is not reused
        return e

    # ------------------------------------------------------------ forward pieces

    def _neg(self) -> float:
        return float(self._torch.finfo(self._torch.float32).min)

    def _causal(self, n: int, offset: int = 0) -> Any:
        """(1, 1, n, offset + n) additive mask: all ``offset`` earlier keys, then causal."""
        torch = self._torch
        i = torch.arange(n, device=self.device)[:, None] + offset
        j = torch.arange(offset + n, device=self.device)[None, :]
        return torch.where(j <= i, 0.0, self._neg())[None, None]

    def _blocks(self, h: Any, lo: int, hi: int, pos: Any, mask: Any, cache: _KV | None) -> Any:
        """Run blocks ``lo:hi`` on hidden states ``h`` (B, T, d) at positions ``pos`` (B, T)."""
        pe = self._core.rotary_emb(h, pos)
        kv = {_cache_kwarg(self._core.layers[0].__class__): cache}
        for layer in self._core.layers[lo:hi]:
            h = layer(h, attention_mask=mask, position_ids=pos, position_embeddings=pe, **kv)
            if isinstance(h, tuple):                      # older transformers return (hidden, ...)
                h = h[0]
        return h

    def _arange(self, lo: int, n: int) -> Any:
        return self._torch.arange(lo, lo + n, device=self.device)[None]

    def _prefix(self, text: str) -> tuple[list[int], Any, _KV]:
        """(tokens, input of the first adapted block, lower blocks' keys/values) of a shared prefix."""
        got = self._prefixes.get(text)
        if got is None:
            torch = self._torch
            ids = self._tok(text) if text else []
            kv = _KV()
            h = None
            if ids:
                with torch.no_grad():
                    x = torch.tensor([ids], device=self.device)
                    h = self._blocks(self._core.embed_tokens(x), 0, self.first, self._arange(0, len(ids)),
                                     self._causal(len(ids)), kv)
            kv.recording = False
            got = self._prefixes[text] = (ids, h, kv)
        return got

    def _hidden(self, e: _Encoded) -> Any:
        """The example's worker + answer positions entering the first adapted block (cached)."""
        if e.hidden is None:
            torch = self._torch
            ids, _, kv = self._prefix(e.prefix)
            seq = e.worker + e.answer
            p = len(ids)
            with torch.no_grad():
                x = torch.tensor([seq], device=self.device)
                e.hidden = self._blocks(self._core.embed_tokens(x), 0, self.first, self._arange(p, len(seq)),
                                        self._causal(len(seq), p), kv if p else None)[0]
            self.stats.seen += 1
        return e.hidden

    def batch_loss(self, batch: Sequence[Example]) -> tuple[Any, int]:
        """Weighted mean cross-entropy (:func:`decision_weights`) of the answers of ``batch`` (one shared prefix),
        through the fast path; returns (loss tensor, label tokens).

        Three passes through the adapted blocks, all under the current adapter:
        the shared prefix (one row) and the worker parts (padded) without grad,
        keeping their keys/values, then, with grad, each prompt's last token
        and the answer (the last prompt token predicts the answer's first
        token), attending to them. Leaving the first answer token out of the
        loss lets its probability drift (it fell to e^-11 in one run) and the
        grammar then decodes the answer through another tokenization.
        """
        torch = self._torch
        neg = self._neg()
        enc = [self._encode(x) for x in batch]
        if len({e.prefix for e in enc}) != 1:
            raise ValueError("a batch must share one prefix")
        hidden = [self._hidden(e) for e in enc]
        ids, hp, _ = self._prefix(enc[0].prefix)
        p, bsz, dim = len(ids), len(enc), hidden[0].shape[-1]
        lo, hi = self.first, self.n_layer
        # context: the worker part but its last token; graded: that token + the answer
        cl = [len(e.worker) - 1 for e in enc]
        gl = [len(e.answer) + 1 for e in enc]
        c, g = max(max(cl), 1), max(gl)
        hc = torch.zeros(bsz, c, dim, device=self.device)
        hg = torch.zeros(bsz, g, dim, device=self.device)
        pos_c = torch.zeros(bsz, c, dtype=torch.long, device=self.device)
        pos_g = torch.zeros(bsz, g, dtype=torch.long, device=self.device)
        # context rows see the whole prefix and their own earlier (non-pad) tokens
        mask_c = torch.full((bsz, 1, c, p + c), neg, device=self.device)
        mask_c[:, :, :, :p] = 0.0
        # graded rows also see their own context tokens, then their earlier graded tokens
        mask_g = torch.full((bsz, 1, g, p + c + g), neg, device=self.device)
        mask_g[:, :, :, :p] = 0.0
        labels = torch.full((bsz, g), -100, dtype=torch.long, device=self.device)
        weights = torch.zeros(bsz, g, device=self.device)
        causal_c = torch.tril(torch.ones(c, c, dtype=torch.bool, device=self.device))
        causal_g = torch.tril(torch.ones(g, g, dtype=torch.bool, device=self.device))
        for b, e in enumerate(enc):
            nc, ng = cl[b], gl[b]
            hc[b, :nc] = hidden[b][:nc]
            hg[b, :ng] = hidden[b][nc:]
            pos_c[b] = torch.arange(p, p + c, device=self.device)
            pos_g[b] = torch.arange(p + nc, p + nc + g, device=self.device)
            mc = torch.zeros(c, c, device=self.device).masked_fill(~causal_c, neg)
            mc[:, nc:] = neg
            mc[torch.arange(c, device=self.device) >= nc, :1] = 0.0         # pad rows: never a row with no key at all
            mask_c[b, 0, :, p:] = mc
            mask_g[b, 0, :, p:p + nc] = 0.0
            mg = torch.zeros(g, g, device=self.device).masked_fill(~causal_g, neg)
            mg[:, ng:] = neg
            mask_g[b, 0, :, p + c:] = mg
            labels[b, :ng - 1] = torch.tensor(e.answer, device=self.device)
            weights[b, :ng - 1] = torch.tensor(e.weights, device=self.device)
        pre = _KV()
        ctx = _KV(pre)
        with torch.no_grad():
            if p:
                self._blocks(hp, lo, hi, self._arange(0, p), self._causal(p), pre)
            else:
                for i in range(lo, hi):
                    z = torch.zeros(1, self.n_head_kv, 0, self._head_dim, device=self.device)
                    pre.kv[i] = (z, z)
            self._blocks(hc, lo, hi, pos_c, mask_c, ctx)
        ctx.recording = False
        out = self._blocks(hg, lo, hi, pos_g, mask_g, ctx)
        sel = labels != -100
        logits = self._head(self._core.norm(out[sel]))
        ce = torch.nn.functional.cross_entropy(logits.float(), labels[sel], reduction="none")
        w = weights[sel]
        return (ce * w).sum() / w.sum(), int(sel.sum())

    # ------------------------------------------------------------ training

    def train(self, examples: Sequence[Example], *,
              progress: Callable[[int, int, float], None] | None = None) -> TrainStats:
        """Train ``config.steps`` steps on ``examples``; ``progress(step, steps,
        loss)`` after each. Batches are drawn without replacement (reshuffled
        each epoch) from examples that share one system prompt.

        Raises
        ------
        ConfigError
            No examples.
        """
        if not examples:
            raise ConfigError("no training examples")
        torch = self._torch
        cfg = self.config
        rng = random.Random(cfg.seed)
        groups: dict[str, list[Example]] = {}
        for x in examples:
            groups.setdefault(self._encode(x).prefix, []).append(x)
        queues: dict[str, list[Example]] = {k: [] for k in groups}
        keys = list(groups)
        weights = [len(groups[k]) for k in keys]
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
        warm = max(1, cfg.steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else 1.0 - 0.9 * (s - warm) / max(1, cfg.steps - warm))
        st = self.stats
        st.examples = len(examples)
        t0 = time.perf_counter()
        self.model.train()
        try:
            for step in range(cfg.steps):
                k = rng.choices(keys, weights)[0]
                q = queues[k]
                batch: list[Example] = []
                while len(batch) < min(cfg.batch, len(groups[k])):
                    if not q:
                        q.extend(groups[k])
                        rng.shuffle(q)
                    x = q.pop()
                    if all(x is not y for y in batch):
                        batch.append(x)
                tc = time.perf_counter()
                for x in batch:                       # lower blocks, once per example
                    self._hidden(self._encode(x))
                st.cache_seconds += time.perf_counter() - tc
                loss, n = self.batch_loss(batch)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise ConfigError(f"training diverged at step {step + 1} (loss {value}); lower --lr")
                st.losses.append(value)
                st.steps += 1
                st.label_tokens += n
                if progress is not None:
                    progress(step + 1, cfg.steps, value)
        finally:
            self.model.eval()
            st.seconds += time.perf_counter() - t0
        return st

    # ------------------------------------------------------------ scoring

    def answer_logprobs(self, examples: Sequence[Example], *, adapter: bool = True) -> list[np.ndarray]:
        """Per-token log-probs of each example's answer (the plain full forward
        over prompt + answer, no shortcuts); ``adapter=False`` scores the base model."""
        torch = self._torch
        out = []
        ctx = contextlib.nullcontext() if adapter else self.model.disable_adapter()
        with torch.no_grad(), ctx:
            for x in examples:
                ids, n_prompt = self.encode(x)
                logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].float()
                lp = torch.log_softmax(logits[n_prompt - 1:-1], dim=-1)
                tgt = torch.tensor(ids[n_prompt:], device=self.device)
                out.append(lp.gather(1, tgt[:, None])[:, 0].cpu().numpy().astype(np.float64))
        return out

    # ------------------------------------------------------------ saving

    def state_dict(self) -> dict[str, np.ndarray]:
        """The LoRA tensors under PEFT's names, as float32 numpy arrays."""
        from peft import get_peft_model_state_dict

        with _quiet_third_party():        # "could not find a config file": the base is a GGUF, not a hub folder
            state = get_peft_model_state_dict(self.model)
        return {k: v.detach().float().cpu().contiguous().numpy() for k, v in state.items()}

    def save(self, folder: str | os.PathLike) -> tuple[Path, Path, Any]:
        """Write ``adapter.safetensors`` (PEFT names) and ``adapter.gguf``
        (llama.cpp) into ``folder``; returns (safetensors path, gguf path, AdapterInfo)."""
        from safetensors.numpy import save_file

        from swarm_engine.learn.lora.convert import gguf_tensors, write_gguf_adapter

        d = Path(folder)
        d.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        st_path = d / "adapter.safetensors"
        with fsio.atomic_path(st_path) as tmp:
            save_file(state, str(tmp), metadata={"lora_alpha": str(self.config.alpha), "r": str(self.config.rank),
                                                 "n_head": str(self.n_head), "n_head_kv": str(self.n_head_kv),
                                                 "architecture": self.architecture})
        info = write_gguf_adapter(d / "adapter.gguf",
                                  gguf_tensors(state, n_head=self.n_head, n_head_kv=self.n_head_kv),
                                  alpha=self.config.alpha, architecture=self.architecture)
        return st_path, d / "adapter.gguf", info

    def close(self) -> None:
        """Drop the model and restore torch's thread count; safe twice."""
        if getattr(self, "model", None) is not None:
            self.model = None
            self._prefixes.clear()
            self._encoded.clear()
            self._torch.set_num_threads(self._threads_before)

    def __enter__(self) -> LoraTrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
