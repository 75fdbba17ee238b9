"""TOML text -> dict, with syntax errors located and nesting bounded.

tomllib recurses once per nested array or inline table: a 20,000-deep
``[[[[...`` raises RecursionError (3,000 lines of traceback) and deep
documents make every later walk over them recursive too. Documents deeper
than :data:`~swarm_engine.inputs.limits.MAX_DEPTH` are refused with the line
where the limit is crossed; the scan for that line runs only on failure.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from swarm_engine.errors import InputError
from swarm_engine.inputs.limits import MAX_DEPTH

__all__ = ["parse_toml", "depth_of", "deep_line"]

# what the depth scan skips: strings (all four kinds) and comments
_SKIP = re.compile(r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*', re.S)
_OPEN, _CLOSE = "[{", "]}"


def depth_of(value: Any, limit: int) -> int:
    """Nesting depth of lists and dicts in ``value`` (iterative), stopping past ``limit``."""
    stack, deepest = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[Any] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def deep_line(text: str, limit: int) -> int | None:
    """The 1-based line where brackets in ``text`` first nest past ``limit``."""
    depth, pos = 0, 0
    # the code between skipped spans (strings, comments), then the tail after the last one
    spans = [(m.start(), m.end()) for m in _SKIP.finditer(text + "\n")] + [(len(text), len(text))]
    for start, end in spans:
        for i in range(pos, start):
            c = text[i]
            if c in _OPEN:
                depth += 1
                if depth > limit:
                    return text.count("\n", 0, i) + 1
            elif c in _CLOSE:
                depth = max(0, depth - 1)
        pos = end
    return None


def _syntax_error(exc: tomllib.TOMLDecodeError, source: str | None, error: type[InputError]) -> InputError:
    msg = str(exc)
    m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
    line = int(m.group(1)) if m else None
    msg = re.sub(r"\s*\(at (?:line \d+, column \d+|end of document)\)", "", msg)
    if m:
        msg += f" (column {m.group(2)})"
    return error(f"TOML syntax error: {msg}", path=source, line=line)


def parse_toml(text: str, source: str | None, error: type[InputError], *, max_depth: int = MAX_DEPTH) -> dict:
    """Parse ``text``; a syntax error or nesting deeper than ``max_depth`` is one ``error``.

    Table headers count too: ``[a.b.c]`` is three levels."""
    too_deep = f"nested deeper than {max_depth} levels (arrays and tables); flatten the structure"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, source, error) from None
    except RecursionError:
        raise error(too_deep, path=source, line=deep_line(text, max_depth)) from None
    if depth_of(raw, max_depth) > max_depth:
        raise error(too_deep, path=source, line=deep_line(text, max_depth))
    return raw
