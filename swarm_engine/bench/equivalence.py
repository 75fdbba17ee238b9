"""Native == reference checks: a fast wrong answer must fail the benchmark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from swarm_engine._native import _kernel

__all__ = ["MismatchError", "check_runs", "check_final_state"]

_RUN_FIELDS = ("success", "verdict", "ticks", "actions", "failed", "by_action")


class MismatchError(AssertionError):
    """The native kernel and the reference disagree on the same input.

    An AssertionError on purpose: it is a bug in one of the two kernels, never
    a user mistake, and pytest reports it as a failed assertion."""


def check_runs(what: str, seeds: np.ndarray, native: Mapping[str, np.ndarray], reference: Sequence) -> int:
    """Compare per-run rows: ``native`` holds arrays (kernel verdict, ticks,
    actions, failed, by_action) for at least ``len(reference)`` runs,
    ``reference`` is ReferenceKernel.run_batch's list of RunResult. Returns
    the number of runs compared; raises MismatchError on the first difference."""
    n = len(reference)
    if n == 0:
        raise MismatchError(f"{what}: no reference runs to compare")
    ref = {
        "success": np.array([r.success for r in reference], bool),
        "verdict": np.array([r.verdict for r in reference], np.int64),
        "ticks": np.array([r.ticks for r in reference], np.int64),
        "actions": np.array([r.actions for r in reference], np.int64),
        "failed": np.array([r.failed for r in reference], np.int64),
        "by_action": np.array([r.by_action for r in reference], np.int64).reshape(n, -1),
    }
    nat = {
        "success": np.asarray(native["verdict"][:n]) == _kernel.V_SUCCESS,
        **{k: np.asarray(native[k][:n]).astype(np.int64) for k in _RUN_FIELDS[1:]},
    }
    for key in _RUN_FIELDS:
        a, b = nat[key], ref[key]
        if a.shape != b.shape:
            raise MismatchError(f"{what}: '{key}' has shape {a.shape} native, {b.shape} reference")
        bad = np.flatnonzero((a != b).reshape(n, -1).any(axis=1))
        if bad.size:
            i = int(bad[0])
            raise MismatchError(f"{what}: run {i} (seed {int(seeds[i])}) differs in '{key}': "
                                f"native {a[i].tolist()} vs reference {b[i].tolist()} "
                                f"({bad.size} of {n} runs differ)")
    return n


def check_final_state(what: str, native, reference) -> None:
    """Compare two kernels at the end of a run: counters and the whole graph
    map (node keys, parents, states, discovery ticks)."""
    for attr in ("verdict", "tick", "total_visits", "total_fail", "n_nodes"):
        a, b = int(getattr(native, attr)), int(getattr(reference, attr))
        if a != b:
            raise MismatchError(f"{what}: {attr} is {a} native, {b} reference")
    nn, rn = native.nodes(), reference.nodes()
    for key in rn:
        if not np.array_equal(nn[key], rn[key]):
            i = int(np.flatnonzero(np.asarray(nn[key]) != np.asarray(rn[key]))[0])
            raise MismatchError(f"{what}: node {i} differs in '{key}': native {nn[key][i]}, "
                                f"reference {rn[key][i]}")
