"""PEFT LoRA weights -> a GGUF adapter that llama.cpp applies at run time.

Only numpy, gguf and (for files) safetensors: no torch. The layout is the one
documented in :mod:`swarm_engine.llm.lora_gguf`:

- names: ``base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight``
  -> ``blk.N.attn_q.weight.lora_a`` (k, v, o -> attn_k, attn_v, attn_output;
  mlp gate/up/down -> ffn_gate, ffn_up, ffn_down; ``lora_B`` -> ``lora_b``);
- shapes as PEFT has them: A ``(r, n_in)``, B ``(n_out, r)``;
- metadata ``general.type = adapter``, ``adapter.type = lora``,
  ``adapter.lora.alpha`` = PEFT's ``lora_alpha`` (llama.cpp scales B A by
  alpha / r, as PEFT does).

**RoPE permutation.** llama.cpp stores q and k weights with their rows
permuted (``convert_hf_to_gguf``'s ``permute``: within each head, the two
rotary halves are interleaved), and transformers undoes that permutation when
it loads a GGUF. The adapter's delta ``B A`` adds to those permuted weights, so
the rows of ``lora_B`` for q_proj (``n_head`` heads) and k_proj (``n_head_kv``
heads) get the same permutation; ``lora_A`` (the input side) does not. Without
it the adapter loads and answers, but its q/k changes land on the wrong rotary
dimensions (the log-prob check in ``swarm learn lora`` catches that).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from swarm_engine.errors import ConfigError, LlmPermanentError
from swarm_engine.llm.lora_gguf import AdapterInfo, gguf_file_writer, lora_adapter_writer, read_adapter_info

__all__ = ["PEFT_TO_GGUF", "rope_permute", "gguf_tensors", "write_gguf_adapter", "convert_safetensors",
           "write_f32_model"]

# PEFT module name -> GGUF weight name
PEFT_TO_GGUF = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
                "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}

# ...layers.<N>.<self_attn|mlp>.<module>.lora_<A|B>[.<adapter name>].weight
_NAME = re.compile(r"(?:^|\.)layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])(?:\.[\w-]+)?\.weight$")


def rope_permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row permutation (``convert_hf_to_gguf.LlamaModel.permute``)
    applied to the first axis of ``rows`` (n_head * head_dim rows)."""
    n = rows.shape[0]
    if n_head < 1 or n % (2 * n_head):
        raise ConfigError(f"cannot permute {n} rows for {n_head} heads")
    return (rows.reshape(n_head, 2, n // n_head // 2, *rows.shape[1:])
            .swapaxes(1, 2)
            .reshape(rows.shape))


def gguf_tensors(peft: Mapping[str, Any], *, n_head: int, n_head_kv: int,
                 permute: bool = True) -> dict[str, np.ndarray]:
    """PEFT state-dict tensors (numpy-convertible) -> GGUF adapter tensors (float32).

    Raises
    ------
    ConfigError
        A LoRA tensor of an unknown module, or a layer with only one of A / B.
    """
    out: dict[str, np.ndarray] = {}
    for name, value in peft.items():
        m = _NAME.search(name)
        if m is None:
            if "lora_" in name:
                raise ConfigError(f"cannot map the LoRA tensor {name!r} to a GGUF name")
            continue
        layer, module, ab = int(m.group(1)), m.group(2), m.group(3)
        target = PEFT_TO_GGUF.get(module)
        if target is None:
            raise ConfigError(f"LoRA on {module!r} ({name}) has no GGUF counterpart "
                              f"(supported: {', '.join(PEFT_TO_GGUF)})")
        a = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
        if a.ndim != 2:
            raise ConfigError(f"{name}: expected a 2-D tensor, got shape {a.shape}")
        if ab == "B" and permute and target in ("attn_q", "attn_k"):
            a = np.ascontiguousarray(rope_permute(a, n_head if target == "attn_q" else n_head_kv))
        out[f"blk.{layer}.{target}.weight.lora_{ab.lower()}"] = a
    stems = {k.rsplit(".", 1)[0] for k in out}
    for stem in sorted(stems):
        if f"{stem}.lora_a" not in out or f"{stem}.lora_b" not in out:
            raise ConfigError(f"{stem}: needs both lora_a and lora_b")
        ra, rb = out[f"{stem}.lora_a"].shape[0], out[f"{stem}.lora_b"].shape[1]
        if ra != rb:
            raise ConfigError(f"{stem}: lora_a rank {ra} != lora_b rank {rb}")
    if not out:
        raise ConfigError("no LoRA tensors to convert")
    return out


def write_gguf_adapter(path: str | os.PathLike, tensors: Mapping[str, np.ndarray], *, alpha: float,
                       architecture: str = "llama") -> AdapterInfo:
    """Write GGUF adapter tensors (from :func:`gguf_tensors`) atomically.

    Raises
    ------
    LlmPermanentError
        The gguf package is missing.
    """
    with lora_adapter_writer(path, architecture, alpha) as w:
        for name in sorted(tensors, key=_order):
            w.add_tensor(name, np.ascontiguousarray(tensors[name], dtype=np.float32))
    return read_adapter_info(path)


def _order(name: str) -> tuple:
    parts = name.split(".")
    return (int(parts[1]), parts[2], parts[-1]) if len(parts) > 2 and parts[1].isdigit() else (1 << 30, name)


def convert_safetensors(src: str | os.PathLike, dst: str | os.PathLike, *, alpha: float, n_head: int,
                        n_head_kv: int, architecture: str = "llama", permute: bool = True) -> AdapterInfo:
    """A PEFT ``adapter_model.safetensors`` file -> a GGUF adapter file.

    Raises
    ------
    ConfigError
        safetensors missing, or the file holds tensors that cannot be mapped.
    """
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError as e:
        raise ConfigError("converting an adapter needs safetensors: pip install 'swarm-engine[train]'") from e
    try:
        tensors = load_file(str(src))
    except (OSError, ValueError, SafetensorError) as e:
        raise ConfigError(f"{src}: not a readable safetensors file ({e})") from e
    return write_gguf_adapter(dst, gguf_tensors(tensors, n_head=n_head, n_head_kv=n_head_kv, permute=permute),
                              alpha=alpha, architecture=architecture)


def write_f32_model(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """A copy of the GGUF model ``src`` with every tensor dequantized to float32.

    The exact weights transformers trains on (its GGUF loader dequantizes with
    the same gguf-py code), so llama.cpp with this copy computes what the PEFT
    model computes, up to float rounding: the reference for checking that an
    adapter was converted right. With the quantized model itself llama.cpp
    multiplies with quantized activations, and SmolLM2-135M Q4_1 alone then
    differs from its dequantized weights by up to ~0.3 nats per answer.

    Raises
    ------
    LlmPermanentError
        gguf missing or ``src`` unreadable.
    """
    try:
        import gguf
        from gguf.quants import dequantize
    except ImportError as e:  # pragma: no cover - gguf ships with the llm and train extras
        raise LlmPermanentError("the gguf package is needed to dequantize a model: pip install gguf") from e
    try:
        reader = gguf.GGUFReader(str(src))
    except (ValueError, OSError) as e:
        raise LlmPermanentError(f"{src}: not a readable GGUF file ({e})") from e
    arch = reader.fields["general.architecture"].contents()
    with gguf_file_writer(dst, arch) as w:
        for f in reader.fields.values():
            if f.name.startswith("GGUF.") or f.name == "general.architecture":
                continue
            if f.name == "general.file_type":
                w.add_uint32(f.name, int(gguf.LlamaFileType.ALL_F32))
                continue
            vtype = f.types[0]
            w.add_key_value(f.name, f.contents(), vtype,
                            sub_type=f.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None)
        for t in reader.tensors:
            w.add_tensor(t.name, np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32))
    return Path(dst)
