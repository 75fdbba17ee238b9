"""Read an input file safely: regular files only, a size limit, strict UTF-8.

``open()`` on a FIFO blocks until a writer comes, and ``/dev/zero`` never
ends: the file is opened non-blocking and checked with ``fstat`` before a
byte is read, and at most ``limit + 1`` bytes are read. A byte that is not
UTF-8 is reported with its line and column, like a syntax error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from swarm_engine.errors import InputError

__all__ = ["read_text", "decode"]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def decode(data: bytes, source: str, error: type[InputError]) -> str:
    """``data`` as UTF-8; a bad byte is one error naming its line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise error(f"not valid UTF-8: byte 0x{data[exc.start]:02x} (column {column}); save the file as UTF-8",
                    path=source, line=line) from None


def read_text(path: str | Path, *, limit: int, error: type[InputError], missing: str = "file not found") -> str:
    """The text of the regular file ``path``, at most ``limit`` bytes.

    Raises ``error`` (one line naming the file) when it is missing, not a
    regular file (directory, FIFO, device, socket), larger than ``limit``,
    unreadable or not UTF-8."""
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(missing, path=source) from None
    except IsADirectoryError:
        raise error("cannot read: a directory, not a file", path=source) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", path=source) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"cannot read: {_kind(st.st_mode)}, not a regular file", path=source)
        if st.st_size > limit:
            raise error(f"file too large: {st.st_size} bytes, the limit is {limit} bytes", path=source)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", path=source) from None
    finally:
        os.close(fd)
    if size > limit:                              # grew while read (a file being written)
        raise error(f"file too large: over {limit} bytes, the limit", path=source)
    return decode(b"".join(chunks), source, error)
