# cython: language_level=3
"""Grid: flood-fill exploration of a width x height grid (the large-swarm workload).

params = [width, height, block_rate, goal]   (goal -1: none, -2: random)
state  = [goal, done, seed_lo, seed_hi]
ops    = Explore 0

Explore(cell) fails on a blocked cell (a stateless hash of seed and cell, so
10^7 cells cost no memory), completes the task on the goal cell, and otherwise
discovers the 4-neighbours.
"""
from swarm_engine._native._typedefs cimport uint32_t
from swarm_engine._native._hashmap cimport swarm_hash64
from swarm_engine._native._rng cimport swarm_rng_below
from swarm_engine._native._envctx cimport param, param_int, O_OK, O_FAIL


cdef bint grid_cell_blocked(const int32_t *st, int64_t cell, double rate) noexcept nogil:
    cdef uint64_t seed = (<uint64_t><uint32_t>st[2]) | ((<uint64_t><uint32_t>st[3]) << 32)
    cdef uint64_t h = swarm_hash64(seed ^ (<uint64_t>cell * 0x9E3779B97F4A7C15ULL))
    return <double>(h >> 11) * (1.0 / 9007199254740992.0) < rate


cdef int grid_reset(EnvCtx *env, uint64_t seed) except -1 nogil:
    cdef int w = param_int(env, 0, 100), h = param_int(env, 1, 100)
    cdef int goal = param_int(env, 3, -1)
    if goal == -2:
        goal = <int>swarm_rng_below(&env.rng, <uint32_t>(<int64_t>w * h))
    env.state[0] = goal
    env.state[1] = 0
    env.state[2] = <int32_t>(seed & 0xFFFFFFFFULL)
    env.state[3] = <int32_t>(seed >> 32)
    return 0


cdef int grid_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt, StepOut out) except -1 nogil:
    cdef int w = param_int(env, 0, 100), h = param_int(env, 1, 100)
    cdef double rate = param(env, 2, 0.0)
    cdef int32_t *st = env.state
    cdef int i, c, x, y, nd = 0, done = 0
    for i in range(n):
        out.disc_ptr[i] = nd
        out.duration_ms[i] = 1.0
        c = tgt[i]
        if env.op_of_action[act[i]] != 0 or c < 0 or c >= <int64_t>w * h or (c != 0 and grid_cell_blocked(st, c, rate)):
            out.outcome[i] = O_FAIL
            continue
        out.outcome[i] = O_OK
        if c == st[0]:
            st[1] = 1
            done = 1
            continue
        x = c % w
        y = c // w
        if x + 1 < w:
            out.disc[nd] = c + 1
            nd += 1
        if y + 1 < h:
            out.disc[nd] = c + w
            nd += 1
        if x > 0:
            out.disc[nd] = c - 1
            nd += 1
        if y > 0:
            out.disc[nd] = c - w
            nd += 1
    for i in range(nd):
        out.disc_kind[i] = 0
    out.disc_ptr[n] = nd
    return done
