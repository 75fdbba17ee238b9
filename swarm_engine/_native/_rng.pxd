# Declarations of csrc/rng.h: xoshiro256** streams with explicit state.
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "rng.h" nogil:
    ctypedef struct swarm_rng_t:
        uint64_t s[4]
    void swarm_rng_seed(swarm_rng_t *r, uint64_t seed, uint64_t stream)
    uint64_t swarm_rng_next(swarm_rng_t *r)
    double swarm_rng_uniform(swarm_rng_t *r)
    uint32_t swarm_rng_below(swarm_rng_t *r, uint32_t n)
    double swarm_rng_beta(swarm_rng_t *r, double a, double b)
