"""Daily partitions of a fact table: one day's rows, generated and published on their own.

A partitioned table is refreshed a day at a time instead of with the whole schema: the day's
row count follows production's volume that day, the rows are drawn with a seed derived from
(seed, table, day) so that a backfill reproduces them, and publishing replaces exactly that
day's rows in one transaction. The full refresh carries the table's published rows into the new
schema (publish.carry_rows), so days already published survive a nightly swap.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy.engine import Connection

from synth_assets import roles as R
from synth_assets.config import Config, Partition
from synth_assets.db import connect_warehouse, raw, source_snapshot
from synth_assets.errors import ConfigError, PublishError
from synth_assets.extract import Extract, TableProfile, qualified
from synth_assets.generate import Generation, ParentView, table_seed
from synth_assets.order import GenerationPlan
from synth_assets.publish import load_table, reset_sequences
from synth_assets.schema import Schema, Table
from synth_assets.synthesize import TableModel

DATETIME_KINDS = ("date", "timestamp", "timestamptz")


def check_partitioned(schema: Schema, partitions: dict[str, Partition]) -> None:
    """Refuse settings a day-at-a-time refresh cannot honour, naming the table and setting."""
    for name, spec in partitions.items():
        where = f"tables.overrides.{name}.partition"
        table = schema.tables.get(name)
        if table is None:
            raise ConfigError(f"{where}: table {name} is not in the selected source schema")
        col = next((c for c in table.columns if c.name == spec.column), None)
        if col is None or col.kind not in DATETIME_KINDS:
            raise ConfigError(
                f"{where}.column: {spec.column!r} must be a date or timestamp column of {name}"
            )
        for other in schema.tables.values():
            if other.name == name:
                continue
            if any(fk.ref_table == name for fk in other.foreign_keys):
                raise ConfigError(
                    f"{where}: table {other.name} references {name}; only tables that no other "
                    "table references can be partitioned (partition the child instead)"
                )
            if other.name in partitions and any(
                fk.ref_table == other.name for fk in table.foreign_keys
            ):
                raise ConfigError(f"{where}: its parent {other.name} is partitioned too")


def day_bounds(key: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a daily partition key such as ``2024-03-01``, in UTC."""
    try:
        day = dt.date.fromisoformat(key)
    except ValueError:
        raise ConfigError(f"partition key {key!r} is not a day (YYYY-MM-DD)") from None
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def production_day_rows(
    conn: Connection, schema_name: str, table: str, column: str, key: str
) -> int:
    """Production's rows of that day (the caller holds a READ ONLY snapshot)."""
    with raw(conn).cursor() as cur:
        return _day_rows(cur, schema_name, table, column, key)


def published_day_rows(
    conn: psycopg.Connection, schema_name: str, table: str, column: str, key: str
) -> int:
    """A warehouse's rows of that day (0 if the table is not there yet)."""
    with conn.cursor() as cur:
        cur.execute("select to_regclass(%s)", (qualified(schema_name, table).as_string(cur),))
        rows = _day_rows(cur, schema_name, table, column, key) if cur.fetchone()[0] else 0
    conn.rollback()
    return rows


def unpublished_day(
    config: Config, partitions: dict[str, Partition], environments: list[str], key: str
) -> str | None:
    """A partitioned table's day that production has rows of and an environment has none of
    (``table on day in env``), if any: a nightly run for that day has work even when the rest
    of production is unchanged since the last refresh (production's days arrived before their
    night: a restored snapshot, a backfilled source)."""
    with source_snapshot(config.source.url.get_secret_value()) as conn:
        wanted = {
            t: production_day_rows(conn, config.source.schema_name, t, spec.column, key)
            for t, spec in partitions.items()
        }
    for name in environments:
        env = config.environments[name]
        conn = connect_warehouse(env.url.get_secret_value(), f"environment {name}")
        try:
            for table, spec in partitions.items():
                if wanted[table] and not published_day_rows(
                    conn, env.schema_name, table, spec.column, key
                ):
                    return f"{table} on {key} in {name}"
        finally:
            conn.close()
    return None


def _day_rows(cur: psycopg.Cursor, schema_name: str, table: str, column: str, key: str) -> int:
    start, end = day_bounds(key)
    cur.execute("set local time zone 'UTC'")
    cur.execute(
        sql.SQL("select count(*) from {} where {} >= %s and {} < %s").format(
            qualified(schema_name, table), sql.Identifier(column), sql.Identifier(column)
        ),
        (start.replace(tzinfo=None), end.replace(tzinfo=None)),
    )
    return int(cur.fetchone()[0])


def _move_to_day(
    frame: pd.DataFrame, table: Table, spec: Partition, key: str, rng: np.random.Generator
) -> None:
    """Put every row on the partition's day, keeping its time of day; the other date/time
    columns move by the same amount, so ``shipped_at > ordered_at`` still holds."""
    start, _ = day_bounds(key)
    col = table.column(spec.column)
    values = pd.to_datetime(frame[spec.column], utc=True)
    if values.isna().any():  # every row of the day has a value in that column
        seconds = rng.integers(0, 86_400, int(values.isna().sum()))
        values[values.isna()] = pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")
    target = pd.Timestamp(start) + (values - values.dt.floor("D"))
    if col.kind == "date":
        target = target.dt.floor("D")
    delta = target - values
    for other in table.columns:
        if other.kind not in DATETIME_KINDS or other.name not in frame or other.generated:
            continue
        if other.name == spec.column:
            moved = target
        else:
            moved = pd.to_datetime(frame[other.name], utc=True) + delta
        if other.kind == "date":
            moved = moved.dt.floor("D")
        frame[other.name] = moved if other.kind == "timestamptz" else moved.dt.tz_localize(None)


def _day_keys(
    frame: pd.DataFrame, table: Table, roles: dict[str, R.ColumnRole], spec: Partition, key: str
) -> None:
    """Integer keys unique across days: ``day * max_rows_per_day + 1 .. + n``."""
    day = (dt.date.fromisoformat(key) - spec.start).days
    fk_cols = {c for fk in table.foreign_keys for c in fk.columns}
    for name in table.primary_key:
        col = table.column(name)
        if name in fk_cols or col.kind != "integer" or roles[name].role != R.KEY:
            continue
        if len(frame) > spec.max_rows_per_day:
            raise ConfigError(
                f"tables.overrides.{table.name}.partition.max_rows_per_day: day {key} has "
                f"{len(frame)} rows, more than {spec.max_rows_per_day}; raise the setting"
            )
        frame[name] = pd.array(
            day * spec.max_rows_per_day + 1 + np.arange(len(frame)), dtype="Int64"
        )


def generate_partition(
    config: Config,
    schema: Schema,
    table: Table,
    data: Extract,
    model: TableModel,
    roles: dict[str, R.ColumnRole],
    parents: dict[str, pd.DataFrame | ParentView],
    spec: Partition,
    key: str,
    day_rows: int,
) -> pd.DataFrame:
    """The synthetic rows of one day: as many as production had that day (times the scale)."""
    seed = table_seed(config.seed, table.name, f"partition:{key}")
    day_config = config.model_copy(update={"seed": seed})
    profile = data.profiles[table.name]
    day_profile: TableProfile = dataclasses.replace(profile, rows=day_rows)
    tables = {table.name: table, **{p: schema.tables[p] for p in parents}}
    sub = Schema(schema.name, tables, schema.enums, schema.domains)
    day_data = Extract({table.name: data.frames[table.name]}, {table.name: day_profile})
    generation = Generation(
        sub,
        GenerationPlan((table.name,), ()),
        day_data,
        {table.name: model},
        {table.name: roles},
        day_config,
        parents,
    )
    parts = [chunk for _, chunk in generation.chunks()]  # a day is small: held in memory
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    rng = np.random.default_rng(table_seed(seed, table.name, "day"))
    _move_to_day(frame, table, spec, key, rng)
    _day_keys(frame, table, roles, spec, key)
    return frame


def publish_partition(
    conn: psycopg.Connection,
    schema: Schema,
    table: Table,
    frame: pd.DataFrame,
    target: str,
    spec: Partition,
    key: str,
) -> int:
    """Replace the day's rows of the published table in one transaction; rows removed."""
    start, end = day_bounds(key)
    with conn.cursor() as cur:
        cur.execute(
            "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relname = %s",
            (target, table.name),
        )
        if cur.fetchone() is None:
            raise PublishError(
                f"table {table.name}: the warehouse schema {target} has no such table yet; run "
                "the full refresh of this environment first, then the day's partition"
            )
        cur.execute("set local time zone 'UTC'")
        cur.execute(
            sql.SQL("delete from {} where {} >= %s and {} < %s").format(
                qualified(target, table.name),
                sql.Identifier(spec.column),
                sql.Identifier(spec.column),
            ),
            (start.replace(tzinfo=None), end.replace(tzinfo=None)),
        )
        removed = cur.rowcount
        load_table(cur, table, frame, target)
        reset_sequences(cur, Schema(schema.name, {table.name: table}, {}, {}), target)
    conn.commit()
    return removed
