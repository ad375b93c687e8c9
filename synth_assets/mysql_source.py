"""A MySQL or MariaDB production database as a source, published to PostgreSQL warehouses.

The schema model is PostgreSQL's: each MySQL column is given the PostgreSQL type that holds its
values (``datetime`` -> ``timestamp``, ``tinyint(1)`` -> ``boolean``, ``enum(...)`` -> an enum
type of its own, ``blob`` -> ``bytea``...), so everything after the extract (synthesis, keys,
DDL, the gate) is the same as for a PostgreSQL source. Reads go through SQLAlchemy Core, which
quotes every identifier for MySQL; statistics are computed by the server over the full tables,
as for PostgreSQL. CHECK constraints are not copied: their MySQL text is not PostgreSQL's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection

from synth_assets.errors import SchemaError
from synth_assets.extract import Extract, FkProfile, TableProfile, to_frame
from synth_assets.profile import (
    COUNTED_KINDS,
    RANGED_KINDS,
    ColumnStats,
    TableStats,
    relation_pairs,
    relations_from_counts,
)
from synth_assets.schema import (
    Column,
    EnumType,
    ForeignKey,
    Index,
    Schema,
    Table,
    UniqueConstraint,
)

PG_NAME_MAX = 63


def _pg_name(*parts: str) -> str:
    """A PostgreSQL object name (unique per schema there, per table in MySQL)."""
    return "_".join(parts)[:PG_NAME_MAX]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pg_type(column_type: Any, table: str, column: str) -> tuple[str, str, dict[str, Any]]:
    """(PostgreSQL type, prodtwin kind, extra Column fields) for a reflected MySQL type."""
    t = column_type
    unsigned = bool(getattr(t, "unsigned", False))
    if isinstance(t, mysql.TINYINT) and getattr(t, "display_width", None) == 1:
        return "boolean", "boolean", {}
    if isinstance(t, mysql.BIT) and (t.length or 1) == 1:
        return "boolean", "boolean", {}
    if isinstance(t, mysql.YEAR):
        return "smallint", "integer", {}
    if isinstance(t, sa.types.Boolean):
        return "boolean", "boolean", {}
    if isinstance(t, mysql.BIGINT | sa.types.BigInteger):
        return (
            ("numeric(20,0)", "numeric", {"numeric_scale": 0})
            if unsigned
            else ("bigint", "integer", {})
        )
    if isinstance(t, mysql.INTEGER | mysql.MEDIUMINT | sa.types.Integer):
        small = isinstance(t, mysql.TINYINT | mysql.SMALLINT)
        if unsigned:
            return ("integer", "integer", {}) if small else ("bigint", "integer", {})
        return ("smallint", "integer", {}) if small else ("integer", "integer", {})
    if isinstance(t, sa.types.Numeric) and not isinstance(t, sa.types.Float):
        if t.precision is not None:
            return (
                f"numeric({t.precision},{t.scale or 0})",
                "numeric",
                {"numeric_scale": t.scale or 0},
            )
        return "numeric", "numeric", {}
    if isinstance(t, mysql.DOUBLE | mysql.REAL) or (
        isinstance(t, sa.types.Float) and (t.precision or 0) > 24
    ):
        return "double precision", "float", {}
    if isinstance(t, sa.types.Float):
        return "real", "float", {}
    if isinstance(t, mysql.ENUM):
        name = _pg_name(table, column)
        return _quote(name), "enum", {"enum_values": tuple(t.enums), "local_type": name}
    if isinstance(t, mysql.SET):
        return "text", "text", {}
    if isinstance(t, mysql.TIMESTAMP):
        return "timestamp with time zone", "timestamptz", {}
    if isinstance(t, sa.types.DateTime):
        return "timestamp without time zone", "timestamp", {}
    if isinstance(t, sa.types.Date):
        return "date", "date", {}
    if isinstance(t, sa.types.Time):
        return "time without time zone", "other", {}
    if isinstance(t, sa.types.JSON):
        return "jsonb", "json", {}
    if isinstance(t, mysql.CHAR | mysql.NCHAR) and getattr(t, "length", None):
        return f"character({t.length})", "text", {"max_length": t.length}
    if isinstance(t, mysql.VARCHAR | mysql.NVARCHAR) and getattr(t, "length", None):
        return f"character varying({t.length})", "text", {"max_length": t.length}
    if isinstance(t, sa.types.String):  # text, tinytext, mediumtext, longtext
        return "text", "text", {}
    if isinstance(t, sa.types.LargeBinary | sa.types._Binary | mysql.BIT):
        return "bytea", "bytea", {}
    return "text", "other", {}  # geometry and the rest: their text form


def introspect_mysql(conn: Connection, database: str) -> Schema:
    """Every base table of ``database`` with its keys, unique constraints and indexes."""
    insp = sa.inspect(conn)
    if database not in insp.get_schema_names():
        raise SchemaError(
            f"database {database!r} does not exist on the MySQL source: set source.schema in "
            "prodtwin.yaml (or the database in source.url) to one of "
            + ", ".join(sorted(insp.get_schema_names()))
        )
    enums: dict[str, EnumType] = {}
    tables: dict[str, Table] = {}
    for name in sorted(insp.get_table_names(schema=database)):
        columns = []
        pk = insp.get_pk_constraint(name, schema=database)
        pk_cols = tuple(pk.get("constrained_columns") or ())
        for c in insp.get_columns(name, schema=database):
            sql_type, kind, extra = pg_type(c["type"], name, c["name"])
            if kind == "enum":
                enums[extra["local_type"]] = EnumType(extra["local_type"], extra["enum_values"])
            auto = c.get("autoincrement") is True and kind == "integer"
            columns.append(
                Column(
                    name=c["name"],
                    sql_type=sql_type,
                    kind=kind,
                    nullable=bool(c["nullable"]),
                    identity="by default" if auto and c["name"] in pk_cols else None,
                    **extra,
                )
            )
        nullable = {c.name: c.nullable for c in columns}
        fks = tuple(
            ForeignKey(
                name=fk["name"],
                columns=tuple(fk["constrained_columns"]),
                ref_table=fk["referred_table"],
                ref_columns=tuple(fk["referred_columns"]),
                nullable=any(nullable[c] for c in fk["constrained_columns"]),
                on_delete=(fk.get("options") or {}).get("ondelete"),
                on_update=(fk.get("options") or {}).get("onupdate"),
            )
            for fk in insp.get_foreign_keys(name, schema=database)
            if fk.get("referred_schema") in (None, database)
        )
        indexes = insp.get_indexes(name, schema=database)
        uniques = tuple(
            UniqueConstraint(_pg_name(name, i["name"]), tuple(i["column_names"]))
            for i in indexes
            if i.get("unique") and None not in i["column_names"]
        )
        plain = tuple(
            Index(
                _pg_name(name, i["name"]),
                f"CREATE INDEX {_quote(_pg_name(name, i['name']))} ON {{table}} USING btree ("
                + ", ".join(_quote(c) for c in i["column_names"])
                + ")",
            )
            for i in indexes
            if not i.get("unique") and None not in i["column_names"]
        )
        tables[name] = Table(
            name=name,
            columns=tuple(columns),
            primary_key=pk_cols,
            foreign_keys=fks,
            uniques=uniques,
            indexes=plain,
        )
    return Schema(database, tables, enums, {})


# --- extract -------------------------------------------------------------------------------


def _table(database: str, table: Table) -> sa.Table:
    return sa.Table(
        table.name, sa.MetaData(), *[sa.Column(c.name) for c in table.columns], schema=database
    )


def _select_item(t: sa.Table, col: Column) -> Any:
    c = t.c[col.name]
    if col.kind == "bytea":
        return sa.func.length(c).label(col.name)  # as for PostgreSQL: no production bytes
    if col.kind == "boolean":
        return (c + 0).label(col.name)  # tinyint(1) and bit(1) alike, as 0/1
    if col.kind == "other":
        return sa.cast(c, sa.CHAR).label(col.name)  # TIME, geometry...: their text
    return c


def _values_as_text(kind: str, values: list[Any]) -> tuple[str, ...]:
    if kind == "boolean":
        return tuple(sorted({"true" if int(v) else "false" for v in values}))
    return tuple(str(v) for v in values)


def _aware(kind: str, value: Any) -> Any:
    if kind == "timestamptz" and isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    if kind == "boolean" and value is not None:
        return bool(value)
    return value


def column_stats(
    conn: Connection,
    database: str,
    table: Table,
    rows: int,
    excluded: set[str],
    max_categories: int,
) -> TableStats:
    """The statistics profile.profile_columns computes on PostgreSQL, in portable SQL."""
    t = _table(database, table)
    stats = TableStats(rows=rows)
    columns = [c for c in table.columns if c.generated is None]
    items: list[Any] = []
    layout: list[tuple[str, str]] = []
    for col in columns:
        c = t.c[col.name]
        items.append(sa.func.count(c))
        layout.append((col.name, "non_null"))
        if col.kind in RANGED_KINDS:
            items += [sa.func.min(c), sa.func.max(c)]
            layout += [(col.name, "min"), (col.name, "max")]
        if col.kind in COUNTED_KINDS:
            items.append(sa.func.count(sa.distinct(c)))
            layout.append((col.name, "distinct"))
    pairs = relation_pairs(table, excluded)

    def count_where(cond: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)

    for a, b in pairs:
        ca, cb = t.c[a], t.c[b]
        items += [
            count_where(sa.and_(ca.is_not(None), cb.is_not(None))),
            count_where(ca <= cb),
            count_where(ca < cb),
            count_where(ca >= cb),
            count_where(ca > cb),
        ]
    if not items:
        return stats
    row = list(conn.execute(sa.select(*items).select_from(t)).one())
    raw: dict[str, dict[str, Any]] = {}
    for (name, what), value in zip(layout, row[: len(layout)], strict=True):
        raw.setdefault(name, {})[what] = value
    for col in columns:
        r = raw[col.name]
        values = None
        distinct = r.get("distinct")
        if distinct is not None and 0 < distinct <= max_categories:
            c = t.c[col.name]
            found = conn.execute(sa.select(c).where(c.is_not(None)).distinct()).scalars().all()
            values = tuple(sorted(_values_as_text(col.kind, list(found))))
        stats.columns[col.name] = ColumnStats(
            int(r["non_null"]),
            _aware(col.kind, r.get("min")),
            _aware(col.kind, r.get("max")),
            int(distinct) if distinct is not None else None,
            values,
        )
    rest = [int(v) for v in row[len(layout) :]]
    stats.relations += relations_from_counts(pairs, rest)
    return stats


def profile_table(
    conn: Connection, schema: Schema, table: Table, max_categories: int
) -> TableProfile:
    t = _table(schema.name, table)
    fks = schema.foreign_keys_of(table)
    nulls = [
        sa.func.coalesce(
            sa.func.sum(sa.case((sa.or_(*[t.c[c].is_(None) for c in fk.columns]), 1), else_=0)),
            0,
        )
        for fk in fks
    ]
    total, *null_counts = conn.execute(sa.select(sa.func.count(), *nulls).select_from(t)).one()
    profile = TableProfile(rows=int(total))
    keys = set(table.primary_key) | {c for fk in table.foreign_keys for c in fk.columns}
    profile.stats = column_stats(conn, schema.name, table, int(total), keys, max_categories)
    for fk, null_count in zip(fks, null_counts, strict=True):
        parent = _table(schema.name, schema.tables[fk.ref_table]).alias("p")
        child = t.alias("c")
        join = sa.and_(
            *[child.c[c] == parent.c[r] for c, r in zip(fk.columns, fk.ref_columns, strict=True)]
        )
        per_parent = (
            sa.select(sa.func.count(child.c[fk.columns[0]]).label("n"))
            .select_from(parent.outerjoin(child, join))
            .group_by(*[parent.c[r] for r in fk.ref_columns])
            .subquery()
        )
        pairs = conn.execute(
            sa.select(per_parent.c.n, sa.func.count())
            .group_by(per_parent.c.n)
            .order_by(per_parent.c.n)
        ).all()
        profile.foreign_keys[fk.name] = FkProfile(
            counts=np.array([p[0] for p in pairs], dtype=np.int64),
            parents=np.array([p[1] for p in pairs], dtype=np.int64),
            null_rate=(int(null_count) / int(total)) if total else 0.0,
        )
    return profile


def children_per_parent(conn: Connection, database: str, child: Table, fk: ForeignKey) -> list:
    """relations.children_counts' per-parent count, in portable SQL."""
    t = _table(database, child)
    keys = [_select_item(t, child.column(c)) for c in fk.columns]
    query = (
        sa.select(*keys, sa.func.count())
        .where(*[t.c[c].is_not(None) for c in fk.columns])
        .group_by(*[t.c[c] for c in fk.columns])
    )
    return [tuple(r) for r in conn.execute(query).all()]


def read_table(
    conn: Connection, database: str, table: Table, cap: int | None, rows: int, seed: int
) -> pd.DataFrame:
    columns = [c for c in table.columns if c.generated is None]
    t = _table(database, table)
    query = sa.select(*[_select_item(t, c) for c in columns])
    if cap is not None and rows > cap:
        query = query.order_by(sa.func.rand(seed % 2**31)).limit(cap)
    elif table.primary_key:
        query = query.order_by(*[t.c[c] for c in table.primary_key])
    data = [tuple(r) for r in conn.execute(query).all()]
    frame = to_frame(table, data, columns)
    for col in columns:
        if col.kind == "timestamptz":  # read in UTC (the snapshot sets time_zone = '+00:00')
            frame[col.name] = pd.to_datetime(frame[col.name], utc=True)
    return frame


def extract_mysql(
    conn: Connection,
    schema: Schema,
    cap: int | None,
    seed: int,
    max_categories: int,
    whole: frozenset[str] = frozenset(),
) -> Extract:
    profiles = {
        name: profile_table(conn, schema, t, max_categories) for name, t in schema.tables.items()
    }
    frames = {
        name: read_table(
            conn, schema.name, t, None if name in whole else cap, profiles[name].rows, seed
        )
        for name, t in schema.tables.items()
    }
    return Extract(frames, profiles)
