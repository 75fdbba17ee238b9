"""The native Kernel and the pure-Python ReferenceKernel are one algorithm.

For the same rules, configuration and seed both must produce the same event
trace (every field of ``take_events()``), the same graph map, groups, worker
and action statistics, the same hidden environment state and the same
``run_batch`` rows. Hypothesis draws the scenarios: each native environment
(troubleshooting, grid, code tree, search, diagnosis) with its usual rule set
or a random rule graph (random successors, terminals, param variants, target
kinds, op and argument maps), every selector, 1..8 workers, both
granularities, every management, termination and exhaustion strategy,
retries, error rates, learned bonus tables, and tiny capacities so that the
native ``ST_NEED_ROOM`` resumption is exercised too. Fixed cases are
parametrized; the cases at the end are regression tests for native bugs that
these tests found.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import swarm_engine
from swarm_engine._native._kernel import Kernel
from swarm_engine._reference import ReferenceKernel

ENV_TS, ENV_GRID, ENV_CODE, ENV_SEARCH, ENV_DIAGNOSIS, ENV_CASCADE = 1, 2, 3, 4, 5, 6
N_OPS = {ENV_TS: 5, ENV_GRID: 1, ENV_CODE: 3, ENV_SEARCH: 4, ENV_DIAGNOSIS: 4, ENV_CASCADE: 3}
ST_OK = 0
V_RUNNING, V_SUCCESS, V_EXHAUSTED = 0, 1, 2
SEL_KINDS = range(6)          # fifo, ucb1, thompson, thompson_sampled, greedy, adaptive
SEEDS = st.integers(0, 2**64 - 1)

# ----------------------------------------------------------------------------- scenarios

RULES = {
    # CheckStatus -> ReadLogs | AnalyzeMetrics -> Diagnose -> Restart (terminal)
    ENV_TS: dict(successors=[[1, 2], [3], [3], [4], []], terminal=[0, 0, 0, 0, 1],
                 variants=[[], [], [], [], []], starts=[(0, -1, -1)], env_ops=[0, 1, 2, 3, 4]),
    # Explore(cell) -> Explore(neighbour)
    ENV_GRID: dict(successors=[[0]], terminal=[0], variants=[[]], starts=[(0, 0, -1)], env_ops=[0]),
    # List(dir) -> List(dir) | Grep(dir) | Read(file); Grep(dir) -> Read(file); Read -> Read
    ENV_CODE: dict(successors=[[0, 1, 2], [2], [2]], terminal=[0, 0, 0], variants=[[], [], []],
                   starts=[(0, 0, -1), (1, 0, -1)], env_ops=[0, 1, 2], act_kind=[1, 1, 2]),
    # Search -> Preview -> Read -> Submit
    ENV_SEARCH: dict(successors=[[1], [2], [3], []], terminal=[0, 0, 0, 1], variants=[[], [], [], []],
                     starts=[(0, -1, -1)], env_ops=[0, 1, 2, 3]),
    # ParseConfig -> AnalyzeLog -> TraceError -> ApplyFix(section, fix) for every fix
    ENV_DIAGNOSIS: dict(successors=[[1], [2], [3], []], terminal=[0, 0, 0, 1],
                        variants=[[], [], [], list(range(8))], starts=[(0, -1, -1)],
                        env_ops=[0, 1, 2, 3], env_args=[7, 6, 5, 4, 3, 2, 1, 0]),
    # CheckStatus -> ReadLogs | ApplyFix(service, fix) for every fix
    ENV_CASCADE: dict(successors=[[1, 2], [], []], terminal=[0, 0, 1], variants=[[], [], list(range(6))],
                      starts=[(0, -1, -1)], env_ops=[0, 1, 2], env_args=[5, 4, 3, 2, 1, 0]),
}
TS_RULES, GRID_RULES = RULES[ENV_TS], RULES[ENV_GRID]

RUN_DEFAULTS = dict(n_workers=1, max_ticks=0, term_strategy=0, on_exhausted=0, max_consec_errors=0,
                    max_retries=0, escalate_after=0, manage_kind=0, manage_param=1, granular=False,
                    selector=0, ucb1_c=1.0, learning_weight=0.0, greedy_weight=1.0,
                    maturity_threshold=0, error_rate_threshold=0.5, bonus3=[], env_max_disc=0,
                    record_events=True)


def _csr(lists):
    ptr, flat = [0], []
    for items in lists:
        flat += items
        ptr.append(len(flat))
    return ptr, flat


def make_config(rules, env_kind, env_params, **run):
    """Kernel keyword arguments from per-action lists (the CSR is built here)."""
    succ_ptr, succ_act = _csr(rules["successors"])
    var_ptr, var_val = _csr(rules["variants"])
    starts = rules["starts"]
    cfg = dict(RUN_DEFAULTS, n_actions=len(rules["successors"]), succ_ptr=succ_ptr, succ_act=succ_act,
               is_terminal=rules["terminal"], var_ptr=var_ptr, var_val=var_val,
               start_act=[s[0] for s in starts], start_tgt=[s[1] for s in starts],
               start_arg=[s[2] for s in starts], env_kind=env_kind, env_params=env_params,
               env_ops=rules["env_ops"], act_kind=rules.get("act_kind"), env_args=rules.get("env_args"))
    cfg.update(run)
    return cfg


def _build(cls, cfg, **caps):
    """A kernel for ``cfg``; its optional "prior" entry (target, arg tables) goes to set_prior."""
    cfg = dict(cfg)
    prior = cfg.pop("prior", None)
    k = cls(**cfg, **caps)
    if prior is not None:
        k.set_prior(*prior)
    return k


def prior_tables(n_actions, seed):
    """Learned child-ordering tables (target, arg) with many ties, or empty parts."""
    rng = np.random.default_rng(seed)
    t = (rng.integers(-2, 3, (n_actions, int(rng.integers(0, 14)))) * 0.25).tolist()
    v = (rng.integers(-2, 3, (n_actions, int(rng.integers(0, 10)))) * 0.25).tolist()
    return (t if len(t[0]) else None), (v if len(v[0]) else None)


def bonus_table(n_actions, seed):
    """A learned-bonus table with many ties (multiples of 0.5 in -1..1)."""
    size = (n_actions + 1) ** 2 * n_actions
    return (np.random.default_rng(seed).integers(-2, 3, size) * 0.5).tolist()


unit = st.floats(0.0, 1.0)
rates = st.one_of(st.just(0.0), unit)
skews = st.one_of(st.just(0.0), st.floats(-1.0, 4.0))


def _prefix(draw, params, shortest):
    """The parameters, maybe cut short so that the defaults are used."""
    return [float(p) for p in params][:draw(st.integers(shortest, len(params)))]


@st.composite
def environments(draw, kinds=tuple(N_OPS)):
    """(env kind, params, upper bound of meaningful targets)."""
    kind = draw(st.sampled_from(kinds))
    if kind == ENV_TS:
        n = draw(st.integers(1, 12))
        params = [n, draw(rates), draw(unit), draw(st.integers(-1, n + 1)), draw(rates), draw(skews)]
        return kind, _prefix(draw, params, 1), n
    if kind == ENV_GRID:
        w, h = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        goal = draw(st.one_of(st.just(-1), st.just(-2), st.integers(-2, w * h + 1)))
        return kind, _prefix(draw, [w, h, draw(st.floats(0.0, 0.5)), goal], 2), w * h
    if kind == ENV_CODE:
        files, per, branching = draw(st.integers(1, 120)), draw(st.integers(1, 12)), draw(st.integers(1, 4))
        dirs = (files + per - 1) // per
        params = [files, per, branching, draw(st.integers(0, 150)), draw(st.integers(-1, 17)), draw(rates)]
        return kind, _prefix(draw, params, 1), files + dirs
    if kind == ENV_SEARCH:
        files = draw(st.integers(1, 20))
        params = [files, draw(st.integers(1, 8)), draw(st.integers(-1, 5)), draw(rates)]
        return kind, _prefix(draw, params, 1), files
    if kind == ENV_CASCADE:
        params = [draw(st.integers(-1, 10)), draw(st.integers(-1, 10)), draw(st.integers(-1, 10)), draw(rates)]
        return kind, _prefix(draw, params, 0), 8
    params = [draw(st.integers(-1, 10)), draw(unit), draw(rates), draw(skews)]
    return kind, _prefix(draw, params, 0), 8


@st.composite
def random_rules(draw, env_kind, n_targets):
    """A random rule graph over 2..8 actions. Action 0 is the environment's op
    0 on a target where it succeeds, so that runs get somewhere."""
    A = draw(st.integers(2, 8))
    actions = st.integers(0, A - 1)
    first = (0, 0, -1) if env_kind in (ENV_GRID, ENV_CODE) else (0, -1, -1)
    more = draw(st.lists(st.tuples(actions, st.integers(-1, n_targets), st.integers(-1, 8)), max_size=2))
    ops = [0] + [draw(st.integers(-1, N_OPS[env_kind] - 1)) for _ in range(A - 1)]
    return dict(
        successors=[draw(st.lists(actions, max_size=4)) for _ in range(A)],
        terminal=[int(draw(st.integers(0, 5)) == 0) for _ in range(A)],
        variants=[draw(st.one_of(st.just([]), st.lists(st.integers(0, 8), min_size=1, max_size=3)))
                  for _ in range(A)],
        starts=[first, *more],                           # duplicates are skipped
        env_ops=ops,
        act_kind=draw(st.one_of(st.none(), st.lists(st.sampled_from([0, 0, 1, 2]), min_size=A, max_size=A))),
        env_args=draw(st.one_of(st.none(), st.lists(st.integers(-1, 9), max_size=9))))


@st.composite
def run_settings(draw, n_actions):
    """Every run-configuration knob; runs always end (WAIT needs a tick limit)."""
    on_exhausted = draw(st.integers(0, 2))
    weight = st.one_of(st.just(0.0), st.floats(-1.0, 1.0))
    return dict(
        n_workers=draw(st.integers(1, 8)),
        max_ticks=draw(st.one_of(st.just(0 if on_exhausted != 2 else 400), st.integers(1, 400))),
        term_strategy=draw(st.sampled_from([0, 1, 1, 2])),   # all_complete runs longest
        on_exhausted=on_exhausted,
        max_consec_errors=draw(st.one_of(st.just(0), st.integers(1, 8))),
        max_retries=draw(st.integers(0, 4)),
        escalate_after=draw(st.integers(0, 4)),
        manage_kind=draw(st.integers(0, 2)),
        manage_param=draw(st.integers(0, 4)),
        granular=draw(st.booleans()),
        selector=draw(st.sampled_from(SEL_KINDS)),
        ucb1_c=draw(st.floats(0.0, 3.0)),
        learning_weight=draw(weight),
        greedy_weight=draw(weight),
        maturity_threshold=draw(st.integers(0, 40)),
        error_rate_threshold=draw(unit),
        env_completes=draw(st.booleans()),                # only the environment completes the task
        bonus3=bonus_table(n_actions, draw(st.integers(0, 2**32 - 1))) if draw(st.booleans()) else [],
        prior=prior_tables(n_actions, draw(st.integers(0, 2**32 - 1))) if draw(st.booleans()) else None)


@st.composite
def configs(draw, kinds=tuple(N_OPS)):
    env_kind, params, n_targets = draw(environments(kinds))
    rules = RULES[env_kind] if draw(st.booleans()) else draw(random_rules(env_kind, n_targets))
    return make_config(rules, env_kind, params, **draw(run_settings(len(rules["successors"]))))


@st.composite
def long_configs(draw):
    """Whole-grid explorations: big frontiers, many groups, hundreds of ticks."""
    w, h = draw(st.integers(5, 12)), draw(st.integers(5, 12))
    params = [float(w), float(h), draw(st.floats(0.0, 0.3)), -1.0]
    rules = GRID_RULES if draw(st.booleans()) else draw(random_rules(ENV_GRID, w * h))
    run = draw(run_settings(len(rules["successors"])))
    run.update(term_strategy=1, on_exhausted=draw(st.integers(0, 1)), max_ticks=0, max_consec_errors=0)
    return make_config(dict(rules, terminal=[0] * len(rules["terminal"])), ENV_GRID, params, **run)


capacities = st.fixed_dictionaries({"node_capacity": st.integers(1, 64),
                                    "event_capacity": st.integers(1, 64)})

# ----------------------------------------------------------------------------- running both


def _plain(arrays):
    return {k: (v.dtype.str, v.tolist()) for k, v in arrays.items()}


def _concat(chunks):
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def _scalars(k):
    return (k.verdict, k.tick, k.total_visits, k.total_fail, k.n_nodes, bool(k.task_done))


def _state(k, events, checkpoints, env_state):
    return {"scalars": _scalars(k), "checkpoints": checkpoints, "events": _plain(events),
            "nodes": _plain(k.nodes()), "groups": _plain(k.groups()), "workers": _plain(k.workers()),
            "stats": _plain(k.action_stats()), "env_state": list(env_state)}


def run_native(cfg, seed, chunks=(10**9,), node_capacity=1024, event_capacity=4096):
    """Run one seed to its verdict in step() chunks, growing on ST_NEED_ROOM."""
    k = _build(Kernel, cfg, node_capacity=node_capacity, event_capacity=event_capacity)
    k.reset(seed)
    events, checkpoints, i = [], [], 0
    while k.verdict == V_RUNNING:
        target = k.tick + chunks[i % len(chunks)]
        i += 1
        while k.verdict == V_RUNNING and k.tick < target:
            if k.step(target - k.tick) != ST_OK:
                events.append(k.take_events())
                k.make_room()
        checkpoints.append(_scalars(k))
    events.append(k.take_events())
    return _state(k, _concat(events), checkpoints, np.asarray(k.env_state).tolist())


def run_reference(cfg, seed, chunks=(10**9,)):
    k = _build(ReferenceKernel, cfg)
    k.reset(seed)
    checkpoints, i = [], 0
    while k.verdict == V_RUNNING:
        assert k.step(chunks[i % len(chunks)]) == ST_OK
        i += 1
        checkpoints.append(_scalars(k))
    return _state(k, k.take_events(), checkpoints, k.env.state)


def native_batch(k, seeds):
    """Kernel.run_batch over seeds, resuming on ST_NEED_ROOM: (rows, events)."""
    seeds = np.asarray(seeds, dtype=np.uint64)
    R, A = seeds.shape[0], k.n_actions
    success, verdict = np.zeros(R, np.uint8), np.zeros(R, np.int8)
    ticks, actions, failed = np.zeros(R, np.int64), np.zeros(R, np.int64), np.zeros(R, np.int64)
    wall, by_action, done = np.zeros(R, np.float64), np.zeros((R, A), np.int64), np.zeros(R, np.uint8)
    events, r, resume = [], 0, False
    while r < R:
        r, status = k.run_batch(seeds, r, resume, success, verdict, ticks, actions, failed, wall, by_action,
                                out_done=done)
        resume = status != ST_OK
        if resume:
            events.append(k.take_events())
            k.make_room()
    events.append(k.take_events())
    rows = [(bool(success[i]), int(verdict[i]), int(ticks[i]), int(actions[i]), int(failed[i]),
             by_action[i].tolist(), bool(done[i])) for i in range(R)]
    return rows, _concat(events)


def events_by_run(events, offset=0):
    """Per run (global index): every event field except the batch-relative run index."""
    out = {}
    for i, run in enumerate(events["run"].tolist()):
        row = tuple(events[f][i].item() for f in events if f != "run")
        out.setdefault(run + offset, []).append(row)
    return out


def assert_same_run(cfg, seed, chunks=(10**9,), **caps):
    native = run_native(cfg, seed, chunks, **caps)
    reference = run_reference(cfg, seed, chunks)
    for part in native:
        assert native[part] == reference[part], part


# ----------------------------------------------------------------------------- properties


@given(cfg=configs(), seed=SEEDS, chunks=st.lists(st.integers(1, 40), min_size=1, max_size=3),
       caps=capacities)
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_native_matches_reference(cfg, seed, chunks, caps):
    assert_same_run(cfg, seed, tuple(chunks), **caps)


@given(cfg=long_configs(), seed=SEEDS, caps=capacities)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_native_matches_reference_on_long_runs(cfg, seed, caps):
    assert_same_run(cfg, seed, (7, 50), **caps)


@given(cfg=configs(), seeds=st.lists(SEEDS, min_size=1, max_size=4), caps=capacities)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_run_batch_matches_reference(cfg, seeds, caps):
    native = _build(Kernel, cfg, **caps)
    rows, events = native_batch(native, seeds)
    reference = _build(ReferenceKernel, cfg)
    assert [tuple(r) for r in reference.run_batch(seeds)] == rows
    assert _plain(reference.take_events()) == _plain(events)
    assert _plain(reference.action_stats(cumulative=True)) == _plain(native.action_stats(cumulative=True))


@given(cfg=configs(), seeds=st.lists(SEEDS, min_size=2, max_size=5),
       cuts=st.lists(st.integers(1, 4), max_size=3))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_batch_size_independence(cfg, seeds, cuts):
    """A run's row and trace depend on its seed only: not on the batch, its
    position in it, how the batch is split, or the runs before it."""
    whole_rows, whole_events = native_batch(_build(Kernel, cfg), seeds)
    whole = events_by_run(whole_events)

    alone_rows, alone = [], {}
    reused = _build(Kernel, cfg, node_capacity=1, event_capacity=1)
    for i, seed in enumerate(seeds):
        rows, events = native_batch(_build(Kernel, cfg), [seed])
        again, again_events = native_batch(reused, [seed])
        assert (again, events_by_run(again_events)) == (rows, events_by_run(events))
        alone_rows += rows
        alone.update(events_by_run(events, offset=i))
    assert alone_rows == whole_rows
    assert alone == whole

    bounds = sorted({c for c in cuts if c < len(seeds)} | {0, len(seeds)})
    split_rows, split, k = [], {}, _build(Kernel, cfg)
    for lo, hi in zip(bounds, bounds[1:]):
        rows, events = native_batch(k, seeds[lo:hi])
        split_rows += rows
        split.update(events_by_run(events, offset=lo))
    assert split_rows == whole_rows
    assert split == whole

    assert [tuple(r) for r in _build(ReferenceKernel, cfg).run_batch(seeds)] == whole_rows


# ----------------------------------------------------------------------------- fixed cases


@pytest.mark.parametrize("granular", [False, True], ids=["per-action", "granular"])
def test_small_runs_after_big_ones(granular):
    # Runs of one batch reuse the dedup tables; after a big run a small one
    # clears only its own keys. Goal-seeking on a 40 x 40 grid mixes runs of
    # a few nodes with runs of a thousand.
    cfg = make_config(GRID_RULES, ENV_GRID, [40.0, 40.0, 0.3, -2.0], granular=granular, n_workers=3,
                      selector=1, record_events=False)
    seeds = list(range(30))
    rows, _ = native_batch(_build(Kernel, cfg), seeds)
    assert max(r[3] for r in rows) > 500 and min(r[3] for r in rows) < 50
    assert rows == [native_batch(_build(Kernel, cfg), [s])[0][0] for s in seeds]
    assert [tuple(r) for r in _build(ReferenceKernel, cfg).run_batch(seeds)] == rows


STANDARD = {  # the usual rule set of each environment, with parameters that make it work
    "troubleshooting": (ENV_TS, [6.0, 0.1, 0.4, 2.0, 0.3]),     # two faults, noisy logs
    "grid": (ENV_GRID, [7.0, 6.0, 0.25, -2.0]),
    "code_tree": (ENV_CODE, [60.0, 6.0, 3.0, 40.0, 3.0, 0.1]),
    "search": (ENV_SEARCH, [12.0, 5.0, 2.0, 0.1]),
    "diagnosis": (ENV_DIAGNOSIS, [6.0, 0.4, 0.1]),
    "cascade": (ENV_CASCADE, [8.0, 4.0, 6.0, 0.1]),
}


def _standard(env, granular, **run):
    kind, params = STANDARD[env]
    return make_config(RULES[kind], kind, params, granular=granular, **{"max_retries": 2, **run})


@pytest.mark.parametrize("seed", [0, 1, 2**63 + 5])
@pytest.mark.parametrize("bonus", [False, True], ids=["no-bonus", "bonus"])
@pytest.mark.parametrize("granular", [False, True], ids=["per-action", "granular"])
@pytest.mark.parametrize("env", list(STANDARD))
@pytest.mark.parametrize("selector", SEL_KINDS)
def test_every_selector(selector, env, granular, bonus, seed):
    A = len(RULES[STANDARD[env][0]]["successors"])
    cfg = _standard(env, granular, selector=selector, n_workers=3, maturity_threshold=6,
                    learning_weight=0.7, bonus3=bonus_table(A, seed % 97) if bonus else [])
    assert_same_run(cfg, seed)


@pytest.mark.parametrize("n_workers", range(1, 9))
@pytest.mark.parametrize("selector", [0, 3])
def test_worker_counts(n_workers, selector):
    cfg = _standard("grid", True, selector=selector, n_workers=n_workers, term_strategy=1)
    assert_same_run(cfg, 11, node_capacity=1, event_capacity=1)


@pytest.mark.parametrize("on_exhausted", range(3))
@pytest.mark.parametrize("term_strategy", range(3))
@pytest.mark.parametrize("manage", [(0, 1), (1, 3), (2, 2)], ids=["every-tick", "interval", "completion"])
@pytest.mark.parametrize("env", list(STANDARD))
def test_management_and_termination(env, manage, term_strategy, on_exhausted):
    cfg = _standard(env, False, n_workers=4, selector=1, manage_kind=manage[0], manage_param=manage[1],
                    term_strategy=term_strategy, on_exhausted=on_exhausted, max_ticks=150,
                    max_consec_errors=5, escalate_after=2)
    for seed in (3, 4):
        assert_same_run(cfg, seed)


@pytest.mark.parametrize("max_retries", [0, 1, 3])
@pytest.mark.parametrize("error_rate", [0.0, 0.3, 1.0])
def test_retries_and_errors(max_retries, error_rate):
    cfg = make_config(TS_RULES, ENV_TS, [8.0, error_rate, 0.5], n_workers=2, max_retries=max_retries,
                      selector=2, granular=True)
    assert_same_run(cfg, 5)


@pytest.mark.parametrize("env", list(STANDARD))
def test_batch_rows_of_the_standard_scenarios(env):
    cfg = _standard(env, True, selector=5, n_workers=2, maturity_threshold=4, max_ticks=500)
    seeds = list(range(20))
    rows, _ = native_batch(_build(Kernel, cfg), seeds)
    assert [tuple(r) for r in _build(ReferenceKernel, cfg).run_batch(seeds)] == rows
    assert sum(r[0] for r in rows) > 0          # the scenario is solvable


# ----------------------------------------------------------------------------- native bugs these tests found
# (regression tests: each comment says what the native kernel used to do)


def _run_in_child(cfg, seed):
    """Run one seed natively in a child process (for bugs that corrupt memory):
    (0, [verdict, tick, total_visits, n_nodes]), or (exit status, stderr), or
    ("timeout", ...) when the corruption sends it into an endless loop."""
    script = ("import json, sys\n"
              "from swarm_engine._native._kernel import Kernel\n"
              "cfg = json.loads(sys.argv[1])\n"
              "k = Kernel(**cfg)\n"
              f"k.reset({seed})\n"
              "while k.verdict == 0:\n"
              "    if k.step(10**6):\n"
              "        k.take_events(); k.make_room()\n"
              "print(json.dumps([k.verdict, k.tick, k.total_visits, k.n_nodes]), flush=True)\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(swarm_engine.__file__).resolve().parent.parent),
                                         env.get("PYTHONPATH", "")])
    try:
        child = subprocess.run([sys.executable, "-c", script, json.dumps(cfg)], capture_output=True,
                               text=True, env=env, timeout=10)
    except subprocess.TimeoutExpired:
        return "timeout", "no verdict after 10 s (a run of this size takes milliseconds)"
    if child.returncode != 0:
        return child.returncode, child.stderr[-2000:]
    return 0, json.loads(child.stdout)


def _reference_summary(cfg, seed):
    reference = _build(ReferenceKernel, cfg)
    reference.reset(seed)
    reference.step(10**9)
    return [reference.verdict, reference.tick, reference.total_visits, reference.n_nodes]


def test_duplicate_start_nodes_are_deduplicated():
    # _kernel.pyx _reset had `if self._add_node(...) == -1: return -1`: a
    # duplicate start node was an error, returned with no exception set
    # (SystemError), and the start nodes after it were never added.
    cfg = make_config(dict(GRID_RULES, starts=[(0, 0, -1), (0, 0, -1), (0, 1, -1)]), ENV_GRID,
                      [3.0, 3.0, 0.0, -1.0])
    assert_same_run(cfg, 1)


def test_more_start_groups_than_initial_group_capacity():
    # _kernel.pyx: granular kernels started with 64 groups and _reset adds the
    # start nodes before any room check: more start groups wrote out of bounds
    # (abort, segfault or an endless loop, hence the child process).
    cfg = make_config(dict(GRID_RULES, starts=[(0, t, -1) for t in range(200)]), ENV_GRID,
                      [20.0, 20.0, 0.2, -1.0], granular=True, n_workers=4)
    assert _run_in_child(cfg, 9) == (0, _reference_summary(cfg, 9))


def test_retry_limit_above_255_is_rejected():
    # _kernel.pxd: n_retries is uint8_t, so max_retries >= 256 let the count
    # wrap at 255 -> 0 and a node that keeps erroring was retried forever
    # (this run timed out instead of ending exhausted after 257 attempts).
    cfg = make_config(dict(TS_RULES, successors=[[]], terminal=[0], variants=[[]], env_ops=[0]),
                      ENV_TS, [3.0, 1.0, 0.0], max_retries=256, max_ticks=2000)
    with pytest.raises(ValueError, match="max_retries"):
        _build(ReferenceKernel, cfg)
    with pytest.raises(ValueError, match="max_retries"):
        _build(Kernel, cfg)


def test_retry_limit_255_is_honoured():
    cfg = make_config(dict(TS_RULES, successors=[[]], terminal=[0], variants=[[]], env_ops=[0]),
                      ENV_TS, [3.0, 1.0, 0.0], max_retries=255, max_ticks=2000)
    assert run_native(cfg, 1)["scalars"][:2] == (V_EXHAUSTED, 256)
    assert_same_run(cfg, 1)


@pytest.mark.parametrize("params", [[200.0, 10.0, 1.0, 1000.0, 16.0], [30.0, 1.0, 1.0, 100.0, 5.0]],
                         ids=["16-refs", "one-file-per-dir"])
def test_code_tree_discoveries_within_their_bound(params):
    # _code_tree.pyx code_tree_max_discoveries returned branching + files per
    # directory, but Grep returns up to 1 + refs files; the kernel sizes
    # as_disc (W * bound) and its node budget by the bound, so a Grep of the
    # root wrote past both (silently, or a crash / IndexError in a debug build).
    from swarm_engine._native import _envs
    cfg = make_config(dict(RULES[ENV_CODE], starts=[(1, 0, -1)]), ENV_CODE, params, term_strategy=1)
    reference = _build(ReferenceKernel, cfg)
    reference.reset(3)
    reference.step(10**9)
    most = int(reference.take_events()["n_discoveries"].max())
    assert most <= _envs.max_discoveries(ENV_CODE, np.array(params))


def test_variant_args_outside_the_packed_key_range_are_refused():
    # _kernel.pyx _commit packs pack_key(b, tt, var_val[v]) with no range check
    # on the argument (start nodes get one in _add_node): arg 2^24 carries into
    # the target bits, so (target 1, arg 2^24) becomes node (target 2, arg 0).
    cfg = make_config(dict(GRID_RULES, variants=[[2**24]]), ENV_GRID, [3.0, 3.0, 0.0, -1.0], term_strategy=1)
    with pytest.raises(OverflowError):
        run_reference(cfg, 1)
    with pytest.raises((OverflowError, ValueError)):
        run_native(cfg, 1)


@pytest.mark.parametrize("before, after", [(True, False), (False, True), (True, True)],
                         ids=["table-to-none", "none-to-table", "table-to-table"])
def test_set_bonus_replaces_the_table(before, after):
    # _kernel.pyx _plan refreshes bonus_now only while a table is installed,
    # so set_bonus([]) left the last context's row in force.
    cfg = _standard("troubleshooting", False, selector=4, n_workers=1, greedy_weight=1.0,
                    bonus3=bonus_table(5, 7) if before else [])
    native = _build(Kernel, cfg)
    native.reset(1)
    native.step(5)
    table = bonus_table(5, 8) if after else []
    native.set_bonus(table)
    native.reset(1)
    native.step(10**6)
    reference = _build(ReferenceKernel, cfg)
    reference.set_bonus(table)
    reference.reset(1)
    reference.step(10**6)
    assert _plain(native.take_events()) == _plain(reference.take_events())
