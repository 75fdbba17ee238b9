"""The clear, pure-Python reference of the native exploration kernel.

``swarm_engine._native`` is fast and hard to read; this package is the same
algorithms written to be read: the xoshiro256** streams, the native
environments (troubleshooting, grid, code tree, search, diagnosis, cascade) and the tick
loop (plan, step, commit). It is the one oracle the native kernel is tested
against (same seed, same event trace, bit for bit) and the slow baseline of
``swarm-bench``. Change both together.
"""
from swarm_engine._reference.envs import (
    CascadeEnv,
    CodeTreeEnv,
    DiagnosisEnv,
    GridEnv,
    SearchEnv,
    TroubleshootingEnv,
    make_env,
)
from swarm_engine._reference.kernel import ReferenceKernel, RunResult
from swarm_engine._reference.rng import Xoshiro256, hash64

__all__ = ["CascadeEnv", "CodeTreeEnv", "DiagnosisEnv", "GridEnv", "ReferenceKernel", "RunResult", "SearchEnv",
           "TroubleshootingEnv", "Xoshiro256", "hash64", "make_env"]
