# cython: language_level=3
"""Code exploration: List / Grep / Read over a generated source tree.

params = [files, files_per_dir, branching, grep_limit, refs, error_rate]
state  = [D, F, goal, done, n_refs, refs[n_refs]]
ops    = List 0, Grep 1, Read 2
targets: directory d in [0, D) (kind 1), file f as D + f (kind 2)

D = ceil(files / files_per_dir) directories form a complete ``branching``-ary
tree (heap order: children of d are d*b+1 .. d*b+b); file f lives in
directory f % D, so no per-file memory is needed up to 10^6 files and more.
One file defines the symbol the task looks for (the goal); ``refs`` others
mention it. List(dir) discovers subdirectories and files; Grep(dir) finds the
matching files of a subtree (no target = the root), but fails as too broad when the subtree holds more
than ``grep_limit`` files; Read(goal) completes the task; Read of a reference
succeeds and discovers the goal (the reference points at the definition).
"""
from swarm_engine._native._typedefs cimport int8_t, int64_t, uint32_t
from swarm_engine._native._rng cimport swarm_rng_uniform, swarm_rng_below
from swarm_engine._native._envctx cimport begin_action, param, param_int, O_OK, O_FAIL, O_ERROR

cdef float[3] DURATION_MS = [2.0, 20.0, 5.0]

cdef enum:
    HDR = 5
    MAX_REFS = 16
    KIND_DIR = 1
    KIND_FILE = 2


cdef inline int64_t n_dirs(const EnvCtx *env) noexcept nogil:
    cdef int64_t F = max(1, param_int(env, 0, 200)), per = max(1, param_int(env, 1, 10))
    return (F + per - 1) // per


cdef int code_tree_state_size(const EnvCtx *env) noexcept nogil:
    return HDR + MAX_REFS


cdef int code_tree_max_discoveries(const EnvCtx *env) noexcept nogil:
    """A listing (subdirectories + files) or a grep (the goal + every reference)."""
    cdef int64_t F = max(1, param_int(env, 0, 200)), D = n_dirs(env)
    cdef int64_t listing = max(1, param_int(env, 2, 4)) + (F + D - 1) // D
    return <int>max(listing, min(param_int(env, 4, 3), MAX_REFS) + 1)


cdef int code_tree_reset(EnvCtx *env) except -1 nogil:
    cdef int F = max(1, param_int(env, 0, 200))
    cdef int r = min(min(param_int(env, 4, 3), MAX_REFS), F - 1)
    cdef int32_t *st = env.state
    cdef int i, j, f
    cdef bint dup
    st[0] = <int32_t>n_dirs(env)
    st[1] = F
    st[2] = <int32_t>swarm_rng_below(&env.rng, <uint32_t>F)
    st[3] = 0
    st[4] = r if r > 0 else 0
    i = 0
    while i < st[4]:
        f = <int>swarm_rng_below(&env.rng, <uint32_t>F)
        dup = f == st[2]
        for j in range(i):
            if st[HDR + j] == f:
                dup = True
        if not dup:
            st[HDR + i] = f
            i += 1
    return 0


cdef inline int64_t files_in_dirs(int64_t lo, int64_t hi, int64_t F, int64_t D) noexcept nogil:
    """Files held by directories lo..hi (inclusive)."""
    cdef int64_t rem = F % D, extra
    extra = min(hi, rem - 1) - lo + 1
    return (hi - lo + 1) * (F // D) + (extra if extra > 0 else 0)


cdef inline int64_t subtree_files(int64_t d, int64_t F, int64_t D, int64_t b) noexcept nogil:
    cdef int64_t lo = d, hi = d, total = 0
    while lo < D:
        total += files_in_dirs(lo, min(hi, D - 1), F, D)
        lo = lo * b + 1
        hi = hi * b + b
    return total


cdef inline bint in_subtree(int64_t x, int64_t d, int64_t b) noexcept nogil:
    while x > d:
        x = (x - 1) // b
    return x == d


cdef int code_tree_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt, const int32_t *arg,
                        StepOut out) except -1 nogil:
    cdef int32_t *st = env.state
    cdef int64_t D = st[0], F = st[1], goal = st[2], b = max(1, param_int(env, 2, 4))
    cdef int64_t limit = param_int(env, 3, 100)
    cdef double error_rate = param(env, 5, 0.0)
    cdef int i, j, k, op, nd = 0, done = 0, nm
    cdef int64_t t, c, f, lo
    cdef int32_t m[MAX_REFS + 1]
    cdef int32_t tmp
    for i in range(n):
        t = tgt[i]
        op = begin_action(env, i, nd, act[i], DURATION_MS, 3, error_rate, out)
        if op < 0:
            continue
        if op == 0 or op == 1:
            if t == -1:
                t = 0                           # no target: the repository root
            if t < 0 or t >= D:
                continue
            if op == 0:
                out.outcome[i] = O_OK
                lo = t * b + 1
                for c in range(lo, min(lo + b, D)):
                    out.disc[nd] = <int32_t>c
                    out.disc_kind[nd] = KIND_DIR
                    nd += 1
                f = t
                while f < F:
                    out.disc[nd] = <int32_t>(D + f)
                    out.disc_kind[nd] = KIND_FILE
                    nd += 1
                    f += D
            elif subtree_files(t, F, D, b) <= limit:
                nm = 0
                for k in range(-1, st[4]):
                    f = goal if k < 0 else st[HDR + k]
                    if in_subtree(f % D, t, b):
                        m[nm] = <int32_t>f
                        nm += 1
                for j in range(1, nm):          # ascending file ids: a stable order
                    tmp = m[j]
                    k = j - 1
                    while k >= 0 and m[k] > tmp:
                        m[k + 1] = m[k]
                        k -= 1
                    m[k + 1] = tmp
                for j in range(nm):
                    out.disc[nd] = <int32_t>(D + m[j])
                    out.disc_kind[nd] = KIND_FILE
                    nd += 1
                if nm > 0:
                    out.outcome[i] = O_OK
        else:
            f = t - D
            if f < 0 or f >= F:
                continue
            if f == goal:
                out.outcome[i] = O_OK
                st[3] = 1
                done = 1
                continue
            for k in range(st[4]):
                if st[HDR + k] == f:
                    out.outcome[i] = O_OK
                    out.disc[nd] = <int32_t>(D + goal)
                    out.disc_kind[nd] = KIND_FILE
                    nd += 1
                    break
    out.disc_ptr[n] = nd
    return done
