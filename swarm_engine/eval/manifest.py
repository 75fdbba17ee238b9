"""The run manifest of an eval report: what produced these numbers.

``build_manifest(result)`` is the report's ``manifest`` section (see
docs/scenarios.md, "Run manifest")::

    {engine {name, version, revision {commit, dirty} | null},
     scenario {id, file, sha256, variant, environment, native},
     seeds {base_seed, runs, requested, first, last},
     selector {strategy, ucb1_c, learning_weight, greedy_weight, ngram_weight,
               maturity_threshold, error_rate_threshold, granularity,
               learned_bonus, learned_prior},
     llm null | {provider, model, endpoints, answer, temperature, max_tokens, seed,
                 timeout, n_ctx, n_gpu_layers, parallel, extra, cache,
                 model_file {path, size, sha256} | null,
                 adapters [{path, scale, size, sha256}], adapter_version},
     jobs null | {requested, used, mode, reason},
     machine {os, python, cpu_count, cpu_model},
     trace (only from ``swarm eval --trace``: the file's absolute path, added by the CLI)}

Nothing here may fail an eval: no git, an unreadable model file or a
read-only cache leave ``null`` fields. A model file's sha256 is cached per
(path, mtime, size) in ``~/.swarm-engine/cache/sha256.json``, so a
multi-gigabyte GGUF is hashed once, not at every eval (0.8 s/GB measured on
this repository's 2-core machine, more from a cold disk).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec

from swarm_engine import fsio
from swarm_engine._version import __version__
from swarm_engine.errors import ConfigError, StoreError
from swarm_engine.settings import engine_dir

__all__ = ["build_manifest", "file_sha256", "source_revision", "cpu_model", "machine"]

_CACHE_ENTRIES = 256               # files remembered in the hash cache (oldest dropped)
_SECRET = ("key", "token", "secret", "password", "auth")


def cpu_model() -> str:
    """The ``model name`` of /proc/cpuinfo (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def source_revision() -> dict | None:
    """The git commit of the source tree the package runs from, and whether
    it has local changes; None outside a checkout (an installed wheel) or
    without git. Asked once per process."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)}


def machine() -> dict[str, Any]:
    return {"os": platform.platform(), "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model()}


# ---------------------------------------------------------------- file hashes

def _cache_path() -> Path:
    return engine_dir() / "cache" / "sha256.json"


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def file_sha256(path: str | os.PathLike, *, cache: Path | None = None) -> dict[str, Any] | None:
    """``{path, size, sha256}`` of a file, None when it cannot be read.

    The digest is remembered in ``cache`` (default ``~/.swarm-engine/cache/sha256.json``)
    under the resolved path with its ``mtime_ns`` and size, and reused while
    both are unchanged. Concurrent evals may each rewrite the cache (atomic
    writes; the last one wins): losing an entry costs one rehash, never a
    wrong digest."""
    p = Path(path).expanduser().resolve()
    try:
        st = p.stat()
    except OSError:
        return None
    cache = cache if cache is not None else _cache_path()
    entries = _read_cache(cache)
    key = str(p)
    hit = entries.get(key)
    if isinstance(hit, dict) and hit.get("mtime_ns") == st.st_mtime_ns and hit.get("size") == st.st_size \
            and isinstance(hit.get("sha256"), str):
        return {"path": key, "size": st.st_size, "sha256": hit["sha256"]}
    h = hashlib.sha256()
    try:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    digest = h.hexdigest()
    entries.pop(key, None)
    entries[key] = {"mtime_ns": st.st_mtime_ns, "size": st.st_size, "sha256": digest}
    try:
        fsio.write_json(cache, dict(list(entries.items())[-_CACHE_ENTRIES:]))
    except StoreError:
        pass                                  # a read-only home: hash again next time
    return {"path": key, "size": st.st_size, "sha256": digest}


# ---------------------------------------------------------------- sections

def _selector(sel: Any) -> dict[str, Any]:
    return {"strategy": sel.strategy, "ucb1_c": sel.ucb1_c, "learning_weight": sel.learning_weight,
            "greedy_weight": sel.greedy_weight, "ngram_weight": sel.ngram_weight,
            "maturity_threshold": sel.maturity_threshold, "error_rate_threshold": sel.error_rate_threshold,
            "granularity": sel.granularity, "learned_bonus": sel.bonus is not None,
            "learned_prior": sel.prior is not None}


def _local_file(name: str | None, base: Path | None) -> Path | None:
    """``name`` as an existing file: as given, else beside the scenario file."""
    if not name:
        return None
    p = Path(name).expanduser()
    if p.is_file():
        return p
    if base is not None and not p.is_absolute() and (base / p).is_file():
        return base / p
    return None


def _public(extra: dict[str, Any]) -> dict[str, Any]:
    """Backend options with anything that looks like a credential hidden."""
    return {k: "<hidden>" if any(s in k.lower() for s in _SECRET) else v for k, v in extra.items()}


def _llm(spec: Any, base: Path | None, adapter_version: int | None, cache: Path | None) -> dict[str, Any]:
    from swarm_engine.llm.lora_spec import parse_lora_spec

    model = _local_file(spec.model, base)
    adapters = []
    for text in spec.lora:
        try:
            lora = parse_lora_spec(text, source="[llm] lora")
        except ConfigError:                      # the backend refused it already; name it as written
            adapters.append({"path": text, "scale": None, "size": None, "sha256": None})
            continue
        found = _local_file(str(lora.path), base)
        info = file_sha256(found, cache=cache) if found is not None else None
        adapters.append({"path": str(lora.path), "scale": lora.effective_scale,
                         "size": info["size"] if info else None, "sha256": info["sha256"] if info else None})
    extra = _public(dict(spec.extra))
    return {"provider": spec.provider, "model": spec.model,
            "endpoints": [spec.endpoint] if spec.endpoint else list(spec.endpoints), "answer": spec.answer,
            "temperature": spec.temperature, "max_tokens": spec.max_tokens, "seed": spec.seed,
            "timeout": spec.timeout, "n_ctx": spec.n_ctx, "n_gpu_layers": spec.n_gpu_layers,
            "parallel": spec.parallel, "extra": extra,
            "cache": {k: v for k, v in extra.items() if "cache" in k.lower()},
            "model_file": file_sha256(model, cache=cache) if model is not None else None,
            "adapters": adapters, "adapter_version": adapter_version}


def build_manifest(result: Any, *, adapter_version: int | None = None, cache: Path | None = None) -> dict[str, Any]:
    """The ``manifest`` section for an :class:`~swarm_engine.eval.runner.EvalResult`.

    ``adapter_version``: the LoRA adapter version the learning store applied
    (``swarm eval`` knows it); ``cache``: the hash cache file (tests)."""
    sc = result.scenario
    n = result.runs
    base = Path(sc.path).resolve().parent if sc.path else None
    llm = _llm(sc.spec.llm, base, adapter_version, cache) if sc.llm_managed else None
    return {
        "engine": {"name": "swarm-engine", "version": __version__, "revision": source_revision()},
        "scenario": {"id": sc.id, "file": sc.path, "sha256": sc.sha256, "variant": sc.variant,
                     "environment": sc.spec.environment.env_type, "native": bool(sc.binding.native)},
        "seeds": {"base_seed": result.base_seed, "runs": n, "requested": result.requested,
                  "first": int(result.seeds[0]) if n else None, "last": int(result.seeds[-1]) if n else None},
        "selector": _selector(sc.config.selector),
        "llm": llm,
        "jobs": dict(result.jobs) if getattr(result, "jobs", None) else None,
        "machine": machine(),
    }
