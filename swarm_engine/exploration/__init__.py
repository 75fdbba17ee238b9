"""Python faces of the native exploration kernel: rules, selectors and the Kernel type.

The kernel is built from a run configuration by :func:`swarm_engine.core.make_kernel`."""

from swarm_engine.exploration.kernel import Kernel
from swarm_engine.exploration.rules import CompiledRules, DependencyGraph, Interner
from swarm_engine.exploration.selectors import SELECTOR_KINDS, SelectorConfig

__all__ = ["Kernel", "CompiledRules", "DependencyGraph", "Interner",
           "SELECTOR_KINDS", "SelectorConfig"]
