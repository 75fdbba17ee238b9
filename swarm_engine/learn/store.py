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
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
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
        """Session folders of ``key``, oldest first."""
        d = self.scenario_dir(key) / "sessions"
        if not d.is_dir():
            return []
        return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))

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

    def _merge_file(self, path: Path, stats: LearnStats) -> LearnStats:
        with self._locked(path.with_name(f".{path.name}.lock")):
            merged = self._read_stats(path).merge(stats)
            write_json(path, merged)
        return merged

    # ------------------------------------------------------------------ API
    def write_session(self, key: str, meta: dict[str, Any], stats: LearnStats,
                      decisions: list[dict] | None = None) -> Path:
        """sessions/<UTC timestamp>-<pid>/{meta.json, stats.json[, decisions.jsonl]};
        returns the folder. meta.json is written last: a session without it is
        still being written (readers skip it)."""
        base = self.scenario_dir(key) / "sessions"
        base.mkdir(parents=True, exist_ok=True)
        stem = f"{_stamp()}-{os.getpid()}"
        for n in range(1000):
            d = base / (stem if n == 0 else f"{stem}-{n}")
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
        write_json(d / "meta.json", meta)
        return d

    def merge_into_scenario(self, key: str, stats: LearnStats) -> LearnStats:
        """Add ``stats`` into scenarios/<key>/stats.json (locked); returns the merged total."""
        return self._merge_file(self.stats_path(key), stats)

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
