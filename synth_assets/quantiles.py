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


# steps a time keeps (a day, an hour, a minute, a second), in seconds
TIME_STEPS = (86_400.0, 3_600.0, 60.0, 1.0)


def step_of(x: np.ndarray, steps: tuple[float, ...]) -> float | None:
    """The largest of ``steps`` that every production value is a multiple of (whole hours stay
    whole hours), or None."""
    for step in steps:
        if len(x) and bool(np.all(np.mod(x, step) == 0)):
            return step
    return None
