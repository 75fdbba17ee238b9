"""The reference random streams equal the C ones of csrc/rng.h, bit for bit.

The reference kernel can only reproduce native traces if every draw matches,
so each C entry point is probed: ``hash64`` through the grid's blocked-cell
function (pinned to the last bit by bracketing the hash with block rates),
``uniform`` / ``below`` through the hidden states every environment draws,
``beta`` (hence ``gamma`` and ``normal``) through a Kernel whose sampled
Thompson selector decides every pick, and the whole header, when a C
compiler is at hand, through a tiny probe program compiled against it.
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_engine._native import _envs
from swarm_engine._native._kernel import Kernel
from swarm_engine._reference import (
    CodeTreeEnv,
    DiagnosisEnv,
    GridEnv,
    ReferenceKernel,
    SearchEnv,
    TroubleshootingEnv,
    Xoshiro256,
    hash64,
)
from swarm_engine._reference.rng import MASK64, splitmix64
from tests.paths import ROOT

SEEDS = st.integers(0, MASK64)
ENV_TS, ENV_GRID, ENV_CODE, ENV_SEARCH, ENV_DIAGNOSIS = 1, 2, 3, 4, 5


def _bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


# ----------------------------------------------------------------------------- known answers


def test_splitmix64_known_answer():
    # The published splitmix64 stream from state 0.
    x, out = 0, []
    for _ in range(4):
        x, z = splitmix64(x)
        out.append(z)
    assert out == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F, 0xF88BB8A8724C81EC]


def test_streams_are_explicit_state():
    a, b = Xoshiro256(7, 1), Xoshiro256(7, 1)
    assert [a.next() for _ in range(5)] == [b.next() for _ in range(5)]
    assert Xoshiro256(7, 0).next() != Xoshiro256(7, 1).next()
    a.seed(7, 1)
    b.seed(7, 1)
    assert a.s == b.s


@given(seed=SEEDS, n=st.integers(1, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_ranges(seed, n):
    r = Xoshiro256(seed, 1)
    assert 0 <= r.next() <= MASK64
    assert 0.0 <= r.uniform() < 1.0
    assert 0 <= r.below(n) < n
    assert 0.0 < r.beta(1.0 + seed % 5, 1.5) < 1.0
    assert r.gamma(0.5) >= 0.0


def test_beta_mean():
    r = Xoshiro256(12345, 1)
    draws = [r.beta(3.0, 5.0) for _ in range(4000)]
    assert abs(sum(draws) / len(draws) - 3.0 / 8.0) < 0.01


# ----------------------------------------------------------------------------- native probes


@given(seed=SEEDS, cell=st.integers(1, 2**40))
@settings(max_examples=300, deadline=None)
def test_hash64_through_grid_blocked(seed, cell):
    # grid_blocked(rate) is (hash64(seed ^ cell * golden) >> 11) * 2^-53 < rate:
    # the two rates around the predicted value pin all 53 bits.
    u = (hash64(seed ^ ((cell * 0x9E3779B97F4A7C15) & MASK64)) >> 11) * 2.0**-53
    assert not _envs.grid_blocked(np.array([4.0, 4.0, u]), seed, cell)
    assert _envs.grid_blocked(np.array([4.0, 4.0, math.nextafter(u, 2.0)]), seed, cell)


@given(seed=SEEDS)
@settings(max_examples=50, deadline=None)
def test_cell_zero_is_never_blocked(seed):
    assert not _envs.grid_blocked(np.array([4.0, 4.0, 2.0]), seed, 0)


@given(seed=SEEDS, n=st.integers(1, 12), error_rate=st.floats(0, 1), noise=st.floats(0, 1),
       faults=st.integers(-1, 13), log_noise=st.floats(0, 1), n_params=st.integers(1, 5))
@settings(max_examples=300, deadline=None)
def test_troubleshooting_hidden_state(seed, n, error_rate, noise, faults, log_noise, n_params):
    params = [float(n), error_rate, noise, float(faults), log_noise][:n_params]
    env = TroubleshootingEnv(params)
    env.reset(seed)
    assert _envs.hidden_state(ENV_TS, np.array(params), seed).tolist() == env.state


@given(seed=SEEDS, n=st.integers(2, 12))
@settings(max_examples=200, deadline=None)
def test_uniform_bits_through_noise(seed, n):
    # The first healthy service is a red herring iff its uniform draw < noise:
    # noise = the predicted draw (not below) and its successor (below) pin it.
    r = Xoshiro256(seed, 0)
    faulty = r.below(n)
    r.below(5)
    if faulty == 0:
        r.below(2)
    u = r.uniform()
    first = 1 if faulty == 0 else 0
    at = _envs.hidden_state(ENV_TS, np.array([float(n), 0.0, u]), seed)
    above = _envs.hidden_state(ENV_TS, np.array([float(n), 0.0, math.nextafter(u, 2.0)]), seed)
    assert at[4] == faulty
    assert at[5 + first] == 0
    assert above[5 + first] == 1


@given(seed=SEEDS, w=st.integers(1, 46340), h=st.integers(1, 46340))
@settings(max_examples=300, deadline=None)
def test_below_through_random_goal(seed, w, h):
    # w * h up to ~2^31: the goal exposes ~31 high bits of the first output.
    params = [float(w), float(h), 0.0, -2.0]
    env = GridEnv(params)
    env.reset(seed)
    native = _envs.hidden_state(ENV_GRID, np.array(params), seed)
    assert native.tolist() == env.state
    assert native[0] == Xoshiro256(seed, 0).below(w * h)


@given(seed=SEEDS, params=st.lists(st.integers(-2, 300), max_size=6),
       error_rate=st.floats(0, 1))
@settings(max_examples=300, deadline=None)
def test_code_tree_hidden_state(seed, params, error_rate):
    # refs are drawn by rejection: every below() of the loop shows in the state
    params = [float(p) for p in params] + [error_rate]
    env = CodeTreeEnv(params)
    env.reset(seed)
    assert _envs.hidden_state(ENV_CODE, np.array(params), seed).tolist() == env.state


@given(seed=SEEDS, params=st.lists(st.integers(-2, 40), max_size=3), error_rate=st.floats(0, 1))
@settings(max_examples=300, deadline=None)
def test_search_hidden_state(seed, params, error_rate):
    # rejection sampling, then a Fisher-Yates shuffle: below(n) for many n
    params = [float(p) for p in params] + [error_rate]
    env = SearchEnv(params)
    env.reset(seed)
    assert _envs.hidden_state(ENV_SEARCH, np.array(params), seed).tolist() == env.state


@given(seed=SEEDS, sections=st.integers(-1, 10), noise=st.floats(0, 1), n_params=st.integers(0, 3))
@settings(max_examples=300, deadline=None)
def test_diagnosis_hidden_state(seed, sections, noise, n_params):
    params = [float(sections), noise, 0.0][:n_params]
    env = DiagnosisEnv(params)
    env.reset(seed)
    assert _envs.hidden_state(ENV_DIAGNOSIS, np.array(params), seed).tolist() == env.state


def _thompson_config(n_workers: int, granular: bool) -> dict:
    # 6 actions, each a successor of every action, exploring a blocked 7x7
    # grid: several groups are open at every tick, so Beta draws decide picks.
    A = 6
    return dict(
        n_actions=A, succ_ptr=[A * i for i in range(A + 1)], succ_act=list(range(A)) * A,
        is_terminal=[0] * A, var_ptr=[0] * (A + 1), var_val=[], start_act=list(range(A)),
        start_tgt=[0] * A, start_arg=[-1] * A, n_workers=n_workers, max_ticks=60, term_strategy=0,
        on_exhausted=0, max_consec_errors=0, max_retries=0, escalate_after=0, manage_kind=0,
        manage_param=1, granular=granular, selector=3, ucb1_c=1.0, learning_weight=0.0,
        greedy_weight=0.0, maturity_threshold=0, error_rate_threshold=0.5, bonus3=[],
        env_kind=ENV_GRID, env_params=[7.0, 7.0, 0.3, -1.0], env_ops=[0] * A, env_max_disc=0,
        record_events=True)


@given(seed=SEEDS, n_workers=st.integers(1, 4), granular=st.booleans())
@settings(max_examples=40, deadline=None)
def test_beta_through_sampled_thompson_traces(seed, n_workers, granular):
    cfg = _thompson_config(n_workers, granular)
    native, ref = Kernel(**cfg), ReferenceKernel(**cfg)
    native.reset(seed)
    ref.reset(seed)
    events = []
    while native.verdict == 0:
        if native.step(1000) != 0:
            events.append(native.take_events())
            native.make_room()
    events.append(native.take_events())
    ref.step(10**9)
    got = ref.take_events()
    for field in got:
        assert np.concatenate([e[field] for e in events]).tolist() == got[field].tolist(), field


# ----------------------------------------------------------------------------- the header itself

_PROBE = r"""
#include <stdio.h>
#include <string.h>
#include "rng.h"
#include "hashmap.h"
static unsigned long long bits(double x) { unsigned long long u; memcpy(&u, &x, 8); return u; }
int main(void) {
    static const unsigned long long seeds[] = {SEEDS};
    static const double shapes[] = {0.25, 0.5, 1.0, 1.5, 3.0, 40.0};
    for (unsigned i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        swarm_rng_t r;
        swarm_rng_seed(&r, seeds[i], i % 3);
        for (int k = 0; k < 8; k++) printf("%llx\n", (unsigned long long)swarm_rng_next(&r));
        for (int k = 0; k < 8; k++) printf("%llx\n", bits(swarm_rng_uniform(&r)));
        for (int k = 0; k < 8; k++) printf("%u\n", swarm_rng_below(&r, 1u + 977u * k * k * k));
        for (int k = 0; k < 8; k++) printf("%llx\n", bits(swarm_rng_normal(&r)));
        for (int k = 0; k < 6; k++) printf("%llx\n", bits(swarm_rng_gamma(&r, shapes[k])));
        for (int k = 0; k < 6; k++) printf("%llx\n", bits(swarm_rng_beta(&r, shapes[k], shapes[5 - k])));
        printf("%llx\n", (unsigned long long)swarm_hash64(seeds[i]));
    }
    return 0;
}
"""

_PROBE_SEEDS = [0, 1, 2, 42, 2**32 - 1, 2**63, MASK64, 0x0123456789ABCDEF, 987654321987654321]


def _python_probe() -> list[str]:
    shapes = [0.25, 0.5, 1.0, 1.5, 3.0, 40.0]
    out = []
    for i, seed in enumerate(_PROBE_SEEDS):
        r = Xoshiro256(seed, i % 3)
        out += [f"{r.next():x}" for _ in range(8)]
        out += [f"{_bits(r.uniform()):x}" for _ in range(8)]
        out += [f"{r.below(1 + 977 * k * k * k)}" for k in range(8)]
        out += [f"{_bits(r.normal()):x}" for _ in range(8)]
        out += [f"{_bits(r.gamma(s)):x}" for s in shapes]
        out += [f"{_bits(r.beta(shapes[k], shapes[5 - k])):x}" for k in range(6)]
        out.append(f"{hash64(seed):x}")
    return out


def test_header_bit_for_bit(tmp_path):
    """Every function of rng.h (normal and gamma included, which the kernel
    only reaches through beta) against a probe compiled as the extension is."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not (ROOT / "csrc" / "rng.h").exists():
        pytest.skip("needs a C compiler and the csrc/ headers (a source checkout)")
    src = tmp_path / "probe.c"
    src.write_text(_PROBE.replace("SEEDS", ", ".join(f"{s}ULL" for s in _PROBE_SEEDS)))
    exe = tmp_path / "probe"
    subprocess.run([cc, "-O3", "-I", str(ROOT / "csrc"), str(src), "-o", str(exe), "-lm"],
                   check=True, capture_output=True)
    got = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    assert got == _python_probe()
