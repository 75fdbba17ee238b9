"""Characters a name may not hold: invisible ones and bidi controls.

A name is shown in tables, reports and logs and matched against other names;
a zero-width space makes two names that look alike differ, and a bidi
override makes one read backwards (CVE-2021-42574, "Trojan Source"). Control
(Cc), format (Cf: zero-width, bidi, BOM, soft hyphen), line and paragraph
separators (Zl, Zp) and private-use (Co) characters are refused in names.
"""

from __future__ import annotations

import unicodedata

__all__ = ["bad_name_char"]

_BAD_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs"}


def bad_name_char(name: str) -> str | None:
    """'U+200B ZERO WIDTH SPACE' for the first character a name may not hold, else None."""
    for ch in name:
        if unicodedata.category(ch) in _BAD_CATEGORIES:
            label = unicodedata.name(ch, "")
            if not label:
                label = {"\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN"}.get(ch, "control character")
            return f"U+{ord(ch):04X} {label}"
    return None
