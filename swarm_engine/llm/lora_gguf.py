"""LoRA adapters as GGUF files that llama.cpp loads at run time.

The layout llama.cpp accepts (src/llama-adapter.cpp, checked against 0.3.36):

- metadata ``general.type = "adapter"``, ``general.architecture`` = the base
  model's architecture (a mismatch is refused), ``adapter.type = "lora"``,
  ``adapter.lora.alpha`` (float32; the applied scale is ``alpha / rank * scale``);
- one tensor pair per adapted weight: ``blk.N.attn_q.weight.lora_a`` and
  ``.lora_b``. As numpy shapes written with ``gguf``: ``lora_a`` is
  ``(rank, n_in)`` and ``lora_b`` is ``(n_out, rank)``, where the base weight's
  GGUF shape (ggml order, innermost first) is ``(n_in, n_out)``.

``write_lora_adapter`` makes synthetic adapters from the base model's shapes:
``B = 0`` is an identity control (the output must equal the base model's), a
small random ``B`` perturbs it (std 0.05 on q and v changes SmolLM2-135M's
greedy output). Trained adapters (PEFT) are converted elsewhere; note that
q/k adapters from PEFT need llama.cpp's RoPE row permutation on ``lora_b``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swarm_engine import fsio
from swarm_engine.errors import ConfigError, LlmPermanentError

__all__ = ["AdapterInfo", "LORA_TARGETS", "write_lora_adapter", "read_adapter_info", "gguf_file_writer",
           "lora_adapter_writer"]

# The weights an adapter may target, by their GGUF names (PEFT's q_proj, k_proj,
# v_proj, o_proj, gate_proj, up_proj, down_proj).
LORA_TARGETS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


@dataclass(frozen=True)
class AdapterInfo:
    """What a LoRA GGUF says about itself.

    Attributes
    ----------
    path: the file.
    architecture: ``general.architecture`` (must equal the base model's).
    alpha: ``adapter.lora.alpha``; llama.cpp scales ``B @ A`` by ``alpha / rank``.
    rank: r, from the first ``lora_a`` tensor.
    targets: the adapted weights, e.g. ``("attn_q", "attn_v")``.
    layers: the block indices that carry at least one pair.
    n_tensors: tensors in the file (two per adapted weight).
    zero_b: every ``lora_b`` is zero (an identity adapter).
    """

    path: str
    architecture: str
    alpha: float
    rank: int
    targets: tuple[str, ...]
    layers: tuple[int, ...]
    n_tensors: int
    zero_b: bool


def _gguf() -> Any:
    try:
        import gguf
    except ImportError as e:  # pragma: no cover - gguf ships with the llm extra
        raise LlmPermanentError("the gguf package is needed for LoRA adapter files: pip install gguf") from e
    return gguf


def _open(path: str | os.PathLike, what: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise LlmPermanentError(f"{p}: {what} not found")
    try:
        return _gguf().GGUFReader(str(p))
    except (ValueError, OSError, KeyError, IndexError) as e:
        raise LlmPermanentError(f"{p}: not a readable GGUF file ({e})") from e


def _field(reader: Any, key: str) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return None
    return f.contents()


@contextlib.contextmanager
def gguf_file_writer(path: str | os.PathLike, architecture: str) -> Iterator[Any]:
    """A ``gguf.GGUFWriter`` to fill in the block; the file appears at ``path``
    only when the block ends without error (:mod:`swarm_engine.fsio`), so a
    reader never sees half an adapter or model."""
    gguf = _gguf()
    with fsio.atomic_path(path) as tmp:
        w = gguf.GGUFWriter(str(tmp), architecture)   # writes general.architecture
        yield w
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


@contextlib.contextmanager
def lora_adapter_writer(path: str | os.PathLike, architecture: str, alpha: float) -> Iterator[Any]:
    """:func:`gguf_file_writer` with the LoRA adapter metadata llama.cpp wants;
    add the ``.lora_a``/``.lora_b`` tensors in the block."""
    gguf = _gguf()
    with gguf_file_writer(path, architecture) as w:
        w.add_type(gguf.GGUFType.ADAPTER)
        w.add_string(gguf.Keys.Adapter.TYPE, "lora")
        w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
        yield w


@functools.lru_cache(maxsize=8)
def _base_facts(path: str, _mtime_ns: int, _size: int) -> tuple[str, int, dict[str, tuple[int, ...]]]:
    """(architecture, block count, tensor name -> GGUF shape) of a model file.

    Cached per (path, mtime, size): GGUFReader parses the whole tokenizer
    (3.8 s for SmolLM2's 49k-token vocabulary on the 2-core machine)."""
    reader = _open(path, "base model")
    arch = _field(reader, "general.architecture")
    n_layer = _field(reader, f"{arch}.block_count")
    if not arch or n_layer is None:
        raise LlmPermanentError(f"{path}: no general.architecture/block_count: not a model GGUF")
    return str(arch), int(n_layer), {t.name: tuple(int(x) for x in t.shape) for t in reader.tensors}


def write_lora_adapter(path: str | os.PathLike, base_model_path: str | os.PathLike, *, rank: int = 8,
                       alpha: float = 16.0, targets: Sequence[str] = ("attn_q", "attn_v"),
                       std: float = 0.0, seed: int = 0, zero_b: bool = False,
                       layers: Sequence[int] | None = None) -> AdapterInfo:
    """Write a synthetic LoRA adapter for ``base_model_path`` to ``path``.

    Parameters
    ----------
    path:
        The adapter file to write (atomically: temp file, fsync, rename).
    base_model_path:
        The base model GGUF; its architecture, block count and weight shapes
        are read with ``gguf.GGUFReader`` (no weights are loaded).
    rank, alpha:
        LoRA rank r and alpha (applied scale ``alpha / r``).
    targets:
        Weights to adapt, GGUF names from ``LORA_TARGETS``.
    std:
        Standard deviation of the random entries. With ``std > 0`` both A and
        B are drawn from N(0, std^2); with ``std == 0`` A gets N(0, 1/n_in) and
        B is zero.
    seed:
        Seeds the numpy generator (the same seed gives the same file).
    zero_b:
        Force B = 0 whatever ``std`` is: an identity adapter whose output must
        equal the base model's.
    layers:
        Block indices to adapt; all of them by default.

    Returns
    -------
    AdapterInfo of the written file.

    Raises
    ------
    LlmPermanentError
        The base model is missing or unreadable, or has no such target weight.
    ConfigError
        rank < 1, std < 0 or an unknown target.
    """
    if rank < 1:
        raise ConfigError(f"rank must be >= 1, got {rank}")
    if std < 0:
        raise ConfigError(f"std must be >= 0, got {std}")
    bad = [t for t in targets if t not in LORA_TARGETS]
    if bad or not targets:
        raise ConfigError(f"targets must be a non-empty subset of {LORA_TARGETS}, got {tuple(targets)}")
    base = Path(base_model_path)
    if not base.is_file():
        raise LlmPermanentError(f"{base}: base model not found")
    st = base.stat()
    arch, n_layer, shapes = _base_facts(str(base.resolve()), st.st_mtime_ns, st.st_size)
    blocks = range(n_layer) if layers is None else [int(i) for i in layers]

    rng = np.random.default_rng(seed)
    pairs: list[tuple[str, np.ndarray, np.ndarray]] = []
    for i in blocks:
        for t in targets:
            name = f"blk.{i}.{t}.weight"
            shape = shapes.get(name)
            if shape is None or len(shape) != 2:
                raise LlmPermanentError(f"{base_model_path}: the base model has no 2-D tensor {name}")
            n_in, n_out = shape                        # ggml order: innermost (input) first
            a_std = std if std > 0 else 1.0 / np.sqrt(n_in)
            a = rng.normal(0.0, a_std, size=(rank, n_in)).astype(np.float32)
            if zero_b or std == 0:
                b = np.zeros((n_out, rank), dtype=np.float32)
            else:
                b = rng.normal(0.0, std, size=(n_out, rank)).astype(np.float32)
            pairs.append((name, a, b))

    with lora_adapter_writer(path, arch, alpha) as w:
        for name, a, b in pairs:
            w.add_tensor(name + ".lora_a", a)
            w.add_tensor(name + ".lora_b", b)
    return read_adapter_info(path)


def read_adapter_info(path: str | os.PathLike) -> AdapterInfo:
    """Read a LoRA GGUF's metadata and tensor names.

    Raises
    ------
    LlmPermanentError
        The file is missing, not GGUF, or not a LoRA adapter (one line saying which).
    """
    reader = _open(path, "LoRA adapter")
    gtype = _field(reader, "general.type")
    atype = _field(reader, "adapter.type")
    if gtype != "adapter" or atype != "lora":
        raise LlmPermanentError(f"{path}: not a LoRA adapter (general.type={gtype!r}, adapter.type={atype!r})")
    arch = _field(reader, "general.architecture") or ""
    alpha = _field(reader, "adapter.lora.alpha")
    targets: list[str] = []
    layers: set[int] = set()
    rank = 0
    zero_b = True
    for t in reader.tensors:
        name = t.name
        if not (name.endswith(".lora_a") or name.endswith(".lora_b")):
            continue
        parts = name.split(".")                       # blk.N.<target>.weight.lora_x
        if len(parts) >= 5 and parts[0] == "blk" and parts[1].isdigit():
            layers.add(int(parts[1]))
            if parts[2] not in targets:
                targets.append(parts[2])
        if name.endswith(".lora_a") and rank == 0:
            rank = int(t.shape[1])                    # ggml order (n_in, r)
        elif name.endswith(".lora_b") and zero_b:
            zero_b = not np.any(np.asarray(t.data))
    return AdapterInfo(path=str(path), architecture=str(arch), alpha=float(alpha or 0.0), rank=rank,
                       targets=tuple(targets), layers=tuple(sorted(layers)), n_tensors=len(reader.tensors),
                       zero_b=zero_b)
