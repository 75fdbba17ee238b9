"""The on-disk learning store (the original project's layout)::

    <root>/                       root = ~/.swarm-engine/learning (SWARM_HOME moves it)
      global_stats.json
      scenarios/<learning_key>/
        stats.json
        offline_model.json        the model in use (a copy of one models/vN.json)
        models/vN.json            every version learned; rollback goes back one
        lora/vN/
        sessions/<UTC timestamp>-<pid>/{meta.json, stats.json}

Every file is written atomically (temp file, fsync, rename). Read-merge-write
of a shared stats file happens under an exclusive ``fcntl.flock`` on a lock
file beside it, so concurrent processes lose no counts. A corrupt JSON file is
reported (one line naming the file, in :attr:`LearningStore.problems`, on the
``swarm_engine.learn`` logger and to ``on_problem``), renamed aside to
``<name>.corrupt-<ts>`` and treated as absent: never fatal.

A session survives ``kill -9`` at any point and counts exactly once
(:meth:`LearningStore.commit_session`). Under the scenario's lock:

1. its files go to ``sessions/.<name>.pending/``, ``meta.json`` last (readers
   never list dot-folders);
2. its stats are added to ``stats.json``, which records the session's name as
   ``"applied"`` in the same atomic write; then to ``global_stats.json``
   (under its own lock, taken inside the scenario's), whose ``"applied"``
   maps each key to its last session;
3. the folder is renamed to ``sessions/<name>/``: visible, and done.

Whoever takes the scenario's lock next finishes what a dead holder left
(only a lock holder writes there, and ``flock`` dies with its process): a
pending folder with ``meta.json`` is completed from step 2 on, skipping the
totals whose ``"applied"`` already names it; one without is removed, with
the temp files a dead writer left beside the locked files. So every session
folder that is visible is counted in both totals once, and one that a
command reported as written is never lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from swarm_engine import fsio
from swarm_engine.fsio import write_json
from swarm_engine.learn.stats import LearnStats
from swarm_engine.settings import engine_dir

__all__ = ["LearningStore", "learning_key"]

log = logging.getLogger("swarm_engine.learn")

_PENDING = ".pending"          # sessions/.<name>.pending/: a session being committed (totals too)
_WRITING = ".writing"          # sessions/.<name>.writing/: written by write_session (no totals)


class _Applied(msgspec.Struct):
    """The commit record a totals file carries beside its LearnStats fields
    (which ignore it): the last session added (``stats.json``: its name;
    ``global_stats.json``: {key: name})."""

    applied: str | dict[str, str] | None = None

_VERSION = re.compile(r"^v\d+([._]\d+)*$", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def learning_key(scenario_id: str, override: str | None = None) -> str:
    """A filesystem-safe key: ``"user:troubleshooting:v2"`` -> ``"user_troubleshooting"``.

    A trailing ``vN`` part is dropped (all versions share one store); ``override``
    (sanitised the same way, version kept) wins when given.
    """
    if override:
        raw = override
    else:
        parts = [p for p in str(scenario_id).split(":") if p]
        if len(parts) > 1 and _VERSION.match(parts[-1]):
            parts = parts[:-1]
        raw = "_".join(parts)
    key = _UNSAFE.sub("_", raw).strip("._-")
    return key or "default"


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


class LearningStore:
    def __init__(self, root: str | Path | None = None, *,
                 on_problem: Callable[[str], None] | None = None) -> None:
        self.root = Path(root) if root is not None else engine_dir() / "learning"
        self.on_problem = on_problem
        self.problems: list[str] = []
        self._incomplete: set[Path] = set()

    learning_key = staticmethod(learning_key)

    # ------------------------------------------------------------------ paths
    @property
    def global_path(self) -> Path:
        return self.root / "global_stats.json"

    def scenario_dir(self, key: str) -> Path:
        return self.root / "scenarios" / key

    def stats_path(self, key: str) -> Path:
        return self.scenario_dir(key) / "stats.json"

    def offline_model_path(self, key: str) -> Path:
        return self.scenario_dir(key) / "offline_model.json"

    def models_dir(self, key: str) -> Path:
        return self.scenario_dir(key) / "models"

    def lora_dir(self, key: str, version: int) -> Path:
        return self.scenario_dir(key) / "lora" / f"v{int(version)}"

    def sessions(self, key: str) -> list[Path]:
        """Complete session folders of ``key``, oldest first. A folder without
        ``meta.json`` (left by a writer older than the commit protocol that was
        killed) is skipped, reported in one line once per store."""
        d = self.scenario_dir(key) / "sessions"
        if not d.is_dir():
            return []
        out = []
        for p in sorted(d.iterdir()):
            if not p.is_dir() or p.name.startswith("."):
                continue
            if (p / "meta.json").is_file():
                out.append(p)
            elif p not in self._incomplete:
                self._incomplete.add(p)
                self._report(f"{p}: incomplete session (no meta.json); skipped")
        return out

    # ------------------------------------------------------------------ problems
    def _report(self, line: str) -> None:
        self.problems.append(line)
        log.warning("%s", line)
        if self.on_problem is not None:
            self.on_problem(line)

    def _read_stats(self, path: Path) -> LearnStats:
        """The stats in ``path``; empty when absent; a corrupt file is reported and moved aside."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return LearnStats()
        except OSError as exc:
            self._report(f"{path}: cannot read learning stats ({exc.strerror or exc}); skipped")
            return LearnStats()
        try:
            return LearnStats.from_json(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            aside = path.with_name(f"{path.name}.corrupt-{_stamp()}")
            try:
                os.replace(path, aside)
                where = f"moved to {aside.name}"
            except OSError:
                where = "left in place"
            self._report(f"{path}: corrupt learning stats ({exc}); skipped, {where}")
            return LearnStats()

    @contextlib.contextmanager
    def _locked(self, lock_path: Path) -> Iterator[None]:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    @staticmethod
    def _lock_path(path: Path) -> Path:
        return path.with_name(f".{path.name}.lock")

    def _applied(self, path: Path) -> str | dict[str, str] | None:
        """The commit record of a totals file (None when absent or unreadable)."""
        try:
            return msgspec.json.decode(path.read_bytes(), type=_Applied).applied
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return None

    def _write_totals(self, path: Path, stats: LearnStats, applied: str | dict[str, str] | None) -> None:
        doc = msgspec.to_builtins(stats)
        if applied is not None:
            doc["applied"] = applied
        write_json(path, doc)

    def _merge_locked(self, path: Path, stats: LearnStats, applied: str | dict[str, str] | None = None
                      ) -> LearnStats:
        """Read-add-write of a totals file; call with its lock held. ``applied``
        replaces the commit record (None keeps the one there)."""
        _sweep_tmp(path)
        merged = self._read_stats(path).merge(stats)
        self._write_totals(path, merged, applied if applied is not None else self._applied(path))
        return merged

    def _merge_file(self, path: Path, stats: LearnStats) -> LearnStats:
        with self._locked(self._lock_path(path)):
            return self._merge_locked(path, stats)

    # ------------------------------------------------------------------ committing sessions
    @contextlib.contextmanager
    def _scenario_locked(self, key: str) -> Iterator[None]:
        """The scenario's lock, with what a dead holder left finished first."""
        with self._locked(self._lock_path(self.stats_path(key))):
            self._recover(key)
            yield

    def _recover(self, key: str) -> None:
        base = self.scenario_dir(key) / "sessions"
        _sweep_tmp(self.scenario_dir(key) / "scenario.json")
        if not base.is_dir():
            return
        for d in sorted([*base.glob(f".*{_PENDING}"), *base.glob(f".*{_WRITING}")]):
            if not (d / "meta.json").is_file():
                shutil.rmtree(d, ignore_errors=True)         # died while writing: never reported
                continue
            self._apply(key, d, self._read_stats(d / "stats.json"), totals=d.name.endswith(_PENDING))
            log.info("%s: the session of a killed process completed", base / _final_name(d))

    def _write_pending(self, key: str, meta: dict[str, Any], stats: LearnStats,
                       decisions: list[dict] | None, suffix: str = _PENDING) -> Path:
        base = self.scenario_dir(key) / "sessions"
        base.mkdir(parents=True, exist_ok=True)
        stem = f"{_stamp()}-{os.getpid()}"
        for n in range(1000):
            name = stem if n == 0 else f"{stem}-{n}"
            d = base / f".{name}{suffix}"
            if (base / name).exists():
                continue
            try:
                d.mkdir()
                break
            except FileExistsError:
                continue
        else:                                   # pragma: no cover
            raise FileExistsError(f"cannot make a session folder under {base}")
        if decisions:
            fsio.write_bytes(d / "decisions.jsonl",
                             b"".join(msgspec.json.encode(r) + b"\n" for r in decisions))
        write_json(d / "stats.json", stats)
        write_json(d / "meta.json", meta)       # last: the pending session is complete
        return d

    def _apply(self, key: str, pending: Path, stats: LearnStats, totals: bool = True) -> Path:
        """Steps 2 and 3 of the commit (module docstring); each total is skipped
        when its commit record shows it was added already."""
        name = _final_name(pending)
        if totals:
            path = self.stats_path(key)
            if self._applied(path) != name:
                self._merge_locked(path, stats, name)
            with self._locked(self._lock_path(self.global_path)):
                applied = self._applied(self.global_path)
                applied = dict(applied) if isinstance(applied, dict) else {}
                if applied.get(key) != name:
                    self._merge_locked(self.global_path, stats, {**applied, key: name})
        dest = pending.parent / name
        fsio.publish_dir(pending, dest)
        return dest

    # ------------------------------------------------------------------ API
    def write_session(self, key: str, meta: dict[str, Any], stats: LearnStats,
                      decisions: list[dict] | None = None) -> Path:
        """sessions/<UTC timestamp>-<pid>/{meta.json, stats.json[, decisions.jsonl]},
        not added to the totals (:meth:`commit_session` does both); returns the
        folder, which appears whole (written as a pending folder, then renamed)."""
        with self._scenario_locked(key):
            d = self._write_pending(key, meta, stats, decisions, _WRITING)
            return self._apply(key, d, stats, totals=False)

    def commit_session(self, key: str, meta: dict[str, Any], stats: LearnStats,
                       decisions: list[dict] | None = None, *, scenario: dict[str, Any] | None = None) -> Path:
        """Write a session and add its stats to the scenario's and the global
        totals, exactly once even when the process is killed at any point
        (module docstring). ``scenario``: written as ``scenario.json`` (where
        ``learn once`` finds a key's scenario). Returns the session folder."""
        with self._scenario_locked(key):
            d = self._write_pending(key, meta, stats, decisions)
            if scenario is not None:
                write_json(self.scenario_dir(key) / "scenario.json", scenario)
            return self._apply(key, d, stats)

    def merge_into_scenario(self, key: str, stats: LearnStats) -> LearnStats:
        """Add ``stats`` into scenarios/<key>/stats.json (locked); returns the merged total."""
        with self._scenario_locked(key):
            return self._merge_locked(self.stats_path(key), stats)

    def merge_global(self, stats: LearnStats) -> LearnStats:
        """Add ``stats`` into global_stats.json (locked); returns the merged total."""
        return self._merge_file(self.global_path, stats)

    def load_stats(self, key: str) -> LearnStats:
        return self._read_stats(self.stats_path(key))

    def load_global(self) -> LearnStats:
        return self._read_stats(self.global_path)

    def load_session(self, session: Path) -> tuple[dict, LearnStats]:
        """(meta, stats) of one session folder; corrupt parts are reported and come back empty."""
        meta: dict = {}
        try:
            meta = msgspec.json.decode((session / "meta.json").read_bytes())
            if not isinstance(meta, dict):
                raise msgspec.ValidationError("meta.json is not an object")
        except FileNotFoundError:
            pass
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._report(f"{session / 'meta.json'}: corrupt session meta ({exc}); skipped")
            meta = {}
        return meta, self._read_stats(session / "stats.json")

    # ------------------------------------------------------------------ offline model
    def _read_model(self, path: Path):
        from swarm_engine.learn.model import OfflineModel

        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._report(f"{path}: cannot read the offline model ({exc.strerror or exc}); not used")
            return None
        try:
            return OfflineModel.from_json(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._report(f"{path}: corrupt offline model ({exc}); not used")
            return None

    def load_model(self, key: str):
        """The model in use for ``key`` (an OfflineModel), or None; a corrupt file is reported."""
        return self._read_model(self.offline_model_path(key))

    def model_versions(self, key: str) -> list[int]:
        d = self.models_dir(key)
        if not d.is_dir():
            return []
        out = []
        for p in d.glob("v*.json"):
            try:
                out.append(int(p.stem[1:]))
            except ValueError:
                continue
        return sorted(out)

    def load_model_version(self, key: str, version: int):
        return self._read_model(self.models_dir(key) / f"v{int(version)}.json")

    @contextlib.contextmanager
    def model_lock(self, key: str) -> Iterator[None]:
        """Held while a model is learned-and-swapped, so two learners never interleave."""
        with self._locked(self.scenario_dir(key) / ".model.lock"):
            _sweep_tmp(self.offline_model_path(key))
            d = self.models_dir(key)
            if d.is_dir():
                for p in d.glob(".v*.json.*.tmp"):
                    p.unlink(missing_ok=True)
            yield

    def save_model(self, key: str, model) -> int:
        """Give ``model`` the next version, keep it as models/vN.json and make it the
        one in use (atomic rename). Call under :meth:`model_lock`. Returns N."""
        version = max(self.model_versions(key), default=0) + 1
        model.version = version
        model.learning_key = key
        write_json(self.models_dir(key) / f"v{version}.json", model)
        write_json(self.offline_model_path(key), model)
        return version

    def rollback_model(self, key: str, to: int | None = None) -> tuple[bool, Any]:
        """Put the version before the one in use (or ``to``) back in use.

        Going back from the first version, or ``to=0``, removes the model in
        use: the next eval runs on the scenario's own settings (every version
        stays in ``models/`` for ``--to N``). Returns ``(done, model)``;
        ``model`` is None when no model is in use afterwards, ``done`` False
        when there was nothing to go back to."""
        with self.model_lock(key):
            current = self.load_model(key)
            path = self.offline_model_path(key)
            if to is None:
                if current is None:
                    return False, None
                older = [v for v in self.model_versions(key) if v < current.version]
                to = older[-1] if older else 0
            if to == 0:
                if not path.exists():
                    return False, None
                path.unlink()
                return True, None
            model = self.load_model_version(key, to)
            if model is None:
                return False, None
            write_json(path, model)
            return True, model


def _final_name(pending: Path) -> str:
    """``.NAME.pending`` / ``.NAME.writing`` -> ``NAME``."""
    return pending.name[1:].removesuffix(_PENDING).removesuffix(_WRITING)


def _sweep_tmp(path: Path) -> None:
    """Remove the temp files (:mod:`swarm_engine.fsio` names them ``.NAME.*.tmp``)
    that a killed writer of ``path`` left; call with the lock that every writer
    of ``path`` holds, so none of them is alive."""
    with contextlib.suppress(OSError):
        for p in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            p.unlink(missing_ok=True)
