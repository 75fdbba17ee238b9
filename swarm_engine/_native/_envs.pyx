# cython: language_level=3
"""Native environments, stepped one tick-batch at a time.

Each environment keeps its hidden state in the run's int32 ``state`` buffer and
draws it from stream 0 of the run's seed, so the same seed gives the same hidden
state whatever else the run does. Text observations are not produced here: the
Python faces in ``swarm_engine.environments`` render them lazily from the hidden
state (``hidden_state()`` below) and an event.

troubleshooting
    params = [n_services, error_rate, noise]
    state  = [n, faulty, problem, diagnosed, done, status[n], evidence[n]]
    ops    = CheckStatus 0, ReadLogs 1, AnalyzeMetrics 2, Diagnose 3, Restart 4
    CheckStatus discovers the services that are not Running (the faulty one
    always is; each healthy one is Degraded with probability ``noise``).
    ReadLogs / AnalyzeMetrics succeed only where the fault leaves evidence in
    that source and record it; Diagnose succeeds only on the faulty service
    with evidence; Restart of the diagnosed service completes the task. Every
    action fails transiently with probability ``error_rate``.

grid
    params = [width, height, block_rate, goal]   (goal -1: none, -2: random)
    state  = [goal, done, seed_lo, seed_hi]
    ops    = Explore 0
    Explore(cell) fails on a blocked cell (a stateless hash of seed and cell,
    so 10^7 cells cost no memory), completes the task on the goal cell, and
    otherwise discovers the 4-neighbours.
"""
from swarm_engine._native._typedefs cimport int64_t, uint32_t
from swarm_engine._native._rng cimport (swarm_rng_t, swarm_rng_seed, swarm_rng_uniform,
                                        swarm_rng_below)
from swarm_engine._native._hashmap cimport swarm_hash64

import numpy as np

# Evidence each problem leaves: bit 1 = logs, bit 2 = metrics.
# MemoryLeak, CpuSpike, DiskFull, NetworkTimeout, DatabaseConnection.
cdef int[5] TS_EVIDENCE = [3, 2, 3, 1, 1]
cdef float[5] TS_DURATION_MS = [5.0, 20.0, 30.0, 10.0, 50.0]
cdef enum:
    TS_HDR = 5


cdef inline int _param_int(const float64_t *p, int n, int i, int default) noexcept nogil:
    return <int>p[i] if i < n else default


cdef inline double _param(const float64_t *p, int n, int i, double default) noexcept nogil:
    return p[i] if i < n else default


cdef int env_state_size(int kind, const float64_t *params, int n_params) noexcept nogil:
    if kind == ENV_TROUBLESHOOTING:
        return TS_HDR + 2 * _param_int(params, n_params, 0, 4)
    if kind == ENV_GRID:
        return 4
    return 1


cdef int env_max_discoveries(int kind, const float64_t *params, int n_params) noexcept nogil:
    if kind == ENV_TROUBLESHOOTING:
        return _param_int(params, n_params, 0, 4)
    if kind == ENV_GRID:
        return 4
    return 0


cdef int _ts_reset(EnvCtx *env) except -1 nogil:
    cdef int n = _param_int(env.params, env.n_params, 0, 4)
    cdef double noise = _param(env.params, env.n_params, 2, 0.25)
    cdef int32_t *st = env.state
    cdef int i
    st[0] = n
    st[1] = <int32_t>swarm_rng_below(&env.rng, <uint32_t>n)
    st[2] = <int32_t>swarm_rng_below(&env.rng, 5)
    st[3] = -1
    st[4] = 0
    for i in range(n):
        st[TS_HDR + n + i] = 0
        if i == st[1]:
            st[TS_HDR + i] = 1 + <int32_t>swarm_rng_below(&env.rng, 2)   # Degraded or Down
        elif swarm_rng_uniform(&env.rng) < noise:
            st[TS_HDR + i] = 1                                          # a red herring
        else:
            st[TS_HDR + i] = 0
    return 0


cdef int _ts_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt,
                  int8_t *outcome, int32_t *disc_ptr, int32_t *disc,
                  float32_t *duration_ms) except -1 nogil:
    cdef int32_t *st = env.state
    cdef int ns = st[0], faulty = st[1], problem = st[2]
    cdef double error_rate = _param(env.params, env.n_params, 1, 0.0)
    cdef int i, s, op, bit, nd = 0, done = 0
    cdef int8_t out
    for i in range(n):
        disc_ptr[i] = nd
        op = env.op_of_action[act[i]]
        s = tgt[i]
        duration_ms[i] = TS_DURATION_MS[op] if 0 <= op < 5 else 0.0
        out = OUT_FAIL
        if op < 0 or op > 4:
            outcome[i] = OUT_FAIL
            continue
        if error_rate > 0.0 and swarm_rng_uniform(&env.rng) < error_rate:
            outcome[i] = OUT_ERROR
            continue
        if op == 0:
            out = OUT_OK
            for s in range(ns):
                if st[TS_HDR + s] != 0:
                    disc[nd] = s
                    nd += 1
        elif s < 0 or s >= ns:
            out = OUT_FAIL
        elif op == 1 or op == 2:
            bit = 1 if op == 1 else 2
            if s == faulty and (TS_EVIDENCE[problem] & bit):
                st[TS_HDR + ns + s] |= bit
                out = OUT_OK
        elif op == 3:
            if s == faulty and st[TS_HDR + ns + s] != 0:
                st[3] = s
                out = OUT_OK
        elif op == 4:
            if s == st[3]:
                st[4] = 1
                done = 1
                out = OUT_OK
        outcome[i] = out
    disc_ptr[n] = nd
    return done


cdef inline bint _grid_blocked(const int32_t *st, int64_t cell, double rate) noexcept nogil:
    cdef uint64_t seed = (<uint64_t><uint32_t>st[2]) | ((<uint64_t><uint32_t>st[3]) << 32)
    cdef uint64_t h = swarm_hash64(seed ^ (<uint64_t>cell * 0x9E3779B97F4A7C15ULL))
    return <double>(h >> 11) * (1.0 / 9007199254740992.0) < rate


cdef int _grid_reset(EnvCtx *env, uint64_t seed) except -1 nogil:
    cdef int w = _param_int(env.params, env.n_params, 0, 100)
    cdef int h = _param_int(env.params, env.n_params, 1, 100)
    cdef int goal = _param_int(env.params, env.n_params, 3, -1)
    if goal == -2:
        goal = <int>swarm_rng_below(&env.rng, <uint32_t>(w * h))
    env.state[0] = goal
    env.state[1] = 0
    env.state[2] = <int32_t>(seed & 0xFFFFFFFFULL)
    env.state[3] = <int32_t>(seed >> 32)
    return 0


cdef int _grid_step(EnvCtx *env, int n, const int32_t *tgt, int8_t *outcome,
                    int32_t *disc_ptr, int32_t *disc, float32_t *duration_ms) except -1 nogil:
    cdef int w = _param_int(env.params, env.n_params, 0, 100)
    cdef int h = _param_int(env.params, env.n_params, 1, 100)
    cdef double rate = _param(env.params, env.n_params, 2, 0.0)
    cdef int32_t *st = env.state
    cdef int i, c, x, y, nd = 0, done = 0
    for i in range(n):
        disc_ptr[i] = nd
        duration_ms[i] = 1.0
        c = tgt[i]
        if c < 0 or c >= w * h or (c != 0 and _grid_blocked(st, c, rate)):
            outcome[i] = OUT_FAIL
            continue
        outcome[i] = OUT_OK
        if c == st[0]:
            st[1] = 1
            done = 1
            continue
        x = c % w
        y = c // w
        if x + 1 < w:
            disc[nd] = c + 1
            nd += 1
        if y + 1 < h:
            disc[nd] = c + w
            nd += 1
        if x > 0:
            disc[nd] = c - 1
            nd += 1
        if y > 0:
            disc[nd] = c - w
            nd += 1
    disc_ptr[n] = nd
    return done


cdef int env_reset(EnvCtx *env, uint64_t seed) except -1 nogil:
    swarm_rng_seed(&env.rng, seed, 0)
    if env.kind == ENV_TROUBLESHOOTING:
        return _ts_reset(env)
    if env.kind == ENV_GRID:
        return _grid_reset(env, seed)
    return 0


cdef int env_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt,
                  const int32_t *arg, int8_t *outcome, int32_t *disc_ptr,
                  int32_t *disc, float32_t *duration_ms) except -1 nogil:
    if env.kind == ENV_TROUBLESHOOTING:
        return _ts_step(env, n, act, tgt, outcome, disc_ptr, disc, duration_ms)
    if env.kind == ENV_GRID:
        return _grid_step(env, n, tgt, outcome, disc_ptr, disc, duration_ms)
    return -1


def hidden_state(int kind, const float64_t[::1] params, uint64_t seed):
    """The hidden state a run with this seed starts from, as an int32 array.

    The Python faces render text observations from it; nothing in the hot
    loop calls this.
    """
    cdef EnvCtx env
    cdef int size = env_state_size(kind, &params[0] if params.shape[0] else NULL,
                                   params.shape[0])
    state = np.zeros(size, dtype=np.int32)
    cdef int32_t[::1] sv = state
    env.kind = kind
    env.params = &params[0] if params.shape[0] else NULL
    env.n_params = params.shape[0]
    env.state = &sv[0]
    env.op_of_action = NULL
    env_reset(&env, seed)
    return state


def grid_blocked(const float64_t[::1] params, uint64_t seed, int64_t cell):
    """Whether a grid cell is blocked for this seed (for tests and rendering)."""
    cdef int32_t st[4]
    st[2] = <int32_t>(seed & 0xFFFFFFFFULL)
    st[3] = <int32_t>(seed >> 32)
    return cell != 0 and _grid_blocked(st, cell, params[2] if params.shape[0] > 2 else 0.0)


# The enums' members as plain module-level ints (ENV_GRID, OUT_OK, ...).
for _enum in (EnvKind, Outcome):
    globals().update({_k: int(_v) for _k, _v in _enum.__members__.items()})
