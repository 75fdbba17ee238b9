"""An LLM-managed single run, live: the decisions it streams (the real SmolLM2 in
process, a few ticks), the one-line error of a backend that does not answer,
and the feed's caps (no model)."""

from __future__ import annotations

import json

import pytest

from swarm_engine.gui.app import create_app
from swarm_engine.gui.decisions import PROMPT_CHARS, DecisionFeed
from tests.gui.llm_world import THRESHOLD, make_llm_state, make_llm_world, skip_without_model

FALLBACKS = {"failed", "unsure", "taken"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from starlette.testclient import TestClient

    state = make_llm_state(make_llm_world(tmp_path_factory.mktemp("llm-gui")))
    with TestClient(create_app(state)) as c:
        yield c
    state.shutdown()


def _sid(client, file: str) -> str:
    return next(s["id"] for s in client.get("/api/scenarios").json()["scenarios"] if s["file"] == file)


def _events(client, path: str) -> list[dict]:
    with client.stream("GET", path) as r:
        body = "".join(r.iter_text())
    return [json.loads(line[len("data: "):]) for line in body.splitlines() if line.startswith("data: ")]


def _rows(events: list[dict]) -> dict[int, dict]:
    """Every decision as the page holds it: its rows merged by id, first row kept for the prompt."""
    out: dict[int, dict] = {}
    for e in events:
        if e["type"] == "decisions":
            for row in e["decisions"]:
                if row["id"] in out:
                    assert "prompt" not in row and "candidates" not in row      # sent once per decision
                else:
                    assert "prompt" in row and "candidates" in row
                out.setdefault(row["id"], {}).update(row)
    return out


def test_an_llm_run_streams_its_decisions(client):
    skip_without_model()
    r = client.post("/api/runs", json={"scenario": _sid(client, "tiny_llm.toml"), "seed": 3, "ticks_per_second": 0})
    assert r.status_code == 201 and r.json()["llm_managed"]
    events = _events(client, f"/api/runs/{r.json()['id']}/events")
    states = [e["state"] for e in events if e["type"] == "state"]
    assert states[:2] == ["loading model", "running"]
    done = next(e for e in events if e["type"] == "done")
    rows = _rows(events)
    assert rows, "no decision was streamed"
    for d in rows.values():
        assert [m["role"] for m in d["prompt"]] == ["system", "user"]
        assert all(0 < len(m["content"]) <= PROMPT_CHARS + 40 for m in d["prompt"])
        assert len(d["candidates"]) >= 2 and all({"action", "target", "arg"} <= set(c) for c in d["candidates"])
        assert d["answer_format"] == "text"
        if d["answer"] is None:                                  # still in flight when the run ended
            continue
        assert isinstance(d["answer"], str) and 0 <= d["choice"] < len(d["candidates"])
        assert 0.0 <= d["confidence"] <= 1.0
        # every answer collected is applied or says why not
        assert d["applied"] != (d["fallback"] is not None)
        if d["fallback"] is not None:
            assert d["fallback"] in FALLBACKS and d["error"] is None   # a failed call has no answer
        else:
            assert d["confidence"] >= THRESHOLD                        # the threshold is checked first
    llm = done["llm"]
    assert llm["calls"] >= len([d for d in rows.values() if d["answer"] is not None])
    assert llm["applied"] == sum(d["applied"] for d in rows.values())
    assert llm["unsure"] == sum(d["fallback"] == "unsure" for d in rows.values())
    assert llm["latency_ms_p50"] > 0 and llm["in_flight"] == 0
    ticks = [e for e in events if e["type"] == "tick"]
    assert ticks and all("llm" in t for t in ticks)


def test_a_dead_backend_is_one_line(client):
    r = client.post("/api/runs", json={"scenario": _sid(client, "dead_llm.toml"), "seed": 1})
    assert r.status_code == 201
    rid = r.json()["id"]
    events = _events(client, f"/api/runs/{rid}/events")
    err = next(e for e in events if e["type"] == "error")
    assert "llama-server is not answering" in err["error"] and "\n" not in err["error"]
    assert [e["state"] for e in events if e["type"] == "state"] == ["loading model"]
    info = client.get(f"/api/runs/{rid}").json()
    assert info["state"] == "failed" and info["error"] == err["error"]
    assert client.get("/api/info").status_code == 200                   # the server stays up


def test_a_planned_graph_without_a_provider_is_refused(client):
    r = client.post("/api/runs", json={"scenario": _sid(client, "planned_none.toml"), "seed": 1})
    assert r.status_code == 400 and "provider" in r.json()["error"]


# ---------------------------------------------------------------- the feed, no model

def _record(tick: int, worker: int, content: str = "x") -> dict:
    return {"tick": tick, "worker": worker, "messages": [{"role": "system", "content": content},
                                                         {"role": "user", "content": "u"}],
            "choices": [{"action": "A", "target": None, "arg": None}, {"action": "B", "target": "t", "arg": None}],
            "answer": None, "choice": None, "confidence": None, "applied": False, "fallback": None, "error": None,
            "executed": None, "outcome": None, "answer_format": "label"}


def test_feed_sends_a_prompt_once_then_only_what_changed():
    records = [_record(1, 0, "s" * (PROMPT_CHARS + 500))]
    feed = DecisionFeed(records)
    (first,) = feed.changes()
    assert first["prompt"][0]["content"].startswith("s" * PROMPT_CHARS)
    assert first["prompt"][0]["content"].endswith("[500 more characters]")
    assert feed.changes() == []                                       # nothing changed
    records[0].update(answer="B", choice=1, confidence=0.2, fallback="unsure")
    (upd,) = feed.changes()
    assert upd["id"] == 0 and upd["fallback"] == "unsure" and "prompt" not in upd
    records[0].update(executed={"action": "A", "target": None, "arg": None}, outcome="ok")
    assert feed.changes()[0]["outcome"] == "ok"
    assert feed._open == {}                                            # acted on: settled, no longer looked at


def test_feed_caps_a_tick_updates_first_then_the_newest():
    records = [_record(1, w) for w in range(3)]
    feed = DecisionFeed(records, per_tick=4)
    assert len(feed.changes()) == 3
    for r in records:
        r["answer"] = "A"
    records += [_record(2, 10 + w) for w in range(5)]
    rows = feed.changes()
    assert [r["id"] for r in rows] == [0, 1, 2, 7]                    # the updates, then the newest new one
    assert feed.not_shown == 4
    records[7]["answer"] = "B"
    assert [r["id"] for r in feed.changes()] == [7]                   # the ones never shown are not followed


def test_feed_stops_following_a_record_once_its_worker_asks_again():
    records = [_record(1, 0)]
    feed = DecisionFeed(records)
    feed.changes()
    records.append(_record(3, 0))
    assert [r["id"] for r in feed.changes()] == [1]
    assert list(feed._open) == [1]
