"""Python faces of the native exploration kernel: rules, selectors, kernel builder."""

from swarm_engine.exploration.kernel import Kernel, make_kernel
from swarm_engine.exploration.rules import CompiledRules, DependencyGraph, Interner
from swarm_engine.exploration.selectors import SELECTOR_KINDS, SelectorConfig

__all__ = ["Kernel", "make_kernel", "CompiledRules", "DependencyGraph", "Interner",
           "SELECTOR_KINDS", "SelectorConfig"]
