"""Find the line of a field in TOML text, so errors can say ``file:line``.

tomllib gives line numbers only for syntax errors; schema errors come back as
a field path (``actions.actions[2].name``). This walks the text tracking table
headers (counting ``[[array]]`` entries) and returns the line that defines the
path, or the closest enclosing table's header.
"""

from __future__ import annotations

import re

__all__ = ["parse_path", "locate"]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def parse_path(path: str) -> list[str | int]:
    """'a.b[2].c' -> ['a', 'b', 2, 'c']; msgspec's '$.' prefix is dropped."""
    path = path.removeprefix("$").lstrip(".")
    parts: list[str | int] = []
    for token in re.finditer(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(token.group(2)) if token.group(2) is not None else token.group(1))
    return parts


def _keys(dotted: str) -> list[str | int]:
    return [k.strip().strip("\"'") for k in dotted.split(".")]


def locate(text: str, path: str | list[str | int]) -> int | None:
    """1-based line defining ``path`` (or its nearest enclosing table), or None."""
    target = parse_path(path) if isinstance(path, str) else path
    if not target:
        return None
    counters: dict[tuple[str | int, ...], int] = {}
    header: list[str | int] = []
    best_line, best_len = None, 0
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m and not line.lstrip().startswith("#"):
            keys = _keys(m.group(2))
            if m.group(1) == "[[":
                base = tuple(keys)
                counters[base] = counters.get(base, -1) + 1
                header = [*keys, counters[base]]
            else:
                header = list(keys)
            full = header
        else:
            k = _KEY.match(line)
            if not k or line.lstrip().startswith("#"):
                continue
            full = header + _keys(k.group(1))
        n = 0
        while n < min(len(full), len(target)) and full[n] == target[n]:
            n += 1
        if n == len(target):
            return lineno
        if n == len(full) and n > best_len:
            best_line, best_len = lineno, n
    return best_line
