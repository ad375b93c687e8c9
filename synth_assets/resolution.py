"""The resolution production's values are written at: whole days, seconds, cents.

A model draws from continuous distributions, so a timestamp column whose every production
value is a midnight (Chinook's invoice dates) came out at 14:42:08.659930, and a price kept in
a float column with two decimals (Northwind's unit prices are ``real``) at 18.4372. A QA test
that groups invoices by day, or an application that shows prices, sees values production
never has. The coarsest step every production value is a multiple of is found per column, and
synthetic values are rounded to it before the row checks are repaired (repairs swap values or
borrow gaps between rounded ones, so they stay on the step).

Columns whose database type already says the resolution (``date``, integers, ``numeric(p,s)``)
are rounded by their type and are left alone here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_assets.schema import Column

TIME_STEPS = (86_400.0, 3_600.0, 60.0, 1.0, 1e-3)  # seconds: days, hours, minutes, s, ms
NUMBER_STEPS = (1.0, 0.1, 0.01, 0.001, 1e-4)
TOLERANCE = 0.01  # of a step: a float4's 21.35 reads as 21.350000381
MIN_VALUES = 20  # fewer values are on a coarse step by chance too often


def step_of(col: Column, production: pd.Series) -> float | None:
    """The coarsest step all of production's (finite) values are multiples of, if any."""
    if col.kind in ("timestamp", "timestamptz"):
        from synth_assets.synthesize import to_seconds

        steps, values = TIME_STEPS, to_seconds(production).to_numpy(dtype="float64")
    elif col.kind == "float" or (col.kind == "numeric" and col.numeric_scale is None):
        steps = NUMBER_STEPS
        values = pd.to_numeric(production, errors="coerce").to_numpy(dtype="float64")
    else:
        return None
    # distinct values: MIN_VALUES counts what could be off a step, not repeats of one value
    values = np.unique(values[np.isfinite(values)])
    if len(values) < MIN_VALUES:
        return None
    for step in steps:
        units = values / step
        if np.all(np.abs(units - np.round(units)) <= TOLERANCE):
            return step
    return None


def snap(values: pd.Series, step: float, how: str = "round") -> pd.Series:
    """``values`` on multiples of ``step`` (NULL, NaN and infinities stay). ``how``: "round",
    or "floor"/"ceil" where a value must not cross another (a repaired ``a < b``)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        unit = pd.Timedelta(microseconds=round(step * 1e6))
        try:
            out = getattr(values.dt, how)(unit)
        except (OverflowError, ValueError):  # a sentinel at the edge of what pandas holds
            return values
        return out.where(values.notna())
    if not pd.api.types.is_numeric_dtype(values):
        return values
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    decimals = decimals_of(step)
    units = {"round": np.round, "floor": np.floor, "ceil": np.ceil}[how]
    with np.errstate(invalid="ignore"):
        # a tiny allowance: 0.3 / 0.1 is 2.9999999999999996, whose floor is not 3
        nudge = {"round": 0.0, "floor": 1e-9, "ceil": -1e-9}[how]
        out = np.where(np.isfinite(x), np.round(units(x / step + nudge) * step, decimals), x)
    return pd.Series(out, index=values.index, dtype="float64")


def decimals_of(step: float) -> int:
    """The decimals a number on ``step`` is written with (0.01: 2), to drop float noise."""
    return max(0, round(float(-np.log10(step))))
