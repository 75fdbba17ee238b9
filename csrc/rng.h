/* Seeded random streams for the hot loop.
 *
 * Declared to Cython in swarm_engine/_native/_rng.pxd.
 *
 * xoshiro256** (Blackman & Vigna) seeded through splitmix64, one explicit state
 * per stream: no globals, so R runs in one batch each own their stream and a
 * run's trace does not depend on the batch it ran in. Beta draws use
 * Marsaglia-Tsang gamma sampling (two gammas per beta).
 */
#ifndef SWARM_RNG_H
#define SWARM_RNG_H

#include <stdint.h>
#include <math.h>

typedef struct {
    uint64_t s[4];
} swarm_rng_t;

static inline uint64_t swarm_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A stream is (seed, stream id): stream 0 drives the environment's hidden
 * state, stream 1 the selectors, so one never perturbs the other. */
static inline void swarm_rng_seed(swarm_rng_t *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ULL);
    for (int i = 0; i < 4; i++) r->s[i] = swarm_splitmix64(&x);
}

static inline uint64_t swarm_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t swarm_rng_next(swarm_rng_t *r) {
    uint64_t *s = r->s;
    uint64_t result = swarm_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = swarm_rotl(s[3], 45);
    return result;
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double swarm_rng_uniform(swarm_rng_t *r) {
    return (double)(swarm_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift, bias < 2^-32 for
 * the small n used here). */
static inline uint32_t swarm_rng_below(swarm_rng_t *r, uint32_t n) {
    return (uint32_t)(((swarm_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static inline double swarm_rng_normal(swarm_rng_t *r) {
    /* Marsaglia polar method; the spare value is dropped to keep state explicit. */
    double u, v, s;
    do {
        u = 2.0 * swarm_rng_uniform(r) - 1.0;
        v = 2.0 * swarm_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

static inline double swarm_rng_gamma(swarm_rng_t *r, double shape) {
    if (shape < 1.0) {
        double u = swarm_rng_uniform(r);
        return swarm_rng_gamma(r, shape + 1.0) * pow(u + 1e-300, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = swarm_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = swarm_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

static inline double swarm_rng_beta(swarm_rng_t *r, double a, double b) {
    double x = swarm_rng_gamma(r, a);
    double y = swarm_rng_gamma(r, b);
    return x / (x + y);
}

#endif
