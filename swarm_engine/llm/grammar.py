"""Constrained decoding: the allowed answers as a GBNF grammar or a JSON schema.

:func:`gbnf_for` gives a llama.cpp GBNF grammar whose language is exactly the
set of canonical answers :func:`swarm_engine.llm.prompts.answer_json` (byte for
byte, no whitespace freedom): with it a sampler can only emit one of the
choices. Alternatives sharing a prefix are factored (a radix tree over the
answers), so the grammar engine keeps one live stack per distinct continuation
instead of one per choice while the common ``{"tool": "`` is generated.

:func:`json_schema_for` gives a JSON schema with the same meaning for servers
that take schemas instead: llama-server ``json_schema``, Ollama ``format``,
OpenAI-style ``response_format`` (see :func:`response_format_for`). A schema
fixes the values but not the whitespace, so answers to it are parsed with
``json.loads`` (see :mod:`swarm_engine.llm.repair`), not compared as strings.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from swarm_engine.errors import ConfigError
from swarm_engine.llm.prompts import answer_json, answer_object
from swarm_engine.llm.protocol import Choice

__all__ = ["gbnf_for", "gbnf_literal", "json_schema_for", "response_format_for"]

_GBNF_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal: double quotes, with ``"`` and ``\\``
    escaped, control characters and line/paragraph separators as ``\\xHH`` or
    ``\\uHHHH`` (llama.cpp's parse_char rules; the grammar matches code points,
    so ``\\x85`` is U+0085); other characters, non-ASCII included, stand for
    themselves (UTF-8). The literal never contains a line break of any kind."""
    out = []
    for ch in text:
        esc = _GBNF_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            out.append(f"\\x{ord(ch):02X}" if ord(ch) < 0x100 else f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _common_prefix(strings: Sequence[str]) -> str:
    lo, hi = min(strings), max(strings)     # the lexicographic extremes bound every prefix
    n = 0
    while n < len(lo) and lo[n] == hi[n]:
        n += 1
    return lo[:n]


def _factored(strings: list[str]) -> str:
    """A GBNF expression matching exactly ``strings`` (sorted, unique, non-empty set)."""
    if len(strings) == 1:
        return gbnf_literal(strings[0])
    prefix = _common_prefix(strings)
    rests = [s[len(prefix):] for s in strings]
    optional = rests[0] == ""               # sorted: the empty rest comes first
    if optional:
        rests = rests[1:]
    groups: dict[str, list[str]] = {}
    for rest in rests:
        groups.setdefault(rest[0], []).append(rest)
    alts = [_factored(group) for group in groups.values()]
    body = alts[0] if len(alts) == 1 else "(" + " | ".join(alts) + ")"
    if optional:
        # JSON answers are prefix-free, so this only serves arbitrary literals
        body = f"({body})?" if len(alts) == 1 else f"{body}?"
    return f"{gbnf_literal(prefix)} {body}" if prefix else body


def gbnf_for(choices: Sequence[Choice], *, factor: bool = True) -> str:
    """A GBNF grammar whose language is exactly ``{answer_json(c) for c in choices}``.

    Parameters
    ----------
    choices:
        The allowed answers; duplicates are merged. Must not be empty.
    factor:
        True (default): one ``root`` rule with common prefixes factored out.
        False: ``root ::= c0 | c1 | ...`` with one literal rule per answer,
        easier to read when debugging.

    Raises
    ------
    ConfigError
        ``choices`` is empty (an empty language has no grammar).
    """
    answers = sorted({answer_json(c) for c in choices})
    if not answers:
        raise ConfigError("cannot build a grammar for an empty choice list")
    if factor:
        return f"root ::= {_factored(answers)}\n"
    # keep the caller's order in the flat form: it reads like the prompt's list
    ordered = list(dict.fromkeys(answer_json(c) for c in choices))
    lines = ["root ::= " + " | ".join(f"c{i}" for i in range(len(ordered)))]
    lines += [f"c{i} ::= {gbnf_literal(a)}" for i, a in enumerate(ordered)]
    return "\n".join(lines) + "\n"


def _choice_schema(choice: Choice) -> dict[str, Any]:
    obj = answer_object(choice)
    return {
        "type": "object",
        "properties": {key: {"type": "string", "const": value} for key, value in obj.items()},
        "required": list(obj),
        "additionalProperties": False,
    }


def json_schema_for(choices: Sequence[Choice]) -> dict[str, Any]:
    """A JSON schema accepting exactly the canonical answer objects of ``choices``.

    ``{"type": "object", "anyOf": [{"type": "object", "properties": {"tool":
    {"const": ...}, "target": {"const": ...}}, "required": [...],
    "additionalProperties": false}, ...]}``, alternatives in the caller's
    order, duplicates merged. ``anyOf`` rather than ``oneOf``: llama.cpp,
    Ollama, vLLM and SGLang treat them alike for generation, but a validator
    rejects a value matching two ``oneOf`` branches, and duplicate choices
    would do exactly that. The property order (tool, target, arg) is the
    order constrained generators emit.

    Raises
    ------
    ConfigError
        ``choices`` is empty.
    """
    branches: list[dict[str, Any]] = []
    seen: set[str] = set()
    for choice in choices:
        key = answer_json(choice)
        if key not in seen:
            seen.add(key)
            branches.append(_choice_schema(choice))
    if not branches:
        raise ConfigError("cannot build a JSON schema for an empty choice list")
    return {"type": "object", "anyOf": branches}


def response_format_for(schema: dict[str, Any] | None, kind: str | None = "json_schema", *,
                        name: str = "decision", strict: bool = True) -> dict[str, Any] | None:
    """The OpenAI-style ``response_format`` for a schema.

    ``kind`` "json_schema": ``{"type": "json_schema", "json_schema": {"name",
    "schema", "strict"}}``; "json_object": ``{"type": "json_object"}`` (valid
    JSON, any shape: the prompt and repair do the rest); None: no
    ``response_format`` at all (returns None).
    """
    if kind is None:
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if schema is None:
            raise ConfigError("response_format json_schema needs a schema")
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}
    raise ConfigError(f"unknown response_format {kind!r}: expected 'json_schema', 'json_object' or None")
