# Declarations of csrc/hashmap.h: the dedup index (64-bit key -> int32 id).
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from "hashmap.h" nogil:
    ctypedef struct swarm_index_t:
        uint64_t *slots   # 0 = empty, else fingerprint << 32 | (id + 1)
        uint64_t mask     # capacity - 1
        int64_t count     # occupied slots
    uint64_t swarm_hash64(uint64_t k)
    int swarm_index_init(swarm_index_t *ix, int64_t expected)
    void swarm_index_free(swarm_index_t *ix)
    void swarm_index_clear(swarm_index_t *ix)
    void swarm_index_clear_keys(swarm_index_t *ix, const uint64_t *keys, int64_t n)
    int32_t swarm_index_find(const swarm_index_t *ix, const uint64_t *keys, uint64_t key)
    int32_t swarm_index_get_or_put(swarm_index_t *ix, const uint64_t *keys, uint64_t key, int32_t new_id)
    void swarm_index_prefetch(const swarm_index_t *ix, uint64_t key)
    int64_t swarm_index_bytes(const swarm_index_t *ix)
