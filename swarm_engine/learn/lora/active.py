"""Adapter versions of a learning key and the pointer to the active one::

    <root>/scenarios/<key>/lora/
      v1/ adapter.gguf  metrics.json  train.jsonl  heldout.jsonl  adapter.safetensors
      v2/ ...
      active.json       {"version": 2, "path": "<root>/scenarios/<key>/lora/v2/adapter.gguf", ...}

``active.json`` is written atomically, so a reader (``swarm eval``, the
learning daemon's blue-green serving) sees the old pointer or the new one,
never half of one. Its ``path`` is absolute; a relative one is read relative
to the ``lora/`` folder.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from swarm_engine.errors import StoreError
from swarm_engine.fsio import write_json

__all__ = ["ADAPTER_FILE", "ACTIVE_FILE", "lora_root", "versions", "reserve_version", "set_active",
           "read_active", "pointer_path", "active_adapter", "active_version"]

log = logging.getLogger("swarm_engine.learn")

ADAPTER_FILE = "adapter.gguf"
ACTIVE_FILE = "active.json"
_VERSION_DIR = re.compile(r"^v(\d+)$")


def lora_root(store: Any, key: str) -> Path:
    """``<root>/scenarios/<key>/lora`` of a :class:`~swarm_engine.learn.store.LearningStore`."""
    return Path(store.scenario_dir(key)) / "lora"


def versions(store: Any, key: str) -> list[int]:
    """Versions that hold an adapter file, ascending."""
    root = lora_root(store, key)
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        m = _VERSION_DIR.match(d.name)
        if m and (d / ADAPTER_FILE).is_file():
            out.append(int(m.group(1)))
    return sorted(out)


def reserve_version(store: Any, key: str) -> tuple[int, Path]:
    """Create the next free ``vN/`` folder (``mkdir`` is the lock: two trainers
    never get the same N) and return (N, folder)."""
    root = lora_root(store, key)
    try:
        root.mkdir(parents=True, exist_ok=True)
        taken = [int(m.group(1)) for d in root.iterdir() if (m := _VERSION_DIR.match(d.name))]
        n = max(taken, default=0) + 1
        while True:
            d = root / f"v{n}"
            try:
                d.mkdir()
                return n, d
            except FileExistsError:
                n += 1
    except OSError as exc:
        raise StoreError(f"cannot make an adapter folder under {root}: {exc.strerror or exc}") from exc


def set_active(store: Any, key: str, version: int, **extra: Any) -> Path:
    """Point ``lora/active.json`` at ``vN/adapter.gguf`` (atomically); returns the adapter path.

    Raises
    ------
    StoreError
        That version has no adapter file.
    """
    path = lora_root(store, key) / f"v{int(version)}" / ADAPTER_FILE
    if not path.is_file():
        raise StoreError(f"{path}: no such adapter (versions: {versions(store, key) or 'none'})")
    write_json(lora_root(store, key) / ACTIVE_FILE,
                      {"version": int(version), "path": str(path.resolve()),
                       "activated_at": datetime.now(UTC).isoformat(timespec="seconds"), **extra})
    return path.resolve()


def pointer_path(pointer: Path, data: dict) -> Path:
    """The adapter file an ``active.json`` at ``pointer`` names: a relative path is
    read against ``lora/``; an absolute one that no longer exists (the learning
    root was moved or copied) falls back to this store's ``vN/adapter.gguf``."""
    path = Path(data["path"])
    if not path.is_absolute():
        path = pointer.parent / path
    version = data.get("version")
    local = pointer.parent / f"v{version}" / ADAPTER_FILE
    if not path.is_file() and isinstance(version, int) and local.is_file():
        path = local
    return path


def read_active(store: Any, key: str) -> dict | None:
    """The pointer as written (``version``, ``path`` made absolute, ...) or None
    when there is none; a corrupt or dangling pointer is reported (one warning
    line, and in ``store.problems`` when the store keeps a list) and read as None."""
    f = lora_root(store, key) / ACTIVE_FILE
    try:
        data = msgspec.json.decode(f.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError) as exc:
        _problem(store, f"{f}: unreadable adapter pointer ({exc}); no adapter is active")
        return None
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        _problem(store, f"{f}: expected {{\"version\": N, \"path\": ...}}; no adapter is active")
        return None
    path = pointer_path(f, data)
    if not path.is_file():
        _problem(store, f"{f}: the active adapter {path} is missing; no adapter is active")
        return None
    return {**data, "path": str(path)}


def active_adapter(store: Any, key: str) -> Path | None:
    """The active LoRA adapter of ``key`` (a GGUF file), or None.

    For ``swarm eval``: in process, load it with
    ``LlamaCppInvoker(lora=[(path, 1.0)])`` or switch to it at run time with
    ``invoker.set_lora({path: 1.0})``; for llama-server, start a server (or
    the standby of a blue-green pair) with ``--lora path``.
    """
    data = read_active(store, key)
    return Path(data["path"]) if data else None


def active_version(store: Any, key: str) -> int | None:
    """The version number of the active adapter, or None."""
    data = read_active(store, key)
    v = data.get("version") if data else None
    return v if isinstance(v, int) else None


def _problem(store: Any, line: str) -> None:
    problems = getattr(store, "problems", None)
    if isinstance(problems, list):
        problems.append(line)
    log.warning("%s", line)
