"""Range values (tstzrange, daterange, int4range, numrange...): read, written and generated.

A range column was drawn whole from production's rows, as values of types prodtwin does not
model are: a table whose only data is a range (maintenance windows) then consisted of
production's rows, and the privacy gate refused every refresh of it. A range's start and
length are hidden columns of the table's model (``RangeModel.hidden``), so they follow the
row, and ``RangeModel.build`` writes them back on production's steps (whole hours stay whole
hours), with production's shares of NULL, empty and unbounded ranges and of bracket styles.
Where the model has no such columns (a reference table, a model pickled before),
``RangeModel.sample`` draws start and length independently between production's quantiles.
``exclusion.py`` reads and writes ranges through the same functions here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets.quantiles import TIME_STEPS, between_quantiles, step_of
from synth_assets.schema import Column

RANGE_TYPES = {
    "tstzrange": "timestamptz",
    "tsrange": "timestamp",
    "daterange": "date",
    "int4range": "integer",
    "int8range": "integer",
    "numrange": "numeric",
}
DISCRETE = {"date", "integer"}  # PostgreSQL keeps these ranges as [a, b): touching is no overlap
TIME_SUBTYPES = {"timestamptz", "timestamp", "date"}
RANGE_TEXT = re.compile(r'^([\[(])("(?:[^"\\]|\\.)*"|[^,"]*),("(?:[^"\\]|\\.)*"|[^\])"]*)([\])])$')
MICROS_PER_DAY = 86_400_000_000
REDRAWS = 5


def micros(values: pd.Series) -> np.ndarray:
    times = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
    out = np.full(len(values), np.nan)
    present = times.notna().to_numpy()
    out[present] = times[present].to_numpy(dtype="datetime64[us]").astype(np.int64)
    return out


def parts_of(values: pd.Series) -> pd.DataFrame:
    """A range's text as its parts: open, lower, upper, close (all NaN for NULL or empty)."""
    text = values.astype(object)
    parts = text.where(text.notna(), "").astype(str).str.extract(RANGE_TEXT)
    parts.columns = ["open", "lower", "upper", "close"]
    return parts


def bound_numbers(values: pd.Series, subtype: str) -> np.ndarray:
    """Bound texts as numbers (microseconds, days); an empty bound (unbounded) or infinity as
    an infinity."""
    text = values.fillna("").astype(str).str.strip('"')
    lowered = text.str.lower()
    if subtype in ("timestamptz", "timestamp"):
        out = micros(text.where(~lowered.isin(["", "infinity", "-infinity"])))
    elif subtype == "date":
        out = micros(text.where(~lowered.isin(["", "infinity", "-infinity"]))) / MICROS_PER_DAY
    else:
        out = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(dtype="float64")
    out[(lowered == "infinity").to_numpy()] = np.inf
    out[(lowered == "-infinity").to_numpy()] = -np.inf
    return out


def bounds_of(parts: pd.DataFrame, subtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds as numbers, an unbounded end as an infinity."""
    lower = bound_numbers(parts["lower"], subtype)
    upper = bound_numbers(parts["upper"], subtype)
    lower[(parts["lower"] == "").to_numpy()] = -np.inf
    upper[(parts["upper"] == "").to_numpy()] = np.inf
    return lower, upper


def decimals_of(parts: pd.DataFrame) -> int:
    texts = pd.concat([parts["lower"], parts["upper"]]).dropna().astype(str)
    fraction = texts.str.extract(r"\.(\d+)$")[0].dropna()
    return int(fraction.str.len().max()) if len(fraction) else 0


def bound_texts(values: np.ndarray, subtype: str, decimals: int) -> np.ndarray:
    """Bounds as PostgreSQL reads them: nothing for an unbounded end."""
    finite = np.isfinite(values)
    whole = np.where(finite, np.round(values), 0).astype(np.int64)
    if subtype in ("timestamptz", "timestamp"):
        # as PostgreSQL prints them (no fraction when it is zero), so that a range equal to a
        # production one is seen as equal before the gate sees it
        times = pd.to_datetime(whole, unit="us")
        fraction = pd.Series(times.strftime(".%f")).str.rstrip("0").str.rstrip(".")
        zone = "+00" if subtype == "timestamptz" else ""
        stamp = pd.Series(times.strftime("%Y-%m-%d %H:%M:%S")) + fraction
        text = ('"' + stamp + zone + '"').to_numpy(dtype=object)
    elif subtype == "date":
        text = pd.to_datetime(whole, unit="D").strftime("%Y-%m-%d").to_numpy(dtype=object)
    elif subtype == "integer":
        text = whole.astype(str).astype(object)
    else:
        text = np.char.mod(f"%.{decimals}f", values).astype(object)
    return np.where(finite, text, "")


def _step(x: np.ndarray, subtype: str, decimals: int) -> float:
    if subtype in DISCRETE:
        return 1.0
    if subtype == "numeric":
        return 10.0**-decimals
    micros = tuple(1e6 * step for step in TIME_STEPS)
    return step_of(x, micros) or 1.0  # else a microsecond


START_PREFIX = "__range_start__"
LENGTH_PREFIX = "__range_length__"


def hidden_names(column: str) -> tuple[str, str]:
    """The hidden model columns of a range column's start and length."""
    return START_PREFIX + column, LENGTH_PREFIX + column


def is_hidden(name: str) -> bool:
    return name.startswith((START_PREFIX, LENGTH_PREFIX))


def _finite_bounds(values: pd.Series, subtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of each row as numbers (NaN for NULL, empty or unparsed)."""
    parts = parts_of(values)
    lower, upper = bounds_of(parts, subtype)
    unparsed = parts["open"].isna().to_numpy()
    lower[unparsed], upper[unparsed] = np.nan, np.nan
    return lower, upper


def _snap(values: np.ndarray, step: float) -> np.ndarray:
    return np.round(values / step) * step


def _count(rate: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """A mask of n rows with ``rate`` of them set, at random rows."""
    mask = np.zeros(n, dtype=bool)
    k = min(n, int(np.floor(rate * n + rng.random())))
    mask[rng.choice(n, k, replace=False)] = True
    return mask


@dataclass(frozen=True)
class RangeModel:
    subtype: str
    starts: np.ndarray  # finite lower bounds
    lengths: np.ndarray  # upper - lower where both are finite
    ends: np.ndarray  # finite upper bounds (for ranges unbounded below)
    empty: float
    open_below: float
    open_above: float
    brackets: pd.Series  # "[)" -> share
    decimals: int
    steps: tuple[float, float, float]  # of starts, lengths and ends
    unique: pd.MultiIndex  # (lower, upper) of ranges no other production range has
    # of the rows with no finite start and length: NULL, empty, unbounded below or above
    specials: pd.Series

    @classmethod
    def fit(cls, values: pd.Series, sql_type: str) -> RangeModel | None:
        """``values``: production's column, NULLs included."""
        subtype = RANGE_TYPES.get(sql_type)
        if subtype is None or values.notna().sum() == 0:
            return None
        parts = parts_of(values)  # NaN parts for NULL and empty
        parsed = parts["open"].notna().to_numpy()
        if not parsed.any():
            return None
        null = values.isna().to_numpy()
        empty = ~null & values.astype(str).str.lower().eq("empty").to_numpy()
        lower, upper = bounds_of(parts[parsed], subtype)
        both = np.isfinite(lower) & np.isfinite(upper)
        decimals = decimals_of(parts[parsed])
        starts = lower[np.isfinite(lower)]
        pairs = pd.MultiIndex.from_arrays([lower, upper])
        kinds = np.select(
            [np.isneginf(lower) & np.isposinf(upper), np.isneginf(lower), np.isposinf(upper)],
            ["both", "below", "above"],
            "finite",
        )
        unbounded = list(kinds[kinds != "finite"])
        specials = pd.Series(
            ["null"] * int(null.sum()) + ["empty"] * int(empty.sum()) + unbounded, dtype=object
        ).value_counts(normalize=True)
        return cls(
            subtype,
            starts,
            (upper - lower)[both],
            upper[np.isfinite(upper)],
            float(empty.sum() / (~null).sum()),
            float(np.isneginf(lower).mean()),
            float(np.isposinf(upper).mean()),
            (parts["open"] + parts["close"])[parsed].value_counts(normalize=True),
            decimals,
            (
                _step(starts, subtype, decimals),
                _step((upper - lower)[both], subtype, decimals),
                _step(upper[np.isfinite(upper)], subtype, decimals),
            ),
            pairs[~pairs.duplicated(keep=False)],
            specials,
        )

    def hidden(self, values: pd.Series) -> pd.DataFrame:
        """Each production row's start and length (NaN unless both ends are finite), which the
        table's model learns with the row's other columns: a booking's length follows its
        price, its start its creation time."""
        start, end = _finite_bounds(values, self.subtype)
        both = np.isfinite(start) & np.isfinite(end)
        names = hidden_names(str(values.name))
        first = np.where(both, start, np.nan)
        if self.subtype in TIME_SUBTYPES:  # a time, so that durations.py sees what it follows
            unit = "D" if self.subtype == "date" else "us"
            whole = pd.array(np.round(first), dtype="Int64")
            times = pd.Series(pd.to_datetime(whole, unit=unit, errors="coerce"), index=values.index)
            first = times.dt.tz_localize("UTC") if self.subtype == "timestamptz" else times
        # the start alone carries the rows with no finite range (NULL, empty, unbounded): two
        # columns with NULLs of their own would drop twice as many (the union of their NULLs)
        length = end - start
        typical = float(np.median(length[both])) if both.any() else 0.0
        return pd.DataFrame(
            {names[0]: first, names[1]: np.where(both, length, typical)}, index=values.index
        )

    def hidden_columns(self, column: str) -> list[Column]:
        """How the table's model sees them: the start as a time of the range's subtype (a
        number for a number range), the length as a number."""
        start, length = hidden_names(column)
        kind = self.subtype if self.subtype in TIME_SUBTYPES else "float"
        return [Column(start, kind, kind, True), Column(length, "float8", "float", True)]

    def _starts_of(self, start: pd.Series) -> np.ndarray:
        """The model's starts back as numbers (microseconds, days)."""
        if self.subtype not in TIME_SUBTYPES:
            return pd.to_numeric(start, errors="coerce").to_numpy(dtype="float64")
        return micros(start.astype(str).where(start.notna()).astype(object)) / (
            MICROS_PER_DAY if self.subtype == "date" else 1
        )

    def build(
        self, start: pd.Series, length: pd.Series, rng: np.random.Generator, avoid: bool = False
    ) -> np.ndarray:
        """Ranges from the model's starts and lengths, on production's steps; a row the model
        gave no start (NaN) is NULL, empty or unbounded at production's shares of such rows.
        ``avoid``: as in ``sample``."""
        start_step, length_step, end_step = self.steps
        lower = _snap(self._starts_of(start), start_step)
        span = pd.to_numeric(length, errors="coerce").to_numpy(dtype="float64")
        shortest = length_step if len(self.lengths) and self.lengths.min() > 0 else 0.0
        upper = lower + np.maximum(shortest, _snap(span, length_step))
        n = len(lower)
        upper = np.where(np.isfinite(lower), upper, np.nan)  # the start says which rows have one
        open_rows = np.flatnonzero(~(np.isfinite(lower) & np.isfinite(upper)))
        kinds = np.full(n, "finite", dtype=object)
        if len(open_rows) and len(self.specials):
            shares = self.specials
            kinds[open_rows] = shares.index.to_numpy()[
                rng.choice(len(shares), len(open_rows), p=shares.to_numpy())
            ]
        elif len(open_rows):  # production has none: such a row is drawn on its own
            lower[open_rows], upper[open_rows] = self._bounds(len(open_rows), rng)
        below, above = kinds == "below", kinds == "above"
        lower[below] = -np.inf
        upper[below] = (
            _snap(between_quantiles(self.ends, int(below.sum()), rng), end_step)
            if len(self.ends)
            else np.inf
        )
        if len(self.starts):
            lower[above] = _snap(between_quantiles(self.starts, int(above.sum()), rng), start_step)
        upper[above] = np.inf
        lower[kinds == "both"], upper[kinds == "both"] = -np.inf, np.inf
        if avoid:
            self._redraw_copies(lower, upper, np.flatnonzero(kinds == "finite"), rng)
        out = self._texts(lower, upper, rng)
        out[kinds == "empty"] = "empty"
        out[kinds == "null"] = None
        return out

    def sample(self, n: int, rng: np.random.Generator, avoid: bool = False) -> np.ndarray:
        """n ranges as PostgreSQL's text. ``avoid`` (the table's only data is this range: a
        range only one production row has is a copy of that row): such draws are drawn again,
        a few rounds; on a coarse grid (monthly periods) some may stay, and the gate decides.
        Not otherwise: redrawing shifts the shares towards the ranges production has fewest of."""
        lower, upper = self._bounds(n, rng)
        if avoid:
            self._redraw_copies(lower, upper, np.arange(n), rng)
        out = self._texts(lower, upper, rng)
        out[_count(self.empty, n, rng)] = "empty"
        return out

    def _redraw_copies(
        self, lower: np.ndarray, upper: np.ndarray, rows: np.ndarray, rng: np.random.Generator
    ) -> None:
        """Rows (of ``rows``) whose range only one production row has are drawn again, in
        place, a few rounds."""
        for _ in range(REDRAWS):
            again = rows[pd.MultiIndex.from_arrays([lower[rows], upper[rows]]).isin(self.unique)]
            if not len(again):
                return
            lower[again], upper[again] = self._bounds(len(again), rng)

    def _texts(self, lower: np.ndarray, upper: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Bounds as PostgreSQL's text, in production's bracket styles at their shares."""
        shares = self.brackets
        n = len(lower)
        style = shares.index.to_numpy()[rng.choice(len(shares), n, p=shares.to_numpy())]
        opening = np.where(np.isneginf(lower), "(", np.array([s[0] for s in style], dtype=object))
        closing = np.where(np.isposinf(upper), ")", np.array([s[1] for s in style], dtype=object))
        low = bound_texts(lower, self.subtype, self.decimals)
        high = bound_texts(upper, self.subtype, self.decimals)
        return (opening.astype(object) + low + "," + high + closing.astype(object)).astype(object)

    def _bounds(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Starts on production's step of starts, lengths on its step of lengths (a window
        opening at midnight that lasts 90 minutes: days and minutes)."""
        lower = np.full(n, -np.inf)
        upper = np.full(n, np.inf)
        below, above = _count(self.open_below, n, rng), _count(self.open_above, n, rng)
        start_step, length_step, end_step = self.steps
        if len(self.starts):
            lower = _snap(between_quantiles(self.starts, n, rng), start_step)
        if len(self.lengths):
            length = between_quantiles(self.lengths, n, rng)
            # production's shortest range is one step at least, or a point ([a, a])
            shortest = length_step if self.lengths.min() > 0 else 0.0
            upper = lower + np.maximum(shortest, _snap(length, length_step))
        elif len(self.ends):
            upper = _snap(between_quantiles(self.ends, n, rng), end_step)
        lower[below] = -np.inf
        if below.any() and len(self.ends):
            upper[below] = _snap(between_quantiles(self.ends, int(below.sum()), rng), end_step)
        upper[above] = np.inf
        return lower, np.where(np.isfinite(lower) & (upper < lower), lower, upper)
