# cython: language_level=3
"""Search: pick the right file among search results.

params = [files, results, decoys, error_rate]
state  = [F, target, done, read, k, n_decoys, results[k], decoys[n_decoys]]
ops    = Search 0, Preview 1, Read 2, Submit 3

Search returns ``results`` files in a seeded order: the target, ``decoys``
that look relevant in a preview, and unrelated files. Preview succeeds on the
target and the decoys; Read succeeds only on the target (its content confirms
it); Submit of the read target completes the task.
"""
from swarm_engine._native._typedefs cimport int8_t, uint32_t
from swarm_engine._native._rng cimport swarm_rng_uniform, swarm_rng_below
from swarm_engine._native._envctx cimport begin_action, param, param_int, O_OK, O_FAIL, O_ERROR

cdef float[4] DURATION_MS = [15.0, 3.0, 8.0, 1.0]

cdef enum:
    HDR = 6


cdef inline int n_results(const EnvCtx *env) noexcept nogil:
    return max(1, min(param_int(env, 1, 5), max(1, param_int(env, 0, 10))))


cdef inline int n_decoys(const EnvCtx *env) noexcept nogil:
    return max(0, min(param_int(env, 2, 2), n_results(env) - 1))


cdef int search_state_size(const EnvCtx *env) noexcept nogil:
    return HDR + n_results(env) + n_decoys(env)


cdef int search_max_discoveries(const EnvCtx *env) noexcept nogil:
    return n_results(env)


cdef inline bint contains(const int32_t *xs, int n, int32_t x) noexcept nogil:
    cdef int i
    for i in range(n):
        if xs[i] == x:
            return True
    return False


cdef int search_reset(EnvCtx *env) except -1 nogil:
    cdef int F = max(1, param_int(env, 0, 10)), k = n_results(env), d = n_decoys(env)
    cdef int32_t *st = env.state
    cdef int32_t *res = st + HDR
    cdef int32_t *dec = st + HDR + k
    cdef int i, j, f
    cdef int32_t tmp
    st[0] = F
    st[1] = <int32_t>swarm_rng_below(&env.rng, <uint32_t>F)
    st[2] = 0
    st[3] = 0
    st[4] = k
    st[5] = d
    res[0] = st[1]
    i = 1
    while i < k:                       # decoys first, then unrelated files
        f = <int>swarm_rng_below(&env.rng, <uint32_t>F)
        if not contains(res, i, f):
            res[i] = f
            if i <= d:
                dec[i - 1] = f
            i += 1
    for i in range(k - 1, 0, -1):      # Fisher-Yates: the target's rank is random
        j = <int>swarm_rng_below(&env.rng, <uint32_t>(i + 1))
        tmp = res[i]
        res[i] = res[j]
        res[j] = tmp
    return 0


cdef int search_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt, const int32_t *arg,
                     StepOut out) except -1 nogil:
    cdef int32_t *st = env.state
    cdef int k = st[4], d = st[5]
    cdef double error_rate = param(env, 3, 0.0)
    cdef int i, j, op, nd = 0, done = 0
    cdef int32_t f
    for i in range(n):
        f = tgt[i]
        op = begin_action(env, i, nd, act[i], DURATION_MS, 4, error_rate, out)
        if op < 0:
            continue
        if op == 0:
            out.outcome[i] = O_OK
            for j in range(k):
                out.disc[nd] = st[HDR + j]
                out.disc_kind[nd] = 0
                nd += 1
        elif op == 1:
            if f == st[1] or contains(st + HDR + k, d, f):
                out.outcome[i] = O_OK
        elif op == 2:
            if f == st[1]:
                st[3] = 1
                out.outcome[i] = O_OK
        elif f == st[1] and st[3]:
            st[2] = 1
            done = 1
            out.outcome[i] = O_OK
    out.disc_ptr[n] = nd
    return done
