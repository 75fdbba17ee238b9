/* Dedup index: 64-bit keys -> dense int32 ids, open addressing.
 *
 * Declared to Cython in swarm_engine/_native/_hashmap.pxd.
 *
 * The keys themselves live in the caller's array (keys[id]); a slot holds only
 * (32-bit fingerprint << 32 | id + 1), 8 bytes, so the index costs 10.7 to 21
 * bytes per entry at a load factor of at most 3/4. A probe compares the
 * fingerprint first and touches keys[] only on a fingerprint match, so a miss
 * usually costs one cache line. Linear probing; the table doubles (rehash from
 * keys[]) when it is 3/4 full. All state is in the struct: no globals.
 */
#ifndef SWARM_HASHMAP_H
#define SWARM_HASHMAP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t *slots;   /* 0 = empty, else fingerprint << 32 | (id + 1) */
    uint64_t mask;     /* capacity - 1, capacity a power of two */
    int64_t count;     /* occupied slots */
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

/* Returns 0, or -1 when memory is exhausted. */
static inline int swarm_index_init(swarm_index_t *ix, int64_t expected) {
    uint64_t cap = 16;
    while ((double)cap * 0.75 < (double)expected) cap <<= 1;
    ix->slots = (uint64_t *)calloc(cap, sizeof(uint64_t));
    if (!ix->slots) return -1;
    ix->mask = cap - 1;
    ix->count = 0;
    return 0;
}

static inline void swarm_index_free(swarm_index_t *ix) {
    free(ix->slots);
    ix->slots = NULL;
    ix->mask = 0;
    ix->count = 0;
}

/* Forget every entry, keep the table (per-run reset in a batch of runs). */
static inline void swarm_index_clear(swarm_index_t *ix) {
    if (ix->count) memset(ix->slots, 0, (ix->mask + 1) * sizeof(uint64_t));
    ix->count = 0;
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
}

static inline void swarm_index_place(swarm_index_t *ix, uint64_t h, int32_t id) {
    uint64_t i = h & ix->mask;
    while (ix->slots[i]) i = (i + 1) & ix->mask;
    ix->slots[i] = (h & 0xFFFFFFFF00000000ULL) | (uint64_t)(uint32_t)(id + 1);
}

static inline int swarm_index_grow(swarm_index_t *ix, const uint64_t *keys) {
    uint64_t old_cap = ix->mask + 1;
    uint64_t *old = ix->slots;
    uint64_t *fresh = (uint64_t *)calloc(old_cap * 2, sizeof(uint64_t));
    if (!fresh) return -1;
    ix->slots = fresh;
    ix->mask = old_cap * 2 - 1;
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

/* Find key; if absent, record new_id for it (the caller then stores
 * keys[new_id] = key). Returns the existing id, new_id when inserted, or -2
 * when growing the table failed. `keys` must hold every id already stored. */
static inline int32_t swarm_index_get_or_put(swarm_index_t *ix, const uint64_t *keys,
                                             uint64_t key, int32_t new_id) {
    if ((double)(ix->count + 1) > 0.75 * (double)(ix->mask + 1)) {
        if (swarm_index_grow(ix, keys) != 0) return -2;
    }
    uint64_t h = swarm_hash64(key);
    uint64_t fp = h & 0xFFFFFFFF00000000ULL;
    uint64_t i = h & ix->mask;
    for (;;) {
        uint64_t s = ix->slots[i];
        if (!s) {
            ix->slots[i] = fp | (uint64_t)(uint32_t)(new_id + 1);
            ix->count++;
            return new_id;
        }
        if ((s & 0xFFFFFFFF00000000ULL) == fp) {
            int32_t id = (int32_t)(uint32_t)(s & 0xFFFFFFFFULL) - 1;
            if (keys[id] == key) return id;
        }
        i = (i + 1) & ix->mask;
    }
}

/* Start loading the slot where key's probe begins; a batch of inserts that
 * prefetches a few keys ahead overlaps their cache misses. */
static inline void swarm_index_prefetch(const swarm_index_t *ix, uint64_t key) {
#if defined(__GNUC__)
    __builtin_prefetch(&ix->slots[swarm_hash64(key) & ix->mask], 0, 1);
#else
    (void)ix; (void)key;
#endif
}

static inline int64_t swarm_index_bytes(const swarm_index_t *ix) {
    return (int64_t)((ix->mask + 1) * sizeof(uint64_t));
}

#endif
