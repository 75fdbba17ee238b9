"""The learning store across ``kill -9``: of ``swarm eval --learning`` and of
``swarm learn once``, at every filesystem step and at random times, and with
concurrent evals of one key.

After a kill, the next command must find a store that loads without a
problem line, read nothing half-written, count every visible session exactly
once in the totals, keep every session a command reported as written, and
leave no temp file or pending folder behind.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swarm_engine.learn import LearningStore, learning_key
from tests.paths import TROUBLESHOOTING

KEY = learning_key("user:troubleshooting:v2")
RUNS = "12"

# Runs the swarm CLI and SIGKILLs itself at the CRASH_AT-th filesystem step
# (rename, replace, link, fsync, mkdir, unlink, rmdir through the os module:
# every step of fsio and of the store); CRASH_AT=0 counts the steps instead
# and prints "steps N" on stderr at exit.
_CRASHER = """
import atexit, os, signal, sys
at, n = int(os.environ["CRASH_AT"]), 0
def wrap(f):
    def step(*a, **kw):
        global n
        n += 1
        if n == at:
            os.kill(os.getpid(), signal.SIGKILL)
        return f(*a, **kw)
    return step
for name in ("rename", "replace", "link", "fsync", "mkdir", "unlink", "rmdir"):
    setattr(os, name, wrap(getattr(os, name)))
if at == 0:
    atexit.register(lambda: print(f"steps {n}", file=sys.stderr))
from swarm_engine.cli.main import main
sys.argv = ["swarm", *sys.argv[1:]]
main()
"""

EVAL = ["eval", str(TROUBLESHOOTING), "-n", RUNS, "--learning"]
LEARN = ["learn", "once", str(TROUBLESHOOTING), "--train-runs", "10", "--heldout-runs", "10", "--budget", "0"]


@pytest.fixture
def cli(subprocess_env, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**subprocess_env, "SWARM_HOME": str(home)}

    def run(args: list[str], crash_at: int | None = None, seed: int = 1) -> subprocess.CompletedProcess:
        argv = [*args, "--seed", str(seed)] if args[0] == "eval" else args
        cmd = ([sys.executable, "-c", _CRASHER, *argv] if crash_at is not None else
               [sys.executable, "-c", "from swarm_engine.cli.main import main; main()", *argv])
        return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env={**env, "CRASH_AT": str(crash_at or 0)})

    run.env = env                                  # type: ignore[attr-defined]
    run.root = home / ".swarm-engine" / "learning"   # type: ignore[attr-defined]
    return run


def _reported(out: str) -> set[str]:
    """Session folders a command said it recorded."""
    return {Path(p).name for p in re.findall(r"recorded in (\S+)", out)}


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith((".tmp", ".pending", ".writing"))]


def check_store(root: Path, reported: set[str]) -> None:
    """The store's invariants after the command that followed a kill."""
    store = LearningStore(root)
    sessions = store.sessions(KEY)
    episodes = 0
    for s in sessions:
        meta, stats = store.load_session(s)
        assert meta and stats.episodes == meta["episodes"] == int(RUNS), s
        episodes += stats.episodes
    assert store.load_stats(KEY).episodes == episodes, "a visible session is not counted once in stats.json"
    assert store.load_global().episodes == episodes, "a visible session is not counted once in the global stats"
    assert reported <= {s.name for s in sessions}, "a session reported as written was lost"
    model = store.load_model(KEY)
    if model is not None:
        assert model.version in store.model_versions(KEY)
        assert store.load_model_version(KEY, model.version) == model
    assert store.problems == []
    assert _leftovers(root) == []


def _steps(cli, args: list[str]) -> int:
    proc = cli(args, crash_at=0)
    assert proc.returncode == 0, proc.stderr
    return int(re.search(r"steps (\d+)", proc.stderr).group(1))


@pytest.mark.slow
def test_eval_killed_at_every_step(cli):
    """kill -9 at each filesystem step of ``swarm eval --learning``, then a
    whole eval: the store holds exactly the sessions that got through, each
    counted once."""
    reported = _reported(cli(EVAL, seed=1).stdout)
    n = _steps(cli, EVAL)
    assert n >= 8                          # pending folder, stats, meta, totals, rename: each fsync-ed
    for at in range(1, n + 1):
        killed = cli(EVAL, crash_at=at, seed=100 + at)
        assert killed.returncode == -signal.SIGKILL, (at, killed.stderr)
        reported |= _reported(killed.stdout)
        after = cli(EVAL, seed=1000 + at)
        assert after.returncode == 0, (at, after.stderr)
        assert "warning" not in after.stderr, (at, after.stderr)
        reported |= _reported(after.stdout)
        check_store(cli.root, reported)


@pytest.mark.slow
def test_learn_once_killed_at_every_step(cli):
    assert cli(EVAL).returncode == 0
    assert cli(LEARN).returncode == 0                       # v1 in use
    n = _steps(cli, LEARN)
    for at in range(1, n + 1):
        killed = cli(LEARN, crash_at=at)
        assert killed.returncode == -signal.SIGKILL, (at, killed.stderr)
        after = cli(LEARN)
        assert after.returncode == 0, (at, after.stderr)
        assert "warning" not in after.stdout + after.stderr, (at, after.stdout)
        check_store(cli.root, set())
    store = LearningStore(cli.root)
    assert store.load_model(KEY).version == max(store.model_versions(KEY))


@pytest.mark.parametrize("command", ["eval", "learn"])
def test_killed_at_random_times(cli, command):
    """Plain ``kill -9`` of the real command at random moments (seeded)."""
    rng = random.Random(13)
    reported = _reported(cli(EVAL).stdout)
    args = EVAL if command == "eval" else LEARN
    t0 = time.perf_counter()
    assert cli(args).returncode == 0
    took = time.perf_counter() - t0
    for i in range(4):
        argv = [*args, "--seed", str(10 + i)] if command == "eval" else args
        proc = subprocess.Popen([sys.executable, "-c", "from swarm_engine.cli.main import main; main()", *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env)
        try:
            time.sleep(rng.uniform(0.3, 1.0) * took)
            proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
        reported |= _reported(out)
        after = cli(args, seed=500 + i)
        assert after.returncode == 0, after.stderr
        reported |= _reported(after.stdout)
        check_store(cli.root, reported)


def test_concurrent_evals_of_one_key_lose_no_session(cli):
    P = 3
    cmd = [sys.executable, "-c", "from swarm_engine.cli.main import main; main()", *EVAL]
    procs = [subprocess.Popen([*cmd, "--seed", str(7 + 100 * i)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=cli.env) for i in range(P)]
    reported: set[str] = set()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        reported |= _reported(out)
    assert len(reported) == P
    check_store(cli.root, reported)
    store = LearningStore(cli.root)
    assert len(store.sessions(KEY)) == P
    assert store.load_stats(KEY).episodes == P * int(RUNS) == store.load_global().episodes


def test_a_legacy_half_written_session_is_skipped_in_one_line(tmp_path):
    store = LearningStore(tmp_path)
    d = store.scenario_dir(KEY) / "sessions" / "20240101T000000.000000Z-1"
    d.mkdir(parents=True)
    (d / "stats.json").write_text("{}")
    assert store.sessions(KEY) == [] and store.sessions(KEY) == []
    assert len(store.problems) == 1 and "incomplete session" in store.problems[0]
    assert "\n" not in store.problems[0]


def test_pending_session_is_completed_once_by_the_next_writer(tmp_path):
    """A commit killed after stats.json took the session but before the rename:
    the next writer renames it without adding it again."""
    from swarm_engine.learn import Episode, LearnStats

    stats = LearnStats.from_episodes([Episode(["A"], [1], [None], True, "ucb1")])
    store = LearningStore(tmp_path)
    store.commit_session(KEY, {"episodes": 1}, stats)
    pending = store._write_pending(KEY, {"episodes": 1}, stats, None)
    path = store.stats_path(KEY)
    store._merge_locked(path, stats, pending.name[1:-len(".pending")])       # step 2 done, then killed
    with store._locked(store._lock_path(store.global_path)):
        applied = store._applied(store.global_path)
        store._merge_locked(store.global_path, stats, {**applied, KEY: pending.name[1:-len(".pending")]})
    assert store.load_stats(KEY).episodes == 2 and len(store.sessions(KEY)) == 1
    store.commit_session(KEY, {"episodes": 1}, stats)                        # the next writer
    assert len(store.sessions(KEY)) == 3
    assert store.load_stats(KEY).episodes == 3 == store.load_global().episodes
    assert _leftovers(tmp_path) == []


def test_write_session_appears_whole(tmp_path):
    """A folder written by write_session is never visible without its files."""
    from swarm_engine.learn import LearnStats

    store = LearningStore(tmp_path)
    d = store.write_session(KEY, {"a": 1}, LearnStats(), [{"x": 1}])
    assert sorted(p.name for p in d.iterdir()) == ["decisions.jsonl", "meta.json", "stats.json"]
    assert store.load_stats(KEY).episodes == 0                                # not added to the totals
    assert _leftovers(tmp_path) == [] and os.listdir(d.parent) == [d.name]
