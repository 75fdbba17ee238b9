# cython: language_level=3
"""Cascade outage: one failing upstream makes several services look degraded.

params = [services, degraded, fixes, error_rate]
state  = [n, root, fix, done, n_degraded, n_fixes, degraded[n]]
ops    = CheckStatus 0, ReadLogs 1, ApplyFix 2
args   = the fixes; the root's error needs fix ``fix``

The root service fails with one of ``fixes`` errors; ``degraded`` - 1 other
services, its victims, fail their calls to it. CheckStatus discovers every
degraded service, root and victims alike, in service order: nothing in the
discoveries tells the root apart. ReadLogs succeeds on any degraded service
(and fails on a Running one); ApplyFix(service, fix) completes the task only
on the root with its fix. What tells the root and the fix is the text of a
degraded service's log (rendered by the Python face, ``cascade.py``): a
reader can copy them, a bandit has to try the (service, fix) pairs.
"""
from swarm_engine._native._typedefs cimport uint32_t
from swarm_engine._native._rng cimport swarm_rng_below
from swarm_engine._native._envctx cimport begin_action, param, param_int, arg_op, O_OK

cdef float[3] DURATION_MS = [5.0, 20.0, 40.0]

cdef enum:
    HDR = 6
    MAX_SERVICES = 8
    MAX_FIXES = 8


cdef inline int n_services(const EnvCtx *env) noexcept nogil:
    return max(1, min(param_int(env, 0, MAX_SERVICES), MAX_SERVICES))


cdef int cascade_state_size(const EnvCtx *env) noexcept nogil:
    return HDR + n_services(env)


cdef int cascade_max_discoveries(const EnvCtx *env) noexcept nogil:
    return n_services(env)


cdef int cascade_reset(EnvCtx *env) except -1 nogil:
    cdef int n = n_services(env)
    cdef int d = max(1, min(param_int(env, 1, 4), n))
    cdef int nf = max(1, min(param_int(env, 2, 6), MAX_FIXES))
    cdef int32_t *st = env.state
    cdef int32_t *deg = st + HDR
    cdef int i, j, k
    st[0] = n
    st[1] = <int32_t>swarm_rng_below(&env.rng, <uint32_t>n)
    st[2] = <int32_t>swarm_rng_below(&env.rng, <uint32_t>nf)
    st[3] = 0
    st[4] = d
    st[5] = nf
    for i in range(n):
        deg[i] = 0
    deg[st[1]] = 1
    for k in range(1, d):
        # the k-th victim: the j-th service not yet degraded, j uniform
        j = <int>swarm_rng_below(&env.rng, <uint32_t>(n - k))
        for i in range(n):
            if deg[i] == 0:
                if j == 0:
                    break
                j -= 1
        deg[i] = 1
    return 0


cdef int cascade_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt, const int32_t *arg,
                      StepOut out) except -1 nogil:
    cdef int32_t *st = env.state
    cdef int32_t *deg = st + HDR
    cdef int ns = st[0]
    cdef double error_rate = param(env, 3, 0.0)
    cdef int i, s, op, nd = 0, done = 0
    for i in range(n):
        s = tgt[i]
        op = begin_action(env, i, nd, act[i], DURATION_MS, 3, error_rate, out)
        if op < 0:
            continue
        if op == 0:
            out.outcome[i] = O_OK
            for s in range(ns):
                if deg[s]:
                    out.disc[nd] = s
                    out.disc_kind[nd] = 0
                    nd += 1
        elif s < 0 or s >= ns:
            continue
        elif op == 1:
            if deg[s]:
                out.outcome[i] = O_OK
        elif s == st[1] and st[3] == 0 and arg_op(env, arg[i]) == st[2]:
            st[3] = 1
            done = 1
            out.outcome[i] = O_OK
    out.disc_ptr[n] = nd
    return done
