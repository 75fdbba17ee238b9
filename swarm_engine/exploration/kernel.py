"""The face of the native kernel. It is built from a SwarmConfig by
:func:`swarm_engine.core.make_kernel` (the config's home is core, above this layer)."""

from __future__ import annotations

from swarm_engine._native import _kernel

__all__ = ["Kernel"]

Kernel = _kernel.Kernel
