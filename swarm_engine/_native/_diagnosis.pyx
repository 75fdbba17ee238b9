# cython: language_level=3
"""Internal diagnosis: a proprietary config DSL with SW-xxxx error codes.

params = [sections, noise, error_rate, fault_skew]
state  = [n, faulty, done, traced, evidence, noisy[n]]
ops    = ParseConfig 0, AnalyzeLog 1, TraceError 2, ApplyFix 3
args   = the fixes; fix i repairs the error of section i (its SW code)

ParseConfig discovers the config sections it warns about: the faulty one and
each other section with probability ``noise``. AnalyzeLog(section) finds the
[SW-xxxx] lines of the faulty section; TraceError(section) traces the code to
its root cause; ApplyFix(section, fix) completes the task only on the traced
faulty section with the fix that code needs, knowledge a small model lacks.
With ``fault_skew`` > 0 some sections break far more often than others.
"""
from swarm_engine._native._typedefs cimport int8_t, uint32_t
from swarm_engine._native._rng cimport swarm_rng_uniform, swarm_rng_below
from swarm_engine._native._envctx cimport begin_action, param, param_int, arg_op, skewed_below, O_OK, O_FAIL, O_ERROR

cdef float[4] DURATION_MS = [10.0, 30.0, 40.0, 60.0]

cdef enum:
    HDR = 5
    MAX_SECTIONS = 8


cdef inline int n_sections(const EnvCtx *env) noexcept nogil:
    return max(1, min(param_int(env, 0, MAX_SECTIONS), MAX_SECTIONS))


cdef int diagnosis_state_size(const EnvCtx *env) noexcept nogil:
    return HDR + n_sections(env)


cdef int diagnosis_max_discoveries(const EnvCtx *env) noexcept nogil:
    return n_sections(env)


cdef int diagnosis_reset(EnvCtx *env) except -1 nogil:
    cdef int n = n_sections(env), i
    cdef double noise = param(env, 1, 0.3)
    cdef int32_t *st = env.state
    st[0] = n
    st[1] = skewed_below(env, n, param(env, 3, 0.0))
    st[2] = 0
    st[3] = 0
    st[4] = 0
    for i in range(n):
        st[HDR + i] = 1 if (i != st[1] and swarm_rng_uniform(&env.rng) < noise) else 0
    return 0


cdef int diagnosis_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt, const int32_t *arg,
                        StepOut out) except -1 nogil:
    cdef int32_t *st = env.state
    cdef int ns = st[0], faulty = st[1]
    cdef double error_rate = param(env, 2, 0.0)
    cdef int i, s, op, nd = 0, done = 0
    for i in range(n):
        s = tgt[i]
        op = begin_action(env, i, nd, act[i], DURATION_MS, 4, error_rate, out)
        if op < 0:
            continue
        if op == 0:
            out.outcome[i] = O_OK
            for s in range(ns):
                if s == faulty or st[HDR + s]:
                    out.disc[nd] = s
                    out.disc_kind[nd] = 0
                    nd += 1
        elif s != faulty:
            continue
        elif op == 1:
            st[4] = 1
            out.outcome[i] = O_OK
        elif op == 2:
            st[3] = 1
            out.outcome[i] = O_OK
        elif st[3] and arg_op(env, arg[i]) == faulty:
            st[2] = 1
            done = 1
            out.outcome[i] = O_OK
    out.disc_ptr[n] = nd
    return done
