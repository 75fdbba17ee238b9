"""What a Python environment must be and return: the batched protocol, checked.

:func:`check_members` runs once when an environment is bound (its
``action_names``, ``max_discoveries`` and methods); :func:`check_step_result`
runs on every ``step()`` result before the kernel sees it. Both raise
:class:`ProtocolViolation` with a message that names the member and what was
expected; the callers (the loader, :class:`~swarm_engine.core.guarded_env.GuardedEnvironment`)
add which environment, scenario file and tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from swarm_engine._native import _kernel
from swarm_engine.core.batch import StepResult

__all__ = ["Members", "StepArrays", "ProtocolViolation", "check_members", "check_step_result", "MAX_TARGET",
           "one_line"]

MAX_TARGET = int(_kernel.LIMITS["target"])     # the largest target id a node key holds
_REQUIRED_METHODS = ("reset", "step", "target_name")
_OPTIONAL_METHODS = ("render", "default_graph")


class ProtocolViolation(ValueError):
    """A Python environment broke the batched protocol (the message says how)."""


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for an exception raised by user code."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class Members:
    """The checked protocol members of one environment object."""

    action_names: tuple[str, ...]
    max_discoveries: int
    reports_done: bool          # its StepResult.done is the only completion of the task


def _member(env: Any, name: str) -> Any:
    cls = type(env).__name__
    try:
        return getattr(env, name)
    except AttributeError:
        raise ProtocolViolation(f"{cls} does not implement the batched environment protocol "
                                f"(missing: {name})") from None
    except Exception as exc:       # a property that raises is the environment's bug, named
        raise ProtocolViolation(f"{cls}.{name} raised {one_line(exc)}") from exc


def check_members(env: Any) -> Members:
    """The protocol members of ``env``, each of the right type, or a ProtocolViolation."""
    cls = type(env).__name__
    missing = [m for m in ("action_names", "max_discoveries", *_REQUIRED_METHODS) if not _has(env, m)]
    if missing:
        raise ProtocolViolation(f"{cls} does not implement the batched environment protocol "
                                f"(missing: {', '.join(missing)})")
    names = _member(env, "action_names")
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence) or not names:
        raise ProtocolViolation(f"{cls}.action_names must be a non-empty list or tuple of operation names, "
                                f"got {_show(names)}")
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise ProtocolViolation(f"{cls}.action_names must hold non-empty strings, got {_show(bad[0])}")
    max_disc = _member(env, "max_discoveries")
    if isinstance(max_disc, (bool, np.bool_)) or not isinstance(max_disc, (int, np.integer)) or max_disc < 0:
        raise ProtocolViolation(f"{cls}.max_discoveries must be an int >= 0, got {_show(max_disc)}")
    for name in _REQUIRED_METHODS:
        if not callable(_member(env, name)):
            raise ProtocolViolation(f"{cls}.{name} must be a method, got {_show(_member(env, name))}")
    for name in _OPTIONAL_METHODS:
        if _has(env, name) and not callable(_member(env, name)):
            raise ProtocolViolation(f"{cls}.{name} must be a method, got {_show(_member(env, name))}")
    reports_done = _member(env, "reports_done") if _has(env, "reports_done") else False
    if not isinstance(reports_done, (bool, np.bool_)):
        raise ProtocolViolation(f"{cls}.reports_done must be a bool, got {_show(reports_done)}")
    return Members(tuple(names), int(max_disc), bool(reports_done))


class StepArrays(NamedTuple):
    """A checked step() result, in the order ``Kernel.commit_tick`` takes it."""

    outcome: np.ndarray            # int8 (n,)
    disc_ptr: np.ndarray           # int32 (n + 1,)
    discoveries: np.ndarray        # int32
    duration_ms: np.ndarray        # float32 (n,), finite, >= 0
    done: bool
    disc_kind: np.ndarray | None   # int8 per discovery


def _has(env: Any, name: str) -> bool:
    try:
        getattr(env, name)
    except AttributeError:
        return False
    except Exception:              # present, but raising: _member names it
        return True
    return True


def _show(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _ints(value: Any, what: str, length: int | None) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise ProtocolViolation(f"{what} is not an array: {one_line(exc)}") from exc
    if arr.ndim != 1:
        raise ProtocolViolation(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iub":
        raise ProtocolViolation(f"{what} must hold integers, got {arr.dtype}")
    if length is not None and arr.shape[0] != length:
        raise ProtocolViolation(f"{what} must have {length} entries, got {arr.shape[0]}")
    return arr.astype(np.int64)


def check_step_result(res: Any, n: int, max_discoveries: int) -> StepArrays:
    """The arrays of a ``step()`` result for ``n`` actions, checked."""
    if not isinstance(res, StepResult):
        raise ProtocolViolation(f"returned {type(res).__name__}, expected StepResult")
    outcome = _ints(res.outcome, "outcome", n)
    if np.any((outcome < 0) | (outcome > 2)):
        raise ProtocolViolation("outcomes must be 0 (fail), 1 (ok) or 2 (error), got "
                                f"{int(outcome[(outcome < 0) | (outcome > 2)][0])}")
    ptr = _ints(res.disc_ptr, "disc_ptr", n + 1)
    disc = _ints(res.discoveries, "discoveries", None)
    if ptr[0] != 0 or ptr[-1] != disc.shape[0] or np.any(np.diff(ptr) < 0):
        raise ProtocolViolation("discovery offsets (disc_ptr) must start at 0, rise, and end at "
                                f"len(discoveries) = {disc.shape[0]}")
    counts = np.diff(ptr)
    if counts.size and counts.max() > max_discoveries:
        i = int(np.argmax(counts))
        raise ProtocolViolation(f"action {i} discovered {int(counts[i])} targets, more than max_discoveries "
                                f"= {max_discoveries}")
    if disc.size and (disc.min() < -1 or disc.max() > MAX_TARGET):
        bad = int(disc[(disc < -1) | (disc > MAX_TARGET)][0])
        raise ProtocolViolation(f"discovered target {bad} is outside -1..{MAX_TARGET}")
    try:
        dur = np.asarray(res.duration_ms, dtype=np.float64)
    except Exception as exc:
        raise ProtocolViolation(f"duration_ms is not an array of numbers: {one_line(exc)}") from exc
    if dur.ndim != 1 or dur.shape[0] != n:
        raise ProtocolViolation(f"duration_ms must have {n} entries, got shape {dur.shape}")
    if not np.all(np.isfinite(dur)) or np.any(dur < 0):
        bad_d = float(dur[~np.isfinite(dur) | (dur < 0)][0])
        raise ProtocolViolation(f"durations must be finite and >= 0 ms, got {bad_d}")
    if not isinstance(res.done, (bool, np.bool_)):
        raise ProtocolViolation(f"done must be a bool, got {_show(res.done)}")
    kinds = None
    if res.disc_kind is not None:
        kinds = _ints(res.disc_kind, "disc_kind", disc.shape[0])
        if kinds.size and (kinds.min() < 0 or kinds.max() > 127):
            raise ProtocolViolation("disc_kind values must be target kinds in 0..127")
    return StepArrays(outcome.astype(np.int8), ptr.astype(np.int32), disc.astype(np.int32),
                      dur.astype(np.float32), bool(res.done), None if kinds is None else kinds.astype(np.int8))
