"""The report's run manifest (swarm_engine/eval/manifest.py): every section,
the model file's hash and its cache, and no failure without git."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from swarm_engine.eval import build_report, load_scenario
from swarm_engine.eval import manifest as mf
from swarm_engine.eval.runner import run_eval
from tests.paths import TROUBLESHOOTING

REPORT_KEYS = ["schema_version", "engine", "scenario", "config_summary", "seed_info", "summary", "runs"]


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SWARM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _llm_scenario(tmp_path, model: str = "model.gguf"):
    text = TROUBLESHOOTING.read_text(encoding="utf-8").replace(
        'provider = "none"', f'provider = "llama-cpp"\nmodel = "{model}"\nlora = ["adapter.gguf:0.5"]\n'
        'extra = {cache_prompt = false, n_cache_reuse = 32, api_key = "s3cret"}', 1)
    path = tmp_path / "llm.toml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "model.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 64)
    (tmp_path / "adapter.gguf").write_bytes(b"lora bytes")
    return load_scenario(path)


def _result(sc, runs: int = 3, seed: int = 5):
    """What build_manifest reads of an EvalResult, without running the LLM."""
    seeds = np.arange(seed, seed + runs, dtype=np.uint64)
    return SimpleNamespace(scenario=sc, runs=runs, requested=runs, base_seed=seed, seeds=seeds)


def test_every_report_carries_a_manifest_and_keeps_its_keys():
    sc = load_scenario(TROUBLESHOOTING)
    report = build_report(run_eval(sc, 4, 9))
    assert list(report)[: len(REPORT_KEYS)] == REPORT_KEYS
    m = report["manifest"]
    assert set(m) == {"engine", "scenario", "seeds", "selector", "llm", "jobs", "machine"}
    assert m["jobs"] == {"requested": 1, "used": 1, "mode": "serial", "reason": None}
    assert m["engine"]["version"] == report["engine"]["version"]
    assert m["scenario"]["sha256"] == hashlib.sha256(TROUBLESHOOTING.read_bytes()).hexdigest()
    assert m["scenario"]["variant"] is None and m["scenario"]["native"] is True
    assert m["seeds"] == {"base_seed": 9, "runs": 4, "requested": 4, "first": 9, "last": 12}
    assert m["selector"]["strategy"] == sc.config.selector.strategy
    assert m["selector"]["learned_bonus"] is False and m["llm"] is None
    assert set(m["machine"]) == {"os", "python", "cpu_count", "cpu_model"}
    assert m["machine"]["cpu_count"] == os.cpu_count()
    json.dumps(report)                                       # plain JSON throughout


def test_llm_manifest_names_model_adapters_backend_and_cache(tmp_path):
    sc = _llm_scenario(tmp_path)
    m = mf.build_manifest(_result(sc), adapter_version=3, cache=tmp_path / "cache.json")["llm"]
    model = tmp_path / "model.gguf"
    assert m["provider"] == "llama-cpp" and m["model"] == "model.gguf"
    assert m["model_file"] == {"path": str(model.resolve()), "size": model.stat().st_size,
                               "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    assert m["adapters"] == [{"path": "adapter.gguf", "scale": 0.5, "size": 10,
                              "sha256": hashlib.sha256(b"lora bytes").hexdigest()}]
    assert m["adapter_version"] == 3
    assert m["cache"] == {"cache_prompt": False, "n_cache_reuse": 32}
    assert m["extra"]["api_key"] == "<hidden>" and "s3cret" not in json.dumps(m)


def test_a_model_that_is_no_file_has_no_hash(tmp_path):
    sc = _llm_scenario(tmp_path, model="smollm2:135m")
    m = mf.build_manifest(_result(sc), cache=tmp_path / "cache.json")["llm"]
    assert m["model"] == "smollm2:135m" and m["model_file"] is None


def test_the_hash_is_cached_per_path_mtime_and_size(tmp_path, monkeypatch):
    f = tmp_path / "big.gguf"
    f.write_bytes(b"x" * 1000)
    cache = tmp_path / "cache" / "sha256.json"
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(mf.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    first = mf.file_sha256(f, cache=cache)
    assert first["sha256"] == real(b"x" * 1000).hexdigest() and len(calls) == 1
    assert mf.file_sha256(f, cache=cache) == first and len(calls) == 1        # from the cache
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    assert mf.file_sha256(f, cache=cache) == first and len(calls) == 2        # touched: hashed again
    f.write_bytes(b"y" * 1001)
    assert mf.file_sha256(f, cache=cache)["sha256"] == real(b"y" * 1001).hexdigest() and len(calls) == 3
    assert list(json.loads(cache.read_text())) == [str(f.resolve())]
    assert mf.file_sha256(tmp_path / "missing", cache=cache) is None


def test_a_corrupt_or_unwritable_cache_never_fails(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"abc")
    cache = tmp_path / "cache.json"
    cache.write_text("{not json")
    assert mf.file_sha256(f, cache=cache)["sha256"] == hashlib.sha256(b"abc").hexdigest()
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    assert mf.file_sha256(f, cache=blocked / "cache.json")["sha256"] == hashlib.sha256(b"abc").hexdigest()


def test_no_git_no_failure(monkeypatch):
    def no_git(*a, **kw):
        raise FileNotFoundError("git")

    mf.source_revision.cache_clear()
    monkeypatch.setattr(mf.subprocess, "run", no_git)
    try:
        assert mf.source_revision() is None
        report = build_report(run_eval(load_scenario(TROUBLESHOOTING), 2, 1), include_runs=False)
        assert report["manifest"]["engine"]["revision"] is None
    finally:
        mf.source_revision.cache_clear()


def test_the_revision_is_the_checkouts_when_there_is_one():
    root = mf.Path(mf.__file__).resolve().parents[2]
    if not (root / ".git").exists() or shutil.which("git") is None:
        pytest.skip("the package does not run from a git checkout here")
    rev = mf.source_revision()
    # in a checkout the revision must be found (a None here is a bug, not a skip)
    assert rev is not None
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert rev["commit"] == head.strip() and isinstance(rev["dirty"], bool)


def test_swarm_eval_writes_the_manifest(subprocess_env, tmp_path):
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-c", "from swarm_engine.cli.main import main; main()", "eval",
                           str(TROUBLESHOOTING), "-n", "5", "-q", "-o", str(out)], capture_output=True, text=True,
                          cwd=tmp_path, env={**subprocess_env, "SWARM_HOME": str(tmp_path)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["manifest"]["seeds"]["runs"] == 5
    assert report["manifest"]["scenario"]["file"] == str(TROUBLESHOOTING)
