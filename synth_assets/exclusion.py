"""Exclusion constraints: no two bookings of one room overlap.

``EXCLUDE USING gist (room_id WITH =, during WITH &&)`` is how PostgreSQL schemas say it
(reservations, shifts, prices valid over a period, a temporal table's versions). Rows are
sampled independently of each other, so two synthetic bookings of a room can overlap; after a
chunk is sampled, each group's spans (a room's bookings) are laid out in order of their start:
a span that overlaps the one before it moves later by as much, keeping its length (two nights
stay two nights), and if that takes the group past production's latest end, the group is moved
back, earlier, as little as fits. A span open at its end (a temporal table's current version)
ends where the next one of its group starts.

The shape kept: any number of columns compared with ``=`` and one span compared with ``&&``,
either a range column (tstzrange, tsrange, daterange, int4range, int8range, numrange) or a
range built from two columns (``tstzrange(starts_at, ends_at)``). The constraint's WHERE is
ignored: no overlap at all satisfies any predicate. A constraint of another shape is not
published, and the refresh's notes say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets.ranges import (
    DISCRETE,
    MICROS_PER_DAY,
    RANGE_TYPES,
    bound_texts,
    bounds_of,
    decimals_of,
    micros,
    parts_of,
)
from synth_assets.schema import Column, ExclusionConstraint, Table

TIME_KINDS = {"timestamptz", "timestamp", "date"}
NUMBER_KINDS = {"integer", "numeric", "float"}
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_BUILT = re.compile(
    rf"^(?:pg_catalog\.)?(\w+)\(({_IDENT}), ({_IDENT})(?:, '([\[(][\])])'(?:::text)?)?\)$"
)


@dataclass(frozen=True)
class Span:
    """What ``&&`` compares: a range column, or the range two columns build."""

    subtype: str  # timestamptz, timestamp, date, integer or numeric
    column: str | None = None  # a range column
    start: str | None = None  # or the two columns of tstzrange(start, end[, bounds])
    end: str | None = None
    closed: bool = False  # built as '[]': spans that touch overlap


@dataclass(frozen=True)
class Rule:
    constraint: str
    equal: tuple[str, ...]
    span: Span

    def describe(self, table: str) -> str:
        what = self.span.column or f"{self.span.start} .. {self.span.end}"
        per = f" with equal {', '.join(self.equal)}" if self.equal else ""
        return (
            f"exclusion constraint {self.constraint}: no two rows of {table}{per} overlap in {what}"
        )


def _unquote(ident: str) -> str:
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident


def rule_of(table: Table, constraint: ExclusionConstraint) -> Rule | str:
    """The rule prodtwin keeps for ``constraint``, or why it cannot keep it."""
    equal: list[str] = []
    spans: list[Span] = []
    for element, op, column in zip(
        constraint.elements, constraint.operators, constraint.columns, strict=True
    ):
        if op == "=" and column is not None:
            equal.append(column)
        elif op == "&&" and column is not None:
            subtype = RANGE_TYPES.get(table.column(column).sql_type)
            if subtype is None:
                return f"{column} is a {table.column(column).sql_type}, not a built-in range"
            spans.append(Span(subtype, column=column))
        elif op == "&&" and (match := _BUILT.match(element)) is not None:
            function, start, end, bounds = match.groups()
            start, end = _unquote(start), _unquote(end)
            subtype = RANGE_TYPES.get(function)
            kinds = TIME_KINDS if subtype in TIME_KINDS else NUMBER_KINDS
            try:
                columns = [table.column(start), table.column(end)]
            except KeyError:
                return f"{element} is not a range of two of its columns"
            if subtype is None or any(c.kind not in kinds for c in columns):
                return f"{element} is not a built-in range of two of its columns"
            spans.append(Span(subtype, start=start, end=end, closed=bounds == "[]"))
        else:
            return f"{element} WITH {op} is not = on a column or && on a range"
    if len(spans) != 1:
        return "prodtwin keeps = on columns with && on exactly one range"
    return Rule(constraint.name, tuple(equal), spans[0])


def rules_of(table: Table) -> tuple[list[Rule], list[str]]:
    """The rules kept for a table's exclusion constraints, and a note for each one that is not."""
    rules, notes = [], []
    for constraint in table.exclusions:
        rule = rule_of(table, constraint)
        if isinstance(rule, Rule):
            rules.append(rule)
        else:
            notes.append(
                f"table {table.name}: exclusion constraint {constraint.name} is not published "
                f"({rule}); its rows may break it"
            )
    return rules, notes


# --- spans as numbers: microseconds for times, days for dates, the values for numbers ---------


def _column_numbers(values: pd.Series, col: Column) -> np.ndarray:
    if col.kind in TIME_KINDS:
        found = micros(values)
        return found / MICROS_PER_DAY if col.kind == "date" else found
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")


@dataclass
class _Spans:
    lower: np.ndarray  # float; -inf unbounded
    upper: np.ndarray  # float; +inf unbounded
    usable: np.ndarray  # not NULL, not empty, parsed
    parts: pd.DataFrame | None = None  # a range column's text parts (brackets and bounds)


def _spans(frame: pd.DataFrame, table: Table, span: Span) -> _Spans:
    if span.column is not None:
        parts = parts_of(frame[span.column])
        lower, upper = bounds_of(parts, span.subtype)
        usable = parts["open"].notna().to_numpy() & ~np.isnan(lower) & ~np.isnan(upper)
        return _Spans(lower, upper, usable, parts)
    assert span.start is not None and span.end is not None
    lower = _column_numbers(frame[span.start], table.column(span.start))
    upper = _column_numbers(frame[span.end], table.column(span.end))
    return _Spans(lower, upper, ~np.isnan(lower) & ~np.isnan(upper) & (upper >= lower))


def _gap(span: Span, spans: _Spans, table: Table) -> float:
    """Room left between two spans of a group: none for [a, b) ranges, the type's step for
    closed ones (two '[]' spans that share an end overlap; a discrete range column is always
    [a, b) as PostgreSQL prints it, a built one is closed if built as '[]')."""
    closed = span.closed
    if spans.parts is not None:
        closed = bool(((spans.parts["open"] == "[") & (spans.parts["close"] == "]")).any())
    if not closed:
        return 0.0
    if span.subtype in DISCRETE or span.subtype in ("timestamptz", "timestamp"):
        return 1.0  # a day, an integer, a microsecond
    if spans.parts is not None:
        return 10.0 ** -decimals_of(spans.parts)
    scale = table.column(span.start or "").numeric_scale
    return 10.0**-scale if scale is not None else 1e-6


def latest_end(production: pd.DataFrame, table: Table, span: Span) -> float:
    """Production's latest finite end of the span: the group is moved back to end by it."""
    if production.empty:
        return np.inf
    spans = _spans(production, table, span)
    finite = spans.upper[spans.usable & np.isfinite(spans.upper)]
    return float(finite.max()) if len(finite) else np.inf


def keep_apart(frame: pd.DataFrame, table: Table, rule: Rule, latest: float = np.inf) -> int:
    """Lay out each group's spans so that none overlaps another (in place); the rows moved.

    Vectorised with the queue recursion: in start order, a span's end is
    ``e_i = max(e_{i-1}, l_i) + len_i``, which is ``S_i + cummax(l_k - S_{k-1})`` with ``S``
    the running sum of lengths; moving back is the same from the other end with cummin.
    """
    if frame.empty:
        return 0
    span = rule.span
    spans = _spans(frame, table, span)
    usable = spans.usable.copy()
    for column in rule.equal:
        usable &= frame[column].notna().to_numpy()
    rows = np.flatnonzero(usable)
    if len(rows) < 2:
        return 0
    lower, upper = spans.lower[rows], spans.upper[rows]
    low_open, up_open = np.isneginf(lower), np.isposinf(upper)
    finite = ~low_open & ~up_open
    # an open span is a point for the layout: where it ends (open start) or starts (open end)
    key = np.where(low_open, np.where(up_open, -np.inf, upper), lower)
    gap = _gap(span, spans, table)
    length = np.where(finite, upper - lower, 0.0) + gap
    if rule.equal:
        groups = frame[list(rule.equal)].iloc[rows].astype(str)
        group = groups.groupby(list(rule.equal), sort=False).ngroup().to_numpy()
    else:
        group = np.zeros(len(rows), dtype=np.int64)
    order = np.lexsort((key, lower, group))
    g, k, n = group[order], key[order], length[order]
    gid = pd.Series(g)
    total = pd.Series(n).groupby(gid).cumsum().to_numpy()
    before = total - n
    end = total + pd.Series(k - before).groupby(gid).cummax().to_numpy()
    start = end - n
    first = np.r_[True, g[1:] != g[:-1]]
    last = np.r_[g[1:] != g[:-1], True]
    if np.isfinite(latest):  # back, earlier, as little as fits under production's latest end
        # t_i = min(s_i, t_{i+1} - n_i) and t_last + n_last <= latest: with A the lengths from
        # i to the group's end, t_i = min(min over k >= i of s_k + A_k, latest) - A_i; a group
        # whose last span is open at its end (a current version) has no end to keep under
        unbounded = pd.Series(up_open[order] & last).groupby(gid).transform("max").to_numpy()
        bound = np.where(unbounded, np.inf, latest + gap)
        reverse = gid.to_numpy()[::-1]
        after = pd.Series(n[::-1]).groupby(reverse).cumsum().to_numpy()[::-1]
        limit = pd.Series(np.minimum(start + after, bound)[::-1])
        back = limit.groupby(reverse).cummin().to_numpy()[::-1] - after
        start = np.where(np.isfinite(back), np.minimum(start, back), start)
    next_start = np.r_[start[1:], np.inf]
    new_lower = np.where(low_open[order] & first, -np.inf, start)
    previous_end = np.r_[-np.inf, start[:-1] + n[:-1] - gap]
    new_lower = np.where(low_open[order] & ~first, previous_end, new_lower)
    new_upper = np.where(finite[order], start + n - gap, np.where(last, np.inf, next_start))
    new_upper = np.where(low_open[order] & ~up_open[order], np.maximum(start, new_lower), new_upper)
    new_upper = np.where(up_open[order] & ~last, np.maximum(next_start, new_lower), new_upper)
    old_lower, old_upper = lower[order], upper[order]
    moved = (new_lower != old_lower) | (new_upper != old_upper)
    if not moved.any():
        return 0
    at = rows[order][moved]
    _write(frame, table, span, spans, at, new_lower[moved], new_upper[moved])
    return int(moved.sum())


def _write(
    frame: pd.DataFrame,
    table: Table,
    span: Span,
    spans: _Spans,
    at: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> None:
    if span.column is None:
        assert span.start is not None and span.end is not None
        for name, values in ((span.start, lower), (span.end, upper)):
            col = table.column(name)
            series = frame[name].copy()
            series.iloc[at] = _values_of(values, col, series).array
            frame[name] = series
        return
    assert spans.parts is not None
    parts = spans.parts.iloc[at]
    opening = parts["open"].to_numpy(dtype=object)
    # an end that is or was open is exclusive: a version closed at its successor's start
    closing = np.where(np.isposinf(upper) | np.isposinf(spans.upper[at]), ")", parts["close"])
    decimals = decimals_of(spans.parts)
    low_text = _bound_texts(lower, span.subtype, parts["lower"], spans.lower[at], decimals)
    up_text = _bound_texts(upper, span.subtype, parts["upper"], spans.upper[at], decimals)
    column = frame[span.column].astype(object).copy()
    column.iloc[at] = opening + low_text + "," + up_text + closing.astype(object)
    frame[span.column] = column


def _bound_texts(
    values: np.ndarray, subtype: str, original: pd.Series, before: np.ndarray, decimals: int
) -> np.ndarray:
    """Range bounds as PostgreSQL reads them: the original text where the value did not move."""
    text = bound_texts(values, subtype, decimals)
    return np.where(values == before, original.to_numpy(dtype=object), text)


def _values_of(values: np.ndarray, col: Column, like: pd.Series) -> pd.Series:
    """Numbers back to the column's values (an open end of a built range stays what it was)."""
    if col.kind in ("timestamptz", "timestamp"):
        times = pd.to_datetime(np.round(values).astype(np.int64), unit="us")
        if getattr(like.dt, "tz", None) is not None:
            times = times.tz_localize("UTC").tz_convert(like.dt.tz)
        return pd.Series(times, dtype=like.dtype)
    if col.kind == "date":
        days = pd.to_datetime(np.round(values).astype(np.int64), unit="D")
        return pd.Series(days, dtype=like.dtype)
    if col.kind == "integer":
        return pd.Series(np.round(values).astype(np.int64), dtype=like.dtype)
    return pd.Series(values, dtype=like.dtype)
