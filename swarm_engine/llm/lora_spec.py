"""``PATH[:SCALE]``: how a LoRA adapter and its scale are written on the command
line (``swarm llama start --lora``) and in a scenario (``[llm] lora``).

One parser for both, so the two cannot disagree again (the server's used to
keep ``path:`` as a file name while the in-process backend's fell back to
scale 1.0 on any scale it could not read). The rules:

- ``PATH`` -> (PATH, no scale: the backend's default, 1.0);
- ``PATH:SCALE`` where SCALE reads as a number -> (PATH, SCALE); it must be
  finite and >= 0 (0 loads the adapter switched off);
- a ``:`` whose tail does not read as a number belongs to the path
  (``/runs/a:b/adapter.gguf``); the last ``:`` is the one that counts, so
  ``/runs/a:b/adapter.gguf:0.5`` works too;
- ``PATH:`` (nothing after the colon) and ``:SCALE`` (no path) are errors,
  never silently a different file or the default scale.

Nothing here touches the file system: the callers check that the file exists
(llama-server also refuses commas in the path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from swarm_engine.errors import ConfigError

__all__ = ["LoraSpec", "parse_lora_spec", "lora_pairs"]


@dataclass(frozen=True)
class LoraSpec:
    """An adapter path and its scale; ``scale`` None = none given (the backend's default, 1.0)."""

    path: Path
    scale: float | None = None

    @property
    def effective_scale(self) -> float:
        return 1.0 if self.scale is None else self.scale


def parse_lora_spec(spec: str, *, source: str = "--lora") -> LoraSpec:
    """Split ``PATH[:SCALE]`` (see the module docstring for the rules).

    ``source`` names where the spec came from in error messages (``--lora``,
    ``[llm] lora``).

    Raises
    ------
    ConfigError
        An empty spec, ``PATH:`` or ``:SCALE``, or a scale that is negative or
        not finite; the message names the spec.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"{source} {spec!r}: expected PATH or PATH:SCALE")
    head, sep, tail = spec.rpartition(":")
    if not sep:
        return LoraSpec(Path(spec))
    if not tail.strip():
        raise ConfigError(f"{source} {spec!r}: nothing after ':' (write PATH or PATH:SCALE)")
    try:
        scale = float(tail)
    except ValueError:
        return LoraSpec(Path(spec))              # the ':' is part of the path
    if not head:
        raise ConfigError(f"{source} {spec!r}: no adapter path before the scale")
    if not math.isfinite(scale) or scale < 0:
        raise ConfigError(f"{source} {spec!r}: the scale must be a finite number >= 0, got {tail!r}")
    return LoraSpec(Path(head), scale)


def lora_pairs(specs: list[str], *, source: str = "[llm] lora") -> list[tuple[str, float]]:
    """``PATH[:SCALE]`` specs -> ``(path, scale)`` pairs, scale 1.0 when none is given.

    Raises
    ------
    ConfigError
        A spec :func:`parse_lora_spec` refuses.
    """
    out = []
    for spec in specs:
        s = parse_lora_spec(spec, source=source)
        out.append((str(s.path), s.effective_scale))
    return out
