"""A run's events from the trace a report names (``swarm eval --trace``).

A trace is one JSON line per action event, possibly millions of them, so it is
never loaded whole: the first request for a file streams it once and builds an
index, kept per (path, size, mtime), of where each seed's lines are; a page of
one run then seeks to the nearest mark and reads at most ``MARK_EVERY`` lines
more than it returns.

Lines are matched to a report's run by ``seed``, not by ``run``: the trace
writer derives the seed from the run index, so the two agree in one
``swarm eval`` (``-j 1`` and ``-j N`` write the same file), but a seed also
stays right when an eval is run as several calls over chunks of seeds, each
numbering its runs from 0.

Only paths named by a report's ``manifest.trace`` are opened: a request picks a
report and a run, never a file.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from swarm_engine.errors import StoreError

__all__ = ["TraceIndex", "TraceFiles", "run_seed", "trace_path", "MAX_LIMIT", "MARK_EVERY"]

MAX_LIMIT = 5000             # events per page at most
MARK_EVERY = 256             # a byte offset kept every this many lines of a run: a page reads < 256 lines extra
CACHED_FILES = 8             # indexes kept (the oldest dropped)


class _Seed(msgspec.Struct):
    seed: int


_SEED = msgspec.json.Decoder(_Seed)


@dataclass
class _Segment:
    """Consecutive lines of one seed (a run's lines are one segment when the
    trace was written in seed order, as ``swarm eval`` writes it)."""

    line: int                                        # 1-based line number of its first line
    count: int = 0                                   # lines in it
    # (byte offset, line number) of its lines 0, MARK_EVERY, 2 * MARK_EVERY, ...
    marks: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class TraceIndex:
    """Where each seed's lines are in one trace file."""

    path: Path
    key: tuple[int, int]                             # (size, mtime_ns) of the file indexed
    seeds: dict[int, list[_Segment]]
    lines: int

    @classmethod
    def build(cls, path: Path, key: tuple[int, int]) -> TraceIndex:
        seeds: dict[int, list[_Segment]] = {}
        last: _Segment | None = None
        last_seed: int | None = None
        n = 0
        with _open(path) as f:
            pos = 0
            for n, raw in enumerate(f, 1):
                if raw.strip():
                    seed = _seed_of(raw, path, n)
                    if seed != last_seed or last is None:
                        last = _Segment(line=n)
                        seeds.setdefault(seed, []).append(last)
                        last_seed = seed
                    if last.count % MARK_EVERY == 0:
                        last.marks.append((pos, n))
                    last.count += 1
                pos += len(raw)
        return cls(path, key, seeds, n)

    def total(self, seed: int) -> int:
        return sum(s.count for s in self.seeds.get(seed, ()))

    def events(self, seed: int, offset: int, limit: int) -> list[dict[str, Any]]:
        """Lines ``offset`` .. ``offset + limit`` of ``seed``, in file order."""
        out: list[dict[str, Any]] = []
        with _open(self.path) as f:
            for seg in self.seeds.get(seed, ()):
                if len(out) >= limit:
                    break
                if offset >= seg.count:
                    offset -= seg.count
                    continue
                mark = offset // MARK_EVERY
                at, line = seg.marks[mark]
                f.seek(at)
                i = mark * MARK_EVERY
                while i < seg.count and len(out) < limit:
                    raw = f.readline()
                    if not raw:
                        raise StoreError(f"{self.path}: ends at line {line}, shorter than when it was indexed")
                    if raw.strip():
                        if i >= offset:
                            out.append(_decode(raw, self.path, line))
                        i += 1
                    line += 1
                offset = 0
        return out


def _open(path: Path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise KeyError(f"{path}: the trace is gone (moved or deleted since the eval wrote it)") from None
    except OSError as exc:
        raise StoreError(f"{path}: {exc.strerror or exc}") from None


def _decode(raw: bytes, path: Path, line: int) -> dict[str, Any]:
    try:
        row = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise StoreError(f"{path}: line {line} is not JSON") from None
    if not isinstance(row, dict):
        raise StoreError(f"{path}: line {line} is not a trace event (a JSON object)")
    return row


def _seed_of(raw: bytes, path: Path, line: int) -> int:
    try:
        return _SEED.decode(raw).seed
    except msgspec.ValidationError:
        raise StoreError(f"{path}: line {line} is not a trace event (no integer seed)") from None
    except msgspec.DecodeError:
        raise StoreError(f"{path}: line {line} is not JSON") from None


class TraceFiles:
    """The indexes of the traces asked for, rebuilt when a file changes; a
    trace that fails to index keeps its error for the same (size, mtime)."""

    def __init__(self) -> None:
        self._cache: OrderedDict[str, tuple[tuple[int, int], TraceIndex | StoreError]] = OrderedDict()
        self._lock = threading.Lock()

    def index(self, path: Path) -> TraceIndex:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise KeyError(f"{path}: the trace is gone (moved or deleted since the eval wrote it)") from None
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode):          # a FIFO or a device would block or never end
            raise StoreError(f"{path}: not a regular file")
        key = (st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._cache.get(str(path))
            if hit is not None and hit[0] == key:
                self._cache.move_to_end(str(path))
                if isinstance(hit[1], StoreError):
                    raise hit[1]
                return hit[1]
        built: TraceIndex | StoreError
        try:
            built = TraceIndex.build(path, key)
        except StoreError as exc:
            built = exc
        with self._lock:
            self._cache[str(path)] = (key, built)
            self._cache.move_to_end(str(path))
            while len(self._cache) > CACHED_FILES:
                self._cache.popitem(last=False)
        if isinstance(built, StoreError):
            raise built
        return built

    def page(self, path: Path, seed: int, offset: int, limit: int) -> dict[str, Any]:
        """One page of a seed's events and how many it has."""
        idx = self.index(path)
        return {"trace": str(path), "seed": seed, "total": idx.total(seed), "offset": offset, "limit": limit,
                "events": idx.events(seed, offset, limit)}


def trace_path(report: dict[str, Any], ref: str, reports_dir: Path) -> Path:
    """The trace file the report ``ref`` names; KeyError (404) when it names none.
    A relative path is taken from the reports folder."""
    manifest = report.get("manifest")
    trace = manifest.get("trace") if isinstance(manifest, dict) else None
    if trace in (None, ""):
        raise KeyError(f"{ref}: this report has no trace (swarm eval --trace FILE -o REPORT writes one)")
    if not isinstance(trace, str):
        raise StoreError(f"{ref}: manifest.trace is a {type(trace).__name__}, not a path")
    p = Path(trace)
    return p if p.is_absolute() else reports_dir / p


def run_seed(report: dict[str, Any], ref: str, run: int) -> int:
    """The seed of the report's run ``run`` (its index in ``runs``)."""
    runs = report.get("runs")
    if isinstance(runs, list):
        if not runs:
            raise StoreError(f"run: got {run}, but {ref} has no runs")
        if not 0 <= run < len(runs):
            raise StoreError(f"run: got {run}, expected a run of {ref} in 0..{len(runs) - 1}")
        row = runs[run]
        if isinstance(row, dict) and isinstance(row.get("seed"), int):
            return int(row["seed"])
    n = int((report.get("summary") or {}).get("runs") or 0)
    if n == 0:
        raise StoreError(f"run: got {run}, but {ref} has no runs")
    base = (report.get("seed_info") or {}).get("base_seed")
    if not 0 <= run < n:
        raise StoreError(f"run: got {run}, expected a run of {ref} in 0..{n - 1}")
    if not isinstance(base, int):
        raise StoreError(f"{ref}: no seed_info.base_seed, so run {run} has no seed to find in the trace")
    return base + run
