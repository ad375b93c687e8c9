"""The asset graph, built from the schema snapshot: tables appear and disappear with it.

Per table: ``extract/<t>`` (read in one READ ONLY snapshot with every other table),
``model/<t>`` (its fitted synthesizer, kept by the IO manager between runs), ``synthetic/<t>``
(generated with its parents' keys), and per environment ``staged/<env>/<t>`` (loaded into the
staging schema) and ``published/<env>/<t>`` (swapped in). Blocking checks on the staged tables
(checks.py) stand between the two, so a failed check leaves the warehouse as it was.
"""

import functools
import hashlib
import inspect
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from orchestration.defs.checks import gate_results, gate_specs
from orchestration.defs.resources import resource_keys, run_config
from orchestration.defs.settings import Settings
from synth_assets.config import Config
from synth_assets.db import connect_warehouse
from synth_assets.errors import ProdtwinError, TransientError
from synth_assets.extract import Extract, TableProfile
from synth_assets.fingerprint import refresh_fingerprint, stamp
from synth_assets.generate import ParentView
from synth_assets.order import generation_order
from synth_assets.partitions import unpublished_day
from synth_assets.publish import count_rows, load_staging, staging_name, swap
from synth_assets.refresh import (
    FittedTable,
    access_of,
    fit_cached,
    generate_all,
    model_of,
    read_fingerprints,
    read_schema,
    read_source,
    refuse_source_as_target,
    up_to_date,
)
from synth_assets.schema import DomainType, EnumType, Schema, Table
from synth_assets.snapshot import enforce_policy
from synth_assets.spill import Spill, remove_others

# transient failures (a dropped connection) are retried; a ProdtwinError is not (see no_retry)
DAGSTER_SPILL = "dagster-"  # spill folders of Dagster runs: the latest one is kept
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


@contextmanager
def _verdict() -> Iterator[None]:
    try:
        yield
    except TransientError as error:  # the engine retried already; the RetryPolicy may again
        raise dg.Failure(description=str(error), allow_retries=True) from None
    except ProdtwinError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None


def no_retry(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A ProdtwinError is a verdict (bad input, a refused gate): fail once, with its message."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with _verdict():
                yield from fn(*args, **kwargs)

        return generator

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _verdict():
            return fn(*args, **kwargs)

    return call


class RefreshOptions(dg.Config):
    force: bool = False  # refresh even when production is unchanged since the last refresh


@dataclass
class SyntheticTable:
    """What a ``synthetic/<t>`` asset holds: a handle, never the whole table.

    The rows are on disk as COPY text (synth_assets.spill, under ``orchestration.storage_dir``,
    kept until the next run generates again); the IO manager pickles only the bounded sample
    (reports, preview) and the compact view children of a daily partition draw their keys from.
    """

    path: Path
    rows: int
    sample: pd.DataFrame
    view: ParentView
    notes: tuple[str, ...] = ()  # the generation's notes (the same on every table of a run)


@dataclass
class TableExtract:
    """What one table's extract asset holds: its live definition, rows and statistics."""

    table: Table
    frame: pd.DataFrame
    profile: TableProfile
    enums: dict[str, EnumType]  # the schema's types, which the published DDL re-creates
    domains: dict[str, DomainType]
    fingerprint: str | None = None  # of the table: an unchanged table reuses its model
    refresh: str | None = None  # of the whole refresh: stamped on the published schema


def ident(stage: str, table: str) -> str:
    """A Python identifier for an (output, input) name, unique even for odd table names."""
    safe = re.sub(r"\W", "_", table)
    digest = hashlib.sha1(table.encode()).hexdigest()[:6]
    return f"{stage}__{safe}_{digest}"


def key(*parts: str) -> dg.AssetKey:
    return dg.AssetKey(list(parts))


def preview(frame: pd.DataFrame, rows: int = 5) -> str:
    """Markdown of the first rows, long values cut, for the asset page."""
    head = frame.head(rows).astype(str).map(lambda v: v if len(v) <= 40 else v[:37] + "...")
    cols = [str(c) for c in head.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r) + " |" for r in head.to_numpy().tolist()]
    return "\n".join(lines)


def assemble(schema_name: str, extracts: dict[str, TableExtract]) -> tuple[Schema, Extract]:
    """The schema and extract of the whole run, from the per-table extract assets."""
    first = next(iter(extracts.values()))
    schema = Schema(
        schema_name, {t: e.table for t, e in extracts.items()}, first.enums, first.domains
    )
    data = Extract(
        {t: e.frame for t, e in extracts.items()}, {t: e.profile for t, e in extracts.items()}
    )
    return schema, data


def config_of(context: dg.AssetExecutionContext, settings: Settings) -> Config:
    return run_config(context.resources, settings.environments)


def subset(schema: Schema, tables: list[str]) -> Schema:
    return Schema(schema.name, {t: schema.tables[t] for t in tables}, schema.enums, schema.domains)


def _extract_ins(tables: list[str]) -> dict[str, dg.AssetIn]:
    return {ident("extract", t): dg.AssetIn(key("extract", t)) for t in tables}


def _model_ins(tables: list[str]) -> dict[str, dg.AssetIn]:
    return {ident("model", t): dg.AssetIn(key("model", t)) for t in tables}


def _synthetic_ins(tables: list[str]) -> dict[str, dg.AssetIn]:
    return {ident("synthetic", t): dg.AssetIn(key("synthetic", t)) for t in tables}


def by_table(tables: list[str], stage: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {t: inputs[ident(stage, t)] for t in tables}


def extract_asset(settings: Settings) -> dg.AssetsDefinition:
    tables = list(settings.schema.tables)

    @dg.multi_asset(
        name="extract",
        outs={
            ident("extract", t): dg.AssetOut(
                key=key("extract", t), group_name="extract", is_required=False
            )
            for t in tables
        },
        retry_policy=RETRY,
        required_resource_keys=resource_keys(settings),
        description="Every table read in one READ ONLY, REPEATABLE READ snapshot of production. "
        "When production and the settings are unchanged since the refresh every warehouse holds, "
        "nothing is read and every later step is skipped.",
    )
    @no_retry
    def extract(context: dg.AssetExecutionContext, config: RefreshOptions):
        force = config.force
        config = config_of(context, settings)
        fingerprints = read_fingerprints(config, read_schema(config))
        whole = refresh_fingerprint(fingerprints, config, sorted(settings.partitions))
        if not force and up_to_date(config, list(settings.environments), whole):
            day = context.run.tags.get("dagster/partition") if settings.partitions else None
            missing = day and unpublished_day(
                config, settings.partitions, list(settings.environments), day
            )
            if not missing:
                context.log.info(
                    f"production unchanged since the last refresh ({whole}): nothing to do"
                )
                return
            context.log.info(f"production unchanged, but {missing} is not published: refreshing")
        schema, _, data = read_source(config)
        change = enforce_policy(settings.schema, schema, config.schema_changes)
        if not change.empty:
            context.log.warning(f"production changed since the snapshot: {change.describe()}")
        missing = [t for t in tables if t not in schema.tables]
        if missing:
            raise ProdtwinError(
                f"tables {', '.join(missing)} are in the schema snapshot but not in production "
                "(or not selected): run prodtwin schema snapshot and reload the code location"
            )
        for t in tables:
            yield dg.Output(
                TableExtract(
                    schema.tables[t],
                    data.frames[t],
                    data.profiles[t],
                    schema.enums,
                    schema.domains,
                    fingerprints.get(t),
                    whole,
                ),
                output_name=ident("extract", t),
                metadata={
                    "production rows": data.profiles[t].rows,
                    "rows read": len(data.frames[t]),
                },
            )

    return extract


def model_asset(settings: Settings, table: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("model", table),
        ins={"extracted": dg.AssetIn(key("extract", table))},
        group_name="model",
        retry_policy=RETRY,
        required_resource_keys=resource_keys(settings),
        description=f"The fitted synthesizer of {table} (persisted by the IO manager).",
    )
    @no_retry
    def model(context: dg.AssetExecutionContext, extracted: TableExtract) -> FittedTable:
        fitted = fit_cached(
            config_of(context, settings),
            extracted.table,
            extracted.frame,
            extracted.fingerprint,
            extracted.profile.latent,
            getattr(extracted.profile, "entity_rare", None),  # extracts kept from before
        )
        context.add_output_metadata(
            {
                "reused": fitted.reused,  # production unchanged: the cached model, no fit
                "fit seconds": 0.0 if fitted.reused else round(fitted.model.fit_seconds, 3),
                "modelled columns": ", ".join(c.name for c in fitted.model.columns) or "none",
                "training rows": len(fitted.train),
                "rare categories suppressed": "; ".join(s.describe() for s in fitted.suppressed)
                or "none",
            }
        )
        return fitted

    return model


def synthetic_asset(settings: Settings) -> dg.AssetsDefinition:
    tables = settings.tables
    partitioned = list(settings.partitions)

    @dg.multi_asset(
        name="synthetic",
        outs={
            ident("synthetic", t): dg.AssetOut(key=key("synthetic", t), group_name="synthetic")
            for t in tables
        },
        # the daily partitions' extracts: their links say which parent labels to keep
        ins={**_extract_ins(tables + partitioned), **_model_ins(tables)},
        required_resource_keys=resource_keys(settings),
        description="Every table sampled, parents first, keys pointing at synthetic parents.",
    )
    @no_retry
    def synthetic(context: dg.AssetExecutionContext, **inputs: Any):
        config = config_of(context, settings)
        whole, data = assemble(
            settings.schema.name, by_table(tables + partitioned, "extract", inputs)
        )
        schema = subset(whole, tables)
        fitted = by_table(tables, "model", inputs)
        name = f"{DAGSTER_SPILL}{context.run.run_id}"
        remove_others(config.orchestration.storage_dir, name, DAGSTER_SPILL)
        spill = Spill.create(config.orchestration.storage_dir, name, keep=True)
        # the views keep what the daily partitions' FKs need too (the full snapshot's FKs)
        result = generate_all(
            config, schema, generation_order(schema), data, fitted, spill, settings.schema
        )
        notes = tuple(result.notes)  # cycles cut, rules enforced, rare values left out, hints
        for note in notes:
            context.log.info(note)
        for t in tables:
            stats = result.stats[t]
            yield dg.Output(
                SyntheticTable(
                    result.tables()[t],
                    stats.rows_generated,
                    result.samples[t],
                    result.views[t],
                    notes,
                ),
                output_name=ident("synthetic", t),
                metadata={
                    "rows": stats.rows_generated,
                    "production rows": stats.rows_production,
                    "sample seconds": round(stats.sample_seconds, 3),
                    "preview": dg.MetadataValue.md(preview(result.samples[t])),
                },
            )

    return synthetic


def staged_asset(settings: Settings, env: str) -> dg.AssetsDefinition:
    tables = settings.tables
    carried = list(settings.partitions)  # their published days move into the new schema

    @dg.multi_asset(
        name=f"staged_{env}",
        specs=[
            dg.AssetSpec(
                key("staged", env, t),
                group_name=f"staged_{env}",
                deps=[
                    key("synthetic", t),
                    key("extract", t),
                    key("model", t),
                    *(key("extract", c) for c in carried),  # their DDL is staged too
                ],
            )
            for t in tables
        ],
        check_specs=gate_specs(tables, env),
        ins={
            **_extract_ins(tables + carried),
            **_synthetic_ins(tables),
            **_model_ins(tables),
        },
        retry_policy=RETRY,
        required_resource_keys=resource_keys(settings),
        description=f"The synthetic tables loaded into the staging schema of {env}, with "
        "production's DDL (PostgreSQL checks every key and constraint).",
    )
    @no_retry
    def staged(context: dg.AssetExecutionContext, **inputs: Any):
        config = config_of(context, settings)
        whole, data = assemble(settings.schema.name, by_table(tables + carried, "extract", inputs))
        schema = subset(whole, tables)
        handles: dict[str, SyntheticTable] = by_table(tables, "synthetic", inputs)
        missing = [t for t, h in handles.items() if not h.path.is_file()]
        if missing:
            raise ProdtwinError(
                f"the synthetic rows of {', '.join(missing)} are no longer on disk (a later run "
                "generated again): materialize synthetic/* and staged/* in the same run"
            )
        target = config.environments[env].schema_name
        url = config.environments[env].url.get_secret_value()
        conn = connect_warehouse(url, env)
        try:
            refuse_source_as_target(config, env, conn)
            staged = load_staging(
                conn,
                whole,
                list(generation_order(whole).order),
                {t: h.path for t, h in handles.items()},
                target,
                access_of(config, env),
                connect=lambda: connect_warehouse(url, env),
                connections=config.publish_connections,
            )
            refresh = next(iter(by_table(tables, "extract", inputs).values())).refresh
            if refresh:  # moves with the schema on the swap: the next run knows what it holds
                stamp(conn, staging_name(target), refresh)
        finally:
            conn.close()
        for t in tables:
            yield dg.MaterializeResult(
                asset_key=key("staged", env, t),
                metadata={
                    "rows": handles[t].rows,
                    "foreign keys checked": staged.foreign_keys.get(t, 0),
                    "schema": staging_name(target),
                },
            )
        model = model_of(by_table(tables, "model", inputs))
        yield from gate_results(config, env, schema, data, model, context.run.run_id)

    return staged


def published_asset(settings: Settings, env: str) -> dg.AssetsDefinition:
    tables = settings.tables

    @dg.multi_asset(
        name=f"published_{env}",
        specs=[
            dg.AssetSpec(
                key("published", env, t),
                group_name=f"published_{env}",
                deps=[key("staged", env, t)],
            )
            for t in tables
        ],
        retry_policy=RETRY,
        required_resource_keys=resource_keys(settings),
        description=f"Staging swapped in as the {env} warehouse in one transaction; the previous "
        "version is kept as <schema>__previous.",
    )
    @no_retry
    def published(context: dg.AssetExecutionContext):
        config = config_of(context, settings)
        target = config.environments[env].schema_name
        url = config.environments[env].url.get_secret_value()
        conn = connect_warehouse(url, env)
        try:
            swap(conn, target, access_of(config, env))
            rows = count_rows(conn, target, tables)
        finally:
            conn.close()
        for t in tables:
            yield dg.MaterializeResult(
                asset_key=key("published", env, t), metadata={"rows": rows[t], "schema": target}
            )

    return published


def quality_asset(settings: Settings) -> dg.AssetsDefinition:
    tables = settings.tables

    @dg.asset(
        key=key("quality_report"),
        ins={**_extract_ins(tables), **_synthetic_ins(tables), **_model_ins(tables)},
        group_name="reports",
        required_resource_keys=resource_keys(settings),
        description="SDMetrics quality and diagnostic reports, as JSON and one HTML page.",
    )
    @no_retry
    def quality_report(context: dg.AssetExecutionContext, **inputs: Any):
        from pathlib import Path

        from synth_assets.quality import evaluate_quality
        from synth_assets.utility import evaluate_utility

        config = config_of(context, settings)
        schema, data = assemble(settings.schema.name, by_table(tables, "extract", inputs))
        # bounded samples of the synthetic tables, as the CLI's report uses
        handles = by_table(tables, "synthetic", inputs)
        frames = {t: h.sample for t, h in handles.items()}
        # the generation's notes (rare values left out among them), as the engine's report has
        notes = list(dict.fromkeys(n for h in handles.values() for n in h.notes))
        fitted = by_table(tables, "model", inputs)
        model = model_of(fitted)
        utility = evaluate_utility(schema, model.roles, model.train, model.holdout, frames, config)
        out = Path(config.validation.reports_dir) / f"run-{context.run.run_id[:8]}"
        result = evaluate_quality(
            schema,
            data.frames,
            frames,
            out,
            seed=config.seed,
            utility=[u.as_dict() for u in utility],
            notes=notes or [s.describe() for f in fitted.values() for s in f.suppressed],
        )
        context.add_output_metadata(
            {
                "quality score": round(result.score, 4),
                "diagnostic score": round(result.diagnostic, 4),
                "report": dg.MetadataValue.path(str(result.html_path.resolve())),
                **{f"quality {t}": round(v, 3) for t, v in sorted(result.per_table.items())},
            }
        )
        return str(result.html_path)

    return quality_report


def defs(settings: Settings) -> dg.Definitions:
    from orchestration.defs.partitions import partitioned_assets

    assets: list[dg.AssetsDefinition] = [extract_asset(settings)]
    assets += [model_asset(settings, t) for t in settings.schema.tables]
    assets.append(synthetic_asset(settings))
    for env in settings.environments:
        assets += [staged_asset(settings, env), published_asset(settings, env)]
    assets.append(quality_asset(settings))
    assets += partitioned_assets(settings)
    return dg.Definitions(assets=assets)
