"""Statistics for eval reports: Wilson intervals, pass@k / pass^k, summaries."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["wilson", "pass_at_k", "pass_hat_k", "summarize", "Z95"]

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (exact at 0 and n)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """Unbiased pass@k (Chen et al. 2021): P(at least one of k samples passes)
    = 1 - C(n-c, k) / C(n, k). None when k > n."""
    if k > n:
        return None
    if n - c < k:
        return 1.0
    # product form avoids huge binomials
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_hat_k(n: int, c: int, k: int) -> float | None:
    """Unbiased pass^k (tau-bench): P(all k samples pass) = C(c, k) / C(n, k)."""
    if k > n:
        return None
    if c < k:
        return 0.0
    return float(np.prod((c - np.arange(k)) / (n - np.arange(k))))


def summarize(values: np.ndarray) -> dict[str, float | int | list[float] | None]:
    """mean with a 95% t-free normal interval, p50 and p95 with order-statistic
    intervals (distribution-free), min, max, std."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = int(x.shape[0])
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "mean_ci95": None, "p50": None, "p50_ci95": None,
                "p95": None, "p95_ci95": None, "min": None, "max": None}
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    half = Z95 * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "mean_ci95": [mean - half, mean + half],
            "p50": float(np.percentile(x, 50)), "p50_ci95": _quantile_ci(x, 0.5),
            "p95": float(np.percentile(x, 95)), "p95_ci95": _quantile_ci(x, 0.95),
            "min": float(x[0]), "max": float(x[-1])}


def _quantile_ci(sorted_x: np.ndarray, q: float) -> list[float]:
    """Order statistics bracketing quantile q with ~95% coverage (normal
    approximation to the binomial)."""
    n = sorted_x.shape[0]
    half = Z95 * math.sqrt(n * q * (1 - q))
    lo = max(0, int(math.floor(n * q - half)) - 1)
    hi = min(n - 1, int(math.ceil(n * q + half)))
    return [float(sorted_x[lo]), float(sorted_x[hi])]
