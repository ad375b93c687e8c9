"""Durations: a later time of a row modelled as the time since an earlier one.

A shift ends 4 to 8 hours after it starts; an order is required 28 days after it is placed and
shipped a week after. A copula of the two times keeps their correlation across the table's
months, not the hours or days between them: modelled directly, Northwind's synthetic orders
were required 8 to 95 days after they were placed and shipped a median 19 days after (7 in
production), and shifts lasted a median 97 hours. Where a time column follows another one
closely (the spread of their difference is a small part of its own spread), the model sees the
difference instead, which takes production's quantiles like any number, and each sampled row
adds it back to its earlier time. A birth date and a hire date stay modelled as they are: the
years between them vary as much as the dates do. A date that follows a timestamp (due 28 days
after the order was placed) counts from the timestamp's day, so it stays a whole number of days
after it. A rebuilt time stays inside production's range of the column (a rental of the days
whose rentals production has not seen returned yet gets the earliest return, not one months
before any return production has); after a base past that range's end it is NULL, as it is in
production (an order placed after the last shipment is not shipped yet).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets.relations import is_latent
from synth_assets.schema import Column

TIME_KINDS = ("date", "timestamp", "timestamptz")
DAY = 86_400.0
SPREAD_SHARE = 0.25  # the difference's interquartile range at most this share of the column's
MIN_ROWS = 20  # rows with both times set, at least


@dataclass(frozen=True)
class Duration:
    """A later time modelled as the seconds since ``base`` (since its day, for a date)."""

    base: str
    days: bool
    low: float  # production's range of the later time, in seconds: rebuilt times stay in it
    high: float
    nullable: bool = True

    def since(self, later: np.ndarray, base: np.ndarray) -> np.ndarray:
        return later - self._start(base)

    def rebuilt(self, since: np.ndarray, base: np.ndarray) -> np.ndarray:
        """The later times, inside production's range. A base past the range's end (an order
        placed after production's last shipment) has no later time in it: NULL, as every such
        production row has (not shipped yet), or the range's end for a NOT NULL column."""
        value = np.maximum(since + self._start(base), self.low)
        past = (value > self.high) & (base >= self.high)
        value = np.minimum(value, self.high)
        return np.where(past & self.nullable, np.nan, value)

    def _start(self, base: np.ndarray) -> np.ndarray:
        return np.floor(base / DAY) * DAY if self.days else base


def _spread(values: np.ndarray) -> float:
    low, high = np.percentile(values, [25, 75])
    return float(high - low)


def _seconds(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")


def find_durations(data: pd.DataFrame, columns: list[Column]) -> dict[str, Duration]:
    """Later time column -> how it is modelled from an earlier one (``data``: seconds, as the
    model sees times). Bases come first in the mapping's order, so rows are rebuilt in that
    order; a column is only rebuilt from one that is set wherever it is, and only from one it
    follows (their median difference, over the rows where both are set, is positive: a column
    whose recent rows are NULL has an earlier median of its own than the one it follows)."""
    names = [c.name for c in columns if c.kind in TIME_KINDS and not is_latent(c.name)]
    kinds = {c.name: c.kind for c in columns}
    nullable = {c.name: c.nullable for c in columns}
    values = {n: _seconds(data[n]) for n in names}
    counted = [n for n in names if (~np.isnan(values[n])).sum() >= MIN_ROWS]
    chosen: dict[str, tuple[float, Duration]] = {}
    for later in counted:
        mine = values[later]
        present = ~np.isnan(mine)
        own = _spread(mine[present])
        if own <= 0:
            continue
        low, high = float(mine[present].min()), float(mine[present].max())
        for earlier in counted:
            base = values[earlier][present]
            if earlier == later or np.isnan(base).any():  # set where its base is not
                continue
            duration = Duration(earlier, kinds[later] == "date", low, high, nullable[later])
            since = duration.since(mine[present], base)
            middle = float(np.median(since))
            if middle < 0 or (middle == 0 and names.index(earlier) > names.index(later)):
                continue  # it does not follow that one
            spread = _spread(since)
            if spread <= SPREAD_SHARE * own and (later not in chosen or spread < chosen[later][0]):
                chosen[later] = (spread, duration)
    return _bases_first({later: d for later, (_, d) in chosen.items()})


def _bases_first(durations: dict[str, Duration]) -> dict[str, Duration]:
    """The mapping in an order where each base is rebuilt before the times that follow it; the
    times of a chain that comes back to itself (medians need not be transitive) are modelled as
    they are."""
    out: dict[str, Duration] = {}
    for name in durations:
        path: list[str] = []
        while name in durations and name not in out and name not in path:
            path.append(name)
            name = durations[name].base
        if name in path:  # a cycle: the time it came back to is modelled as it is
            path = path[: path.index(name)]
        for later in reversed(path):
            out[later] = durations[later]
    return out


def as_durations(data: pd.DataFrame, durations: dict[str, Duration]) -> pd.DataFrame:
    """The model frame with each later time replaced by the time since its base."""
    if not durations:
        return data
    out = data.copy()
    for later, d in durations.items():  # from the times themselves, not from durations
        out[later] = d.since(_seconds(data[later]), _seconds(data[d.base]))
    return out


def from_durations(data: pd.DataFrame, durations: dict[str, Duration]) -> pd.DataFrame:
    """Sampled rows with each later time rebuilt from its base, bases first (in place)."""
    for later, d in durations.items():
        if later in data and d.base in data:
            data[later] = d.rebuilt(_seconds(data[later]), _seconds(data[d.base]))
    return data
