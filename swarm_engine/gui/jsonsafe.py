"""JSON the browser can parse: ``inf`` and ``nan`` (an unvisited group's UCB1
score, a mean of nothing) become ``null``, which JSON.parse accepts and
Python's json would otherwise write as the invalid ``Infinity``."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["dumps", "finite", "SafeJSONResponse"]


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (containers walked)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:               # the rare document with an inf in it: walk it once
        return json.dumps(finite(value), separators=(",", ":"), allow_nan=False)


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")
