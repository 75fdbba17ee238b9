# Declarations of csrc/hashmap.h: the two open-addressing tables of the kernel.
# swarm_index_t maps a 64-bit key to a dense int32 id (the frontier groups);
# swarm_keyset_t only answers "seen before?" (the graph map's dedup of node
# keys). All functions are static inline in the header: they compile into the
# module that cimports them, with no call across extension modules.
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from "hashmap.h" nogil:
    ctypedef struct swarm_index_t:
        uint64_t *slots   # (mask + 1,) 0 = empty, else fingerprint << 32 | (id + 1)
        uint64_t mask     # capacity - 1, capacity a power of two
        int64_t count     # occupied slots, at most 3/4 of the capacity
    ctypedef struct swarm_keyset_t:
        uint64_t *slots   # (mask + 1,) 0 = empty, else key + 1
        uint64_t mask     # capacity - 1, capacity a power of two
        int64_t count     # occupied slots, at most 3/4 of the capacity
    uint64_t swarm_hash64(uint64_t k)   # the murmur3 finaliser both tables probe with
    # ---- id index; keys[id] is the caller's array of the keys ----
    int swarm_index_init(swarm_index_t *ix, int64_t expected)      # 0, or -1 out of memory
    void swarm_index_free(swarm_index_t *ix)
    void swarm_index_clear(swarm_index_t *ix)
    void swarm_index_clear_keys(swarm_index_t *ix, const uint64_t *keys, int64_t n)
    void swarm_index_reset(swarm_index_t *ix)                      # empty it (per run: the listed slots)
    int32_t swarm_index_find(const swarm_index_t *ix, const uint64_t *keys, uint64_t key)   # id, or -1
    # id of key, else new_id after inserting it; -2 out of memory
    int32_t swarm_index_get_or_put(swarm_index_t *ix, const uint64_t *keys, uint64_t key, int32_t new_id)
    void swarm_index_prefetch(const swarm_index_t *ix, uint64_t key)
    int64_t swarm_index_bytes(const swarm_index_t *ix)
    # ---- key set; h is swarm_hash64(key), computed once by the caller ----
    int swarm_keyset_init(swarm_keyset_t *ks, int64_t expected)    # 0, or -1 out of memory
    void swarm_keyset_free(swarm_keyset_t *ks)
    void swarm_keyset_clear_keys(swarm_keyset_t *ks, const uint64_t *keys, int64_t n)
    void swarm_keyset_reset(swarm_keyset_t *ks)                    # empty it (per run: the listed slots)
    int swarm_keyset_add_h(swarm_keyset_t *ks, uint64_t key, uint64_t h)   # 1 added, 0 known, -1 out of memory
    int swarm_keyset_has(const swarm_keyset_t *ks, uint64_t key)
    void swarm_keyset_prefetch_h(const swarm_keyset_t *ks, uint64_t h)
    int64_t swarm_keyset_bytes(const swarm_keyset_t *ks)
