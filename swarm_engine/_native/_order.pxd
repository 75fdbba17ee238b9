# Learned child ordering: the children of one expansion are created best
# first under a prior, a score per (action, target id) and per (action, arg
# value). Tables are row-major (A, tn) and (A, vn) float64; ids outside them
# score 0. The sort is stable (equal scores keep discovery order).
from swarm_engine._native._typedefs cimport int32_t, int64_t, uint64_t, float64_t
from swarm_engine._native._keys cimport key_action, key_target, key_arg


cdef inline double prior_score(uint64_t key, const float64_t *prior_t, int32_t tn,
                               const float64_t *prior_v, int32_t vn) noexcept nogil:
    """prior_t[a, t] + prior_v[a, x] of the packed key (a, t, x)."""
    cdef int32_t a = key_action(key), t = key_target(key), x = key_arg(key)
    cdef double s = 0.0
    if 0 <= t < tn:
        s = prior_t[<int64_t>a * tn + t]
    if 0 <= x < vn:
        s = s + prior_v[<int64_t>a * vn + x]
    return s


cdef inline uint64_t *sort_by_score(int64_t m, uint64_t *sk, float64_t *ss, uint64_t *dk,
                                    float64_t *ds) noexcept nogil:
    """Stable sort of the m keys sk[:m] by their scores ss[:m], highest first
    (bottom-up merge sort; dk and ds are scratch of m entries each). Returns
    the buffer that holds the sorted keys: sk or dk."""
    cdef int64_t i, j, o, left, mid, right, width = 1
    cdef float64_t *ts
    cdef uint64_t *tk
    while width < m:
        left = 0
        while left < m:
            mid = min(left + width, m)
            right = min(left + 2 * width, m)
            i, j, o = left, mid, left
            while i < mid and j < right:
                if ss[j] > ss[i]:
                    ds[o] = ss[j]; dk[o] = sk[j]; j += 1
                else:
                    ds[o] = ss[i]; dk[o] = sk[i]; i += 1
                o += 1
            while i < mid:
                ds[o] = ss[i]; dk[o] = sk[i]; i += 1; o += 1
            while j < right:
                ds[o] = ss[j]; dk[o] = sk[j]; j += 1; o += 1
            left += 2 * width
        ts = ss; ss = ds; ds = ts
        tk = sk; sk = dk; dk = tk
        width *= 2
    return sk
