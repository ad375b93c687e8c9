"""Publishing: a staging schema built with production's DDL, loaded with COPY, swapped in.

PostgreSQL itself is the last check: the staging tables carry every PK, UNIQUE, CHECK, NOT NULL
and FK of production, added after the load (faster, and FK cycles need no ordering), so a row
that breaks one fails the publish. The swap is two renames in one transaction; readers see the
old warehouse or the new one, never a mix, and the old one stays as ``<schema>__previous`` for
one run. A failure before the swap drops the staging schema and leaves the warehouse as it was.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from synth_assets.errors import PublishError
from synth_assets.exclusion import rules_of
from synth_assets.schema import Column, ForeignKey, Schema, Table
from synth_assets.tasks import Task, run_tasks

CHUNK_ROWS = 50_000
COPY_BLOCK = 1 << 20  # bytes of a spilled table sent per write
# A spilled table this large, and larger than its share of the load, is sent by several COPY
# streams at once (see staging_tasks); below it one stream is as fast and keeps FREEZE.
SPLIT_BYTES = 64 << 20
# A FK check is one anti-join of the child against the parent's keys. Just loaded, the tables
# have no statistics and the planner sorts both sides for a merge join (TPC-H SF 0.1, lineitem ->
# partsupp: 0.28-0.43 s, a hash of partsupp's keys 0.18-0.27 s). Hashing the parent's keys is
# right whenever they fit maintenance_work_mem; these settings only penalise the other plans, so
# keys of a type without hashing still get checked.
FK_CHECK_PLAN = {"enable_mergejoin": "off", "enable_nestloop": "off"}
MAINTENANCE_KB = 512 * 1024  # maintenance_work_mem while keys are built (see add_keys)
ESCAPES = [("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")]
# every table prodtwin creates carries this comment: a relation without it is someone else's
MARKER = "prodtwin: synthetic data, replaced by every refresh"
SWAP_LOCK_SECONDS = 60  # how long a swap waits for readers before failing (and being retried)
LOCK_TRY = "200ms"  # one attempt at the swap's locks; below PostgreSQL's deadlock_timeout (1 s)
# called with a label before each step of a publish ("copy orders", "swap", ...)
StepHook = Callable[[str], None]
# a table's rows to load: in memory, or a file of COPY text (synth_assets.spill)
Rows = pd.DataFrame | Path


def _no_step(label: str) -> None:
    return None


@dataclass(frozen=True)
class Access:
    """Who else may touch the published schema, and whether it may hold others' tables."""

    readers: tuple[str, ...] = ()  # roles granted USAGE on the schema and SELECT on its tables
    allow_foreign_objects: bool = False  # publish over tables prodtwin did not create


def staging_name(schema: str) -> str:
    return f"{schema}__staging"


def previous_name(schema: str) -> str:
    return f"{schema}__previous"


@dataclass
class PublishResult:
    environment: str
    schema: str
    rows: dict[str, int] = field(default_factory=dict)
    foreign_keys_checked: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


# --- values to COPY text -------------------------------------------------------------------


def _escape(s: pd.Series) -> pd.Series:
    text = "".join(s.tolist())  # one C-speed scan decides whether any value needs escaping
    for old, new in ESCAPES:
        if old in text:
            s = s.str.replace(old, new, regex=False)
    return s


def _format_values(values: pd.Series, col: Column) -> pd.Series:
    """Values as PostgreSQL COPY text, one by one: ``\\N`` for NULL, escapes for the rest."""
    s = values.reset_index(drop=True)
    null = s.isna().to_numpy()
    if col.kind in ("integer",) and not s.empty:
        ints = s.astype("Int64").to_numpy(dtype=np.int64, na_value=0)
        out = pd.Series(list(map(str, ints.tolist())), dtype=object)  # 2x Int64.astype(str)
    elif col.kind in ("float", "numeric"):
        v = pd.to_numeric(s, errors="coerce").astype("float64")
        if col.kind == "numeric" and col.numeric_scale is not None:
            out = pd.Series(list(map(f"{{:.{col.numeric_scale}f}}".format, v.tolist())))
        else:
            out = v.map(repr).replace({"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"})
    elif col.kind == "boolean":
        out = s.map({True: "t", False: "f"}).astype(object)
    elif col.kind in ("timestamptz", "timestamp", "date") and not s.empty:
        # numpy's ISO formatting is C; strftime is 5x slower (PostgreSQL reads the "T")
        ts = pd.to_datetime(s, utc=col.kind == "timestamptz")
        if col.kind == "timestamptz":
            ts = ts.dt.tz_localize(None)
        unit = "D" if col.kind == "date" else "us"
        text = np.datetime_as_string(ts.to_numpy(f"datetime64[{unit}]"), unit=unit)
        out = pd.Series(text.astype(object))
        if col.kind == "timestamptz":
            out = out + "+00"
    elif col.kind == "bytea":
        out = pd.Series(
            ["\\x" + bytes(v).hex() if v is not None else None for v in s], dtype=object
        )
        out = _escape(out.fillna(""))
    else:
        out = _escape(s.astype(object).where(~pd.Series(null), "").astype(str))
    out = out.astype(object)
    out[null] = "\\N"
    return out


# kinds whose text depends on the value alone, so equal values can be formatted once
_BY_VALUE = ("integer", "float", "numeric", "boolean", "timestamptz", "timestamp", "date")


def copy_text(values: pd.Series, col: Column) -> pd.Series:
    """One column as PostgreSQL COPY text: ``\\N`` for NULL, escapes for the rest.

    Numbers, booleans and dates repeat (TPC-H's lineitem has 2,500 dates in 600,000 rows) and
    formatting goes value by value: each distinct value is formatted once (a C hash finds them)
    and the texts are gathered back by code, 3-10x faster than formatting every row. A float is
    told apart by its bits, so -0.0 keeps its sign. Object columns take the per-value path: their
    Python values can compare equal across types (1 == True) yet print differently.
    """
    s = values.reset_index(drop=True)
    if col.kind not in _BY_VALUE or s.dtype == object or len(s) < 2:
        return _format_values(s, col)
    floats = s.dtype.kind == "f"
    key = s.to_numpy(dtype=np.float64, na_value=np.nan).view(np.int64) if floats else s
    codes, uniques = pd.factorize(key)
    distinct = pd.Series(uniques.view(np.float64) if floats else uniques)
    if floats:  # NULL is the mask (or a float64's NaN); a NaN a Float64 holds is the value NaN
        codes[s.isna().to_numpy()] = -1
        distinct = pd.Series(
            pd.arrays.FloatingArray(distinct.to_numpy(), np.zeros(len(distinct), bool))
        )
    texts = _format_values(distinct, col).to_numpy(dtype=object)
    return pd.Series(np.append(texts, "\\N")[codes], dtype=object)  # NULL's code -1: the last


def copy_lines(frame: pd.DataFrame, columns: list[Column]) -> str:
    if frame.empty:
        return ""
    parts = [copy_text(frame[c.name], c).tolist() for c in columns]
    return "\n".join(map("\t".join, zip(*parts, strict=True))) + "\n"


# --- DDL ---------------------------------------------------------------------------------


def _ident_list(cols: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in cols)


def _q(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def _column_type(col: Column, schema: str) -> sql.Composable:
    if col.local_type:
        return _q(schema, col.local_type)
    return sql.SQL(col.sql_type)


def _sequence_default(default: str | None) -> bool:
    return bool(default and default.startswith("nextval("))


def _sequence_name(schema: str, table: Table, col: Column) -> str:
    """The regclass text of the sequence behind a serial column, quoted for nextval()."""
    return ".".join(
        '"' + p.replace('"', '""') + '"' for p in (schema, f"{table.name}_{col.name}_seq")
    )


def _column_ddl(table: Table, col: Column, schema: str) -> sql.Composable:
    parts: list[sql.Composable] = [sql.Identifier(col.name), _column_type(col, schema)]
    if col.generated is not None:
        parts.append(sql.SQL("generated always as ({}) stored").format(sql.SQL(col.generated)))
    elif col.identity:
        parts.append(sql.SQL(f"generated {col.identity} as identity"))
    elif _sequence_default(col.default):
        parts.append(
            sql.SQL("default nextval({})").format(sql.Literal(_sequence_name(schema, table, col)))
        )
    elif col.default is not None:
        parts.append(sql.SQL("default {}").format(sql.SQL(col.default)))
    if not col.nullable:
        parts.append(sql.SQL("not null"))
    return sql.SQL(" ").join(parts)


def create_types(cur: psycopg.Cursor, schema: Schema, target: str) -> None:
    for enum in schema.enums.values():
        cur.execute(
            sql.SQL("create type {} as enum ({})").format(
                _q(target, enum.name), sql.SQL(", ").join(sql.Literal(v) for v in enum.values)
            )
        )
    for domain in schema.domains.values():
        stmt = sql.SQL("create domain {} as {}").format(
            _q(target, domain.name), sql.SQL(domain.base_type)
        )
        if domain.default is not None:
            stmt += sql.SQL(" default {}").format(sql.SQL(domain.default))
        if domain.not_null:
            stmt += sql.SQL(" not null")
        for check in domain.checks:
            stmt += sql.SQL(" check ({})").format(sql.SQL(check))
        cur.execute(stmt)


def create_table(cur: psycopg.Cursor, table: Table, target: str) -> None:
    for col in table.columns:
        if _sequence_default(col.default) and not col.identity:
            cur.execute(
                sql.SQL("create sequence {}").format(_q(target, f"{table.name}_{col.name}_seq"))
            )
    body = sql.SQL(", ").join(_column_ddl(table, c, target) for c in table.columns)
    stmt = sql.SQL("create table {} ({})").format(_q(target, table.name), body)
    if table.partitioning:
        stmt += sql.SQL(" partition by {}").format(sql.SQL(table.partitioning.key))
    cur.execute(stmt)
    for col in table.columns:
        if _sequence_default(col.default) and not col.identity:
            # owned by the column, so pg_get_serial_sequence finds it and DROP TABLE drops it
            cur.execute(
                sql.SQL("alter sequence {} owned by {}.{}").format(
                    _q(target, f"{table.name}_{col.name}_seq"),
                    _q(target, table.name),
                    sql.Identifier(col.name),
                )
            )
    if table.partitioning:
        for name, bound in table.partitioning.partitions:
            cur.execute(
                sql.SQL("create table {} partition of {} {}").format(
                    _q(target, name), _q(target, table.name), sql.SQL(bound)
                )
            )


def _fk_ddl(fk: ForeignKey, target: str) -> sql.Composable:
    stmt = sql.SQL("foreign key ({}) references {} ({})").format(
        _ident_list(fk.columns), _q(target, fk.ref_table), _ident_list(fk.ref_columns)
    )
    for clause, value in (("on delete", fk.on_delete), ("on update", fk.on_update)):
        if value and re.fullmatch(r"[A-Za-z ]+", value):
            stmt += sql.SQL(f" {clause} {value.lower()}")
    if fk.deferrable:
        stmt += sql.SQL(" deferrable initially {}").format(
            sql.SQL("deferred" if fk.initially_deferred else "immediate")
        )
    return stmt


def copy_statement(table: Table, target: str, freeze: bool = False) -> sql.Composed:
    """The COPY that reads ``copy_lines`` text (PostgreSQL's text format) into ``table``.

    ``freeze`` writes the rows already frozen, so the key checks, the gate's queries and the
    first vacuum need not set hint bits on every page; PostgreSQL allows it only when the table
    was created in the same transaction, and never on a partitioned table.
    """
    columns = [c for c in table.columns if c.generated is None]
    options = sql.SQL(" (freeze)" if freeze and not table.partitioning else "")
    return sql.SQL("copy {} ({}) from stdin{}").format(
        _q(target, table.name), _ident_list(c.name for c in columns), options
    )


Span = tuple[int, int]  # a byte range [start, end) of a file of COPY text


def load_table(
    cur: psycopg.Cursor,
    table: Table,
    rows: Rows,
    target: str,
    freeze: bool = False,
    span: Span | None = None,
) -> int:
    """COPY a table's rows, and say how many: a frame, formatted in chunks, or a file of COPY
    text (synth_assets.spill), or the ``span`` of one, streamed in blocks, so that a table of
    any size passes through a bounded buffer; see ``copy_statement`` for ``freeze``."""
    statement = copy_statement(table, target, freeze)
    if isinstance(rows, Path):  # reading is fast: plain writes keep the buffer at one block
        with cur.copy(statement) as copy, rows.open("rb") as f:
            start, end = span or (0, rows.stat().st_size)
            f.seek(start)
            left = end - start
            while left > 0 and (block := f.read(min(COPY_BLOCK, left))):
                copy.write(block)
                left -= len(block)
        return cur.rowcount
    columns = [c for c in table.columns if c.generated is None]
    # a worker thread sends each chunk while this one formats the next (sending frees the GIL)
    with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        for start in range(0, len(rows), CHUNK_ROWS):
            copy.write(copy_lines(rows.iloc[start : start + CHUNK_ROWS], columns))
    return cur.rowcount


def split_lines(path: Path, parts: int) -> list[Span]:
    """``parts`` byte ranges of about equal size that each end at the end of a line: a line of
    COPY text is one row (a newline inside a value is written as ``\\n``)."""
    size = path.stat().st_size
    cuts = [0]
    with path.open("rb") as f:
        for k in range(1, parts):
            f.seek(max(cuts[-1], size * k // parts))
            f.readline()  # to the end of the row the cut fell in
            cuts.append(min(f.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


@contextlib.contextmanager
def local_settings(cur: psycopg.Cursor, settings: dict[str, str]) -> Iterator[None]:
    """``settings`` for the statements inside, then back to what they were (this transaction)."""
    names = list(settings)
    cur.execute(
        sql.SQL("select {}").format(
            sql.SQL(", ").join(sql.SQL("current_setting({})").format(sql.Literal(n)) for n in names)
        )
    )
    before = dict(zip(names, cur.fetchone(), strict=True))
    set_config = "select set_config(%s, %s, true)"
    for name, value in settings.items():
        cur.execute(set_config, (name, value))
    yield  # on an error the transaction rolls back, and its local settings with it
    for name, value in before.items():
        cur.execute(set_config, (name, value))


def raise_maintenance_memory(cur: psycopg.Cursor) -> None:
    """Sort an index in memory and hash a FK check's parent keys in one pass, for this
    transaction only. PostgreSQL's 64 MB default spills a 6M-row primary key to disk; its FK
    check runs with work_mem = maintenance_work_mem. A server set higher keeps its own value."""
    cur.execute("select setting::bigint from pg_settings where name = 'maintenance_work_mem'")
    if int(cur.fetchone()[0]) < MAINTENANCE_KB:
        cur.execute(
            sql.SQL("set local maintenance_work_mem = {}").format(
                sql.Literal(f"{MAINTENANCE_KB}kB")
            )
        )


def add_keys(
    cur: psycopg.Cursor,
    table: Table,
    target: str,
    on_step: StepHook = _no_step,
    whole: bool = True,
) -> None:
    """Primary key, UNIQUE, CHECK and EXCLUDE of one loaded table; PostgreSQL validates every
    row. A table refreshed a day at a time (not ``whole``) gets no exclusion constraint: its
    days are generated apart, so a span of one day may overlap one of another."""
    raise_maintenance_memory(cur)
    t = _q(target, table.name)
    on_step(f"constraints {table.name}")
    if table.primary_key:
        cur.execute(
            sql.SQL("alter table {} add constraint {} primary key ({}){}").format(
                t,
                sql.Identifier(table.primary_key_name or f"{table.name}_pkey"),
                _ident_list(table.primary_key),
                _deferral(*table.primary_key_deferral),
            )
        )
    for u in table.uniques:
        deferral = _deferral(u.deferrable, u.initially_deferred)
        cur.execute(
            sql.SQL("alter table {} add constraint {} unique ({}){}").format(
                t, sql.Identifier(u.name), _ident_list(u.columns), deferral
            )
        )
    for c in table.checks:
        _with_table(
            table.name,
            cur.execute,
            sql.SQL("alter table {} add constraint {} check ({})").format(
                t, sql.Identifier(c.name), sql.SQL(c.expression)
            ),
        )
    kept = {r.constraint for r in rules_of(table)[0]} if whole else set()
    for x in table.exclusions:  # those not kept: the refresh's notes say why
        if x.name in kept:
            _with_exclusion(
                table.name,
                x.name,
                sql.SQL("alter table {} add constraint {} {}").format(
                    t, sql.Identifier(x.name), sql.SQL(x.definition)
                ),
                cur,
            )


def _deferral(deferrable: bool, initially_deferred: bool) -> sql.Composable:
    if not deferrable:
        return sql.SQL("")
    return sql.SQL(" deferrable initially deferred" if initially_deferred else " deferrable")


def _with_exclusion(table: str, name: str, statement: sql.Composable, cur: psycopg.Cursor) -> None:
    try:
        cur.execute(statement)
    except pg_errors.ExclusionViolation as error:
        raise PublishError(
            f"table {table}: the synthetic rows break exclusion constraint {name} "
            f"({error.diag.message_detail}); this is a prodtwin bug, please report it"
        ) from None
    except (pg_errors.UndefinedObject, pg_errors.UndefinedFunction) as error:
        raise PublishError(
            f"table {table}: exclusion constraint {name} needs what the warehouse does not have "
            f"({error.diag.message_primary}). For = on a plain column inside a gist constraint "
            "that is the btree_gist extension: create it in the warehouse's database, in a "
            "schema other than the published one (create schema extensions; create extension "
            "btree_gist schema extensions), or exclude the table (tables.exclude)"
        ) from None


def add_foreign_keys(
    cur: psycopg.Cursor, schema: Schema, table: Table, target: str, on_step: StepHook = _no_step
) -> int:
    """The FKs (each checked against its parent's keys) and other indexes of one table."""
    raise_maintenance_memory(cur)
    fks = schema.foreign_keys_of(table)
    with local_settings(cur, FK_CHECK_PLAN):
        for fk in fks:
            on_step(f"foreign key {table.name}.{fk.name}")
            _with_table(
                table.name,
                cur.execute,
                sql.SQL("alter table {} add constraint {} {}").format(
                    _q(target, table.name), sql.Identifier(fk.name), _fk_ddl(fk, target)
                ),
            )
    for index in table.indexes:
        on_step(f"index {table.name}.{index.name}")
        before, _, after = index.definition.partition("{table}")
        _with_table(
            table.name, cur.execute, sql.SQL(before) + _q(target, table.name) + sql.SQL(after)
        )
    return len(fks)


def reset_sequences(cur: psycopg.Cursor, schema: Schema, target: str) -> None:
    """Inserts after a refresh get new ids instead of colliding with the loaded ones."""
    for table in schema.tables.values():
        for col in table.columns:
            if not (col.identity or _sequence_default(col.default)) or col.kind != "integer":
                continue
            cur.execute(
                sql.SQL(
                    "select setval(pg_get_serial_sequence({}, {}), "
                    "coalesce(max({}), 0) + 1, false) "
                    "from {}"
                ).format(
                    sql.Literal(_q(target, table.name).as_string(cur)),
                    sql.Literal(col.name),
                    sql.Identifier(col.name),
                    _q(target, table.name),
                )
            )


def _with_table(table: str, fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except pg_errors.CheckViolation as error:
        raise PublishError(
            f"table {table}: the synthetic rows break CHECK constraint "
            f"{error.diag.constraint_name}. prodtwin repairs simple comparisons (a > b, a > 0); "
            "exclude the table or relax the constraint in the source"
        ) from None
    except pg_errors.UndefinedObject as error:
        raise PublishError(
            f"table {table}: {error.diag.message_primary} in the warehouse. The type comes from "
            "an extension or another schema of the source: install it in the warehouse "
            "(e.g. create extension ...) or exclude the table (tables.exclude)"
        ) from None
    except pg_errors.ForeignKeyViolation as error:
        raise PublishError(
            f"table {table}: foreign key {error.diag.constraint_name} has orphan rows "
            f"({error.diag.message_detail}); this is a prodtwin bug, please report it"
        ) from None


def _live_columns(cur: psycopg.Cursor, schema: str, table: str) -> list[str]:
    cur.execute(
        "select a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid "
        "join pg_namespace n on n.oid = c.relnamespace where n.nspname = %s and c.relname = %s "
        "and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''",
        (schema, table),
    )
    return [r[0] for r in cur.fetchall()]


def dangling(fk: ForeignKey, parent: sql.Composable) -> sql.Composable:
    """Predicate on a child row aliased ``c``: its FK is set and matches no row of ``parent``."""
    return sql.SQL(" and ").join(
        [sql.SQL("c.{} is not null").format(sql.Identifier(col)) for col in fk.columns]
        + [
            sql.SQL("not exists (select 1 from {} p where {})").format(
                parent,
                sql.SQL(" and ").join(
                    sql.SQL("p.{} = c.{}").format(sql.Identifier(r), sql.Identifier(col))
                    for col, r in zip(fk.columns, fk.ref_columns, strict=True)
                ),
            )
        ]
    )


def count_orphans(conn: psycopg.Connection, schema: Schema, target: str) -> dict[str, int]:
    """Rows of ``target`` whose FK is set but matches no parent row, per ``table.fk``."""
    out = {}
    for table in schema.tables.values():
        for fk in table.foreign_keys:
            if fk.ref_table not in schema.tables:
                continue
            query = sql.SQL("select count(*) from {} c where {}").format(
                _q(target, table.name), dangling(fk, _q(target, fk.ref_table))
            )
            out[f"{table.name}.{fk.name}"] = int(conn.execute(query).fetchone()[0])
    return out


def carry_rows(cur: psycopg.Cursor, schema: Schema, table: Table, live: str, staging: str) -> int:
    """Copy a partitioned table's published rows into staging, re-pointing orphaned keys.

    Its parents were just generated anew: a row whose parent key no longer exists gets a parent
    chosen by a hash of the row (the same rows get the same parents on every run), or NULL/
    nothing when the new parent table is empty.
    """
    present = set(_live_columns(cur, live, table.name))
    columns = [c.name for c in table.columns if c.generated is None and c.name in present]
    if not columns:
        return 0
    cur.execute(
        sql.SQL("insert into {} ({}) select {} from {}").format(
            _q(staging, table.name),
            _ident_list(columns),
            _ident_list(columns),
            _q(live, table.name),
        )
    )
    carried = cur.rowcount
    for fk in table.foreign_keys:
        if fk.ref_table not in schema.tables or fk.ref_table == table.name:
            continue
        child, parent = _q(staging, table.name), _q(staging, fk.ref_table)
        orphaned = dangling(fk, parent)
        cur.execute(sql.SQL("select count(*) from {}").format(parent))
        parents = int(cur.fetchone()[0])
        if parents == 0:
            action = (
                sql.SQL("update {} c set {} where {}").format(
                    child,
                    sql.SQL(", ").join(
                        sql.SQL("{} = null").format(sql.Identifier(col)) for col in fk.columns
                    ),
                    orphaned,
                )
                if fk.nullable
                else sql.SQL("delete from {} c where {}").format(child, orphaned)
            )
            cur.execute(action)
            continue
        cur.execute(
            sql.SQL(
                "update {} c set {} from (select {}, row_number() over (order by {}) - 1 as i "
                "from {}) p where p.i = mod(abs(hashtext(c::text)::bigint), {}) and {}"
            ).format(
                child,
                sql.SQL(", ").join(
                    sql.SQL("{} = p.{}").format(sql.Identifier(col), sql.Identifier(r))
                    for col, r in zip(fk.columns, fk.ref_columns, strict=True)
                ),
                _ident_list(fk.ref_columns),
                _ident_list(fk.ref_columns),
                parent,
                sql.Literal(parents),
                orphaned,
            )
        )
    return carried


def _schema_exists(cur: psycopg.Cursor, name: str) -> bool:
    cur.execute("select 1 from pg_namespace where nspname = %s", (name,))
    return cur.fetchone() is not None


def drop_staging(conn: psycopg.Connection, target: str) -> None:
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(staging_name(target)))
        )
    conn.commit()


FOREIGN_OBJECTS = """
select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = %(schema)s and c.relkind in ('r', 'p', 'v', 'm', 'f')
  and obj_description(c.oid, 'pg_class') is distinct from %(marker)s
union all
select 'type ' || t.typname from pg_type t join pg_namespace n on n.oid = t.typnamespace
left join pg_class r on r.oid = t.typrelid
where n.nspname = %(schema)s and (t.typtype in ('e', 'd', 'b', 'r') or r.relkind = 'c')
  and not (t.typcategory = 'A' and t.typelem <> 0)
  and obj_description(t.oid, 'pg_type') is distinct from %(marker)s
union all
select 'function ' || p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = %(schema)s
union all
select 'extension ' || e.extname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
where n.nspname = %(schema)s
order by 1
"""


def foreign_objects(cur: psycopg.Cursor, target: str) -> list[str]:
    """Tables, views, types, functions and extensions in ``target`` prodtwin did not create."""
    cur.execute(FOREIGN_OBJECTS, {"schema": target, "marker": MARKER})
    return [r[0] for r in cur.fetchall()]


def refuse_foreign_objects(cur: psycopg.Cursor, target: str, access: Access) -> None:
    """The swap renames the whole schema: someone else's tables would go to ``__previous``."""
    if access.allow_foreign_objects:
        return
    found = foreign_objects(cur, target)
    if found:
        shown = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else "")
        raise PublishError(
            f"schema {target} holds objects prodtwin did not create ({shown}); publishing would "
            f"move them to {previous_name(target)} and drop them on the next refresh. Publish to "
            "another schema, move them, or set allow_foreign_objects: true on this environment"
        )


def grant_readers(cur: psycopg.Cursor, staging: str, readers: Iterable[str]) -> None:
    """Readers may look, never write; the grants follow the schema through the rename."""
    cur.execute(sql.SQL("revoke all on schema {} from public").format(sql.Identifier(staging)))
    for role in readers:
        try:
            for stmt in (
                "grant usage on schema {s} to {r}",
                "grant select on all tables in schema {s} to {r}",
                "alter default privileges in schema {s} grant select on tables to {r}",
            ):
                cur.execute(sql.SQL(stmt).format(s=sql.Identifier(staging), r=sql.Identifier(role)))
        except pg_errors.UndefinedObject:
            raise PublishError(
                f"readers: role {role} does not exist in the warehouse: create it "
                f"(create role {role}) or remove it from readers"
            ) from None


def mark_tables(cur: psycopg.Cursor, schema: Schema, staging: str) -> None:
    """Sign what prodtwin created, so the next refresh can tell it from anyone else's."""
    for enum in schema.enums.values():
        cur.execute(
            sql.SQL("comment on type {} is {}").format(_q(staging, enum.name), sql.Literal(MARKER))
        )
    for domain in schema.domains.values():
        cur.execute(
            sql.SQL("comment on domain {} is {}").format(
                _q(staging, domain.name), sql.Literal(MARKER)
            )
        )
    for table in schema.tables.values():
        names = [table.name] + [
            p for p, _ in (table.partitioning.partitions if table.partitioning else ())
        ]
        for name in names:
            cur.execute(
                sql.SQL("comment on table {} is {}").format(_q(staging, name), sql.Literal(MARKER))
            )


def _rows_size(rows: Rows | None) -> int:
    """How much a table's load sends, to start the largest first."""
    if rows is None:
        return 0
    if isinstance(rows, Path):
        return rows.stat().st_size if rows.is_file() else 0
    return int(rows.size)


def _spans(rows: Rows | None, streams: int, total: int) -> list[Span | None]:
    """How a table's load is cut for ``streams`` connections: one COPY, or (a spilled table
    larger than ``SPLIT_BYTES`` and than its share of the ``total`` bytes) one per stream."""
    size = _rows_size(rows)
    if not isinstance(rows, Path) or streams < 2 or size < max(SPLIT_BYTES, total // streams):
        return [None]
    return list(split_lines(rows, streams))


def staging_tasks(
    schema: Schema,
    order: list[str],
    tables: Mapping[str, Rows],
    target: str,
    on_step: StepHook = _no_step,
    streams: int = 1,
) -> tuple[list[Task], dict[str, list[str]]]:
    """The tasks, and the names of each table's load tasks. Per table: its load (COPY, or the
    days published so far), then its keys, then its FKs and indexes once its parents' keys
    exist; the largest loads first.

    The largest table would otherwise hold one connection long after the others finished and
    start its keys last: with ``streams`` connections it is sent as several COPYs side by side
    (COPY's lock does not conflict with itself), at the price of FREEZE on that table. Each
    load task returns the rows it loaded."""
    staging = staging_name(target)

    def load(name: str, span: Span | None, alone: bool) -> Callable[[psycopg.Cursor], int]:
        table = schema.tables[name]
        if name not in tables:  # refreshed a day at a time: keep the days published so far

            def carry(cur: psycopg.Cursor) -> int:
                on_step(f"carry {name}")
                carry_rows(cur, schema, table, target, staging)
                cur.execute(sql.SQL("select count(*) from {}").format(_q(staging, name)))
                return int(cur.fetchone()[0])

            return carry

        def copy(cur: psycopg.Cursor) -> int:
            on_step(f"copy {name}" + (f" bytes {span[0]}-{span[1]}" if span else ""))
            freeze = alone and not table.partitioning  # FREEZE: truncated in this transaction
            if freeze:
                cur.execute(sql.SQL("truncate {}").format(_q(staging, name)))
            return _with_table(name, load_table, cur, table, tables[name], staging, freeze, span)

        return copy

    total = sum(_rows_size(r) for r in tables.values())
    spans = {n: _spans(tables.get(n), streams, total) for n in order}
    loads: dict[str, list[Task]] = {}
    for name in order:
        parts = spans[name]
        loads[name] = [
            Task(
                f"load {name}" + (f" part {i + 1}" if len(parts) > 1 else ""),
                load(name, span, len(parts) == 1),
                frozenset([name if len(parts) == 1 else f"{name} part {i + 1}"]),
            )
            for i, span in enumerate(parts)
        ]
    size = {n: _rows_size(tables.get(n)) / len(spans[n]) for n in order}
    out = [t for n in sorted(order, key=lambda n: -size[n]) for t in loads[n]]
    for name in order:
        table = schema.tables[name]
        out.append(
            Task(
                f"keys {name}",
                lambda cur, t=table: add_keys(cur, t, staging, on_step, t.name in tables),
                frozenset([name]),
                frozenset(t.name for t in loads[name]),
            )
        )
    for name in order:
        table = schema.tables[name]
        parents = {fk.ref_table for fk in schema.foreign_keys_of(table)}
        out.append(
            Task(
                f"foreign keys {name}",
                lambda cur, t=table: add_foreign_keys(cur, schema, t, staging, on_step),
                frozenset({name, *parents}),
                frozenset(f"keys {n}" for n in {name, *parents}),
            )
        )
    return out, {n: [t.name for t in tasks] for n, tasks in loads.items()}


@dataclass
class Staged:
    """What a staging build loaded: rows and FKs checked, per table."""

    rows: dict[str, int]
    foreign_keys: dict[str, int]


def load_staging(
    conn: psycopg.Connection,
    schema: Schema,
    order: list[str],
    tables: Mapping[str, Rows],
    target: str,
    access: Access = Access(),
    on_step: StepHook = _no_step,
    connect: Callable[[], psycopg.Connection] | None = None,
    connections: int = 1,
) -> Staged:
    """Build and fill ``<target>__staging``, committed so that validators can read it.

    ``tables`` holds the rows of each table to load; a table of ``order`` not in it keeps the
    rows published so far (a table refreshed a day at a time). With ``connect``, up to
    ``connections`` connections load and key the tables side by side (synth_assets.tasks);
    readers never see the staging schema, and a failed build is dropped like any other."""
    staging = staging_name(target)
    search_path = sql.SQL("set local search_path to {}, public").format(sql.Identifier(staging))
    with conn.cursor() as cur:
        on_step("check target")
        refuse_foreign_objects(cur, target, access)
        on_step("create staging")
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(staging)))
        cur.execute(sql.SQL("create schema {}").format(sql.Identifier(staging)))
        cur.execute(search_path)
        create_types(cur, schema, staging)
        for name in order:
            on_step(f"create {name}")
            _with_table(name, create_table, cur, schema.tables[name], staging)
        mark_tables(cur, schema, staging)
    conn.commit()
    extra: list[psycopg.Connection] = []
    total = sum(_rows_size(r) for r in tables.values())
    try:
        if connect is not None:  # no more connections than loads can use at once
            most = sum(len(_spans(tables.get(n), connections, total)) for n in order)
            extra = [connect() for _ in range(max(0, min(connections, most) - 1))]
        tasks, loads = staging_tasks(schema, order, tables, target, on_step, 1 + len(extra))
        results = run_tasks([conn, *extra], tasks, begin=lambda cur: cur.execute(search_path))
    finally:
        for other in extra:
            other.close()
    with conn.cursor() as cur:
        cur.execute(search_path)
        on_step("sequences")
        reset_sequences(cur, schema, staging)
        on_step("grants")
        grant_readers(cur, staging, access.readers)
        on_step("commit staging")
    conn.commit()
    rows = {name: sum(int(results[t]) for t in loads[name]) for name in order}  # type: ignore[call-overload]
    checks = {name: int(results[f"foreign keys {name}"]) for name in order}  # type: ignore[call-overload]
    return Staged(rows, checks)


def lock_tables(cur: psycopg.Cursor, target: str) -> list[str]:
    """Wait for running readers of ``target`` to finish, and hold new ones until the commit.

    Renaming a schema takes no lock on its tables, so without this a query that names two
    tables could resolve one before the rename and one after: half old, half new. With it, a
    query sees the old tables or, once the swap commits, the new ones.

    Each try waits ``LOCK_TRY`` at most, which is shorter than PostgreSQL's deadlock_timeout:
    a reader that locked one table and waits for another the swap holds is never the one the
    deadlock detector aborts; the swap lets go, lets it finish, and tries again, for up to
    ``SWAP_LOCK_SECONDS`` (then the publish fails as transient and is retried).
    """
    cur.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relkind in ('r', 'p') and not c.relispartition "
        "order by c.oid",
        (target,),
    )
    names = [r[0] for r in cur.fetchall()]
    if not names:
        return names
    lock = sql.SQL("lock table {} in access exclusive mode").format(
        sql.SQL(", ").join(_q(target, n) for n in names)
    )
    cur.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(LOCK_TRY)))
    deadline = time.monotonic() + SWAP_LOCK_SECONDS
    pause = 0.01
    while True:
        cur.execute("savepoint prodtwin_lock")
        try:
            cur.execute(lock)
        except pg_errors.LockNotAvailable:
            cur.execute("rollback to savepoint prodtwin_lock")
            if time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
            continue
        cur.execute("release savepoint prodtwin_lock")
        break
    # dropping the previous schema waits for readers still on it, within reason
    cur.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(f"{SWAP_LOCK_SECONDS}s")))
    return names


def swap(
    conn: psycopg.Connection,
    target: str,
    access: Access = Access(),
    on_step: StepHook = _no_step,
) -> None:
    """Staging becomes the warehouse; the warehouse becomes ``__previous`` (one transaction)."""
    with conn.cursor() as cur:
        on_step("swap: check target")
        refuse_foreign_objects(cur, target, access)
        on_step("swap: lock readers out")
        lock_tables(cur, target)
        on_step("swap: drop previous")
        cur.execute(
            sql.SQL("drop schema if exists {} cascade").format(
                sql.Identifier(previous_name(target))
            )
        )
        if _schema_exists(cur, target):
            on_step("swap: rename target")
            cur.execute(
                sql.SQL("alter schema {} rename to {}").format(
                    sql.Identifier(target), sql.Identifier(previous_name(target))
                )
            )
        on_step("swap: rename staging")
        cur.execute(
            sql.SQL("alter schema {} rename to {}").format(
                sql.Identifier(staging_name(target)), sql.Identifier(target)
            )
        )
        on_step("swap: commit")
    conn.commit()


def count_rows(conn: psycopg.Connection, schema: str, tables: Iterable[str]) -> dict[str, int]:
    out = {}
    with conn.cursor() as cur:
        for name in tables:
            cur.execute(sql.SQL("select count(*) from {}").format(_q(schema, name)))
            out[name] = int(cur.fetchone()[0])
    return out


def publish(
    conn: psycopg.Connection,
    environment: str,
    schema: Schema,
    order: list[str],
    tables: Mapping[str, Rows],
    target: str,
    before_swap=None,  # type: ignore[no-untyped-def]
    access: Access = Access(),
    on_step: StepHook = _no_step,
    connect: Callable[[], psycopg.Connection] | None = None,
    connections: int = 1,
) -> PublishResult:
    """Load, verify, swap. ``before_swap(conn, staging_schema)`` may raise to stop the swap."""
    start = time.perf_counter()
    result = PublishResult(environment, target)
    try:
        staged = load_staging(
            conn, schema, order, tables, target, access, on_step, connect, connections
        )
        result.foreign_keys_checked, result.rows = staged.foreign_keys, staged.rows
        if before_swap is not None:
            on_step("validate")
            before_swap(conn, staging_name(target))
        swap(conn, target, access, on_step)
    except BaseException:
        # if the connection is gone, the next run drops the leftover staging schema
        with contextlib.suppress(psycopg.Error):
            drop_staging(conn, target)
        raise
    result.seconds = time.perf_counter() - start
    return result
