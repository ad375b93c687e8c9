"""Read the production tables and the statistics the keys need, in one snapshot.

Values that prodtwin does not model (arrays, geometric, network and extension types) are read in
their text form, so they round-trip through COPY unchanged; bytea is read as its length only, so
no production bytes ever reach memory. Children-per-parent distributions and null rates are SQL
aggregates over the full table, whatever the row cap, so cardinality holds at any scale.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy.engine import Connection

from synth_assets.db import raw
from synth_assets.errors import ProdtwinError
from synth_assets.profile import TableStats, profile_columns
from synth_assets.schema import Column, ForeignKey, Schema, Table

NATIVE_KINDS = {
    "integer",
    "float",
    "numeric",
    "boolean",
    "date",
    "timestamp",
    "timestamptz",
    "text",
}


@dataclass(frozen=True)
class FkProfile:
    """Production's children-per-parent distribution for one FK, and its NULL rate."""

    counts: np.ndarray  # number of children a parent has
    parents: np.ndarray  # how many parents have that many
    null_rate: float


@dataclass
class TableProfile:
    rows: int
    foreign_keys: dict[str, FkProfile] = field(default_factory=dict)
    stats: TableStats | None = None
    # hidden columns aligned with the table's frame (synth_assets.relations): children counts
    # per child FK, modelled with the table's own columns
    latent: pd.DataFrame | None = None
    links: dict[str, Any] = field(default_factory=dict)  # FK name -> relations.Link
    # relations.Track per child number that follows a parent number (an order line's price)
    tracks: list[Any] = field(default_factory=list)
    # self-references: how many rows sit at depth 0, 1, 2, ... of production's trees
    tree_depths: dict[str, np.ndarray] = field(default_factory=dict)
    # column -> values rare among the parents whose column it carries (synth_assets.rare)
    entity_rare: dict[str, frozenset[str]] = field(default_factory=dict)
    # sums.SumRule per number that is the sum of its children's (an order's total)
    sums: list[Any] = field(default_factory=list)
    # sums.RowRule per number that is the sum or product of two others of its row
    row_rules: list[Any] = field(default_factory=list)
    # carries.Carry per column that repeats a parent column (an invoice's billing city)
    carries: list[Any] = field(default_factory=list)


@dataclass
class Extract:
    frames: dict[str, pd.DataFrame]
    profiles: dict[str, TableProfile]


def qualified(schema: str, table: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def select_item(col: Column) -> sql.Composable:
    ident = sql.Identifier(col.name)
    if col.kind == "bytea":
        return sql.SQL("octet_length({})").format(ident)
    if col.kind in NATIVE_KINDS:
        return ident
    return sql.SQL("{}::text").format(ident)


def _columns(rows: list[tuple], width: int) -> list[np.ndarray]:
    """The fetched rows' columns as Python objects, exactly as the driver returned them (one C
    transposition: a bigint next to a NULL must not pass through a float)."""
    if not rows:
        return [np.empty(0, dtype=object) for _ in range(width)]
    table = np.empty((len(rows), width), dtype=object)
    try:
        table[:] = rows  # C speed; a value that is itself a sequence cannot go in like this
    except ValueError:
        return [np.fromiter(c, dtype=object, count=len(rows)) for c in zip(*rows, strict=True)]
    return [table[:, i] for i in range(width)]


def _integers(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Exact Int64: Python ints straight to int64 (in C), NULL as the mask."""
    null = np.equal(values, None)
    try:
        data = np.where(null, 0, values).astype(np.int64)
    except (TypeError, ValueError, OverflowError):
        return pd.array(values, dtype="Int64")
    return pd.arrays.IntegerArray(data, null.astype(bool))


def _floats(values: np.ndarray) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """Floats, NULL apart from NaN: float64 when the column holds no NaN (as before), else a
    nullable Float64 whose mask is NULL, so that a production 'NaN' stays a NaN (not a NULL)
    all the way to publish. Decimals of numeric columns become floats here."""
    null = np.equal(values, None)
    filled = np.where(null, np.nan, values)
    try:
        x = filled.astype("float64")  # float() of each value, in C (Decimal's included)
    except (TypeError, ValueError):
        x = pd.to_numeric(pd.Series(filled), errors="coerce").to_numpy("float64", na_value=np.nan)
    if not (np.isnan(x) & ~null).any():
        return x
    return pd.arrays.FloatingArray(np.where(null, 0.0, x), null.astype(bool))


def _times(values: np.ndarray, kind: str) -> pd.Series:
    """Dates and times; nanoseconds when every value fits (pandas' default, 1677 to 2262), else
    microseconds, which hold PostgreSQL's 0001-01-01 to 9999-12-31: a sentinel date such as
    9999-12-31 is kept, never turned into NULL."""
    s = pd.Series(values, dtype=object)
    if kind == "timestamptz":
        out = pd.to_datetime(s, utc=True, errors="coerce")
    else:
        out = pd.to_datetime(s, errors="coerce")
    if out.notna().sum() == s.notna().sum():
        return out
    # what is no date (MySQL's 0000-00-00 comes back as a string) is NULL, as pandas reads it
    s = s.map(lambda v: v if isinstance(v, dt.date) else None)
    if kind == "timestamptz":
        utc = dt.UTC
        s = s.map(lambda v: v if v is None else v.astimezone(utc).replace(tzinfo=None))
    wide = pd.Series(np.array(s.tolist(), dtype="datetime64[us]"))
    return wide.dt.tz_localize("UTC") if kind == "timestamptz" else wide


def to_frame(table: Table, rows: list[tuple], columns: list[Column]) -> pd.DataFrame:
    """Typed columns: exact nullable ints (a bigint above 2^53 next to a NULL stays exact),
    floats for numerics (NaN kept apart from NULL), UTC timestamps (sentinel dates outside
    pandas' nanosecond range kept), strings as objects."""
    out: dict[str, Any] = {}
    for col, values in zip(columns, _columns(rows, len(columns)), strict=True):
        if col.kind in ("integer", "bytea"):
            out[col.name] = _integers(values)
        elif col.kind in ("float", "numeric"):
            out[col.name] = _floats(values)
        elif col.kind == "boolean":
            out[col.name] = pd.array(values, dtype="boolean")
        elif col.kind in ("timestamptz", "date", "timestamp"):
            out[col.name] = _times(values, col.kind)
        else:
            out[col.name] = pd.Series(values, dtype=object)
    return pd.DataFrame(out, columns=[c.name for c in columns])


def read_table(
    conn: Connection, schema: str, table: Table, cap: int | None, rows: int, seed: int
) -> pd.DataFrame:
    columns = [c for c in table.columns if c.generated is None]
    items = sql.SQL(", ").join(select_item(c) for c in columns)
    sample = sql.SQL("")
    if cap is not None and rows > cap:
        percent = min(100.0, 100.0 * cap / rows * 1.05)
        sample = sql.SQL(" tablesample bernoulli ({}) repeatable ({})").format(
            sql.Literal(percent), sql.Literal(seed % 2**31)
        )
    if table.primary_key:
        order = sql.SQL(", ").join(sql.Identifier(c) for c in table.primary_key)
    else:
        order = sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(columns)))
    query = sql.SQL("select {} from {}{} order by {}").format(
        items, qualified(schema, table.name), sample, order
    )
    if cap is not None:
        query = query + sql.SQL(" limit {}").format(sql.Literal(cap))
    with raw(conn).cursor() as cur:
        cur.execute(query)
        data = cur.fetchall()
    return to_frame(table, data, columns)


def unreadable(conn: Connection, schema: Schema, error: Exception) -> ProdtwinError:
    """What to tell the user when a value cannot be read: PostgreSQL's 'infinity' dates and
    timestamps have no Python or pandas counterpart, so the table and columns holding one are
    named (the driver's message names neither)."""
    with raw(conn).cursor() as cur:
        for table in schema.tables.values():
            times = [
                c
                for c in table.columns
                if c.kind in ("date", "timestamp", "timestamptz") and c.generated is None
            ]
            if not times:
                continue
            checks = sql.SQL(", ").join(
                sql.SQL("coalesce(bool_or(not isfinite({})), false)").format(sql.Identifier(c.name))
                for c in times
            )
            cur.execute(
                sql.SQL("select {} from {}").format(checks, qualified(schema.name, table.name))
            )
            flags = cur.fetchone() or ()
            infinite = [c.name for c, flag in zip(times, flags, strict=True) if flag]
            if infinite:
                return ProdtwinError(
                    f"table {table.name}: column {', '.join(infinite)} holds 'infinity' or "
                    "'-infinity', which prodtwin cannot reproduce yet. Use a sentinel date such "
                    "as 9999-12-31 or 0001-01-01 (those are reproduced at their rate), or "
                    f"exclude the table (tables.exclude: [{table.name}])"
                )
    return ProdtwinError(f"reading the source failed: a value could not be read ({error})")


def _fk_join(fk: ForeignKey) -> sql.Composable:
    return sql.SQL(" and ").join(
        sql.SQL("c.{} = p.{}").format(sql.Identifier(c), sql.Identifier(r))
        for c, r in zip(fk.columns, fk.ref_columns, strict=True)
    )


def profile_table(
    conn: Connection, schema: Schema, table: Table, max_categories: int
) -> TableProfile:
    fks = schema.foreign_keys_of(table)
    nulls = [
        sql.SQL("count(*) filter (where {})").format(
            sql.SQL(" or ").join(
                sql.SQL("{} is null").format(sql.Identifier(c)) for c in fk.columns
            )
        )
        for fk in fks
    ]
    query = sql.SQL("select {} from {}").format(
        sql.SQL(", ").join([sql.SQL("count(*)"), *nulls]), qualified(schema.name, table.name)
    )
    cur = raw(conn).cursor()
    cur.execute(query)
    total, *null_counts = cur.fetchone()
    profile = TableProfile(rows=int(total))
    keys = set(table.primary_key) | {c for fk in table.foreign_keys for c in fk.columns}
    profile.stats = profile_columns(cur, schema.name, table, int(total), keys, max_categories)
    for fk, null_count in zip(fks, null_counts, strict=True):
        ref_cols = sql.SQL(", ").join(
            sql.SQL("p.{}").format(sql.Identifier(r)) for r in fk.ref_columns
        )
        hist = sql.SQL(
            "select n, count(*) from (select count(c.{first}) as n from {parent} p "
            "left join {child} c on {join} group by {ref_cols}) s group by n order by n"
        ).format(
            first=sql.Identifier(fk.columns[0]),
            parent=qualified(schema.name, fk.ref_table),
            child=qualified(schema.name, table.name),
            join=_fk_join(fk),
            ref_cols=ref_cols,
        )
        cur.execute(hist)
        pairs = cur.fetchall()
        profile.foreign_keys[fk.name] = FkProfile(
            counts=np.array([p[0] for p in pairs], dtype=np.int64),
            parents=np.array([p[1] for p in pairs], dtype=np.int64),
            null_rate=(null_count / total) if total else 0.0,
        )
    cur.close()
    return profile


def extract(
    conn: Connection,
    schema: Schema,
    cap: int | None,
    seed: int,
    max_categories: int,
    whole: frozenset[str] = frozenset(),
) -> Extract:
    """Everything generation needs from production, read inside the caller's snapshot;
    the tables in ``whole`` (reference tables, published as they are) without the row cap."""
    if conn.dialect.name == "mysql":
        from synth_assets.mysql_source import extract_mysql

        data = extract_mysql(conn, schema, cap, seed, max_categories, whole)
        frames, profiles = data.frames, data.profiles
    else:
        try:
            profiles = {
                name: profile_table(conn, schema, t, max_categories)
                for name, t in schema.tables.items()
            }
            frames = {
                name: read_table(
                    conn, schema.name, t, None if name in whole else cap, profiles[name].rows, seed
                )
                for name, t in schema.tables.items()
            }
        except psycopg.DataError as error:  # a value Python cannot hold (a date 'infinity')
            try:
                found = unreadable(conn, schema, error)
            except psycopg.Error:  # the server refused the query itself: its reason is the news
                raise error from None
            raise found from None
    from synth_assets.relations import children_counts
    from synth_assets.sums import find_row_rules, find_sums

    for name, latent in children_counts(conn, schema, frames).items():
        profiles[name].latent = latent
    for name, rules in find_sums(conn, schema, frames, seed).items():
        profiles[name].sums = rules
    for name, table in schema.tables.items():
        profiles[name].row_rules = find_row_rules(table, frames[name])
    for name, table in schema.tables.items():
        for fk in table.foreign_keys:
            if fk.ref_table == name:
                profiles[name].tree_depths[fk.name] = depth_counts(frames[name], fk)
    return Extract(frames, profiles)


def depth_counts(frame: pd.DataFrame, fk: ForeignKey) -> np.ndarray:
    """Rows per depth of a self-reference's trees (a row whose parent is not read is a root)."""
    from synth_assets.keys import tree_depths

    if frame.empty:
        return np.zeros(0, dtype=np.int64)
    keys = frame[list(fk.ref_columns)].astype(str)
    keys["__pos"] = np.arange(len(frame))
    own = frame[list(fk.columns)].astype(str)
    own.columns = list(fk.ref_columns)
    unset = frame[list(fk.columns)].isna().any(axis=1).to_numpy()
    merged = own.merge(keys.drop_duplicates(list(fk.ref_columns)), how="left")
    pos = merged["__pos"].fillna(-1).to_numpy(dtype=np.int64)
    pos[unset] = -1
    return np.bincount(tree_depths(pos))
