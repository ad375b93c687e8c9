"""Daily partitions of fact tables (``tables.overrides.<t>.partition`` in prodtwin.yaml).

A partitioned table keeps its unpartitioned ``extract`` and ``model`` assets (fitted with the
rest of the schema), while ``synthetic/<t>`` and ``published/<env>/<t>`` are partitioned by day:
the nightly job materializes the latest day, and an engineer backfills any range from the UI
(select the assets, Materialize, pick the days) or with the ``daily_partitions`` job. The
engine does the work (synth_assets.partitions); this module only wires it.
"""

import dagster as dg
import pandas as pd
import psycopg

from orchestration.defs.assets import (
    RETRY,
    SyntheticTable,
    TableExtract,
    config_of,
    ident,
    key,
    no_retry,
    preview,
)
from orchestration.defs.resources import resource_keys
from orchestration.defs.settings import Settings
from synth_assets.db import connect_warehouse, scrub, source_snapshot
from synth_assets.errors import ProdtwinError
from synth_assets.extract import Extract
from synth_assets.partitions import (
    check_partitioned,
    generate_partition,
    production_day_rows,
    publish_partition,
)
from synth_assets.refresh import FittedTable


def daily(settings: Settings) -> dg.DailyPartitionsDefinition | None:
    """One daily calendar for every partitioned table (a job has one), from the earliest start."""
    specs = settings.partitions
    if not specs:
        return None
    return dg.DailyPartitionsDefinition(start_date=str(min(s.start for s in specs.values())))


def _parents(settings: Settings, table: str) -> list[str]:
    fks = settings.schema.tables[table].foreign_keys
    return sorted({fk.ref_table for fk in fks if fk.ref_table in settings.schema.tables} - {table})


def synthetic_day_asset(
    settings: Settings, table: str, days: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    spec = settings.partitions[table]
    parents = _parents(settings, table)

    @dg.asset(
        key=key("synthetic", table),
        partitions_def=days,
        ins={
            "extracted": dg.AssetIn(key("extract", table)),
            "fitted": dg.AssetIn(key("model", table)),
            **{ident("synthetic", p): dg.AssetIn(key("synthetic", p)) for p in parents},
        },
        group_name="synthetic",
        retry_policy=RETRY,
        required_resource_keys=resource_keys(settings),
        description=f"One day of {table} (by {spec.column}): as many rows as production had "
        "that day, seeded by (seed, table, day) so a backfill reproduces them.",
    )
    @no_retry
    def synthetic_day(
        context: dg.AssetExecutionContext,
        extracted: TableExtract,
        fitted: FittedTable,
        **inputs: SyntheticTable,
    ) -> dg.Output[pd.DataFrame]:
        config = config_of(context, settings)
        day = context.partition_key
        url = config.source.url.get_secret_value()
        try:
            with source_snapshot(url) as conn:
                rows = production_day_rows(conn, config.source.schema_name, table, spec.column, day)
        except psycopg.Error as error:
            raise ProdtwinError(
                f"counting {table} on {day} failed: {scrub(str(error), url)}"
            ) from None
        views = {p: inputs[ident("synthetic", p)].view for p in parents}
        schema = settings.schema
        frame = generate_partition(
            config,
            schema,
            extracted.table,
            Extract({table: extracted.frame}, {table: extracted.profile}),
            fitted.model,
            fitted.roles,
            views,
            spec,
            day,
            rows,
        )
        return dg.Output(
            frame,
            metadata={
                "rows": len(frame),
                "production rows": rows,
                "day": day,
                "preview": dg.MetadataValue.md(preview(frame)),
            },
        )

    return synthetic_day


def published_day_asset(
    settings: Settings, table: str, env: str, days: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    spec = settings.partitions[table]

    @dg.asset(
        key=key("published", env, table),
        partitions_def=days,
        ins={"frame": dg.AssetIn(key("synthetic", table))},
        deps=[key("published", env, p) for p in _parents(settings, table)],
        group_name=f"published_{env}",
        retry_policy=RETRY,
        required_resource_keys=resource_keys(settings),
        description=f"One day of {table} in {env}: that day's rows replaced in one transaction.",
    )
    @no_retry
    def published_day(
        context: dg.AssetExecutionContext, frame: pd.DataFrame
    ) -> dg.MaterializeResult:
        config = config_of(context, settings)
        day = context.partition_key
        warehouse = config.environments[env]
        url = warehouse.url.get_secret_value()
        conn = connect_warehouse(url, env)
        try:
            removed = publish_partition(
                conn,
                settings.schema,
                settings.schema.tables[table],
                frame,
                warehouse.schema_name,
                spec,
                day,
            )
        except psycopg.Error as error:
            conn.rollback()
            raise ProdtwinError(
                f"environment {env}: publishing {table} for {day} failed, the warehouse is "
                f"unchanged: {scrub(str(error).strip(), url)}"
            ) from None
        finally:
            conn.close()
        return dg.MaterializeResult(
            metadata={
                "rows": len(frame),
                "rows replaced": removed,
                "day": day,
                "schema": warehouse.schema_name,
            }
        )

    return published_day


def partitioned_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    days = daily(settings)
    if days is None:
        return []
    check_partitioned(settings.schema, settings.partitions)
    out = []
    for table in settings.partitions:
        out.append(synthetic_day_asset(settings, table, days))
        out += [published_day_asset(settings, table, env, days) for env in settings.environments]
    return out


def partitioned_keys(settings: Settings) -> list[dg.AssetKey]:
    return [
        k
        for t in settings.partitions
        for k in (key("synthetic", t), *(key("published", e, t) for e in settings.environments))
    ]
