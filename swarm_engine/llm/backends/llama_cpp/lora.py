"""The LoRA adapters of one in-process model and context.

Adapters are loaded once per path (``llama_adapter_lora_init``) and switched
with ``llama_set_adapters_lora``. A set is a sorted tuple of ``(path, scale)``
with the zero scales left out, so two requests asking for the same adapters
share one set. The KV memory must be cleared on every switch (``on_switch``)
because keys and values cached under the old set would silently be reused.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from swarm_engine.errors import LlmPermanentError
from swarm_engine.llm.backends.llama_cpp.library import LogTap
from swarm_engine.llm.protocol import LoraScale

__all__ = ["Adapters", "LoraKey"]

# the adapters applied together: ((resolved path, scale), ...), sorted, no zero scale
LoraKey = tuple[tuple[str, float], ...]


class Adapters:
    """Loaded adapters, the active set and the set applied to the context now.

    Parameters
    ----------
    lib, model, ctx:
        llama_cpp and the model and context pointers (freed by the owner, the
        context before :meth:`free`: it references the adapters).
    on_switch:
        Called whenever the applied set changes (the owner clears its KV memory).
    """

    def __init__(self, lib: Any, model: Any, ctx: Any, on_switch: Callable[[], None]) -> None:
        self._L, self._model, self._ctx = lib, model, ctx
        self._on_switch = on_switch
        self._ptrs: dict[str, Any] = {}
        self.order: list[str] = []              # paths in the order they were made active: the ids of LoraScale
        self.applied: LoraKey = ()
        self.active: LoraKey = ()

    def load(self, p: str | os.PathLike) -> str:
        """Load ``p`` (once) and return its resolved path.

        Raises
        ------
        LlmPermanentError
            The file is missing or llama.cpp refuses it.
        """
        path = str(Path(p).resolve())
        if path in self._ptrs:
            return path
        if not Path(path).is_file():
            raise LlmPermanentError(f"{p}: LoRA adapter not found")
        LogTap.errors.clear()
        ptr = self._L.llama_adapter_lora_init(self._model, path.encode())
        if not ptr:
            raise LlmPermanentError(f"{p}: llama.cpp refused the LoRA adapter{LogTap.reason()}")
        self._ptrs[path] = ptr
        return path

    def set_active(self, scales: Mapping[str | os.PathLike, float]) -> None:
        """Make ``scales`` (path -> scale) the set of requests without their own, and apply it."""
        key = []
        for p, scale in scales.items():
            path = self.load(p)
            if path not in self.order:
                self.order.append(path)
            if float(scale) != 0.0:
                key.append((path, float(scale)))
        self.active = tuple(sorted(key))
        self.apply(self.active)

    def key(self, lora: tuple[LoraScale, ...] | None) -> LoraKey:
        """The set a request asks for: the active one when ``lora`` is None;
        adapters by id (the :attr:`order`) or by path (loaded on first use)."""
        if lora is None:
            return self.active
        key = []
        for ls in lora:
            if isinstance(ls.adapter, int):
                if not 0 <= ls.adapter < len(self.order):
                    raise LlmPermanentError(f"no LoRA adapter with id {ls.adapter} ({len(self.order)} loaded)")
                path = self.order[ls.adapter]
            else:
                path = self.load(ls.adapter)
            if float(ls.scale) != 0.0:
                key.append((path, float(ls.scale)))
        return tuple(sorted(key))

    def apply(self, key: LoraKey) -> None:
        """Apply ``key`` to the context (nothing when it is applied already).

        Raises
        ------
        LlmPermanentError
            llama.cpp refused the set; the context runs the base model then.
        """
        if key == self.applied:
            return
        L = self._L
        n = len(key)
        adapters = (L.llama_adapter_lora_p_ctypes * n)(*[self._ptrs[p] for p, _ in key]) if n else None
        scales = (ctypes.c_float * n)(*[s for _, s in key]) if n else None
        rc = L.llama_set_adapters_lora(self._ctx, adapters, n, scales)
        self._on_switch()                       # KV computed under the old set must not be reused
        if rc != 0:
            self.applied = ()
            L.llama_set_adapters_lora(self._ctx, None, 0, None)
            raise LlmPermanentError(f"llama_set_adapters_lora failed ({rc}){LogTap.reason()}")
        self.applied = key

    def free(self) -> None:
        """Free every adapter (after the context that used them)."""
        for ptr in self._ptrs.values():
            self._L.llama_adapter_lora_free(ptr)
        self._ptrs.clear()
