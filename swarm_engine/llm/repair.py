"""Map a model's free-form answer onto one of the allowed choices.

Constrained backends (a GBNF grammar or a JSON schema) answer with a valid
object; this module is the fallback for those without one, and the parser for
schema answers whose whitespace differs from the canonical string. The steps,
cheapest first:

1. the canonical string itself, or a JSON object with exactly the canonical
   keys and values (not a repair);
2. code fences stripped, the first balanced ``{...}`` taken (also from prose
   around it), trailing commas, single quotes, bare words and Python literals
   fixed; nested ``{"decision": {...}}`` objects searched;
3. ``key: value`` pairs pulled out by a regular expression when no object
   parses (e.g. an answer cut off by ``max_tokens``);
4. a bare choice number (1-based, as the prompt numbers candidates), or the
   text of a candidate's label ("ReadLogs api-gateway").

Names are matched exactly, then case- and separator-insensitively
("read_logs" = "ReadLogs"), then by difflib similarity above a cutoff;
ambiguous near-misses are refused rather than guessed. Keys are recognised
by alias: tool/action/name, target/service/file/path, arg/args/argument.
"""

from __future__ import annotations

import collections
import difflib
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from swarm_engine.llm.prompts import answer_json, answer_object
from swarm_engine.llm.protocol import Choice

__all__ = ["parse_decision", "normalize", "NAME_CUTOFF"]

# difflib ratio on normalized names: "readlog" vs "readlogs" 0.93, "restrt" vs
# "restart" 0.92, while "dbprimary" vs "dbreplica" (0.67) stays apart.
NAME_CUTOFF = 0.8
# Answers are a few dozen characters; a runaway generation is cut here so the
# scanning and difflib work stay bounded.
MAX_TEXT = 16_384
MAX_OBJECTS = 8

_TOOL_KEYS = ("tool", "action", "name", "toolname", "actionname", "function")
_TARGET_KEYS = ("target", "service", "file", "path", "targetname", "resource")
_ARG_KEYS = ("arg", "args", "argument", "param", "parameter", "value")
_INDEX_KEYS = ("choice", "index", "candidate", "option", "number")

_SEP = re.compile(r"[\s_\-]+")
_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n?(.*?)(?:```|$)", re.S)
_NUMBER = re.compile(r"^\s*(?:choice|option|candidate|number|answer)?\s*[:#]?\s*(\d{1,6})\s*[.):]?\s*$", re.I)
_PAIR = re.compile(
    r"""["']?([A-Za-z_]+)["']?\s*[:=]\s*(?:"((?:[^"\\]|\\.)*)"?|'((?:[^'\\]|\\.)*)'?|([^\s,}"']+))""")
_WORD_CHARS = set("_-./")
_PY_LITERALS = {"True": "true", "False": "false", "None": "null", "true": "true", "false": "false",
                "null": "null"}


def normalize(name: str) -> str:
    """Case- and separator-insensitive form of a name: "Read_Logs" -> "readlogs"."""
    return _SEP.sub("", name).lower()


def parse_decision(text: str, choices: Sequence[Choice]) -> tuple[int | None, bool]:
    """Map ``text`` onto an index of ``choices``.

    Returns
    -------
    (index, repaired)
        ``index`` into ``choices`` (the first of equal choices), or None when
        nothing could be mapped; ``repaired`` is False only for a clean JSON
        object with exactly the canonical keys and values. Never raises.
    """
    try:
        return _parse(text, choices)
    except Exception:   # a bad answer must never take the engine down
        return None, False


def _parse(text: Any, choices: Sequence[Choice]) -> tuple[int | None, bool]:
    if not isinstance(text, str) or not choices:
        return None, False
    text = text[:MAX_TEXT]
    stripped = text.strip()
    canonical: dict[str, int] = {}
    for i, c in enumerate(choices):
        canonical.setdefault(answer_json(c), i)
    if stripped in canonical:
        return canonical[stripped], False
    try:
        value = json.loads(stripped)
    except ValueError:
        value = None
    if isinstance(value, dict):
        exact = _exact(value, choices)
        if exact is not None:
            return exact, False

    matcher = _Matcher(choices)
    body = _unfence(stripped)
    if isinstance(value, (dict, int)) and not isinstance(value, bool):
        objects: list[Any] = [value]
    else:
        objects = list(_objects(body))
    for obj in objects:
        index = matcher.from_value(obj)
        if index is not None:
            return index, True
    pairs = _pairs(body)
    if pairs:
        index = matcher.from_fields(pairs)
        if index is not None:
            return index, True
    index = _number(body, len(choices))
    if index is None:
        index = matcher.from_label(body)
    return (index, True) if index is not None else (None, False)


def _exact(obj: dict, choices: Sequence[Choice]) -> int | None:
    for i, c in enumerate(choices):
        if obj == answer_object(c):
            return i
    return None


def _unfence(text: str) -> str:
    m = _FENCE.search(text)
    return m.group(1).strip() if m else text


def _objects(text: str):
    """Balanced ``{...}`` spans of ``text`` parsed as JSON or relaxed JSON,
    at most MAX_OBJECTS; an unclosed last object is closed."""
    found = 0
    pos = text.find("{")
    while pos != -1 and found < MAX_OBJECTS:
        end = _balanced_end(text, pos)
        span = text[pos:end] if end is not None else _close(text[pos:])
        value = _loads_relaxed(span)
        if value is not None:
            found += 1
            yield value
        pos = text.find("{", end if end is not None else len(text))


def _scan(text: str, start: int = 0) -> Iterator[tuple[int, str, int, str | None]]:
    """Walk ``text`` tracking string quotes and brace depth: yields
    (index, char, depth, open quote) after each character is taken in."""
    depth = 0
    quote = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        yield i, ch, depth, quote
        i += 1


def _balanced_end(text: str, start: int) -> int | None:
    for i, ch, depth, quote in _scan(text, start):
        if ch == "}" and quote is None and depth == 0:
            return i + 1
    return None


def _close(span: str) -> str:
    """Close a truncated object: an open string, then the open braces."""
    last = collections.deque(_scan(span), maxlen=1)     # the state after the last character
    depth, quote = last[0][2:] if last else (0, None)
    span = span.rstrip().rstrip(",")
    if quote:
        span += quote
    return span + "}" * max(depth, 0)


def _loads_relaxed(span: str) -> Any:
    try:
        return json.loads(span)
    except ValueError:
        pass
    try:
        return json.loads(_relax(span))
    except ValueError:
        return None


def _relax(s: str) -> str:
    """Rewrite relaxed JSON (single quotes, trailing commas, bare words,
    Python literals) as JSON; strings are copied token by token, so words
    inside them ("null-service") are never touched."""
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch in "\"'":
            j = i + 1
            parts: list[str] = []
            while j < n and s[j] != ch:
                if s[j] == "\\" and j + 1 < n:
                    pair = s[j:j + 2]
                    parts.append("'" if pair == "\\'" else pair)
                    j += 2
                    continue
                parts.append('\\"' if s[j] == '"' else s[j])
                j += 1
            out.append('"' + "".join(parts) + '"')
            i = j + 1
        elif ch == ",":
            k = i + 1
            while k < n and s[k].isspace():
                k += 1
            if k >= n or s[k] not in "}]":
                out.append(ch)
            i += 1
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (s[j].isalnum() or s[j] in _WORD_CHARS):
                j += 1
            word = s[i:j]
            out.append(_PY_LITERALS.get(word) or json.dumps(word))
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _pairs(text: str) -> dict[str, str]:
    """``key: value`` pairs from text that no JSON reading could parse."""
    fields: dict[str, str] = {}
    for m in _PAIR.finditer(text):
        key = m.group(1)
        value = next((g for g in m.group(2, 3, 4) if g is not None), "")
        fields.setdefault(key, value)
    return fields


def _number(text: str, n: int) -> int | None:
    m = _NUMBER.match(text)
    if m:
        k = int(m.group(1))
        if 1 <= k <= n:
            return k - 1
    return None


def _field(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    by_norm = {normalize(str(k)): v for k, v in obj.items()}
    for key in keys:
        if key in by_norm:
            return by_norm[key]
    return None


def _as_name(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and len(value) == 1:
        return _as_name(value[0])
    return None


class _Matcher:
    """Resolves (tool, target, arg) names against the allowed choices."""

    def __init__(self, choices: Sequence[Choice]) -> None:
        self.choices = list(choices)
        self.objects = [answer_object(c) for c in self.choices]

    def from_value(self, value: Any, depth: int = 0) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value - 1 if 1 <= value <= len(self.choices) else None
        if not isinstance(value, dict) or depth > 3:
            return None
        index = self.from_fields(value)
        if index is not None:
            return index
        for inner in value.values():          # {"decision": {"tool": ...}}
            if isinstance(inner, dict):
                index = self.from_value(inner, depth + 1)
                if index is not None:
                    return index
        return None

    def from_fields(self, obj: dict[str, Any]) -> int | None:
        tool = _as_name(_field(obj, _TOOL_KEYS))
        target = _as_name(_field(obj, _TARGET_KEYS))
        arg = _as_name(_field(obj, _ARG_KEYS))
        if tool is None and target is None:
            number = _field(obj, _INDEX_KEYS)
            if isinstance(number, str) and number.strip().isdigit():
                number = int(number)
            return self.from_value(number) if isinstance(number, int) else None
        pool = list(range(len(self.choices)))
        if tool is not None:
            pool = self._narrow(pool, "tool", tool)
        # a target for an action that takes none is extra detail, not a mismatch
        if pool and target is not None and any("target" in self.objects[i] for i in pool):
            pool = self._narrow(pool, "target", target)
        if len(pool) > 1 and arg is not None:
            narrowed = self._narrow(pool, "arg", arg)
            pool = narrowed or pool
        # several left (no target named for an action with many): the first,
        # i.e. the one the caller ranked highest
        return pool[0] if pool else None

    def _narrow(self, pool: list[int], key: str, name: str) -> list[int]:
        values = {i: self.objects[i].get(key) for i in pool}
        exact = [i for i in pool if values[i] == name]
        if exact:
            return exact
        norm = normalize(name)
        loose = [i for i in pool if (v := values[i]) is not None and normalize(v) == norm]
        if loose:
            return loose
        names = sorted({normalize(v) for v in values.values() if v is not None})
        close = difflib.get_close_matches(norm, names, n=2, cutoff=NAME_CUTOFF)
        if not close:
            return []
        if len(close) == 2:
            best, runner = (difflib.SequenceMatcher(None, norm, c).ratio() for c in close)
            if best - runner < 1e-9:
                return []                     # a tie is a guess: refuse it
        return [i for i in pool if (v := values[i]) is not None and normalize(v) == close[0]]

    def from_label(self, text: str) -> int | None:
        norm = normalize(text)
        if not norm or len(norm) > 256:
            return None
        labels = [normalize(c.label()) for c in self.choices]
        if norm in labels:
            return labels.index(norm)
        close = difflib.get_close_matches(norm, sorted(set(labels)), n=2, cutoff=NAME_CUTOFF)
        if len(close) == 1 or (len(close) == 2 and difflib.SequenceMatcher(None, norm, close[0]).ratio()
                               > difflib.SequenceMatcher(None, norm, close[1]).ratio()):
            return labels.index(close[0])
        return None
