# cython: language_level=3
"""Troubleshooting: find the faulty services, gather evidence, diagnose, restart.

params = [services, error_rate, noise, faults, log_noise, fault_skew]
state  = [n, faults, restored, done, reserved,
          status[n], problem[n], evidence[n], diagnosed[n], noisy[n]]
ops    = CheckStatus 0, ReadLogs 1, AnalyzeMetrics 2, Diagnose 3, Restart 4

CheckStatus discovers the services that are not Running (every faulty one is
Degraded or Down; a healthy one is Degraded with probability ``noise``).
ReadLogs / AnalyzeMetrics succeed where a fault leaves evidence in that source
and record it; a noisy-logs service (``log_noise``, the ``complex`` variant)
also "succeeds" at ReadLogs with warnings that are not evidence. With
``fault_skew`` > 0 the first fault falls on some services far more often
than on others (see ``skewed_below``): the structure a learned prior finds. Diagnose
succeeds only on a faulty service with evidence; Restart of a diagnosed
service restores it; the task is done when every fault is restored. Every
action fails transiently with probability ``error_rate``.
"""
from swarm_engine._native._typedefs cimport int8_t, uint32_t
from swarm_engine._native._rng cimport swarm_rng_uniform, swarm_rng_below
from swarm_engine._native._envctx cimport begin_action, param, param_int, skewed_below, O_OK, O_FAIL, O_ERROR

# Evidence each problem leaves: bit 1 = logs, bit 2 = metrics.
# MemoryLeak, CpuSpike, DiskFull, NetworkTimeout, DatabaseConnection.
cdef int[5] EVIDENCE = [3, 2, 3, 1, 1]
cdef float[5] DURATION_MS = [5.0, 20.0, 30.0, 10.0, 50.0]

cdef enum:
    HDR = 5
    STATUS = 0        # offsets of the per-service columns, in units of n
    PROBLEM = 1
    EVID = 2
    DIAG = 3
    NOISY = 4


cdef inline int32_t *col(EnvCtx *env, int which) noexcept nogil:
    return env.state + HDR + which * env.state[0]


cdef int ts_state_size(const EnvCtx *env) noexcept nogil:
    return HDR + 5 * param_int(env, 0, 4)


cdef int ts_max_discoveries(const EnvCtx *env) noexcept nogil:
    return param_int(env, 0, 4)


cdef int ts_reset(EnvCtx *env) except -1 nogil:
    cdef int n = param_int(env, 0, 4)
    cdef double noise = param(env, 2, 0.25), log_noise = param(env, 4, 0.0)
    cdef int faults = min(max(param_int(env, 3, 1), 1), n)
    cdef int32_t *st = env.state
    cdef int i, k, first
    st[0] = n
    st[1] = faults
    st[2] = 0
    st[3] = 0
    cdef int32_t *status = col(env, STATUS)
    cdef int32_t *problem = col(env, PROBLEM)
    for i in range(n):
        problem[i] = -1
        col(env, EVID)[i] = 0
        col(env, DIAG)[i] = 0
        col(env, NOISY)[i] = 0
    first = skewed_below(env, n, param(env, 5, 0.0))
    st[4] = first
    problem[first] = <int32_t>swarm_rng_below(&env.rng, 5)
    for i in range(n):
        if i == first:
            status[i] = 1 + <int32_t>swarm_rng_below(&env.rng, 2)    # Degraded or Down
        elif swarm_rng_uniform(&env.rng) < noise:
            status[i] = 1                                           # a red herring
        else:
            status[i] = 0
    for k in range(1, faults):
        # the k-th extra fault: the j-th healthy service, j uniform
        i = <int>swarm_rng_below(&env.rng, <uint32_t>(n - k))
        for first in range(n):
            if problem[first] < 0:
                if i == 0:
                    break
                i -= 1
        problem[first] = <int32_t>swarm_rng_below(&env.rng, 5)
        status[first] = 1 + <int32_t>swarm_rng_below(&env.rng, 2)
    if log_noise > 0.0:
        for i in range(n):
            if problem[i] < 0 and status[i] != 0 and swarm_rng_uniform(&env.rng) < log_noise:
                col(env, NOISY)[i] = 1
    return 0


cdef int ts_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt, StepOut out) except -1 nogil:
    cdef int32_t *st = env.state
    cdef int ns = st[0]
    cdef int32_t *status = col(env, STATUS)
    cdef int32_t *problem = col(env, PROBLEM)
    cdef int32_t *evid = col(env, EVID)
    cdef int32_t *diag = col(env, DIAG)
    cdef int32_t *noisy = col(env, NOISY)
    cdef double error_rate = param(env, 1, 0.0)
    cdef int i, s, op, bit, nd = 0, done = 0
    cdef int8_t res
    for i in range(n):
        s = tgt[i]
        res = O_FAIL
        op = begin_action(env, i, nd, act[i], DURATION_MS, 5, error_rate, out)
        if op < 0:
            continue
        if op == 0:
            res = O_OK
            for s in range(ns):
                if status[s] != 0:
                    out.disc[nd] = s
                    out.disc_kind[nd] = 0
                    nd += 1
        elif s < 0 or s >= ns:
            res = O_FAIL
        elif op == 1 or op == 2:
            bit = 1 if op == 1 else 2
            if problem[s] >= 0 and (EVIDENCE[problem[s]] & bit):
                evid[s] |= bit
                res = O_OK
            elif op == 1 and noisy[s]:
                res = O_OK
        elif op == 3:
            if problem[s] >= 0 and evid[s] != 0 and diag[s] == 0:
                diag[s] = 1
                res = O_OK
        elif op == 4:
            if diag[s] == 1:
                diag[s] = 2
                st[2] += 1
                if st[2] >= st[1]:
                    st[3] = 1
                    done = 1
                res = O_OK
        out.outcome[i] = res
    out.disc_ptr[n] = nd
    return done
