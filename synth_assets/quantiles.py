"""New values with production's distribution, for values no copula models (a JSON document's
leaves, a range's starts and lengths)."""

from __future__ import annotations

import numpy as np

ROWS_PER_KNOT = 10  # about ten production values per knot: finer would trace the values


def between_quantiles(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k values interpolated between production's quantiles: new values, not production's own,
    stratified, so that the k values spread over the quantiles as evenly as k draws can."""
    knots = int(min(100, max(2, len(x) // ROWS_PER_KNOT)))
    probs = np.linspace(0.0, 1.0, knots)
    u = (rng.permutation(k) + rng.random(k)) / max(k, 1)
    return np.interp(u, probs, np.quantile(x, probs))
