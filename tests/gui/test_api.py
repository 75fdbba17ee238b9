"""Every endpoint of the dashboard's API, through Starlette's TestClient
(httpx) against the app: what it answers, and the one-line error it gives
for bad input while the server stays up."""

from __future__ import annotations

import json

import pytest

from swarm_engine.gui.reports import difference
from tests.conftest import wait_for


def _sid(client, file: str) -> str:
    return next(s["id"] for s in client.get("/api/scenarios").json()["scenarios"] if s["file"] == file)


def _events(client, path: str) -> list[dict]:
    with client.stream("GET", path) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    return [json.loads(line[len("data: "):]) for line in body.splitlines() if line.startswith("data: ")]


def test_index_and_static_files(client):
    assert "swarm-engine dashboard" in client.get("/").text
    for f in ("app.js", "graph.js", "app.css"):
        assert client.get(f"/static/{f}").status_code == 200


def test_info(client, world):
    info = client.get("/api/info").json()
    assert info["reports_dir"] == str(world["reports"])
    assert info["defaults"] == {"runs": 500, "seed": 42}
    assert {"command line", "built-in", "user", "project"} == {p["origin"] for p in info["places"]}


def test_scenarios_list_the_builtin_ones_and_the_broken_one(client):
    rows = client.get("/api/scenarios").json()["scenarios"]
    files = {r["file"]: r for r in rows}
    ts = files["troubleshooting.toml"]
    assert ts["origin"] == "built-in" and ts["goal"].startswith("One service is failing")
    assert [a["name"] for a in ts["actions"]] == ["CheckStatus", "ReadLogs", "AnalyzeMetrics", "Diagnose", "Restart"]
    assert {"complex", "flaky", "swarm"} <= {v["name"] for v in ts["variants"]}
    g = ts["graph"]
    assert g["start"] == ["CheckStatus"] and "Restart" in g["terminal"]
    assert {"from": "CheckStatus", "to": "ReadLogs"}.items() <= g["edges"][0].items()
    broken = files["broken.toml"]
    assert broken["origin"] == "command line"
    assert "broken.toml" in broken["error"] and "task.goal" in broken["error"] and "\n" not in broken["error"]


def test_one_scenario_with_a_variant_and_an_unknown_one(client):
    sid = _sid(client, "troubleshooting.toml")
    assert client.get(f"/api/scenarios/{sid}", params={"variant": "swarm"}).json()["workers"] == 16
    bad = client.get(f"/api/scenarios/{sid}", params={"variant": "nope"}).json()
    assert "unknown variant 'nope'" in bad["error"]
    r = client.get("/api/scenarios/deadbeef0000")
    assert r.status_code == 400 and "no scenario with id 'deadbeef0000'" in r.json()["error"]


def test_an_eval_runs_streams_its_progress_and_writes_its_report(client, world):
    sid = _sid(client, "troubleshooting.toml")
    r = client.post("/api/evals", json={"scenario": sid, "runs": 5000, "seed": 3})
    assert r.status_code == 201
    job = r.json()
    events = _events(client, f"/api/evals/{job['id']}/events")
    progress = [e for e in events if e["type"] == "progress"]
    assert progress and progress[-1]["done"] == 5000 and progress[-1]["actions"] > 0
    assert progress[-1]["actions_per_sec"] > 0
    lo, hi = progress[-1]["ci95"]
    assert lo <= progress[-1]["success_rate"] <= hi
    done = next(e for e in events if e["type"] == "done")
    assert events[-1]["type"] == "end"
    report = json.loads((world["reports"] / done["report"]).read_text())
    assert report["summary"]["runs"] == 5000 and report["seed_info"]["run_seeds"] == [3, 5002]
    assert report["summary"]["successes"] == progress[-1]["successes"]
    info = client.get(f"/api/evals/{job['id']}").json()
    assert info["state"] == "done" and info["report"] == done["report"]
    assert client.get("/api/evals").json()["evals"][0]["id"] == job["id"]


def test_the_eval_from_the_page_equals_the_library_eval(client, world):
    """Chunked for live progress, the report is still the one eval's, run for run."""
    from swarm_engine.eval.loader import load_scenario
    from swarm_engine.eval.report import build_report
    from swarm_engine.eval.runner import run_eval
    from tests.paths import TROUBLESHOOTING

    sid = _sid(client, "troubleshooting.toml")
    job = client.post("/api/evals", json={"scenario": sid, "runs": 3000, "seed": 11, "variant": "flaky"}).json()
    done = next(e for e in _events(client, f"/api/evals/{job['id']}/events") if e["type"] == "done")
    got = json.loads((world["reports"] / done["report"]).read_text())
    want = build_report(run_eval(load_scenario(TROUBLESHOOTING, "flaky"), 3000, 11))
    strip = lambda runs: [{k: v for k, v in r.items() if k != "wall_seconds"} for r in runs]
    assert strip(got["runs"]) == strip(want["runs"])
    assert got["summary"]["success_rate_ci95"] == want["summary"]["success_rate_ci95"]


def test_stop_an_eval(client):
    sid = _sid(client, "troubleshooting.toml")
    job = client.post("/api/evals", json={"scenario": sid, "runs": 5_000_000, "seed": 0}).json()
    wait_for(lambda: (client.get(f"/api/evals/{job['id']}").json().get("progress") or {}).get("done", 0) > 0,
             "the eval to start")
    assert client.post(f"/api/evals/{job['id']}/stop", json={}).status_code == 200
    done = next(e for e in _events(client, f"/api/evals/{job['id']}/events") if e["type"] == "done")
    assert done["state"] == "stopped" and 0 < done["summary"]["runs"] < 5_000_000


@pytest.mark.parametrize("body, where", [
    ({"runs": 0}, "--runs"),
    ({"runs": "many"}, "--runs"),
    ({"seed": -1}, "--seed"),
    ({"seed": 2 ** 64 - 1, "runs": 2}, "--seed"),
    ({"variant": "nope"}, "unknown variant 'nope'"),
    ({"provider": "telepathy"}, "llm.provider"),
])
def test_bad_eval_requests_are_one_line(client, body, where):
    sid = _sid(client, "troubleshooting.toml")
    r = client.post("/api/evals", json={"scenario": sid, **body})
    assert r.status_code == 400 and where in r.json()["error"] and "\n" not in r.json()["error"]


def test_an_eval_of_the_broken_scenario_and_a_bad_body(client):
    r = client.post("/api/evals", json={"scenario": _sid(client, "broken.toml")})
    assert r.status_code == 400 and "task.goal" in r.json()["error"]
    r = client.post("/api/evals", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    assert client.get("/api/evals/e999").status_code == 404
    assert client.post("/api/evals/e999/stop", json={}).status_code == 404
    assert client.get("/api/evals/e999/events").status_code == 404
    assert client.get("/api/info").status_code == 200            # still up


def test_a_live_run_streams_ticks_and_its_graph(client):
    sid = _sid(client, "troubleshooting.toml")
    r = client.post("/api/runs", json={"scenario": sid, "seed": 5, "variant": "complex", "ticks_per_second": 0})
    assert r.status_code == 201
    rid = r.json()["id"]
    events = _events(client, f"/api/runs/{rid}/events")
    ticks = [e for e in events if e["type"] == "tick"]
    done = next(e for e in events if e["type"] == "done")
    assert ticks and ticks[-1]["nodes"] >= ticks[0]["nodes"] and ticks[-1]["actions"] == done["actions"]
    assert set(ticks[-1]["workers"]) >= {"idle", "acted", "done"}
    g = client.get(f"/api/runs/{rid}/graph", params={"limit": 5, "workers": 2}).json()
    assert len(g["nodes"]) == min(5, g["total_nodes"]) and g["nodes"][0]["parent"] == -1
    assert {n["state"] for n in g["nodes"]} <= {"open", "assigned", "ok", "fail"}
    assert len(g["workers"]) == 2 and g["total_workers"] == 4
    info = client.get(f"/api/runs/{rid}").json()
    assert info["state"] == "done" and info["result"]["verdict"] == done["verdict"]
    assert client.get("/api/runs").json()["runs"][0]["id"] == rid


def test_a_paced_run_can_be_sped_up_and_stopped(client):
    sid = _sid(client, "troubleshooting.toml")
    rid = client.post("/api/runs", json={"scenario": sid, "seed": 1, "ticks_per_second": 1}).json()["id"]
    assert client.post(f"/api/runs/{rid}/speed", json={"ticks_per_second": 2}).json()["ticks_per_second"] == 2
    bad = client.post(f"/api/runs/{rid}/speed", json={"ticks_per_second": -3})
    assert bad.status_code == 400 and "ticks_per_second" in bad.json()["error"]
    assert client.post(f"/api/runs/{rid}/stop", json={}).status_code == 200
    done = next(e for e in _events(client, f"/api/runs/{rid}/events") if e["type"] == "done")
    assert done["verdict"] in ("stopped", "success")
    assert client.get("/api/runs/r999/graph").status_code == 404
    assert client.get(f"/api/runs/{rid}/graph", params={"limit": "lots"}).status_code == 400


def test_reports_list_ours_and_name_the_one_that_is_not(client):
    rows = {r["ref"]: r for r in client.get("/api/reports").json()["reports"]}
    assert rows["baseline.json"]["runs"] == 400 and rows["complex.json"]["variant"] == "complex"
    assert "not a swarm eval report" in rows["not-ours.json"]["error"]


def test_a_report_with_its_histograms(client):
    rep = client.get("/api/report", params={"ref": "complex.json"}).json()
    assert rep["summary"]["runs"] == 400 and rep["run_count"] == 400
    for name in ("ticks", "actions"):
        h = rep["histograms"][name]
        assert sum(h["counts"]) == 400 and len(h["edges"]) == len(h["counts"]) + 1
    assert sum(rep["reasons"].values()) == 400
    assert rep["ci95_check"] == pytest.approx(rep["summary"]["success_rate_ci95"])
    bad = client.get("/api/report", params={"ref": "not-ours.json"})
    assert bad.status_code == 400 and "not a swarm eval report" in bad.json()["error"]
    for ref in ("../etc/passwd", "missing.json", ""):
        assert client.get("/api/report", params={"ref": ref}).status_code == 400


def test_the_run_table_filters(client):
    runs = lambda **q: client.get("/api/report/runs", params={"ref": "baseline.json", **q}).json()
    all_ = runs(limit=1000)
    assert all_["total"] == all_["matched"] == 400 and len(all_["runs"]) == 400
    failed = runs(status="failed", limit=1000)
    assert all(not r["success"] for r in failed["runs"])
    assert failed["matched"] + runs(status="success")["matched"] == 400
    by_reason = runs(reason="success")
    assert by_reason["matched"] == 400 - failed["matched"]
    one = runs(seed="50")
    assert one["matched"] == 1 and one["runs"][0]["seed"] == 50
    page = runs(offset=390, limit=100)
    assert [r["index"] for r in page["runs"]] == list(range(390, 400))
    assert client.get("/api/report/runs", params={"ref": "baseline.json", "status": "odd"}).status_code == 400
    assert client.get("/api/report/runs", params={"ref": "baseline.json", "seed": "x"}).status_code == 400


def test_compare_two_reports(client):
    d = client.get("/api/compare", params=[("ref", "baseline.json"), ("ref", "complex.json")]).json()
    assert d["baseline"] == "baseline.json"
    vs = d["reports"][1]["vs_baseline"]
    assert vs["actions"]["significant"] and vs["actions"]["difference"] > 0   # 12 services cost more actions
    assert "significant" in vs["success_rate"] and vs["success_rate"]["ci95"][0] <= vs["success_rate"]["difference"]
    assert client.get("/api/compare", params={"ref": "baseline.json"}).status_code == 400
    assert client.get("/api/compare", params=[("ref", "baseline.json"), ("ref", "not-ours.json")]).status_code == 400


def test_difference_of_two_rates():
    same = difference(50, 100, 50, 100)
    assert same["difference"] == 0 and not same["significant"] and same["p_value"] == pytest.approx(1.0)
    far = difference(10, 100, 90, 100)
    assert far["significant"] and far["p_value"] < 1e-10 and far["ci95"][0] > 0.6
    close = difference(48, 100, 55, 100)
    assert not close["significant"] and close["ci95"][0] < 0 < close["ci95"][1]


def test_learning_keys_detail_and_rollback(client):
    keys = client.get("/api/learning").json()["keys"]
    assert [k["key"] for k in keys] == ["user_troubleshooting"] and keys[0]["model_version"] == 2
    d = client.get("/api/learning/user_troubleshooting").json()
    assert [m["version"] for m in d["models"]] == [2, 1] and d["models"][0]["in_use"]
    assert d["model_in_use"]["recommended_paths"][0]["path"][0] == "CheckStatus"
    assert d["daemon"]["state"] == "not started" and d["lora_active"] is None
    r = client.post("/api/learning/user_troubleshooting/rollback", json={})
    assert r.status_code == 400 and "confirm" in r.json()["error"]
    out = client.post("/api/learning/user_troubleshooting/rollback", json={"confirm": True}).json()
    assert (out["from"], out["to"]) == (2, 1)
    assert client.get("/api/learning").json()["keys"][0]["model_version"] == 1
    r = client.post("/api/learning/user_troubleshooting/rollback", json={"confirm": True, "to": 7})
    assert r.status_code == 400 and "no model version 7" in r.json()["error"]
    r = client.get("/api/learning/no-such-key")
    assert r.status_code == 400 and "learning key 'no-such-key'" in r.json()["error"]


def test_servers_and_their_log(client):
    pytest.importorskip("httpx", reason="llama server status needs httpx (the 'llm' extra)")
    s = client.get("/api/servers").json()["servers"]
    assert [x["name"] for x in s] == ["default"] and not s[0]["running"]
    log = client.get("/api/servers/default/log", params={"lines": 1}).json()
    assert log["lines"] == ["slot launch_slot_: id 0 | task 1 | processing task"]
    assert client.get("/api/servers/other/log").json()["missing"]
    r = client.get("/api/servers/bad name!/log")
    assert r.status_code == 400 and "--name" in r.json()["error"]


def test_posts_must_be_json_and_hosts_local(client):
    """Another site in the same browser cannot drive the dashboard: a form POST is
    refused, and so is a request addressed to a foreign host name (DNS rebinding)."""
    sid = _sid(client, "troubleshooting.toml")
    r = client.post("/api/evals", content=json.dumps({"scenario": sid}), headers={"content-type": "text/plain"})
    assert r.status_code == 415 and client.get("/api/evals").json()["evals"] == []
    assert client.get("/api/info", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/api/info", headers={"host": "127.0.0.1:8123"}).status_code == 200


def test_unknown_endpoints_are_json_404(client):
    r = client.get("/api/nothing/here")
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]
