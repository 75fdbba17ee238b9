"""The Reports page's data: the reports in a folder, one report's summary,
histograms and runs (filtered), and reports compared side by side.

A file is ours when it is a ``swarm eval`` report (``engine.name`` is
swarm-engine and it has a ``summary``) or a many-scenario document
(``{"scenarios": [report, ...]}``, each one listed as ``NAME#i``). Anything
else is a StoreError line naming the file and what is wrong with it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import msgspec

from swarm_engine.errors import StoreError
from swarm_engine.eval.stats import Z95, wilson

__all__ = ["ReportFolder", "histogram", "filter_runs", "compare", "difference"]

MAX_REPORT_BYTES = 512 * 1024 * 1024


def _check(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise StoreError(f"{where}: not a swarm eval report (the file holds a {type(doc).__name__}, not an object)")
    engine = doc.get("engine")
    if not isinstance(engine, dict) or engine.get("name") != "swarm-engine" or not isinstance(doc.get("summary"),
                                                                                             dict):
        raise StoreError(f"{where}: not a swarm eval report (no engine.name = swarm-engine and summary)")
    return doc


class ReportFolder:
    """The ``*.json`` reports of one folder (not recursive), newest first; a
    file's parse is cached by (size, mtime)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._cache: dict[str, tuple[tuple[int, float], Any]] = {}

    def _path(self, name: str) -> Path:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise StoreError(f"{name!r}: a report is named by its file name in {self.root}")
        return self.root / name

    def _read(self, name: str) -> Any:
        path = self._path(name)
        try:
            st = path.stat()
            if not path.is_file():
                raise StoreError(f"{path}: not a regular file")
            if st.st_size > MAX_REPORT_BYTES:
                raise StoreError(f"{path}: {st.st_size} bytes, more than a report may have ({MAX_REPORT_BYTES})")
            key = (st.st_size, st.st_mtime)
            hit = self._cache.get(name)
            if hit is not None and hit[0] == key:
                return hit[1]
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{path}: no such report") from None
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror or exc}") from None
        try:
            doc = msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise StoreError(f"{path}: not JSON ({exc})") from None
        self._cache[name] = (key, doc)
        return doc

    def load(self, ref: str) -> dict[str, Any]:
        """One report: ``NAME`` or ``NAME#i`` (the i-th of a many-scenario document)."""
        name, _, index = ref.partition("#")
        doc = self._read(name)
        if isinstance(doc, dict) and isinstance(doc.get("scenarios"), list) and "summary" not in doc:
            if not index:
                if len(doc["scenarios"]) == 1:
                    index = "0"
                else:
                    raise StoreError(f"{self.root / name}: holds {len(doc['scenarios'])} reports; open one of "
                                     f"{name}#0..{len(doc['scenarios']) - 1}")
            if not index.isdigit() or int(index) >= len(doc["scenarios"]):
                raise StoreError(f"{self.root / name}: no report #{index} (it holds {len(doc['scenarios'])})")
            return _check(doc["scenarios"][int(index)], f"{self.root / name}#{index}")
        if index:
            raise StoreError(f"{self.root / name}: one report, no #{index}")
        return _check(doc, str(self.root / name))

    def listing(self) -> list[dict[str, Any]]:
        """Every report file: its refs and a short summary each, or its one-line error."""
        if not self.root.is_dir():
            return []
        files = sorted((p for p in self.root.glob("*.json") if p.is_file() and not p.name.startswith(".")),
                       key=lambda p: -p.stat().st_mtime)
        out: list[dict[str, Any]] = []
        for p in files:
            try:
                doc = self._read(p.name)
                parts = (doc["scenarios"] if isinstance(doc, dict) and isinstance(doc.get("scenarios"), list)
                         and "summary" not in doc else [doc])
                many = len(parts) > 1
                for i, rep in enumerate(parts):
                    ref = f"{p.name}#{i}" if many else p.name
                    out.append({"ref": ref, "file": p.name, "modified": p.stat().st_mtime,
                                **_headline(_check(rep, f"{p}#{i}" if many else str(p)))})
            except StoreError as exc:
                out.append({"ref": p.name, "file": p.name, "modified": _mtime(p), "error": str(exc)})
        return out


def _mtime(p: Path) -> float | None:
    try:
        return os.stat(p).st_mtime
    except OSError:
        return None


def _headline(rep: dict[str, Any]) -> dict[str, Any]:
    s, sc = rep["summary"], rep.get("scenario") or {}
    return {"scenario": sc.get("name"), "variant": sc.get("variant"), "runs": s.get("runs"),
            "success_rate": s.get("success_rate"), "ci95": s.get("success_rate_ci95"),
            "actions_mean": (s.get("actions") or {}).get("mean"), "has_runs": isinstance(rep.get("runs"), list)}


def histogram(values: list[float], bins: int = 30) -> dict[str, Any]:
    """Counts of ``values`` in at most ``bins`` equal bins (integer-aligned for small ranges)."""
    if not values:
        return {"edges": [], "counts": []}
    lo, hi = min(values), max(values)
    span = hi - lo
    width = max(1.0, math.ceil((span + 1) / bins)) if all(float(v).is_integer() for v in values) else (
        span / bins if span > 0 else 1.0)
    n = max(1, min(bins, int(math.floor(span / width)) + 1))
    counts = [0] * n
    for v in values:
        counts[min(n - 1, int((v - lo) // width))] += 1
    return {"edges": [lo + i * width for i in range(n + 1)], "counts": counts}


def filter_runs(runs: list[dict[str, Any]], *, status: str | None = None, reason: str | None = None,
                seed: str | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    """The runs matching every filter given: ``status`` (success / failed),
    ``reason`` (a termination reason or verdict), ``seed`` (an exact seed)."""
    rows = runs
    if status == "success":
        rows = [r for r in rows if r.get("success")]
    elif status == "failed":
        rows = [r for r in rows if not r.get("success")]
    elif status not in (None, "", "all"):
        raise StoreError(f"status: got {status!r}, expected all, success or failed")
    if reason:
        rows = [r for r in rows if reason in (r.get("reason"), r.get("termination_reason"))]
    if seed not in (None, ""):
        if not str(seed).strip().isdigit():
            raise StoreError(f"seed: got {seed!r}, expected a whole number")
        rows = [r for r in rows if r.get("seed") == int(str(seed).strip())]
    return {"total": len(runs), "matched": len(rows), "offset": offset, "runs": rows[offset:offset + limit]}


def difference(c1: int, n1: int, c2: int, n2: int) -> dict[str, Any]:
    """p2 - p1 with Newcombe's hybrid Wilson 95% interval and the two-sided
    p-value of the pooled two-proportion z-test; significant when the interval
    leaves out 0."""
    p1, p2 = (c1 / n1 if n1 else 0.0), (c2 / n2 if n2 else 0.0)
    l1, u1 = wilson(c1, n1)
    l2, u2 = wilson(c2, n2)
    d = p2 - p1
    lo = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    hi = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    pooled = (c1 + c2) / (n1 + n2) if n1 + n2 else 0.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)) if n1 and n2 else 0.0
    pval = math.erfc(abs(d) / se / math.sqrt(2)) if se > 0 else (1.0 if d == 0 else 0.0)
    return {"difference": d, "ci95": [lo, hi], "p_value": pval, "significant": bool(lo > 0 or hi < 0)}


def _mean_difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """Welch's difference of two means (normal approximation: reports have many runs)."""
    if not a.get("n") or not b.get("n") or a.get("mean") is None or b.get("mean") is None:
        return None
    d = b["mean"] - a["mean"]
    se = math.sqrt((a.get("std") or 0.0) ** 2 / a["n"] + (b.get("std") or 0.0) ** 2 / b["n"])
    half = Z95 * se
    pval = math.erfc(abs(d) / se / math.sqrt(2)) if se > 0 else (1.0 if d == 0 else 0.0)
    return {"difference": d, "ci95": [d - half, d + half], "p_value": pval,
            "significant": bool(se > 0 and abs(d) > half) or (se == 0 and d != 0)}


def compare(reports: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Each report's success rate, actions and ticks, and each one's difference
    from the first (the baseline)."""
    if len(reports) < 2:
        raise StoreError("compare needs two reports or more")
    rows: list[dict[str, Any]] = []
    base = reports[0][1]["summary"]
    for ref, rep in reports:
        s = rep["summary"]
        row = {"ref": ref, "scenario": (rep.get("scenario") or {}).get("name"),
               "variant": (rep.get("scenario") or {}).get("variant"), "runs": s.get("runs"),
               "successes": s.get("successes"), "success_rate": s.get("success_rate"),
               "ci95": s.get("success_rate_ci95"), "actions": s.get("actions"), "ticks": s.get("ticks"),
               "actions_per_sec": s.get("actions_per_sec")}
        if rows:
            row["vs_baseline"] = {
                "success_rate": difference(int(base.get("successes") or 0), int(base.get("runs") or 0),
                                           int(s.get("successes") or 0), int(s.get("runs") or 0)),
                "actions": _mean_difference(base.get("actions") or {}, s.get("actions") or {}),
                "ticks": _mean_difference(base.get("ticks") or {}, s.get("ticks") or {})}
        rows.append(row)
    return {"baseline": reports[0][0], "reports": rows}
