"""Suite ``llm`` against the real model: the label rows and their limits.

The in-process part runs the engine beside a bare ``llama_decode`` loop over
the same tokens; the llama-server part posts label answers through the
invoker and through a bare httpx loop, and reads the server's own timings.
Speeds are not asserted (shared machines): the rows must run, answer validly
and carry the ratios ``swarm-bench`` prints.
"""

from __future__ import annotations

import importlib.util

import pytest

from swarm_engine.bench.settings import Settings

needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                     reason="llama-cpp-python is not installed (the 'llm' extra)")


def _server_skip() -> str | None:
    if importlib.util.find_spec("httpx") is None:
        return "httpx is not installed (the 'llm' extra)"
    from swarm_engine.llm.models import server_unavailable

    return server_unavailable()


needs_server = pytest.mark.skipif(_server_skip() is not None, reason=_server_skip() or "")


@needs_llama_cpp
def test_in_process_rows_beside_a_bare_decode_loop():
    from swarm_engine.bench import llm_inprocess

    out = llm_inprocess.run(Settings.quick_settings().with_(repeat=1, llm_workers=1), lambda _m: None)
    assert set(out["decisions_per_s"]) == set(llm_inprocess.ROWS)
    assert all(d["median"] > 0 for d in out["decisions_per_s"].values())
    for ratio in ("of_limit", "batched_over_sequential", "label_over_json_sequential"):
        assert out[ratio]["median"] > 0
    # the bare loop decodes the engine's own tokens and reads the same labels
    assert out["bare_agreement"] >= 0.75
    assert 0 < out["tokens_after_system_prompt"] < out["prompt_tokens_per_decision"]


@needs_server
def test_server_label_rows_and_the_servers_own_rate(tmp_path):
    from swarm_engine.bench.llm import run_rows
    from swarm_engine.llm.server import start_server

    with start_server(home=tmp_path, parallel=2, kvu=False, threads=1, ctx_size=8192, timeout=120) as srv:
        results = run_rows(srv.url, rows=("invoker-label", "bare-label"), n_slots=2, workers=2, ticks=2)
    by = {r.label: r for r in results}
    for r in results:
        assert r.decisions == 4 and r.valid == 4 and r.errors == 0, r.row()
    assert by["invoker-label"].completion_tokens == 4           # one token per decision
    limit = by["bare-label"].server_decisions_per_s
    assert limit is not None and limit > 0
    assert by["bare-label"].row()["server_decisions_per_s"] == round(limit, 3)
