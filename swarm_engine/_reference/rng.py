"""xoshiro256** streams and the murmur3 finalizer, in plain Python.

Mirrors ``csrc/rng.h`` and ``swarm_hash64`` of ``csrc/hashmap.h`` bit for bit
(every 64-bit product is masked), so the reference kernel draws exactly the
numbers the native one draws: same hidden states, same Thompson samples.
Floating-point steps are written in the C operation order, since a reordered
sum would round differently.
"""
import math

__all__ = ["MASK64", "Xoshiro256", "hash64", "splitmix64"]

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_STREAM = 0xD1B54A32D192ED03
_TWO_M53 = 2.0 ** -53


def splitmix64(x):
    """One splitmix64 step: returns (new state, output)."""
    x = (x + _GOLDEN) & MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return x, z ^ (z >> 31)


def hash64(k):
    """The murmur3 64-bit finalizer (``swarm_hash64``)."""
    k &= MASK64
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK64
    return k ^ (k >> 33)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK64


class Xoshiro256:
    """One explicit xoshiro256** stream, seeded from (seed, stream id) through
    splitmix64; stream 0 drives an environment, stream 1 the selectors."""

    __slots__ = ("s",)

    def __init__(self, seed=0, stream=0):
        self.seed(seed, stream)

    def seed(self, seed, stream):
        """Restart the stream (``swarm_rng_seed``)."""
        x = (seed ^ (stream * _STREAM)) & MASK64
        s = []
        for _ in range(4):
            x, z = splitmix64(x)
            s.append(z)
        self.s = s

    def next(self):
        """The next 64-bit output (``swarm_rng_next``)."""
        s0, s1, s2, s3 = self.s
        result = (_rotl((s1 * 5) & MASK64, 7) * 9) & MASK64
        t = (s1 << 17) & MASK64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        self.s = [s0, s1, s2, _rotl(s3, 45)]
        return result

    def uniform(self):
        """A double in [0, 1) from the top 53 bits."""
        return (self.next() >> 11) * _TWO_M53

    def below(self, n):
        """An integer in [0, n), n a uint32 (Lemire's multiply-shift)."""
        return ((self.next() >> 32) * (n & 0xFFFFFFFF)) >> 32

    def normal(self):
        """A standard normal draw (Marsaglia polar; the spare is dropped)."""
        while True:
            u = 2.0 * self.uniform() - 1.0
            v = 2.0 * self.uniform() - 1.0
            s = u * u + v * v
            if not (s >= 1.0 or s == 0.0):
                return u * math.sqrt(-2.0 * math.log(s) / s)

    def gamma(self, shape):
        """A Gamma(shape, 1) draw (Marsaglia-Tsang; boosted below shape 1)."""
        if shape < 1.0:
            u = self.uniform()
            return self.gamma(shape + 1.0) * math.pow(u + 1e-300, 1.0 / shape)
        d = shape - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            while True:
                x = self.normal()
                v = 1.0 + c * x
                if not v <= 0.0:
                    break
            v = v * v * v
            u = self.uniform()
            if u < 1.0 - 0.0331 * x * x * x * x:
                return d * v
            if math.log(u) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
                return d * v

    def beta(self, a, b):
        """A Beta(a, b) draw as two gammas."""
        x = self.gamma(a)
        y = self.gamma(b)
        return x / (x + y)
