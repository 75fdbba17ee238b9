"""The Learning and Servers pages' data: what ``swarm learn status|show`` and
``swarm llama status|logs`` print, as JSON-able dicts.

Read-only except :func:`rollback`, which is ``swarm learn rollback`` (the
page asks for confirmation first). A key that does not exist is a LearnError
line; a corrupt store file is listed among ``problems`` and shown, not raised.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from swarm_engine.errors import ConfigError
from swarm_engine.learn.lora.active import read_active
from swarm_engine.learn.lora.active import versions as lora_versions
from swarm_engine.learn.offline import LearnError
from swarm_engine.learn.store import LearningStore
from swarm_engine.settings import engine_dir

__all__ = ["learning_keys", "learning_detail", "rollback", "servers", "server_log"]


def _store(root: Path | None) -> LearningStore:
    return LearningStore(root)


def learning_keys(root: Path | None = None) -> dict[str, Any]:
    """Every key of the store with its episode and session counts and the model in use."""
    store = _store(root)
    base = store.root / "scenarios"
    keys = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    rows = []
    for k in keys:
        stats = store.load_stats(k)
        m = store.load_model(k)
        rows.append({"key": k, "episodes": stats.episodes, "success_episodes": stats.success_episodes,
                     "sessions": len(store.sessions(k)), "model_version": m.version if m else None,
                     "model": m.summary() if m else None, "daemon": _daemon(store, k).get("state")})
    return {"root": str(store.root), "keys": rows, "problems": list(store.problems)}


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, TypeError, ValueError):
        return False


def _daemon(store: LearningStore, key: str) -> dict[str, Any]:
    path = store.scenario_dir(key) / "daemon.json"
    if not path.is_file():
        return {"state": "not started"}
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"state": "unreadable", "error": f"{path}: {exc}"}
    if not isinstance(d, dict):
        return {"state": "unreadable", "error": f"{path}: not an object"}
    d["running"] = _alive(d.get("pid")) and d.get("state") not in ("stopped", "failed")
    return d


def _model(m) -> dict[str, Any]:
    return {"version": m.version, "summary": m.summary(), "created": m.created, "episodes": m.episodes,
            "parameters": {"learning_weight": m.parameters.learning_weight,
                           "ngram_weight": m.parameters.ngram_weight, "prior_weight": m.prior_weight,
                           "initial_strategy": m.strategy_config.initial_strategy,
                           "maturity_threshold": m.strategy_config.maturity_threshold,
                           "error_rate_threshold": m.strategy_config.error_rate_threshold},
            "validation": m.validation, "changes": list(m.changes),
            "recommended_paths": [{"path": list(p.path), "success_rate": p.success_rate, "support": p.support}
                                  for p in m.recommended_paths]}


def learning_detail(key: str, root: Path | None = None) -> dict[str, Any]:
    """One key: sessions, every model version kept (the one in use marked), LoRA versions
    and the active adapter, the daemon's state."""
    store = _store(root)
    if not store.scenario_dir(key).is_dir() or key in ("", ".", ".."):
        raise LearnError(f"learning key '{key}': not in the store ({store.root / 'scenarios'})")
    stats = store.load_stats(key)
    current = store.load_model(key)
    models = []
    for v in reversed(store.model_versions(key)):
        m = store.load_model_version(key, v)
        if m is not None:
            models.append({**_model(m), "in_use": current is not None and current.version == v})
    sessions = []
    for p in store.sessions(key)[-50:]:
        meta, s = store.load_session(p)
        sessions.append({"name": p.name, "episodes": s.episodes, "success_episodes": s.success_episodes,
                         "scenario_path": meta.get("scenario_path"), "variant": meta.get("variant"),
                         "runs": meta.get("runs"), "seed": meta.get("seed")})
    return {"key": key, "dir": str(store.scenario_dir(key)), "episodes": stats.episodes,
            "success_episodes": stats.success_episodes, "sessions": sessions[::-1],
            "session_count": len(store.sessions(key)), "model_in_use": _model(current) if current else None,
            "models": models, "lora_versions": lora_versions(store, key), "lora_active": read_active(store, key),
            "daemon": _daemon(store, key), "problems": list(store.problems)}


def rollback(key: str, to: int | None = None, root: Path | None = None) -> dict[str, Any]:
    """``swarm learn rollback KEY [--to N]``: the version before (or ``to``) back in use."""
    store = _store(root)
    if not store.scenario_dir(key).is_dir():
        raise LearnError(f"learning key '{key}': not in the store ({store.root / 'scenarios'})")
    before = store.load_model(key)
    done, m = store.rollback_model(key, to)
    kept = ", ".join(f"v{v}" for v in store.model_versions(key)) or "none"
    if not done:
        what = f"no model version {to} kept" if to else "no offline model in use"
        raise LearnError(f"learning key '{key}': {what} (kept: {kept})")
    return {"key": key, "from": before.version if before else None, "to": m.version if m else None,
            "message": f"{key}: offline model {f'v{before.version}' if before else 'none'} -> "
                       f"{f'v{m.version}' if m else 'no model (the scenario own settings)'}; kept: {kept}"}


def _server_names(home: Path) -> list[str]:
    d = home / "llama"
    names = {p.stem for p in d.glob("*.json")} if d.is_dir() else set()
    logs = home / "logs"
    if logs.is_dir():
        names |= {p.stem.removeprefix("llama-") for p in logs.glob("llama-*.log")}
    return sorted(names | {"default"})


def _server(name: str, home: Path):
    try:
        from swarm_engine.llm.server import LlamaServer
    except ImportError as exc:
        raise ConfigError(f"the Servers page needs the 'llm' extra: pip install 'swarm-engine[llm]' ({exc})") from None
    return LlamaServer(name, home=home)


def servers(home: Path | None = None) -> dict[str, Any]:
    """``swarm llama status`` of every server name with a pid file or a log (and 'default')."""
    home = home or engine_dir()
    out = []
    for name in _server_names(home):
        s = _server(name, home).status(timeout=1.0).as_dict()
        slots = s.get("slots") or []
        s["busy_slots"] = sum(bool(x.get("is_processing")) for x in slots)
        out.append(s)
    return {"home": str(home), "servers": out}


def server_log(name: str, lines: int = 100, home: Path | None = None) -> dict[str, Any]:
    """The last ``lines`` lines of one server's log."""
    home = home or engine_dir()
    server = _server(name, home)
    if not server.log_path.exists():
        return {"name": name, "log": str(server.log_path), "lines": [], "missing": True}
    return {"name": name, "log": str(server.log_path), "lines": server.logs(lines), "missing": False}
