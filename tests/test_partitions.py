"""Daily partitions of a fact table, run through the Dagster definitions with real databases."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import yaml

from orchestration.defs import build_definitions
from orchestration.defs.settings import Settings
from synth_assets.config import Orchestration, load_config
from synth_assets.errors import ConfigError
from synth_assets.refresh import read_schema
from tests.helpers import orphan_counts, scalar

TABLES = ["customers", "addresses", "employees", "orders", "payments"]
DAY_ROWS = (
    "select to_char(paid_at at time zone 'UTC', 'YYYY-MM-DD') as day, count(*) from "
    "public.payments group by 1 order by 2 desc, 1 limit 3"
)


def _settings(tmp: Path, source: str, dev: str, partition: dict) -> Settings:
    data = {
        "source": {"url": source, "schema": "public"},
        "environments": {"dev": {"url": dev, "schema": "public"}},
        "seed": 42,
        "tables": {"include": TABLES, "overrides": {"payments": {"partition": partition}}},
        "validation": {"expectations_dir": str(tmp / "exp"), "reports_dir": str(tmp / "reports")},
        "orchestration": {"snapshot": str(tmp / "snapshot.json"), "storage_dir": str(tmp / "st")},
    }
    path = tmp / "prodtwin.yaml"
    path.write_text(yaml.safe_dump(data))
    schema = read_schema(load_config(path))
    return Settings(str(path), str(tmp), ("dev",), Orchestration(**data["orchestration"]), schema)


def _day(dev: str, day: str) -> list[tuple]:
    with psycopg.connect(dev) as conn:
        conn.execute("set time zone 'UTC'")
        return conn.execute(
            "select * from public.payments where paid_at >= %s::date "
            "and paid_at < %s::date + 1 order by id",
            (day, day),
        ).fetchall()


def test_backfilled_days_follow_production_and_reproduce(
    tmp_path: Path, demo_source: str, make_database
) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("days")
    with psycopg.connect(demo_source) as conn:
        conn.execute("set time zone 'UTC'")
        (d1, n1), (d2, n2), (d3, n3) = conn.execute(DAY_ROWS).fetchall()
    settings = _settings(tmp_path, demo_source, dev, {"column": "paid_at", "start": "2020-01-01"})
    defs = build_definitions(settings)
    nightly = defs.resolve_job_def("nightly_refresh")
    assert nightly.partitions_def is not None  # the schedule asks for the latest day

    # the nightly run: the whole schema, plus one day of payments
    result = nightly.execute_in_process(partition_key=d1, raise_on_error=False)
    assert result.success
    assert len(_day(dev, d1)) == n1  # that day's production volume
    assert scalar(dev, "select count(*) from public.payments") == n1

    # a backfill of two days through the partitions-only job
    backfill = defs.resolve_job_def("daily_partitions")
    for day in (d1, d2):
        assert backfill.execute_in_process(partition_key=day, raise_on_error=False).success
    first = {d1: _day(dev, d1), d2: _day(dev, d2)}
    assert len(first[d2]) == n2
    assert scalar(dev, "select count(*) from public.payments") == n1 + n2  # replaced, not added
    # ... run again: the same rows, seeded by (seed, table, day)
    for day in (d2, d1):
        assert backfill.execute_in_process(partition_key=day, raise_on_error=False).success
    assert {d1: _day(dev, d1), d2: _day(dev, d2)} == first
    assert first[d1] != first[d2]

    # production is unchanged, but the next nightly's day is not published yet: it refreshes,
    # swapping in a new schema that keeps the days published so far, keys valid
    schema_before = scalar(dev, "select oid from pg_namespace where nspname = 'public'")
    assert nightly.execute_in_process(partition_key=d3, raise_on_error=False).success
    assert scalar(dev, "select oid from pg_namespace where nspname = 'public'") != schema_before
    assert scalar(dev, "select count(*) from public.payments") == n1 + n2 + n3
    assert len(_day(dev, d1)) == n1 and len(_day(dev, d3)) == n3
    assert all(v == 0 for v in orphan_counts(dev, settings.schema).values())
    # and once the day asked for is there, an unchanged production is nothing to do
    swapped = scalar(dev, "select oid from pg_namespace where nspname = 'public'")
    assert nightly.execute_in_process(partition_key=d3, raise_on_error=False).success
    assert scalar(dev, "select oid from pg_namespace where nspname = 'public'") == swapped


def test_partition_settings_are_checked(tmp_path: Path, demo_source: str) -> None:
    dev = "postgresql://nobody@127.0.0.1:1/none"  # never contacted
    bad_column = _settings(tmp_path, demo_source, dev, {"column": "amount", "start": "2020-01-01"})
    with pytest.raises(ConfigError, match=r"partition\.column: 'amount' must be a date"):
        build_definitions(bad_column)
    # orders is referenced by payments: partitioning it would orphan them
    referenced = settings_with(bad_column, "orders", "ordered_at")
    with pytest.raises(ConfigError, match="table payments references orders"):
        build_definitions(referenced)


def settings_with(settings: Settings, table: str, column: str) -> Settings:
    raw = settings.raw_config
    raw["tables"]["overrides"] = {table: {"partition": {"column": column, "start": "2020-01-01"}}}
    path = Path(settings.config_path or "")
    path.write_text(yaml.safe_dump(raw))
    return Settings(
        settings.config_path,
        settings.demo_root,
        settings.environments,
        settings.orchestration,
        settings.schema,
    )


# a lookup table (reference) and a fact table partitioned by day that points at it: each
# channel's visits have amounts of their own size, so a day whose visits were attached without
# the lookup link would give every channel the same mean amount
LOOKUP_FACTS = """
select setseed(0.3);
create table channels (id int primary key, name text not null unique);
insert into channels values (1, 'web'), (2, 'store'), (3, 'phone'), (4, 'partner');
create table visits (id int primary key, channel_id int not null references channels(id),
                     visited_at timestamptz not null, amount numeric(8,2) not null);
insert into visits
select i, c, timestamptz '2024-03-01 00:00+00' + (i % 10) * interval '1 day' + random() * interval '20 h',
       round((case c when 1 then 20 when 2 then 80 when 3 then 40 else 150 end
              * (0.8 + random() * 0.4))::numeric, 2)
from (select i, case when random() < 0.5 then 1 when random() < 0.5 then 2
                     when random() < 0.6 then 3 else 4 end as c
      from generate_series(1, 3000) i) s;
"""
PER_CHANNEL = """
select c.name, count(*), avg(v.amount)::float8
from visits v join channels c on c.id = v.channel_id
where v.visited_at >= %s::timestamptz and v.visited_at < %s::timestamptz + interval '1 day'
group by c.name
"""


def test_a_day_of_facts_attaches_to_its_lookup_rows_as_production_did(
    tmp_path: Path, make_database
) -> None:  # type: ignore[no-untyped-def]
    source, dev = make_database("lookup_days"), make_database("lookup_days_dev")
    with psycopg.connect(source) as conn:
        conn.execute(LOOKUP_FACTS)
    data = {
        "source": {"url": source, "schema": "public"},
        "environments": {"dev": {"url": dev, "schema": "public"}},
        "seed": 42,
        "tables": {
            "overrides": {
                "channels": {"reference": True},
                "visits": {"partition": {"column": "visited_at", "start": "2024-03-01"}},
            }
        },
        "validation": {"expectations_dir": str(tmp_path / "exp"), "reports_dir": str(tmp_path)},
        "orchestration": {"snapshot": str(tmp_path / "snap.json"), "storage_dir": str(tmp_path)},
    }
    path = tmp_path / "prodtwin.yaml"
    path.write_text(yaml.safe_dump(data))
    settings = Settings(
        str(path),
        str(tmp_path),
        ("dev",),
        Orchestration(**data["orchestration"]),
        read_schema(load_config(path)),
    )
    defs = build_definitions(settings)
    day = "2024-03-03"
    assert defs.resolve_job_def("nightly_refresh").execute_in_process(partition_key=day).success

    def per_channel(url: str) -> dict[str, tuple[float, float]]:
        with psycopg.connect(url) as conn:
            conn.execute("set time zone 'UTC'")
            rows = conn.execute(PER_CHANNEL, (day, day)).fetchall()
        total = sum(n for _, n, _ in rows)
        return {name: (n / total, amount) for name, n, amount in rows}

    real, synthetic = per_channel(source), per_channel(dev)
    assert scalar(dev, "select count(*) from visits") == 300  # that day's production volume
    assert set(synthetic) == set(real)  # the lookup rows by their own names
    for name, (share, amount) in real.items():
        assert abs(synthetic[name][0] - share) < 0.08, (name, synthetic[name], real[name])
        assert abs(synthetic[name][1] - amount) < 0.15 * amount, (name, synthetic[name], amount)
    query = "select id, name from channels order by id"
    with psycopg.connect(source) as a, psycopg.connect(dev) as b:
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
