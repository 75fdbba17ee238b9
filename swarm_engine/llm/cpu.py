"""What the CPU can run safely under llama.cpp.

llama.cpp's AMX kernels (``ggml_backend_amx_mul_mat``, an "extra buffer type"
chosen for quantized weights on CPUs with AMX-INT8) crash the process with
SIGSEGV on the first decode on our Xeon VMs (llama-cpp-python 0.3.36 built
from source with GGML_NATIVE). Loading with ``use_extra_bufts = false``
keeps the weights in the plain CPU buffer: the same results, no AMX. Only
CPUs that report ``amx_int8`` lose the extra buffers (Q4_1, our default
model's type, has no repacked variant, so nothing is lost there).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

__all__ = ["cpu_flags", "extra_bufts_safe", "safe_model_params", "safe_default_params"]


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The ``flags`` of /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def extra_bufts_safe() -> bool:
    """False on CPUs whose AMX path crashes llama.cpp (see the module docstring)."""
    return "amx_int8" not in cpu_flags()


def safe_model_params(mp: Any) -> Any:
    """``mp`` (a ``llama_model_params``) with the extra buffer types turned
    off where they crash; returned for chaining."""
    if not extra_bufts_safe() and hasattr(mp, "use_extra_bufts"):
        mp.use_extra_bufts = False
    return mp


@contextlib.contextmanager
def safe_default_params() -> Iterator[None]:
    """Inside the block, ``llama_cpp.Llama(...)`` loads with
    :func:`safe_model_params` (the high-level class has no argument for it)."""
    import llama_cpp
    import llama_cpp.llama as high

    original = llama_cpp.llama_model_default_params
    if extra_bufts_safe():
        yield
        return

    def patched():
        return safe_model_params(original())

    high.llama_cpp.llama_model_default_params = patched
    try:
        yield
    finally:
        high.llama_cpp.llama_model_default_params = original
