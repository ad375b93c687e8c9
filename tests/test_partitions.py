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
    "public.payments group by 1 order by 2 desc, 1 limit 2"
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
        (d1, n1), (d2, n2) = conn.execute(DAY_ROWS).fetchall()
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

    # the next nightly swaps in a new schema and keeps the days published so far, keys valid
    assert nightly.execute_in_process(partition_key=d2, raise_on_error=False).success
    assert scalar(dev, "select count(*) from public.payments") == n1 + n2
    assert len(_day(dev, d1)) == n1
    assert all(v == 0 for v in orphan_counts(dev, settings.schema).values())


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
