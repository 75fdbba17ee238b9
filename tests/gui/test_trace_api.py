"""A run's trace through the API: ``swarm eval --trace`` run for real, its
report's ``manifest.trace``, and ``GET /api/reports/NAME/trace?run=I``
answering exactly that run's lines, paged, the same for ``-j 1`` and ``-j 2``;
and every way it can fail as one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from swarm_engine.gui import traces
from tests.inprocess import isolate, run_swarm
from tests.paths import SCENARIOS, TROUBLESHOOTING

RUNS, SEED = 30, 11


def traced_eval(reports: Path, name: str, *, jobs: int = 1, scenario: Path = TROUBLESHOOTING,
                runs: int = RUNS, seed: int = SEED) -> tuple[Path, Path]:
    """``swarm eval SCENARIO --trace REPORTS/NAME.jsonl -o REPORTS/NAME.json``: the report and the trace."""
    from swarm_engine.cli.main import main

    report, trace = reports / f"{name}.json", reports / f"{name}.jsonl"
    code = main(["eval", str(scenario), "-n", str(runs), "--seed", str(seed), "-j", str(jobs), "--trace",
                 str(trace), "-o", str(report), "-q"])
    assert code == 0
    return report, trace


def lines_of(trace: Path, seed: int) -> list[dict]:
    return [row for row in map(json.loads, trace.read_text().splitlines()) if row["seed"] == seed]


def get_trace(client, ref: str, **params):
    from urllib.parse import quote

    return client.get(f"/api/reports/{quote(ref, safe='')}/trace", params=params)


@pytest.fixture
def traced(world, monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path / "home")
    return {j: traced_eval(world["reports"], f"traced-j{j}", jobs=j) for j in (1, 2)}


def test_the_report_names_its_trace_and_the_page_is_told(client, traced):
    report, trace = traced[1]
    manifest = json.loads(report.read_text())["manifest"]
    assert manifest["trace"] == str(trace.resolve()) and Path(manifest["trace"]).is_absolute()
    assert client.get("/api/report", params={"ref": report.name}).json()["trace"] == str(trace.resolve())
    assert client.get("/api/report", params={"ref": "baseline.json"}).json()["trace"] is None


def test_a_reports_trace_is_absent_without_trace(world, monkeypatch, tmp_path, capsys):
    isolate(monkeypatch, tmp_path / "home")
    out = run_swarm(capsys, "eval", TROUBLESHOOTING, "-n", "3", "-o", world["reports"] / "plain.json", "-q")
    assert out.code == 0
    assert "trace" not in json.loads((world["reports"] / "plain.json").read_text())["manifest"]


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("run", [0, 1, 17, RUNS - 1])
def test_a_runs_events_are_its_seeds_lines_exactly(client, traced, jobs, run):
    report, trace = traced[jobs]
    d = get_trace(client, report.name, run=run).json()
    expected = lines_of(trace, SEED + run)
    assert expected and d["events"] == expected
    assert d["total"] == len(expected) and d["run"] == run and d["seed"] == SEED + run
    assert all(e["run"] == run for e in d["events"])          # -j 2 numbers runs as -j 1 does


def test_j2_gives_the_same_events_as_j1(client, traced):
    assert json.loads(traced[2][0].read_text())["manifest"]["jobs"]["mode"] == "threads"
    for run in range(RUNS):
        one = get_trace(client, traced[1][0].name, run=run).json()
        two = get_trace(client, traced[2][0].name, run=run).json()
        assert one["events"] == two["events"] and one["total"] == two["total"]


@pytest.mark.parametrize("mark_every", [1, 2, 3, 256])
def test_pages_put_together_are_the_whole_run(client, traced, monkeypatch, mark_every):
    monkeypatch.setattr(traces, "MARK_EVERY", mark_every)     # the seek marks, however dense
    report, trace = traced[1]
    run = max(range(RUNS), key=lambda r: len(lines_of(trace, SEED + r)))
    expected = lines_of(trace, SEED + run)
    assert len(expected) >= 4
    for limit in (1, 2, 3):
        got: list[dict] = []
        for offset in range(0, len(expected), limit):
            d = get_trace(client, report.name, run=run, offset=offset, limit=limit).json()
            assert d["total"] == len(expected) and d["offset"] == offset and len(d["events"]) <= limit
            got += d["events"]
        assert got == expected
    past = get_trace(client, report.name, run=run, offset=len(expected) + 5).json()
    assert past["events"] == [] and past["total"] == len(expected)


def test_the_default_page_is_500_events_and_at_most_5000(client, traced):
    report, _ = traced[1]
    assert get_trace(client, report.name, run=0).json()["limit"] == 500
    assert get_trace(client, report.name, run=0, limit=5000).status_code == 200
    r = get_trace(client, report.name, run=0, limit=5001)
    assert r.status_code == 400 and "limit" in r.json()["error"]


def test_a_seeds_lines_in_several_places_come_in_file_order(client, world, traced):
    report, trace = traced[1]
    rows = [json.loads(x) for x in trace.read_text().splitlines()]
    a, b = [r for r in rows if r["seed"] == SEED], [r for r in rows if r["seed"] == SEED + 1]
    mixed = world["reports"] / "mixed.jsonl"
    order = a[:1] + b[:2] + a[1:3] + b[2:] + a[3:]
    mixed.write_text("".join(json.dumps(r) + "\n" for r in order) + "\n")
    doc = json.loads(report.read_text())
    doc["manifest"]["trace"] = "mixed.jsonl"                  # relative: from the reports folder
    (world["reports"] / "mixed.json").write_text(json.dumps(doc))
    assert get_trace(client, "mixed.json", run=0).json()["events"] == a
    assert get_trace(client, "mixed.json", run=1, offset=1, limit=len(b)).json()["events"] == b[1:]


def test_a_many_scenario_report_has_one_trace_each(client, world, monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path / "home")
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("troubleshooting.toml", "search.toml"):
        shutil.copy(SCENARIOS / name, folder / name)
    from swarm_engine.cli.main import main

    assert main(["eval", str(folder), "-n", "4", "--seed", "5", "--trace", str(world["reports"] / "many.jsonl"),
                 "-o", str(world["reports"] / "many.json"), "-q"]) == 0
    for i in (0, 1):
        trace = world["reports"] / f"many.{i}.jsonl"
        d = get_trace(client, f"many.json#{i}", run=2).json()
        assert d["trace"] == str(trace.resolve()) and d["events"] == lines_of(trace, 7)


def test_the_index_is_built_once_per_file_version(client, traced, monkeypatch):
    built: list[Path] = []
    real = traces.TraceIndex.build.__func__                   # type: ignore[attr-defined]
    monkeypatch.setattr(traces.TraceIndex, "build",
                        classmethod(lambda cls, path, key: built.append(path) or real(cls, path, key)))
    report, trace = traced[1]
    for run in (0, 1, 2, 0):
        assert get_trace(client, report.name, run=run).status_code == 200
    assert len(built) == 1
    with trace.open("a") as f:                                # the file changed: indexed again
        f.write(json.dumps({**lines_of(trace, SEED)[0], "tick": 999}) + "\n")
    d = get_trace(client, report.name, run=0).json()
    assert len(built) == 2 and d["events"][-1]["tick"] == 999


# ------------------------------------------------------------------ errors, one line each
def one_line(r, status: int, *fragments: str) -> str:
    assert r.status_code == status, r.text
    msg = r.json()["error"]
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_a_report_without_a_trace_is_404(client, traced):
    one_line(get_trace(client, "baseline.json", run=0), 404, "baseline.json", "no trace")


def test_a_trace_moved_away_is_404(client, traced, tmp_path):
    report, trace = traced[1]
    assert get_trace(client, report.name, run=0).status_code == 200           # indexed, then moved
    trace.rename(tmp_path / "elsewhere.jsonl")
    one_line(get_trace(client, report.name, run=0), 404, str(trace.resolve()), "gone")


def test_a_line_that_is_not_json_names_its_number(client, traced):
    report, trace = traced[1]
    lines = trace.read_text().splitlines()
    lines[6] = lines[6][: len(lines[6]) // 2]                 # a torn line: line 7
    trace.write_text("\n".join(lines) + "\n")
    one_line(get_trace(client, report.name, run=RUNS - 1), 400, str(trace.resolve()), "line 7 is not JSON")


def test_a_json_line_that_is_no_event_is_400(client, traced):
    report, trace = traced[1]
    trace.write_text(trace.read_text() + "[1, 2]\n")
    n = len(trace.read_text().splitlines())
    one_line(get_trace(client, report.name, run=0), 400, f"line {n} is not a trace event")


@pytest.mark.parametrize("run, fragment", [(str(RUNS), f"0..{RUNS - 1}"), ("10000000000", "0..1000000000"),
                                           ("-1", "expected an int"), ("x", "expected an int"), ("", "which run")])
def test_a_run_out_of_range_is_400(client, traced, run, fragment):
    one_line(get_trace(client, traced[1][0].name, run=run), 400, "run", fragment)


def test_a_request_never_names_a_file(client, world, traced):
    """The path comes from a report in the folder: a name with a slash is no report; a file that
    is not a trace is refused at its first line without showing it."""
    r = client.get("/api/reports/..%2Fsecret.json/trace", params={"run": 0})
    assert r.status_code in (400, 404) and "error" in r.json()
    one_line(get_trace(client, "no-such.json", run=0), 400, "no such report")
    secret = world["root"] / "secret.txt"
    secret.write_text("password=hunter2\n")
    doc = json.loads(traced[1][0].read_text())
    doc["manifest"]["trace"] = str(secret)
    (world["reports"] / "evil.json").write_text(json.dumps(doc))
    msg = one_line(get_trace(client, "evil.json", run=0), 400, "line 1 is not JSON")
    assert "hunter2" not in msg
    doc["manifest"]["trace"] = str(world["reports"])          # a folder is not a trace either
    (world["reports"] / "evil.json").write_text(json.dumps(doc))
    one_line(get_trace(client, "evil.json", run=0), 400, "not a regular file")
