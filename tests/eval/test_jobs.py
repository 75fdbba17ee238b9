"""``run_eval(..., jobs=N)``: the same eval, run for run, on N threads or processes.

Every built-in scenario and variant runs with jobs 1, 2 and 3 (more chunks
than threads, uneven tails); traces are compared byte for byte, learning
sessions table for table, Python environments across processes. Ctrl-C is
the progress callback raising KeyboardInterrupt in the main thread, where a
real SIGINT lands (tests/cli/test_cli.py sends a real one).
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle

import numpy as np
import pytest

from swarm_engine import EnvironmentBinding
from swarm_engine.core.events import EventBatch
from swarm_engine.errors import ConfigError, ScenarioError
from swarm_engine.eval import jobs as jobs_mod
from swarm_engine.eval import processes, threaded
from swarm_engine.eval.builtin import builtin_scenario, builtin_scenario_files
from swarm_engine.eval.jobs import MIN_PROCESS_RUNS, available_cores, chunks, plan, resolve_jobs
from swarm_engine.eval.loader import list_variants, load_scenario, parse_scenario
from swarm_engine.eval.memory import estimate
from swarm_engine.eval.merge import ARRAY_FIELDS
from swarm_engine.eval.report import build_report
from swarm_engine.eval.runner import run_eval
from swarm_engine.inputs import parse_toml
from tests.envs_example import Vault
from tests.paths import DATA, TROUBLESHOOTING


def _cases() -> list[tuple[str, str | None]]:
    out = []
    for f in builtin_scenario_files():
        raw = parse_toml(f.read_text(encoding="utf-8"), str(f), ScenarioError)
        out += [(str(f), v) for v in (None, *(name for name, _ in list_variants(raw)))]
    return out


def assert_same_eval(a, b) -> None:
    """Two results of the same eval: every per-run value but the wall seconds."""
    assert (a.runs, a.requested, a.base_seed, a.stopped) == (b.runs, b.requested, b.base_seed, b.stopped)
    for f in ARRAY_FIELDS:
        if f != "wall":
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    assert a.reason == b.reason
    for group in ("conditions", "milestones", "per_run_llm"):
        x, y = getattr(a, group), getattr(b, group)
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"{group}.{k}")


def comparable(report: dict) -> dict:
    """A report without what depends on the clock or on how it ran."""
    out = dict(report, summary=dict(report["summary"]), manifest=dict(report["manifest"]))
    for key in ("wall_seconds", "actions_per_sec"):
        out["summary"].pop(key)
    out["manifest"].pop("jobs")
    out["runs"] = [{k: v for k, v in r.items() if k != "wall_seconds"} for r in report["runs"]]
    return out


# ----------------------------------------------------------------------------- how many, and why not


def test_resolve_jobs():
    assert resolve_jobs(0) == resolve_jobs(None) == available_cores() == len(os.sched_getaffinity(0))
    assert resolve_jobs(3) == 3
    with pytest.raises(ConfigError, match="--jobs"):
        resolve_jobs(-1)


@pytest.mark.parametrize("n,jobs", [(1, 4), (10, 4), (300, 2), (1000, 3), (10**6, 2), (64, 1)])
def test_chunks_cover_the_seeds_in_order(n, jobs):
    parts = chunks(5, 5 + n, jobs)
    assert parts[0][0] == 5 and parts[-1][1] == 5 + n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    assert len(parts) >= min(n, jobs)          # every job gets work
    assert len(parts) <= jobs * (jobs_mod.CHUNKS_PER_JOB + jobs_mod.GUIDED * 8)
    sizes = [b - a for a, b in parts]
    assert sizes == sorted(sizes, reverse=True) or n < jobs * jobs_mod.MIN_CHUNK   # guided: the last are the shortest
    assert sizes[-1] <= max(jobs_mod.MIN_CHUNK, math.ceil(n / (jobs * jobs_mod.CHUNKS_PER_JOB)))


def test_plan_native_runs_on_threads():
    sc = load_scenario(TROUBLESHOOTING)
    assert plan(sc, 4, 1000, llm=False, recorder=False).to_dict() == {
        "requested": 4, "used": 4, "mode": "threads", "reason": None}
    assert plan(sc, 4, 3, llm=False, recorder=True).jobs == 3
    assert plan(sc, 1, 1000, llm=False, recorder=False).mode == "serial"


def test_plan_says_why_one_core():
    sc = load_scenario(TROUBLESHOOTING)
    assert "LLM" in plan(sc, 2, 100, llm=True, recorder=False).reason
    paced = dataclasses.replace(sc, config=dataclasses.replace(sc.config, tick_duration_ms=1.0))
    assert "paced" in plan(paced, 2, 100, llm=False, recorder=False).reason
    vault = load_scenario(DATA / "vault.toml")
    assert plan(vault, 2, 2 * MIN_PROCESS_RUNS, llm=False, recorder=False).mode == "processes"
    assert "recorder" in plan(vault, 2, 1000, llm=False, recorder=True).reason
    assert "too few" in plan(vault, 2, MIN_PROCESS_RUNS, llm=False, recorder=False).reason
    no_text = dataclasses.replace(vault, text="")
    assert "no source text" in plan(no_text, 2, 1000, llm=False, recorder=False).reason
    swapped = dataclasses.replace(vault, binding=EnvironmentBinding.from_python(Vault(rooms=3), vault.actions))
    assert "not the one its text names" in plan(swapped, 2, 1000, llm=False, recorder=False).reason


def test_a_main_program_from_stdin_stays_on_one_core(monkeypatch):
    """``python - < script.py``: a spawned worker could not import ``<stdin>`` again."""
    import sys
    import types

    main = types.ModuleType("__main__")
    main.__file__ = "<stdin>"
    monkeypatch.setitem(sys.modules, "__main__", main)
    vault = load_scenario(DATA / "vault.toml")
    assert "(<stdin>) is not a file" in plan(vault, 2, 1000, llm=False, recorder=False).reason


def test_the_report_says_how_it_ran():
    res = run_eval(load_scenario(TROUBLESHOOTING), 200, jobs=2)
    assert res.jobs == {"requested": 2, "used": 2, "mode": "threads", "reason": None}
    assert build_report(res)["manifest"]["jobs"] == res.jobs


def test_memory_estimate_counts_a_kernel_per_job():
    sc = load_scenario(TROUBLESHOOTING)
    one = estimate(sc.binding, sc.config, sc.rules, len(sc.actions), 1000)
    four = estimate(sc.binding, sc.config, sc.rules, len(sc.actions), 1000, jobs=4)
    assert four.total - one.total == 3 * one.kernel + 3 * one.environment
    assert "on each of 4 jobs" in four.describe()


def test_an_input_error_survives_pickling():
    exc = ScenarioError("bad value", path="a.toml", line=3, field="agents.workers")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is ScenarioError and str(back) == str(exc) == "a.toml:3: agents.workers: bad value"


# ----------------------------------------------------------------------------- the same runs


@pytest.mark.parametrize("path,variant", _cases(), ids=lambda x: os.path.basename(str(x)))
def test_every_builtin_scenario_is_the_same_on_threads(path, variant):
    sc = load_scenario(path, variant)
    runs = 12 if variant == "large" else 300       # large: a 10^6-file tree, ~10 ms a run
    one = run_eval(sc, runs, seed=3, llm=False, jobs=1)
    for j in (2, 3):
        many = run_eval(sc, runs, seed=3, llm=False, jobs=j)
        assert many.jobs["mode"] == "threads"
        assert_same_eval(one, many)
        assert comparable(build_report(one)) == comparable(build_report(many))


def test_short_batches_and_grown_buffers_are_the_same():
    """A tiny time budget returns after every run; the code tree's large
    variant grows its node buffers (ST_NEED_ROOM) mid-run on every thread."""
    sc = load_scenario(builtin_scenario("code_exploration"), "large")
    one = run_eval(sc, 6, llm=False, jobs=1)
    assert_same_eval(one, run_eval(sc, 6, llm=False, jobs=2, chunk_seconds=1e-6))
    ts = load_scenario(TROUBLESHOOTING)
    assert_same_eval(run_eval(ts, 500, jobs=1), run_eval(ts, 500, jobs=2, chunk_seconds=1e-6))


@pytest.mark.parametrize("variant", [None, "complex"])
def test_the_trace_is_the_same_byte_for_byte(tmp_path, monkeypatch, variant):
    # a small event log fills within every chunk: each thread drains it mid-chunk (ST_NEED_ROOM)
    monkeypatch.setattr(threaded, "EVENT_CAPACITY", 64)
    sc = load_scenario(TROUBLESHOOTING, variant)
    one = run_eval(sc, 400, trace=tmp_path / "one.jsonl", jobs=1)
    many = run_eval(sc, 400, trace=tmp_path / "many.jsonl", jobs=3)
    assert_same_eval(one, many)
    text = (tmp_path / "one.jsonl").read_bytes()
    assert len(text.splitlines()) == int(one.actions.sum())
    assert (tmp_path / "many.jsonl").read_bytes() == text


def test_the_trace_waits_for_the_chunks_before_it():
    """Chunks finish in any order; their events are written in seed order,
    and a stopped eval's trace ends with the finished prefix."""
    written: list[list[int]] = []

    class Sink:
        def write(self, events):
            written.append(events.run.tolist())

    def events(runs):
        cols = {f: np.zeros(len(runs), np.int64) for f in EventBatch.__dataclass_fields__}
        cols["run"] = np.asarray(runs, np.int64)
        return cols

    b = threaded._Block(0, 300, 2)
    first, second, third = b.parts[:3]
    second.r, second.events = second.hi, [events([second.lo, second.hi - 1])]
    b.write_trace(Sink(), final=False)
    assert written == []                               # the first chunk is still running
    first.r, first.events = first.hi, [events([0, first.hi - 1])]
    third.r, third.events = third.lo + 1, [events([third.lo, third.lo + 1])]     # run lo + 1 unfinished
    b.write_trace(Sink(), final=False)
    assert written == [[0, first.hi - 1], [second.lo, second.hi - 1]]
    b.write_trace(Sink(), final=True)                  # stopped: the third chunk's finished run only
    assert written[2:] == [[third.lo]]
    assert threaded._finished(b.parts) == third.lo + 1


def test_a_learning_session_is_the_same(tmp_path, monkeypatch):
    """The recorder's blocks stay in order: the tables every run sees, the
    statistics it records and the number of table updates are those of one thread."""
    from swarm_engine.learn.session import SessionRecorder

    sc = load_scenario(TROUBLESHOOTING, "complex")

    def session(jobs: int):
        rec = SessionRecorder(sc.actions, list(sc.rules.args.values), strategy=sc.config.selector.strategy,
                              block=100)
        res = run_eval(sc, 750, recorder=rec, jobs=jobs)
        return res, rec, rec.finish(res.success)

    (r1, rec1, st1), (r2, rec2, st2) = session(1), session(2)
    assert_same_eval(r1, r2)
    assert rec1.updates == rec2.updates == 8
    assert st1.to_json() == st2.to_json()
    assert rec1.session.to_json() == rec2.session.to_json()


# ----------------------------------------------------------------------------- Ctrl-C


def _interrupt_once_runs_finish(after: int = 0):
    """A progress callback that raises KeyboardInterrupt (Ctrl-C) once more than ``after`` runs finished."""
    seen: list[tuple[int, int]] = []

    def progress(done: int, ok: int) -> None:
        seen.append((done, ok))
        if done > after and all(d <= after for d, _ in seen[:-1]):
            raise KeyboardInterrupt
    return progress, seen


def test_ctrl_c_keeps_the_finished_prefix_on_threads():
    """Ctrl-C once 20 runs finished on two threads (chunks of 25 seeds): the
    first chunk has finished runs, and the result is the eval's first runs."""
    sc = load_scenario(builtin_scenario("code_exploration"), "large")
    progress, _ = _interrupt_once_runs_finish(after=19)
    res = run_eval(sc, 400, llm=False, jobs=2, chunk_seconds=0.01, progress=progress)
    assert res.stopped and 0 < res.runs < 400
    assert_same_eval(dataclasses.replace(run_eval(sc, res.runs, llm=False, jobs=1), requested=400,
                                         stopped=True), res)


def test_progress_counts_runs_and_successes():
    sc = load_scenario(TROUBLESHOOTING)
    seen: list[tuple[int, int]] = []
    res = run_eval(sc, 5000, jobs=2, chunk_seconds=1e-4, progress=lambda d, ok: seen.append((d, ok)))
    assert seen[-1] == (5000, int(res.success.sum()))
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(seen, seen[1:]))


# ----------------------------------------------------------------------------- Python environments


@pytest.fixture(scope="module")
def vault():
    return load_scenario(DATA / "vault.toml")


@pytest.fixture
def start_free(monkeypatch):
    """Processes cost nothing to start: the short evals of these tests go to them."""
    monkeypatch.setattr(processes, "START_SECONDS", 0.0)


def test_a_short_python_eval_stays_in_this_process(vault):
    """The first runs time a run: 240 runs of ~1.5 ms gain less on 2 processes than starting them costs."""
    res = run_eval(vault, 240, jobs=2)
    assert res.jobs["mode"] == "serial" and "gain less on 2 processes than starting them" in res.jobs["reason"]
    assert_same_eval(run_eval(vault, 240, jobs=1), res)


@pytest.mark.usefixtures("start_free")
def test_a_python_environment_is_the_same_on_processes(vault, tmp_path):
    one = run_eval(vault, 240, trace=tmp_path / "one.jsonl", jobs=1)
    many = run_eval(vault, 240, trace=tmp_path / "many.jsonl", jobs=2)
    assert many.jobs["mode"] == "processes"
    assert_same_eval(one, many)
    assert (tmp_path / "many.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()


@pytest.mark.usefixtures("start_free")
def test_processes_take_the_parents_run_configuration(vault):
    """A learned selector or other config changes travel with the rules (the
    worker's own parse of the text would not have them)."""
    fifo = dataclasses.replace(vault, config=dataclasses.replace(
        vault.config, workers=1, selector=dataclasses.replace(vault.config.selector, strategy="fifo")))
    assert_same_eval(run_eval(fifo, 120, jobs=1), run_eval(fifo, 120, jobs=2))


@pytest.mark.usefixtures("start_free")
def test_ctrl_c_keeps_the_finished_prefix_on_processes(vault):
    """Ctrl-C once the processes report finished runs (the parent's first runs are not enough)."""
    progress, _ = _interrupt_once_runs_finish(after=processes.PROBE_RUNS + 20)
    res = run_eval(vault, 2000, jobs=2, chunk_seconds=0.01, progress=progress)
    assert res.stopped and processes.PROBE_RUNS <= res.runs < 2000
    assert_same_eval(dataclasses.replace(run_eval(vault, res.runs, jobs=1), requested=2000, stopped=True), res)


@pytest.mark.usefixtures("start_free")
def test_a_worker_process_error_is_one_line(tmp_path):
    """The environment fails only in a worker process (its module is gone
    from the path there): the parent raises the worker's ScenarioError."""
    (tmp_path / "gone_env.py").write_text("from tests.envs_example import Vault\n", encoding="utf-8")
    text = (DATA / "vault.toml").read_text(encoding="utf-8").replace("tests.envs_example:Vault", "gone_env:Vault")
    path = tmp_path / "gone.toml"
    path.write_text(text, encoding="utf-8")
    sc = parse_scenario(text, str(path))
    (tmp_path / "gone_env.py").unlink()
    with pytest.raises(ScenarioError, match="cannot import module 'gone_env'"):
        run_eval(sc, 200, jobs=2)
