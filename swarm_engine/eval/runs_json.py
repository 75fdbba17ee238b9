"""A report's ``runs`` as JSON, written straight from the result's columns.

The dict per run that :func:`swarm_engine.eval.report.build_report` builds costs
~5 µs and encoding the list ~3.5 µs more, 8.5 s at 10^6 runs against 0.5 s for
the runs themselves. Here each field is a column handed whole to the native row
writer (:mod:`swarm_engine._native._json_rows`): numbers are formatted in C,
floats are encoded by msgspec in one call per column (the same shortest form as
the dict path), and the values that repeat (a reason, its termination) are
encoded once. The bytes are those of the dict path, item for item
(tests/eval/test_runs_json.py holds them to it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from swarm_engine._native._json_rows import RowWriter
from swarm_engine.eval.judge import reason_codes

if TYPE_CHECKING:
    from swarm_engine.eval.runner import EvalResult

__all__ = ["encode_runs", "termination_reason"]

_TERMINATION = {"success": "Success", "timeout": "Timeout", "stopped": "Stopped"}
_ENC = msgspec.json.Encoder()


def termination_reason(success: bool, reason: str) -> str:
    """The reference's ``termination_reason`` of a run: Success, Timeout, Stopped or Failure."""
    return "Success" if success else _TERMINATION.get(reason, "Failure")


def encode_runs(result: EvalResult, sep: bytes) -> Iterator[bytearray]:
    """Every run of ``result`` as one compact JSON object, the objects joined by
    ``sep``, in blocks of a few MB."""
    n = result.runs
    names, codes = reason_codes(result.reason)
    success = np.asarray(result.success, dtype=bool)
    outcome = [_ENC.encode(ok) + b',"termination_reason":' + _ENC.encode(termination_reason(ok, name))
               + b',"reason":' + _ENC.encode(name) for name in names for ok in (False, True)]
    template: list[Any] = [
        b'{"index":', ("int", np.arange(n, dtype=np.int64)),
        b',"seed":', _number(result.seeds),
        b',"success":', ("pick", codes.astype(np.int64) * 2 + success, outcome),
        b',"ticks":', _number(result.ticks),
        b',"actions":', _number(result.actions),
        b',"failed_actions":', _number(result.failed),
        b',"actions_by_kind":', _by_kind(result),
        b',"conditions":', ("bools", _matrix(result.conditions, np.uint8, n), _keys(result.conditions)),
        b',"milestones":', ("floats", _tokens(_matrix(result.milestones, np.float64, n)), _keys(result.milestones)),
        b',"milestone_score":', ("tokens", _tokens(_score(result))) if result.milestones else b"0.0",
        b',"wall_seconds":', ("tokens", _tokens(np.asarray(result.wall))),
    ]
    for key, column in result.per_run_llm.items():
        template += [b"," + _key(key), _number(column)]
    template.append(b"}")
    return RowWriter(n, template, sep).blocks()


def _number(column: Any) -> tuple:
    """An integer column as the native writer formats it (signed or not); any other as msgspec
    encodes its values."""
    a = np.asarray(column)
    if a.dtype.kind in "iu":
        return ("uint" if a.dtype.kind == "u" else "int", a)
    return ("tokens", _tokens(a))


def _by_kind(result: EvalResult) -> tuple:
    # the kernel's counts are int64; a cast that could change a value raises instead
    m = np.asarray(result.by_action).astype(np.int64, casting="safe", copy=False)
    return ("ints", m, [_key(name) for name in result.scenario.actions], True)


def _key(name: str) -> bytes:
    return _ENC.encode(name) + b":"


def _keys(columns: dict[str, np.ndarray]) -> list[bytes]:
    return [_key(k) for k in columns]


def _matrix(columns: dict[str, np.ndarray], dtype: type, n: int) -> np.ndarray:
    """The columns side by side, one row per run, as the dict path casts them (bool, float)."""
    if not columns:
        return np.zeros((n, 0), dtype)
    cast = bool if dtype is np.uint8 else float
    return np.stack([np.asarray(v).astype(cast) for v in columns.values()], axis=1).astype(dtype)


def _score(result: EvalResult) -> np.ndarray:
    return np.sum(list(result.milestones.values()), axis=0).astype(np.float64)


def _tokens(a: np.ndarray) -> bytes:
    """The values of ``a`` (any shape, row-major) as msgspec encodes them, joined by commas."""
    return _ENC.encode(np.asarray(a).ravel().tolist())[1:-1]
