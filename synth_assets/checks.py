"""Repair of CHECK constraints that a synthesizer does not know about.

PostgreSQL verifies every CHECK when the copy is published; this module makes the common ones
hold beforehand so that the publish does not fail: comparisons of a column with a constant or
with another column (``qty > 0``, ``delivered_at > shipped_at``, ``a <> b``), also behind the
usual ``x IS NULL OR ...`` guard. Anything else is left to PostgreSQL, whose refusal names the
constraint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets.resolution import snap

IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
LITERAL = r"(?:\(?-?\d+(?:\.\d+)?\)?|'[^']*')(?:::[a-z ]+(?:\(\d+(?:,\d+)?\))?)?"
COMPARISON = re.compile(rf"^({IDENT}) (>=|<=|<>|!=|>|<|=) ({IDENT}|{LITERAL})$")
NULL_GUARD = re.compile(rf"^\(?{IDENT} IS NULL\)? OR (.*)$")


@dataclass(frozen=True)
class Comparison:
    left: str
    op: str
    right: str  # a column name, or a literal when right_is_column is False
    right_is_column: bool


def _strip(expr: str) -> str:
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, ch in enumerate(expr):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr
        expr = expr[1:-1].strip()
    return expr


def _unquote(ident: str) -> str:
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident


def parse(expression: str) -> Comparison | None:
    expr = _strip(expression)
    guard = NULL_GUARD.match(expr)
    if guard:
        expr = _strip(guard.group(1))
    match = COMPARISON.match(expr)
    if not match:
        return None
    left, op, right = match.groups()
    if re.fullmatch(IDENT, right):
        return Comparison(_unquote(left), op, _unquote(right), True)
    literal = re.sub(r"::[a-z ]+(\(.*\))?$", "", right).strip("()")
    return Comparison(_unquote(left), op, literal.strip("'"), False)


def check_columns(expression: str) -> set[str]:
    """The columns of a CHECK that generation repairs (none for one it cannot parse)."""
    cmp = parse(expression)
    if cmp is None:
        return set()
    return {cmp.left, cmp.right} if cmp.right_is_column else {cmp.left}


def _holds(a: pd.Series, op: str, b: object) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        result = {
            ">": lambda: a > b,
            ">=": lambda: a >= b,
            "<": lambda: a < b,
            "<=": lambda: a <= b,
            "=": lambda: a == b,
            "<>": lambda: a != b,
            "!=": lambda: a != b,
        }[op]()
    # a NULL operand makes the CHECK pass, as in SQL
    nulls = a.isna().to_numpy()
    if isinstance(b, pd.Series):
        nulls |= b.isna().to_numpy()
    return np.asarray(pd.Series(result).fillna(True), dtype=bool) | nulls


def _constant_like(series: pd.Series, literal: str) -> object:
    if pd.api.types.is_datetime64_any_dtype(series):
        value = pd.Timestamp(literal)
        tz = getattr(series.dt, "tz", None)
        return value.tz_localize(tz) if tz is not None and value.tzinfo is None else value
    if pd.api.types.is_numeric_dtype(series):
        return float(literal)
    return literal


def _within(values: np.ndarray, column: pd.Series) -> np.ndarray:
    """Which values lie inside the column's current range (its synthetic min and max)."""
    present = column.dropna()
    if present.empty:
        return np.ones(len(values), dtype=bool)
    low, high = present.min(), present.max()
    with np.errstate(invalid="ignore"):
        return np.asarray(pd.Series(values).between(low, high).to_numpy(), dtype=bool)


def _to_steps(
    frame: pd.DataFrame, rows: pd.Index, cmp: Comparison, steps: dict[str, float]
) -> None:
    """Moved values back on their columns' steps, each rounded away from the other column
    (the left one up where it must stay above, the right one down): the gap only widens."""
    above = cmp.op in (">", ">=")
    for name, how in (
        (cmp.left, "ceil" if above else "floor"),
        (cmp.right, "floor" if above else "ceil"),
    ):
        if name in steps and len(rows):
            frame.loc[rows, name] = snap(frame.loc[rows, name], steps[name], how).to_numpy()


def repair(
    frame: pd.DataFrame,
    expression: str,
    rng: np.random.Generator,
    primary_key: set[str],
    foreign_keys: set[str],
    steps: dict[str, float] | None = None,
) -> int:
    """Make a parsed CHECK hold in place; returns how many rows were changed.

    Primary-key values are never touched; a foreign-key value is only replaced by another row's
    value of the same column (still a valid parent), never shifted by arithmetic. ``steps``:
    the resolution of columns (resolution.py); a value moved by a borrowed gap goes to its
    column's step, rounded away from the value it must not cross.
    """
    cmp = parse(expression)
    if cmp is None or cmp.left not in frame or cmp.left in primary_key:
        return 0
    if cmp.left in foreign_keys and cmp.op not in ("<>", "!="):
        return 0
    a = frame[cmp.left]
    if cmp.right_is_column:
        if cmp.right not in frame:
            return 0
        b: object = frame[cmp.right]
    else:
        try:
            b = _constant_like(a, cmp.right)
        except (ValueError, TypeError):
            return 0
    ok = _holds(a, cmp.op, b)
    bad = np.flatnonzero(~ok)
    if len(bad) == 0:
        return 0
    if cmp.right_is_column and cmp.op in (">", ">=", "<", "<="):
        # swapping the two values keeps both inside production's ranges
        rows = frame.index[bad]
        left, right = frame.loc[rows, cmp.left].to_numpy(), frame.loc[rows, cmp.right].to_numpy()
        frame.loc[rows, cmp.left], frame.loc[rows, cmp.right] = right, left
        _to_steps(frame, rows, cmp, steps or {})  # the columns' resolutions may differ
        a = frame[cmp.left]
        ok_after = _holds(a, cmp.op, frame[cmp.right])
        bad = np.flatnonzero(~ok_after)
        if len(bad) == 0:
            return int((~ok).sum())
        ok = ok & ok_after
    good = np.flatnonzero(ok & a.notna().to_numpy())
    if cmp.right_is_column and cmp.op in (">", ">=", "<", "<=") and len(good):
        # keep the gap production-like: borrow the gap of a row where the relation holds
        other = frame[cmp.right]
        gaps = a.iloc[good].to_numpy() - other.iloc[good].to_numpy()
        picked = gaps[rng.integers(0, len(gaps), len(bad))]
        moved_left = other.iloc[bad].to_numpy() + picked
        # where that leaves the left column's range, move the right one instead (a due date
        # past every production due date would fail the gate's range expectation)
        moved_right = a.iloc[bad].to_numpy() - picked
        use_right = ~_within(moved_left, a) & _within(moved_right, other)
        if cmp.right in primary_key or cmp.right in foreign_keys:
            use_right[:] = False
        rows = frame.index[bad]
        frame.loc[rows[~use_right], cmp.left] = moved_left[~use_right]
        frame.loc[rows[use_right], cmp.right] = moved_right[use_right]
        _to_steps(frame, rows, cmp, steps or {})
    elif cmp.op == "=" and cmp.right_is_column:
        frame.loc[frame.index[bad], cmp.left] = frame[cmp.right].iloc[bad].to_numpy()
    elif len(good):
        # values that satisfy the check, taken from other synthetic rows
        for _ in range(10):
            frame.loc[frame.index[bad], cmp.left] = a.iloc[good].to_numpy()[
                rng.integers(0, len(good), len(bad))
            ]
            a = frame[cmp.left]
            b = frame[cmp.right] if cmp.right_is_column else b
            still = ~_holds(a, cmp.op, b)
            bad = np.flatnonzero(still)
            if len(bad) == 0:
                break
    return int((~ok).sum())
