# The selector's max-heap of frontier groups, on raw arrays: heap[0:n] holds
# group ids, ordered by score[g] (higher first), ties by head[g] (the older
# head node first, i.e. the smaller node id). score and head are indexed by
# group id (the kernel's g_score / g_head). A tick scores every candidate
# group once and heapifies (heap_sift_down from n // 2 - 1 down to 0); each
# pick then costs O(log n).
from swarm_engine._native._typedefs cimport int32_t, float64_t


cdef inline bint heap_better(const float64_t *score, const int32_t *head, int32_t g1, int32_t g2) noexcept nogil:
    """Whether group g1 goes before g2."""
    cdef double s1 = score[g1], s2 = score[g2]
    if s1 != s2:
        return s1 > s2
    return head[g1] < head[g2]


cdef inline void heap_sift_down(int32_t *heap, int32_t n, int32_t i, const float64_t *score,
                                const int32_t *head) noexcept nogil:
    """Restore the order below position i of heap[0:n] (after heap[i] changed)."""
    cdef int32_t c, g = heap[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and heap_better(score, head, heap[c + 1], heap[c]):
            c += 1
        if not heap_better(score, head, heap[c], g):
            break
        heap[i] = heap[c]
        i = c
    heap[i] = g


cdef inline void heap_push(int32_t *heap, int32_t n, int32_t g, const float64_t *score,
                           const int32_t *head) noexcept nogil:
    """Insert group g into heap[0:n]; the heap then holds n + 1 groups (the
    caller counts them, and heap has room for them)."""
    cdef int32_t i = n, parent
    while i > 0:
        parent = (i - 1) // 2
        if not heap_better(score, head, g, heap[parent]):
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = g
