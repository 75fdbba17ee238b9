"""dict -> msgspec Struct, with every failure one located line.

msgspec names the failing path (``$.app_config.max_ticks``) and, for a bound,
only the side that failed (``Expected `int` <= 2147483647``). The error here
adds the line (from the text), the value that was given and the whole range
the field takes, read from the type itself (``msgspec.inspect``), so the
message cannot drift from the schema.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

from swarm_engine.errors import InputError
from swarm_engine.inputs.locate import locate, parse_path

__all__ = ["convert", "field_name", "describe_range", "type_at"]

T = TypeVar("T")
_MISSING = object()


def field_name(parts: list[str | int]) -> str:
    """['a', 'b', 2, 'c'] -> 'a.b[2].c'."""
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in parts).replace(".[", "[")


def _value_at(raw: Any, parts: list[str | int]) -> Any:
    for p in parts:
        try:
            raw = raw[p]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return raw


def _pick(t: mi.Type, value: Any) -> mi.Type:
    """The member of a union that ``value``'s Python type selects."""
    while isinstance(t, mi.UnionType):
        members = t.types
        if isinstance(value, dict):
            structs = [m for m in members if isinstance(m, mi.StructType)]
            tagged = [m for m in structs if m.tag_field and value.get(m.tag_field, m.tag) == m.tag]
            dicts = [m for m in members if isinstance(m, mi.DictType)]
            choice: list[mi.Type] = [*tagged, *structs, *dicts, members[0]]
            t = choice[0]
        else:
            wanted: tuple[type, ...] = {bool: (mi.BoolType,), int: (mi.IntType, mi.FloatType), float: (mi.FloatType,),
                                        str: (mi.StrType, mi.LiteralType), list: (mi.ListType,)}.get(type(value), ())
            found = [m for m in members if isinstance(m, wanted)] if wanted else []
            t = found[0] if found else members[0]
    return t


def type_at(root: type, raw: Any, parts: list[str | int]) -> mi.Type | None:
    """The msgspec type of the field at ``parts`` (``raw`` steers through unions)."""
    t: mi.Type = mi.type_info(root)
    value = raw
    for p in parts:
        t = _pick(t, value)
        if isinstance(t, mi.StructType) and isinstance(p, str):
            f = next((f for f in t.fields if f.encode_name == p), None)
            if f is None:
                return None
            t = f.type
        elif isinstance(t, mi.ListType) and isinstance(p, int):
            t = t.item_type
        elif isinstance(t, mi.DictType):
            t = t.value_type
        else:
            return None
        found = _value_at(value, [p])
        value = None if found is _MISSING else found
    return _pick(t, value)


def describe_range(t: mi.Type | None) -> str | None:
    """'an int in 1..16777216', 'a number in 0.0..1.0', 'an int >= 0'; None without bounds."""
    if not isinstance(t, (mi.IntType, mi.FloatType)):
        return None
    kind = "an int" if isinstance(t, mi.IntType) else "a number"
    lo = (t.ge, "") if t.ge is not None else (t.gt, " (exclusive)") if t.gt is not None else None
    hi = (t.le, "") if t.le is not None else (t.lt, " (exclusive)") if t.lt is not None else None
    if lo and hi:
        return f"{kind} in {lo[0]}{lo[1]}..{hi[0]}{hi[1]}"
    if lo:
        return f"{kind} {'>' if lo[1] else '>='} {lo[0]}"
    if hi:
        return f"{kind} {'<' if hi[1] else '<='} {hi[0]}"
    return None


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def convert(raw: Any, typ: type[T], *, text: str | None, source: str | None, error: type[InputError]) -> T:
    """``msgspec.convert(raw, typ, strict=True)``; a failure is one ``error`` with its field and line."""
    try:
        return msgspec.convert(raw, typ, strict=True)
    except msgspec.ValidationError as exc:
        msg = str(exc)
    m = re.search(r" - at `([^`]*)`$", msg)
    parts = parse_path(m.group(1) if m else "$")
    msg = msg[:m.start()] if m else msg
    extra = re.search(r"(unknown|missing required) field `([^`]+)`", msg)
    if extra:
        parts.append(extra.group(2))
    msg = msg.replace("Object contains unknown field", "unknown field").replace(
        "Object missing required field", "missing required field")
    value = _value_at(raw, parts)
    expected = describe_range(type_at(typ, raw, parts)) if not extra else None
    if expected and re.match(r"Expected `\w+` [<>]=? ", msg) and value is not _MISSING:
        msg = f"got {_got(value)}, expected {expected}"
    elif re.match(r"Expected `[^`]+`, got `\w+`$", msg) and isinstance(value, (str, int, float)):
        msg += f" {_got(value)}" + (f" (expected {expected})" if expected else "")
    elif extra and extra.group(1) == "unknown":
        parent = _pick(type_at(typ, raw, parts[:-1]) or mi.AnyType(), _value_at(raw, parts[:-1]))
        if isinstance(parent, mi.StructType):
            msg += f" (known: {', '.join(f.encode_name for f in parent.fields)})"
    line = locate(text, parts) if parts and text is not None else None
    raise error(msg, path=source, line=line, field=field_name(parts) or None) from None
