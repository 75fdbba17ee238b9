"""What a LoRA training is told and what it reports, without torch.

The ``train`` extra check (:func:`train_unavailable`, :func:`require_train`),
the ``--targets`` names (:func:`parse_targets`), the hyper-parameters
(:class:`TrainConfig`) and the outcome (:class:`TrainStats`). They are
needed by the CLI, the daemon and the pipeline before (or without) torch
being importable, so they live apart from :mod:`swarm_engine.learn.lora.train`,
whose trainer needs the whole extra.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarm_engine.errors import ConfigError
from swarm_engine.learn.lora.convert import PEFT_TO_GGUF

__all__ = ["TRAIN_PACKAGES", "TARGET_ALIASES", "train_unavailable", "require_train", "parse_targets",
           "TrainConfig", "TrainStats"]

# import name -> what to pip install
TRAIN_PACKAGES = {"torch": "torch==2.13.0", "transformers": "transformers", "peft": "peft",
                  "accelerate": "accelerate", "safetensors": "safetensors", "gguf": "gguf"}

# what --targets accepts -> PEFT module name
TARGET_ALIASES = {}
for _peft, _gguf in PEFT_TO_GGUF.items():
    TARGET_ALIASES.update({_peft: _peft, _gguf: _peft, _peft.split("_")[0]: _peft})
TARGET_ALIASES.update({"attn": "q_proj,k_proj,v_proj,o_proj", "mlp": "gate_proj,up_proj,down_proj",
                       "all": ",".join(PEFT_TO_GGUF)})


def train_unavailable() -> str | None:
    """Why training cannot run here (a missing package of the ``train``
    extra), or None; the skip reason of the LoRA tests."""
    missing = [TRAIN_PACKAGES[m] for m in TRAIN_PACKAGES if importlib.util.find_spec(m) is None]
    if missing:
        return (f"needs the 'train' extra (missing: {', '.join(missing)}): "
                f"pip install torch==2.13.0 && pip install -e '.[train]'")
    return None


def require_train() -> None:
    """Raise ConfigError (one line, with the install command) when the
    ``train`` extra is not installed."""
    why = train_unavailable()
    if why:
        raise ConfigError(f"swarm learn lora {why}")


def parse_targets(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"q,v"``, ``"attn_q,attn_v"``, ``"q_proj v_proj"``, ``"attn"``, ``"mlp"``,
    ``"all"`` -> PEFT module names, in a fixed order, without duplicates.

    Raises
    ------
    ConfigError
        An unknown name.
    """
    items = spec.replace(",", " ").split() if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        mapped = TARGET_ALIASES.get(item.strip().lower())
        if mapped is None:
            raise ConfigError(f"unknown LoRA target {item!r} (use q, k, v, o, gate, up, down, their "
                              f"q_proj / attn_q names, attn, mlp or all)")
        out += [m for m in mapped.split(",") if m not in out]
    if not out:
        raise ConfigError("no LoRA targets given")
    order = list(dict.fromkeys(TARGET_ALIASES["all"].split(",")))
    return tuple(sorted(out, key=order.index))


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training.

    The defaults are what taught SmolLM2-135M the internal_diagnosis fixes
    (held-out decisions 17% -> 58%, the fix itself 1/16 -> 11/16, trained on
    200 examples). Measured alternatives on the same data: q, v and the MLP on
    the top 6 blocks, rank 8, 150 steps: 33% (5/16 fixes); q and v only with
    a plain token mean, 80 steps: no better than the base model.

    Attributes
    ----------
    steps: optimizer steps.
    rank, alpha: LoRA rank r and alpha (the delta is scaled by alpha / r).
    targets: PEFT module names (see :func:`parse_targets`).
    layers: adapt the top this many blocks; 0 adapts every block.
    lr: AdamW learning rate (warm-up over the first 5% of steps, then linear
        decay to 10%).
    batch: examples per step.
    seed: shuffling and initialisation.
    format_weight: loss weight of answer tokens that no candidate choice
        decides (``{"tool": "`` and the like; the grammar forces them), against
        1 for the tokens where the candidates part. With a plain mean the ~4
        tokens that carry the decision were ~15% of the loss: 80 steps learned
        the JSON and left the fixes at chance.
    threads: torch CPU threads (default: the CPUs this process may use).
    device: ``"cpu"``, ``"cuda"``...; default CUDA when available.
    """

    steps: int = 250
    rank: int = 16
    alpha: float = 32.0
    targets: tuple[str, ...] = ("q_proj", "v_proj", "gate_proj", "up_proj", "down_proj")
    layers: int = 10
    lr: float = 2e-3
    batch: int = 4
    seed: int = 0
    format_weight: float = 0.1
    threads: int | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        for name, lo in (("steps", 1), ("rank", 1), ("batch", 1), ("layers", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or v < lo:
                raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")
        if not self.lr > 0 or not self.alpha > 0:
            raise ConfigError("lr and alpha must be > 0")
        if not 0.0 <= self.format_weight <= 1.0:
            raise ConfigError(f"format_weight must lie in [0, 1], got {self.format_weight}")
        object.__setattr__(self, "targets", parse_targets(self.targets))


@dataclass
class TrainStats:
    """What a training did: steps, losses (one per step), wall seconds,
    examples and distinct examples seen, tokens with a label."""

    steps: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cache_seconds: float = 0.0
    examples: int = 0
    seen: int = 0
    label_tokens: int = 0

    @property
    def first_loss(self) -> float | None:
        return float(np.mean(self.losses[:5])) if self.losses else None

    @property
    def final_loss(self) -> float | None:
        return float(np.mean(self.losses[-5:])) if self.losses else None

    def summary(self) -> dict[str, Any]:
        return {"steps": self.steps, "first_loss": self.first_loss, "final_loss": self.final_loss,
                "seconds": round(self.seconds, 2), "cache_seconds": round(self.cache_seconds, 2),
                "examples": self.examples, "distinct_examples_seen": self.seen,
                "label_tokens": self.label_tokens}
