/* Dedup indexes for the kernel: open addressing on 64-bit keys.
 *
 * Declared to Cython in swarm_engine/_native/_hashmap.pxd (both tables).
 *
 * swarm_index_t maps keys to dense int32 ids (the frontier groups). The keys
 * themselves live in the caller's array (keys[id]); a slot holds only
 * (32-bit fingerprint << 32 | id + 1), 8 bytes, so the index costs 10.7 to 21
 * bytes per entry at a load factor of at most 3/4. A probe compares the
 * fingerprint first and touches keys[] only on a fingerprint match.
 *
 * swarm_keyset_t only answers "seen before?" (the graph map's nodes: a
 * duplicate child is dropped, whatever its id), so a slot holds the key
 * itself (+ 1, 0 = empty), also 8 bytes: a probe is one load and one compare,
 * with no dependent load of keys[id] (that load was the largest stall of the
 * merge on a 10^6-node grid; see docs/profiling.md).
 *
 * Both probe linearly and double (rehash) when 3/4 full; all state is in
 * the struct: no globals.
 */
#ifndef SWARM_HASHMAP_H
#define SWARM_HASHMAP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

typedef struct {
    uint64_t *slots;   /* 0 = empty, else fingerprint << 32 | (id + 1) */
    uint64_t mask;     /* capacity - 1, capacity a power of two */
    int64_t count;     /* occupied slots */
    int64_t limit;     /* 3/4 of the capacity: the table doubles before count exceeds it */
    uint32_t *used;    /* the first SWARM_USED_CAP slots filled since the last reset */
    int64_t n_used;    /* slots filled since the last reset; > SWARM_USED_CAP: not all listed */
} swarm_index_t;

static inline uint64_t swarm_hash64(uint64_t k) {
    /* murmur3 finalizer: full avalanche, so low bits index and high bits
     * fingerprint independently */
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDULL;
    k ^= k >> 33;
    k *= 0xC4CEB9FE1A85EC53ULL;
    k ^= k >> 33;
    return k;
}

/* A reset (one per run of a batch) forgets every entry by zeroing the slots
 * listed in `used` as they were filled, while they are few: a batch of small
 * runs after a big one must not memset a big table per run (16,384-node
 * table, 100,000 troubleshooting runs: 0.34M -> ~1.8M runs/s), and listing
 * the slots costs one store per insert where finding them again cost a probe
 * per key (troubleshooting: 4.6% of the instructions of a run). Past
 * SWARM_USED_CAP entries, or after a rehash moved them, it memsets. */
#define SWARM_USED_CAP 4096

/* A zeroed table of cap slots. A big one goes on 2 MiB pages where the
 * kernel allows it (transparent huge pages in "madvise" mode, as numpy asks
 * for its own big arrays): probes are random accesses, and with 4 KiB pages
 * nearly every probe of a 16 MiB table also missed the TLB (grid 10^6 nodes,
 * 10^4 busy workers: see docs/profiling.md). free() releases it. */
static inline uint64_t *swarm_index_alloc(uint64_t cap) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    size_t bytes = (size_t)cap * sizeof(uint64_t);
    if (bytes >= ((size_t)2 << 20)) {
        void *p = NULL;
        if (posix_memalign(&p, (size_t)2 << 20, bytes) != 0) return NULL;
        madvise(p, bytes, MADV_HUGEPAGE);
        memset(p, 0, bytes);
        return (uint64_t *)p;
    }
#endif
    return (uint64_t *)calloc(cap, sizeof(uint64_t));
}

/* Returns 0, or -1 when memory is exhausted. */
static inline int swarm_index_init(swarm_index_t *ix, int64_t expected) {
    uint64_t cap = 16;
    while ((double)cap * 0.75 < (double)expected) cap <<= 1;
    ix->slots = swarm_index_alloc(cap);
    if (!ix->slots) return -1;
    ix->used = (uint32_t *)malloc(SWARM_USED_CAP * sizeof(uint32_t));
    if (!ix->used) { free(ix->slots); ix->slots = NULL; return -1; }
    ix->n_used = 0;
    ix->mask = cap - 1;
    ix->count = 0;
    ix->limit = (int64_t)(cap - cap / 4);
    return 0;
}

static inline void swarm_index_free(swarm_index_t *ix) {
    free(ix->slots);
    free(ix->used);
    ix->slots = NULL;
    ix->used = NULL;
    ix->n_used = 0;
    ix->mask = 0;
    ix->count = 0;
    ix->limit = 0;
}

/* Forget every entry, keep the table (per-run reset in a batch of runs). */
static inline void swarm_index_clear(swarm_index_t *ix) {
    if (ix->count) memset(ix->slots, 0, (ix->mask + 1) * sizeof(uint64_t));
    ix->count = 0;
    ix->n_used = 0;
}

/* Forget every entry: zero the slots filled since the last reset (see above). */
static inline void swarm_index_reset(swarm_index_t *ix) {
    if (ix->n_used > SWARM_USED_CAP || !ix->used) {
        swarm_index_clear(ix);
        return;
    }
    for (int64_t k = 0; k < ix->n_used; k++) ix->slots[ix->used[k]] = 0;
    ix->count = 0;
    ix->n_used = 0;
}

static inline int64_t swarm_index_slot_of(const swarm_index_t *ix, const uint64_t *keys, uint64_t key);

/* Forget the n entries keys[0..n), touching only their slots when they are
 * few: a batch of small runs after one big run must not memset a big table
 * per run (measured: 16,384-node table, 100,000 troubleshooting runs,
 * 0.34M -> ~1.8M runs/s). Slots are found first and zeroed after, since
 * zeroing while probing would cut other keys' probe chains. */
static inline void swarm_index_clear_keys(swarm_index_t *ix, const uint64_t *keys, int64_t n) {
    int64_t i;
    if (n * 16 > (int64_t)(ix->mask + 1) || n > 4096) {
        swarm_index_clear(ix);
        return;
    }
    int64_t pos[4096];
    for (i = 0; i < n; i++) pos[i] = swarm_index_slot_of(ix, keys, keys[i]);
    for (i = 0; i < n; i++) if (pos[i] >= 0) ix->slots[pos[i]] = 0;
    ix->count = 0;
    ix->n_used = 0;
}

static inline void swarm_index_place(swarm_index_t *ix, uint64_t h, int32_t id) {
    uint64_t i = h & ix->mask;
    while (ix->slots[i]) i = (i + 1) & ix->mask;
    ix->slots[i] = (h & 0xFFFFFFFF00000000ULL) | (uint64_t)(uint32_t)(id + 1);
}

static inline int swarm_index_grow(swarm_index_t *ix, const uint64_t *keys) {
    uint64_t old_cap = ix->mask + 1;
    uint64_t *old = ix->slots;
    uint64_t *fresh = swarm_index_alloc(old_cap * 2);
    if (!fresh) return -1;
    ix->slots = fresh;
    ix->mask = old_cap * 2 - 1;
    ix->limit = (int64_t)(old_cap * 2 - old_cap / 2);
    ix->n_used = SWARM_USED_CAP + 1;   /* the listed positions moved */
    for (uint64_t i = 0; i < old_cap; i++) {
        if (old[i]) {
            int32_t id = (int32_t)(uint32_t)(old[i] & 0xFFFFFFFFULL) - 1;
            swarm_index_place(ix, swarm_hash64(keys[id]), id);
        }
    }
    free(old);
    return 0;
}

/* The slot holding key, or -1. */
static inline int64_t swarm_index_slot_of(const swarm_index_t *ix, const uint64_t *keys, uint64_t key) {
    uint64_t h = swarm_hash64(key);
    uint64_t fp = h & 0xFFFFFFFF00000000ULL;
    uint64_t i = h & ix->mask;
    for (;;) {
        uint64_t s = ix->slots[i];
        if (!s) return -1;
        if ((s & 0xFFFFFFFF00000000ULL) == fp) {
            int32_t id = (int32_t)(uint32_t)(s & 0xFFFFFFFFULL) - 1;
            if (keys[id] == key) return (int64_t)i;
        }
        i = (i + 1) & ix->mask;
    }
}

/* The id stored for key, or -1. */
static inline int32_t swarm_index_find(const swarm_index_t *ix, const uint64_t *keys,
                                       uint64_t key) {
    int64_t slot = swarm_index_slot_of(ix, keys, key);
    return slot < 0 ? -1 : (int32_t)(uint32_t)(ix->slots[slot] & 0xFFFFFFFFULL) - 1;
}

/* Find key, whose hash swarm_hash64(key) is h; if absent, record new_id for
 * it (the caller then stores keys[new_id] = key). Returns the existing id,
 * new_id when inserted, or -2 when growing the table failed. `keys` must hold
 * every id already stored. Callers that prefetched the slot pass the hash
 * they computed for it instead of hashing twice. */
static inline int32_t swarm_index_get_or_put_h(swarm_index_t *ix, const uint64_t *keys,
                                               uint64_t key, uint64_t h, int32_t new_id) {
    if (ix->count >= ix->limit) {   /* count + 1 would pass 3/4 of the capacity */
        if (swarm_index_grow(ix, keys) != 0) return -2;
    }
    uint64_t fp = h & 0xFFFFFFFF00000000ULL;
    uint64_t i = h & ix->mask;
    for (;;) {
        uint64_t s = ix->slots[i];
        if (!s) {
            ix->slots[i] = fp | (uint64_t)(uint32_t)(new_id + 1);
            ix->count++;
            if (ix->n_used < SWARM_USED_CAP) ix->used[ix->n_used] = (uint32_t)i;
            ix->n_used++;
            return new_id;
        }
        if ((s & 0xFFFFFFFF00000000ULL) == fp) {
            int32_t id = (int32_t)(uint32_t)(s & 0xFFFFFFFFULL) - 1;
            if (keys[id] == key) return id;
        }
        i = (i + 1) & ix->mask;
    }
}

/* swarm_index_get_or_put_h, hashing key itself. */
static inline int32_t swarm_index_get_or_put(swarm_index_t *ix, const uint64_t *keys,
                                             uint64_t key, int32_t new_id) {
    return swarm_index_get_or_put_h(ix, keys, key, swarm_hash64(key), new_id);
}

/* Start loading the slot where key's probe begins; a batch of inserts that
 * prefetches a few keys ahead overlaps their cache misses. */
static inline void swarm_index_prefetch_h(const swarm_index_t *ix, uint64_t h) {
#if defined(__GNUC__)
    __builtin_prefetch(&ix->slots[h & ix->mask], 0, 1);
#else
    (void)ix; (void)h;
#endif
}

static inline void swarm_index_prefetch(const swarm_index_t *ix, uint64_t key) {
    swarm_index_prefetch_h(ix, swarm_hash64(key));
}

static inline int64_t swarm_index_bytes(const swarm_index_t *ix) {
    return (int64_t)((ix->mask + 1) * sizeof(uint64_t) + (ix->used ? SWARM_USED_CAP * sizeof(uint32_t) : 0));
}

/* ------------------------------------------------------------------ key set */

typedef struct {
    uint64_t *slots;   /* 0 = empty, else key + 1 (a packed key is < 2^64 - 1) */
    uint64_t mask;     /* capacity - 1, capacity a power of two */
    int64_t count;     /* occupied slots */
    int64_t limit;     /* 3/4 of the capacity: the table doubles before count exceeds it */
    uint32_t *used;    /* as in swarm_index_t */
    int64_t n_used;
} swarm_keyset_t;

/* Returns 0, or -1 when memory is exhausted. */
static inline int swarm_keyset_init(swarm_keyset_t *ks, int64_t expected) {
    uint64_t cap = 16;
    while ((double)cap * 0.75 < (double)expected) cap <<= 1;
    ks->slots = swarm_index_alloc(cap);
    if (!ks->slots) return -1;
    ks->used = (uint32_t *)malloc(SWARM_USED_CAP * sizeof(uint32_t));
    if (!ks->used) { free(ks->slots); ks->slots = NULL; return -1; }
    ks->n_used = 0;
    ks->mask = cap - 1;
    ks->count = 0;
    ks->limit = (int64_t)(cap - cap / 4);
    return 0;
}

static inline void swarm_keyset_free(swarm_keyset_t *ks) {
    free(ks->slots);
    free(ks->used);
    ks->slots = NULL;
    ks->used = NULL;
    ks->n_used = 0;
    ks->mask = 0;
    ks->count = 0;
    ks->limit = 0;
}

static inline int swarm_keyset_grow(swarm_keyset_t *ks) {
    uint64_t old_cap = ks->mask + 1;
    uint64_t *old = ks->slots;
    uint64_t *fresh = swarm_index_alloc(old_cap * 2);
    if (!fresh) return -1;
    uint64_t mask = old_cap * 2 - 1;
    for (uint64_t i = 0; i < old_cap; i++) {
        if (old[i]) {
            uint64_t j = swarm_hash64(old[i] - 1) & mask;
            while (fresh[j]) j = (j + 1) & mask;
            fresh[j] = old[i];
        }
    }
    free(old);
    ks->slots = fresh;
    ks->mask = mask;
    ks->limit = (int64_t)(old_cap * 2 - old_cap / 2);
    ks->n_used = SWARM_USED_CAP + 1;   /* the listed positions moved */
    return 0;
}

/* Add key, whose hash swarm_hash64(key) is h: 1 when it was new, 0 when it
 * was already there, -1 when growing the table failed. */
static inline int swarm_keyset_add_h(swarm_keyset_t *ks, uint64_t key, uint64_t h) {
    if (ks->count >= ks->limit) {   /* count + 1 would pass 3/4 of the capacity */
        if (swarm_keyset_grow(ks) != 0) return -1;
    }
    uint64_t want = key + 1;
    uint64_t i = h & ks->mask;
    for (;;) {
        uint64_t s = ks->slots[i];
        if (s == want) return 0;
        if (!s) {
            ks->slots[i] = want;
            ks->count++;
            if (ks->n_used < SWARM_USED_CAP) ks->used[ks->n_used] = (uint32_t)i;
            ks->n_used++;
            return 1;
        }
        i = (i + 1) & ks->mask;
    }
}

/* Whether key is in the set. */
static inline int swarm_keyset_has(const swarm_keyset_t *ks, uint64_t key) {
    uint64_t want = key + 1;
    uint64_t i = swarm_hash64(key) & ks->mask;
    for (;;) {
        uint64_t s = ks->slots[i];
        if (s == want) return 1;
        if (!s) return 0;
        i = (i + 1) & ks->mask;
    }
}

/* Forget every key: zero the slots filled since the last reset (see
 * swarm_index_reset). */
static inline void swarm_keyset_reset(swarm_keyset_t *ks) {
    if (ks->n_used > SWARM_USED_CAP || !ks->used) {
        if (ks->count) memset(ks->slots, 0, (ks->mask + 1) * sizeof(uint64_t));
    } else {
        for (int64_t k = 0; k < ks->n_used; k++) ks->slots[ks->used[k]] = 0;
    }
    ks->count = 0;
    ks->n_used = 0;
}

/* Forget the n keys keys[0..n), touching only their slots when they are few
 * (see swarm_index_clear_keys: found first, zeroed after). */
static inline void swarm_keyset_clear_keys(swarm_keyset_t *ks, const uint64_t *keys, int64_t n) {
    int64_t i;
    if (n * 16 > (int64_t)(ks->mask + 1) || n > 4096) {
        if (ks->count) memset(ks->slots, 0, (ks->mask + 1) * sizeof(uint64_t));
        ks->count = 0;
        ks->n_used = 0;
        return;
    }
    int64_t pos[4096];
    for (i = 0; i < n; i++) {
        uint64_t want = keys[i] + 1;
        uint64_t j = swarm_hash64(keys[i]) & ks->mask;
        pos[i] = -1;
        for (;;) {
            uint64_t s = ks->slots[j];
            if (s == want) { pos[i] = (int64_t)j; break; }
            if (!s) break;
            j = (j + 1) & ks->mask;
        }
    }
    for (i = 0; i < n; i++) if (pos[i] >= 0) ks->slots[pos[i]] = 0;
    ks->count = 0;
    ks->n_used = 0;
}

static inline void swarm_keyset_prefetch_h(const swarm_keyset_t *ks, uint64_t h) {
#if defined(__GNUC__)
    __builtin_prefetch(&ks->slots[h & ks->mask], 0, 3);
#else
    (void)ks; (void)h;
#endif
}

static inline int64_t swarm_keyset_bytes(const swarm_keyset_t *ks) {
    return (int64_t)((ks->mask + 1) * sizeof(uint64_t) + (ks->used ? SWARM_USED_CAP * sizeof(uint32_t) : 0));
}

#endif
