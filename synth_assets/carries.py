"""Child columns that repeat their parent's value: an invoice's billing address is its customer's.

Real schemas copy parent columns into children (billing_city, ship_country, a customer's
segment on each order). Each table's model draws such a column on its own, and a link's label
brings only one shared category along, so synthetic invoices were billed to another city than
their customer's (Chinook: 0.2% of cities, 90% of countries agreed; production: 100%). A
:class:`Carry` is learned per child column that equals a parent column on at least
``CARRY_SHARE`` of production's child rows; generation then sets the child's value from its
synthetic parent on that share of rows, once the row has its parent, and the gate checks it.

A column only carries a column of the same kind of role: a modelled column a modelled one (the
parent's values are production's categories, which the child's value set holds), a generated
one (personal data, free text, codes) a generated one (the parent's values are new). A
modelled value never goes into a column of personal data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets import roles as R
from synth_assets.schema import Column, ForeignKey, Schema, Table

CARRY_SHARE = 0.95  # child rows equal to their parent's column: the child carries it
MIN_CARRY_ROWS = 20
COMPARE_ROWS = 20_000  # child rows the share is measured on at most
GATE_MARGIN = 0.01  # rows the gate lets differ beyond production's share
GENERATED_ROLES = frozenset({R.PII, R.WORDS, R.CODE})
TEXT_KINDS = frozenset({"text", "enum"})
# a modelled column carries only categories: a number that follows its parent's is a
# relations.Track (equal values are a ratio of 1), and a date carried would leave the child's
# own range of dates, which its suite checks
CATEGORY_KINDS = frozenset({"text", "enum", "boolean"})


@dataclass(frozen=True)
class Carry:
    fk: str
    column: str
    parent_column: str
    share: float  # of production's child rows (with a parent) that equal the parent's value

    def describe(self, table: str, parent: str) -> str:
        return (
            f"{table}.{self.column} is its {parent} row's {self.parent_column} "
            f"(on {self.share:.0%} of production's rows)"
        )

    def allowed_differing(self) -> float:
        """The share of child rows the gate lets differ from their parent's value."""
        return min(1.0, 1.0 - self.share + GATE_MARGIN)


def _compatible(child: Column, c_role: R.ColumnRole, parent: Column, p_role: R.ColumnRole) -> bool:
    if c_role.unique:  # a unique column cannot repeat a parent value across children
        return False
    if c_role.role == R.MODEL and p_role.role == R.MODEL:
        if child.kind not in CATEGORY_KINDS or child.kind != parent.kind:
            return False
        return child.kind != "enum" or child.sql_type == parent.sql_type
    return (
        c_role.role in GENERATED_ROLES
        and p_role.role in GENERATED_ROLES
        and child.kind in TEXT_KINDS
        and parent.kind in TEXT_KINDS
    )


def _comparable(values: pd.Series) -> np.ndarray:
    """Values as text to compare across tables (1 and 1.0 alike), NULL as None."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        x = pd.to_numeric(values, errors="coerce").astype("float64").round(9)
        return np.where(x.notna(), x.astype(str), None)
    return np.where(values.notna(), values.astype(str), None)


def _parent_positions(
    child_keys: pd.DataFrame, parent_keys: pd.DataFrame, fk: ForeignKey
) -> np.ndarray:
    """Per production child row, the position of its parent among ``parent_keys`` (-1: none),
    keys compared as text (the two frames' key types may differ; synthetic rows use
    sums.positions, whose keys come from one view)."""
    left = child_keys[list(fk.columns)].astype(str)
    left.columns = list(fk.ref_columns)
    right = parent_keys[list(fk.ref_columns)].astype(str)
    right["__pos"] = np.arange(len(parent_keys))
    right = right.drop_duplicates(list(fk.ref_columns))
    merged = left.merge(right, on=list(fk.ref_columns), how="left")
    missing = child_keys[list(fk.columns)].isna().any(axis=1).to_numpy()
    pos = merged["__pos"].to_numpy(dtype="float64")
    return np.where(np.isnan(pos) | missing, -1, np.nan_to_num(pos, nan=-1)).astype(np.int64)


def learn_carries(
    schema: Schema,
    frames: dict[str, pd.DataFrame],
    roles: dict[str, dict[str, R.ColumnRole]],
    excluded: dict[str, set[str]],
    keep_rare: dict[str, list[str]],
    links: Iterable[tuple[Table, ForeignKey]],
    seed: int,
) -> dict[str, list[Carry]]:
    """Per child table, the columns that carry a parent column (each carries one, the parent
    column it equals most often). ``excluded``: columns a CHECK constrains, which generation
    repairs and a carried value would break. A child column configured to keep its rare values
    (``keep_rare``) carries no parent column that suppresses them: the parent's values would
    take back what the setting keeps."""
    out: dict[str, list[Carry]] = {}
    rng = np.random.default_rng(seed)
    for child, fk in links:
        parent = schema.tables[fk.ref_table]
        cframe, pframe = frames[child.name], frames[parent.name]
        if len(cframe) < MIN_CARRY_ROWS or pframe.empty:
            continue
        taken = {c.column for c in out.get(child.name, [])} | excluded.get(child.name, set())
        c_roles, p_roles = roles[child.name], roles[parent.name]
        pairs = [
            (c, p)
            for c in child.columns
            if c.name in cframe and c.name not in taken and c.name not in fk.columns
            for p in parent.columns
            if p.name in pframe
            and p_roles[p.name].role != R.KEY
            and (
                c.name not in keep_rare.get(child.name, [])
                or p.name in keep_rare.get(parent.name, [])
            )
            and _compatible(c, c_roles[c.name], p, p_roles[p.name])
        ]
        if not pairs:
            continue
        rows = np.arange(len(cframe))
        if len(rows) > COMPARE_ROWS:
            rows = np.sort(rng.choice(len(rows), COMPARE_ROWS, replace=False))
        sample = cframe.iloc[rows]
        pos = _parent_positions(sample, pframe, fk)
        found = pos >= 0
        if found.sum() < MIN_CARRY_ROWS:
            continue
        best = _best_pairs(pairs, sample.iloc[np.flatnonzero(found)], pframe, pos[found])
        for name, (share, pname) in best.items():
            out.setdefault(child.name, []).append(Carry(fk.name, name, pname, share))
    return out


def _best_pairs(
    pairs: list[tuple[Column, Column]],
    children: pd.DataFrame,
    parents: pd.DataFrame,
    pos: np.ndarray,
) -> dict[str, tuple[float, str]]:
    """Per child column, the share of rows equal to its best parent column and that column,
    where the share reaches CARRY_SHARE (``pos``: each child row's parent position)."""
    texts: dict[tuple[str, str], np.ndarray] = {}
    for c, p in pairs:
        if ("c", c.name) not in texts:
            texts["c", c.name] = _comparable(children[c.name])
        if ("p", p.name) not in texts:
            texts["p", p.name] = _comparable(parents[p.name])[pos]
    best: dict[str, tuple[float, str]] = {}
    for c, p in pairs:
        mine, theirs = texts["c", c.name], texts["p", p.name]
        present = pd.notna(mine)
        if present.sum() < MIN_CARRY_ROWS or pd.Series(mine[present]).nunique() < 2:
            continue
        either = present | pd.notna(theirs)
        share = float(np.mean(mine[either] == theirs[either]))
        if share >= CARRY_SHARE and share > best.get(c.name, (0.0, ""))[0]:
            best[c.name] = (share, p.name)
    return best


def carry(
    rule: Carry,
    column: Column,
    role: R.ColumnRole,
    own: pd.Series,
    parent_values: pd.Series,
    positions: np.ndarray,
    production: pd.Series,
    rng: np.random.Generator,
) -> pd.Series:
    """``own`` with the parent's value on production's share of the rows that have a parent.

    A value the child's column cannot take keeps the row's own: NULL in a NOT NULL column, text
    longer than the column holds, a modelled value production's child column never had (its
    value set is the gate's), a generated value that is one of production's (never published).
    """
    if len(own) == 0 or len(parent_values) == 0:
        return own
    has = positions >= 0
    theirs = parent_values.to_numpy(dtype=object)[np.maximum(positions, 0)]
    # exactly production's share of the rows, not a coin per row: 830 orders at 96% differ
    # on 33 +- 6 rows by chance, and the gate allows 41
    ok = np.zeros(len(own), dtype=bool)
    rows = np.flatnonzero(has)
    ok[rng.choice(rows, round(rule.share * len(rows)), replace=False)] = True
    null = pd.isna(theirs)
    if not column.nullable:
        ok &= ~null
    text = pd.Series(theirs).astype(object).where(~null, None)
    if column.max_length is not None and column.kind == "text":
        ok &= ~(text.astype(str).str.len().to_numpy() > column.max_length) | null
    known = pd.Series(production.dropna().astype(str).unique())
    inside = text.astype(str).isin(known).to_numpy()
    ok &= np.where(null, True, inside if role.role == R.MODEL else ~inside)
    if not ok.any():
        return own
    out = own.astype(object).copy() if own.dtype != object else own.copy()
    out.iloc[np.flatnonzero(ok)] = theirs[ok]
    try:
        return out.astype(own.dtype)
    except (TypeError, ValueError):
        return out
