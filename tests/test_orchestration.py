"""The Dagster code location, run in process with real resources against a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import yaml

from orchestration.defs import build_definitions
from orchestration.defs.assets import SyntheticTable, ident
from orchestration.defs.resources import DatabaseResource, ProdtwinResource
from orchestration.defs.settings import Settings
from synth_assets.config import Orchestration, load_config
from synth_assets.refresh import read_schema
from tests.helpers import orphan_counts, scalar

ROOT = Path(__file__).resolve().parent.parent
SUBSET = ["customers", "addresses", "employees", "orders"]


def _setup(  # type: ignore[no-untyped-def]
    tmp: Path,
    source: str,
    dev: str,
    include: list[str] | None = None,
    overrides: dict[str, dict] | None = None,
):
    data = {
        "source": {"url": source, "schema": "public"},
        "environments": {"dev": {"url": dev, "schema": "public"}},
        "seed": 42,
        "validation": {"expectations_dir": str(tmp / "exp"), "reports_dir": str(tmp / "reports")},
        "orchestration": {"snapshot": str(tmp / "snapshot.json"), "storage_dir": str(tmp / "st")},
    }
    if include:
        data["tables"] = {"include": include}
    if overrides:
        data.setdefault("tables", {})["overrides"] = overrides
    path = tmp / "prodtwin.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    schema = read_schema(config)
    settings = Settings(
        str(path), str(tmp), ("dev",), Orchestration(**data["orchestration"]), schema
    )
    return settings, config


def _run(settings: Settings) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings)
    job = defs.resolve_job_def("nightly_refresh")
    return job.execute_in_process(raise_on_error=False)


def test_definitions_load_without_a_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PRODTWIN_CONFIG"}
    env["PRODTWIN_DEMO_ROOT"] = str(tmp_path)  # no .prodtwin, no server
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "orchestration.definitions",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / ".prodtwin").exists()


def test_the_graph_follows_the_snapshot() -> None:
    from orchestration.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    for table in ("orders", "order_items", "product_tags"):
        for stage in (
            "extract",
            "model",
            "synthetic",
            "staged/dev",
            "published/dev",
            "published/test",
        ):
            assert f"{stage}/{table}" in keys
    assert "quality_report" in keys
    schedule = defs.resolve_schedule_def("nightly_refresh_schedule")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "nightly_refresh",
        "refresh_environment_dev",
        "refresh_environment_test",
    }


def test_nightly_job_refreshes_with_real_resources(
    tmp_path: Path, demo_source: str, make_database
) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("dagster")
    settings, _ = _setup(tmp_path, demo_source, dev)
    result = _run(settings)
    assert result.success
    checks = result.get_asset_check_evaluations()
    gate = [c for c in checks if c.asset_key.path[0] == "staged"]
    assert len(gate) == 2 * len(settings.schema.tables) and all(c.passed for c in gate)
    # the privacy check shows what it decided on: for orders (times and amounts) the DCRs and
    # the shares of rows far nearer one training row than real unseen rows come to each other
    privacy = {c.asset_key.path[-1]: c.metadata for c in gate if c.check_name == "privacy"}
    shown = privacy["orders"]
    for name in ("DCR ratio", "rows close to one training row (unseen real rows)"):
        assert name in shown
    assert shown["rows close to one training row (synthetic)"].value < 0.2
    published = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "published/dev/order_items" in published
    # dagster-dbt: each staging model is an asset downstream of its published table, each dbt
    # data test an asset check, all run after the publish
    assert {f"dbt/dev/stg_{t}" for t in settings.schema.tables} <= published
    dbt_tests = [c for c in checks if c.asset_key.path[0] == "dbt"]
    assert len(dbt_tests) > len(settings.schema.tables) and all(c.passed for c in dbt_tests)
    assert scalar(dev, "select count(*) from public_staging.stg_orders") > 0
    assert scalar(dev, "select count(*) from public.customers") == 2000
    assert all(v == 0 for v in orphan_counts(dev, settings.schema).values())
    # between steps a synthetic table is a handle on its COPY text on disk, never the frame
    handle = result.output_for_node("synthetic", ident("synthetic", "order_items"))
    assert isinstance(handle, SyntheticTable) and handle.path.is_file()
    assert handle.rows == scalar(dev, "select count(*) from public.order_items")
    assert handle.path.read_text().count("\n") == handle.rows
    # the generation's notes reach the quality report, as the engine's do: the demo's tags
    # look like lookup data, and the report says which setting publishes them as they are
    report = Path(result.output_for_node("quality_report")).with_name("quality.json")
    notes = json.loads(report.read_text())["notes"]
    assert any(n.startswith("table tags looks like lookup data") for n in notes), notes
    assert handle.notes and set(handle.notes) <= set(notes)
    models = list((tmp_path / "st" / "model").glob("*"))
    assert len(models) == len(settings.schema.tables)  # kept for re-runs without refitting
    # production unchanged: the next nightly reads fingerprints only and skips every step
    again = _run(settings)
    assert again.success and again.get_asset_materialization_events() == []
    assert scalar(dev, "select count(*) from public.customers") == 2000


def test_reference_tables_are_published_as_they_are_and_checked_for_personal_data(
    tmp_path: Path, demo_source: str, make_database
) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("dagster_reference")
    tables = ["categories", "products", "tags", "product_tags"]
    overrides = {"categories": {"reference": True}, "tags": {"reference": True}}
    settings, _ = _setup(tmp_path, demo_source, dev, tables, overrides)
    result = _run(settings)
    assert result.success
    privacy = {
        c.asset_key.path[-1]: c
        for c in result.get_asset_check_evaluations()
        if c.asset_key.path[0] == "staged" and c.check_name == "privacy"
    }
    assert privacy["categories"].passed and "reference table" in privacy["categories"].metadata
    assert "reference table" not in privacy["products"].metadata
    query = "select id, name, parent_id from categories order by id"
    with psycopg.connect(demo_source) as a, psycopg.connect(dev) as b:
        assert b.execute(query).fetchall() == a.execute(query).fetchall()
        tags = "select id, name from tags order by id"
        assert b.execute(tags).fetchall() == a.execute(tags).fetchall()
    assert all(v == 0 for v in orphan_counts(dev, settings.schema).values())


def test_a_failing_check_blocks_the_publish(
    tmp_path: Path, demo_source: str, make_database
) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("blocked")
    settings, _ = _setup(tmp_path, demo_source, dev, SUBSET)
    suite_path = tmp_path / "exp" / "public" / "orders.json"
    suite_path.parent.mkdir(parents=True)
    suite_path.write_text(
        json.dumps(
            {
                "name": "public.orders",
                "expectations": [
                    {
                        "type": "expect_table_row_count_to_be_between",
                        "kwargs": {"min_value": 0, "max_value": 1},
                        "meta": {"owner": "qa"},
                    }
                ],
            }
        )
    )
    result = _run(settings)
    assert not result.success
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert [(c.asset_key.to_user_string(), c.check_name) for c in failed] == [
        ("staged/dev/orders", "expectations")
    ]
    published = [
        m for m in result.get_asset_materialization_events() if m.asset_key.path[0] == "published"
    ]
    assert published == []
    with psycopg.connect(dev) as conn:
        assert (
            conn.execute(
                "select count(*) from information_schema.tables where table_schema = 'public'"
            ).fetchone()[0]
            == 0
        )


def test_schema_change_is_reported_and_blocks_new_columns(
    tmp_path: Path, demo_source: str, make_database
) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("change")
    settings, _ = _setup(tmp_path, demo_source, dev, SUBSET)
    customers = settings.schema.tables["customers"]
    older = dataclasses.replace(
        customers, columns=tuple(c for c in customers.columns if c.name != "segment")
    )
    old_schema = dataclasses.replace(
        settings.schema, tables={**settings.schema.tables, "customers": older}
    )
    old = dataclasses.replace(settings, schema=old_schema)
    defs = build_definitions(old)
    sensor = defs.resolve_sensor_def("schema_change_sensor")
    resources = {
        "prodtwin": ProdtwinResource(config_path=str(tmp_path / "prodtwin.yaml")),
        "source": DatabaseResource(),
        "warehouse_dev": DatabaseResource(),
    }
    with dg.build_sensor_context(resources=resources) as context:
        run_requests = sensor.evaluate_tick(context).run_requests
    assert len(run_requests) == 1
    change = run_requests[0].run_config["ops"]["report_schema_change"]["config"]["change"]
    assert change == "columns added: customers.segment"
    result = defs.resolve_job_def("nightly_refresh").execute_in_process(raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "customers.segment" in failure.event_specific_data.error.message
    assert "schema_changes: include" in failure.event_specific_data.error.message
