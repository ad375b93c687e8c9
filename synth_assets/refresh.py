"""A full refresh: source -> schema -> extract -> fit -> sample -> publish, for each environment.

The engine has no orchestrator in it: Dagster (orchestration/) and the command line both call
these functions. Progress goes to the ``prodtwin`` logger; nothing logged contains a URL.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from synth_assets.config import Config
from synth_assets.db import (
    connect_warehouse,
    database_identity,
    is_mysql,
    libpq_url,
    raw,
    redact,
    scrub,
    source_snapshot,
)
from synth_assets.errors import ConfigError, ProdtwinError
from synth_assets.expectations import build_suite, read_suite, suite_path, write_suite
from synth_assets.extract import Extract, extract, qualified, read_table
from synth_assets.fingerprint import (
    ModelCache,
    published_fingerprint,
    refresh_fingerprint,
    stamp,
    table_fingerprints,
)
from synth_assets.gate import GateError, TableValidation, validate_schema
from synth_assets.generate import Synthetic, fit_model, generate, table_seed
from synth_assets.order import GenerationPlan, generation_order
from synth_assets.privacy import PrivacyResult, check_privacy, split_holdout
from synth_assets.publish import Access, PublishResult, StepHook, publish
from synth_assets.rare import Suppressed, suppress_rare
from synth_assets.rebalance import check_rebalance
from synth_assets.relations import learn_relations
from synth_assets.retry import DEFAULT_BACKOFF, Backoff, is_transient, with_retries
from synth_assets.roles import ColumnRole, column_roles
from synth_assets.schema import Schema, Table, introspect
from synth_assets.spill import Spill
from synth_assets.sums import enforceable
from synth_assets.synthesize import TableModel

log = logging.getLogger("prodtwin")
StagingHook = Callable[[psycopg.Connection, str], None]
HINT = (
    "Nothing was published. If production changed on purpose, regenerate the suites "
    "(prodtwin expectations generate) and review the diff; to accept a failure, edit the "
    "suite or the thresholds in git"
)


@dataclass
class RefreshHooks:
    """Points where a caller may act on the staging schema (tests corrupt data here)."""

    before_gate: StagingHook | None = None
    on_publish_step: StepHook | None = None  # called before each step of a publish


@dataclass
class Model:
    """What the gate needs to know about how the synthetic data was made."""

    roles: dict[str, dict[str, ColumnRole]]
    train: dict[str, Any]
    holdout: dict[str, Any]
    reused: set[str] = field(default_factory=set)  # models taken from the cache, not fit


@dataclass
class GateReport:
    validations: dict[str, TableValidation] = field(default_factory=dict)
    privacy: dict[str, PrivacyResult] = field(default_factory=dict)
    docs_path: Path | None = None

    def failures(self) -> list[str]:
        out = [f for v in self.validations.values() for f in v.failures]
        return out + [p for r in self.privacy.values() for p in r.problems]


@dataclass
class RefreshReport:
    schema: Schema | None  # None when unchanged
    plan: GenerationPlan | None
    synthetic: Synthetic | None
    published: dict[str, PublishResult] = field(default_factory=dict)
    gates: dict[str, GateReport] = field(default_factory=dict)
    quality: Any = None  # synth_assets.quality.QualityResult
    report_dir: Path | None = None
    seconds: float = 0.0
    unchanged: bool = False  # production unchanged: nothing was fit or published
    reused: set[str] = field(default_factory=set)  # tables whose cached model was reused
    stages: dict[str, float] = field(default_factory=dict)  # wall seconds per stage


def select_tables(schema: Schema, config: Config) -> Schema:
    """The tables to copy: every name in the configuration exists, every FK parent is in."""
    known = set(schema.tables)
    for setting, names in (
        ("tables.include", config.tables.include),
        ("tables.exclude", config.tables.exclude),
        ("tables.overrides", list(config.tables.overrides)),
    ):
        unknown = sorted(set(names) - known)
        if unknown:
            raise ConfigError(
                f"{setting} names table(s) not in source schema {schema.name}: "
                f"{', '.join(unknown)} (tables there: {', '.join(sorted(known)) or 'none'})"
            )
    chosen = [
        n
        for n in sorted(known)
        if (not config.tables.include or n in config.tables.include)
        and n not in config.tables.exclude
    ]
    if not chosen:
        raise ConfigError(
            f"no tables selected from source schema {schema.name}: check tables.include"
            " and tables.exclude"
        )
    for name in chosen:
        for fk in schema.tables[name].foreign_keys:
            if fk.ref_table in schema.tables and fk.ref_table not in chosen:
                raise ConfigError(
                    f"table {name} references {fk.ref_table} (foreign key {fk.name}), which is not "
                    f"selected: include {fk.ref_table} or exclude {name} too"
                )
            # a copied row keeps its FK values, which only a copied parent is sure to hold
            if config.is_reference(name) and fk.ref_table not in (name, *config.reference_tables()):
                raise ConfigError(
                    f"tables.overrides.{name}.reference: {name} references {fk.ref_table} "
                    f"(foreign key {fk.name}), whose rows are synthetic, so a copied {name} row "
                    f"would point at a row that is not there: mark {fk.ref_table} reference too, "
                    f"or remove the setting"
                )
    return schema.subset(chosen)


def _same_database(a: str, b: str) -> bool:
    if is_mysql(a) or is_mysql(b):
        return False  # warehouses are PostgreSQL: a MySQL source is never one of them
    pa, pb = (
        psycopg.conninfo.conninfo_to_dict(libpq_url(a)),
        psycopg.conninfo.conninfo_to_dict(libpq_url(b)),
    )
    key = lambda p: (p.get("host") or "localhost", str(p.get("port") or 5432), p.get("dbname"))  # noqa: E731
    local = {"localhost", "127.0.0.1", "::1"}
    ka, kb = key(pa), key(pb)
    same_host = ka[0] == kb[0] or (ka[0] in local and kb[0] in local)
    return same_host and ka[1:] == kb[1:]


def check_environments(config: Config, names: list[str]) -> None:
    unknown = [n for n in names if n not in config.environments]
    if unknown:
        raise ConfigError(
            f"environment {', '.join(unknown)} is not in prodtwin.yaml (environments: "
            f"{', '.join(config.environments)})"
        )
    source = config.source.url.get_secret_value()
    seen: dict[tuple[str, str], str] = {}
    for name in names:
        env = config.environments[name]
        url = env.url.get_secret_value()
        if _same_database(url, source):
            raise ConfigError(
                f"environments.{name} points at the source database ({redact(url)}): "
                "prodtwin never "
                "writes to the source; use another database for the warehouse"
            )
        key = (url, env.schema_name)
        if key in seen:
            raise ConfigError(
                f"environments.{name} and environments.{seen[key]} are the same "
                f"database and schema; give each its own"
            )
        seen[key] = name


def read_schema(config: Config) -> Schema:
    """The selected tables of the source, introspected in a read-only transaction."""
    url = config.source.url.get_secret_value()
    try:
        with source_snapshot(url) as conn:
            return select_tables(introspect(conn, config.source.schema_name), config)
    except ProdtwinError:
        raise
    except Exception as error:
        raise ProdtwinError(_source_failure(error, url)) from None


def read_source(
    config: Config, backoff: Backoff = DEFAULT_BACKOFF
) -> tuple[Schema, GenerationPlan, Extract]:
    """Introspect and extract in one snapshot; a dropped connection re-reads from the start."""
    url = config.source.url.get_secret_value()

    def attempt() -> tuple[Schema, GenerationPlan, Extract]:
        with source_snapshot(url) as conn:
            full = introspect(conn, config.source.schema_name)
            schema = select_tables(full, config)
            plan = generation_order(schema)
            data = extract(
                conn,
                schema,
                config.max_rows_per_table,
                config.seed,
                config.validation.max_categories,
                config.reference_tables(),
            )
        return schema, plan, data

    try:
        schema, plan, data = with_retries("reading the source", attempt, backoff)
    except ProdtwinError:
        raise
    except Exception as error:  # driver errors: keep the reason, never the password
        raise ProdtwinError(_source_failure(error, url)) from None
    learn_relations(schema, data, config)
    return schema, plan, data


def _source_failure(error: Exception, url: str) -> str:
    reason = scrub(str(getattr(error, "orig", None) or error).strip(), url)
    reason = reason.splitlines()[0] if reason else type(error).__name__
    if is_transient(error):
        return (
            f"reading the source failed: the connection to {redact(url)} was lost ({reason}); "
            "nothing was published. Run the refresh again when the source is reachable"
        )
    return f"reading the source failed: {reason}"


def synthesize(
    config: Config,
    schema: Schema,
    plan: GenerationPlan,
    data: Extract,
    fingerprints: dict[str, str] | None = None,
) -> tuple[Synthetic, Model]:
    """Fit on production minus a holdout (or reuse the model of an unchanged table), then
    generate every table."""
    fitted = fit_all(config, schema, data, fingerprints or {})
    return generate_all(config, schema, plan, data, fitted), model_of(fitted)


PARALLEL_FIT_ROWS = 20_000  # below this, starting worker processes costs more than it saves


def fit_all(
    config: Config, schema: Schema, data: Extract, fingerprints: dict[str, str]
) -> dict[str, FittedTable]:
    """Every table's model; tables fit in parallel processes, up to orchestration.concurrency.

    Workers are spawned (not forked: the parent may hold threads of torch or a driver) and each
    fits whole tables, largest first, so the slowest fit starts at once.
    """
    names = sorted(schema.tables, key=lambda n: -len(data.frames[n]))
    workers = min(config.orchestration.concurrency, len(names))
    rows = sum(len(data.frames[n]) for n in names)
    args = {
        n: (
            config,
            schema.tables[n],
            data.frames[n],
            fingerprints.get(n),
            data.profiles[n].latent,
            data.profiles[n].entity_rare,
        )
        for n in names
    }
    if workers < 2 or rows < PARALLEL_FIT_ROWS:
        return {n: fit_cached(*args[n]) for n in schema.tables}
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {n: pool.submit(fit_cached, *args[n]) for n in names}
        return {n: futures[n].result() for n in schema.tables}


@dataclass
class FittedTable:
    """One table's model, with the roles of its columns and its fit/holdout split."""

    model: TableModel
    roles: dict[str, ColumnRole]
    train: Any
    holdout: Any
    suppressed: list[Suppressed] = field(default_factory=list)  # rare categories left out
    reused: bool = False  # taken from the model cache: production had not changed


def fit_one(
    config: Config,
    table: Table,
    frame: Any,
    latent: Any = None,
    entity_rare: dict[str, frozenset[str]] | None = None,
) -> FittedTable:
    """Fit a table's model; ``latent`` holds its hidden relationship columns (relations.py),
    ``entity_rare`` the values its columns share with parents that few parents have (rare.py)."""
    roles = column_roles(table, frame, config.override(table.name))
    rebalance = config.override(table.name).rebalance
    if rebalance is not None:
        check_rebalance(table, roles, frame, rebalance)
    train, holdout = split_holdout(
        frame, config.privacy, table_seed(config.seed, table.name, "holdout")
    )
    hidden = latent.loc[train.index] if latent is not None else None
    fit_rows, suppressed = suppress_rare(
        table,
        frame,
        train,
        roles,
        0 if config.is_reference(table.name) else config.privacy.rare_category_count,
        config.override(table.name).keep_rare,
        np.random.default_rng(table_seed(config.seed, table.name, "rare")),
        entity_rare,
    )
    return FittedTable(
        fit_model(table, fit_rows, roles, config, hidden, train), roles, train, holdout, suppressed
    )


def fit_cached(
    config: Config,
    table: Table,
    frame: Any,
    fingerprint: str | None,
    latent: Any = None,
    entity_rare: dict[str, frozenset[str]] | None = None,
) -> FittedTable:
    """The model of a table whose fingerprint is unchanged comes from the cache, not a fit."""
    cache = ModelCache(config.orchestration.storage_dir)
    if fingerprint is not None:
        cached = cache.get(table.name, fingerprint)
        if isinstance(cached, FittedTable):
            cached.reused = True
            return cached
    fitted = fit_one(config, table, frame, latent, entity_rare)
    if fingerprint is not None:
        cache.put(table.name, fingerprint, fitted)
    return fitted


def read_fingerprints(config: Config, schema: Schema) -> dict[str, str]:
    url = config.source.url.get_secret_value()
    try:
        with source_snapshot(url) as conn:
            return table_fingerprints(conn, schema, config)
    except ProdtwinError:
        raise
    except Exception as error:
        raise ProdtwinError(f"reading the source failed: {scrub(str(error), url)}") from None


def up_to_date(config: Config, names: list[str], fingerprint: str) -> bool:
    """Every environment already holds the refresh this fingerprint describes."""
    for name in names:
        env = config.environments[name]
        conn = connect_warehouse(env.url.get_secret_value(), f"environment {name}")
        try:
            if published_fingerprint(conn, env.schema_name) != fingerprint:
                return False
        finally:
            conn.close()
    return True


def model_of(fitted: dict[str, FittedTable]) -> Model:
    return Model(
        {n: f.roles for n, f in fitted.items()},
        {n: f.train for n, f in fitted.items()},
        {n: f.holdout for n, f in fitted.items()},
        {n for n, f in fitted.items() if f.reused},
    )


def generate_all(
    config: Config,
    schema: Schema,
    plan: GenerationPlan,
    data: Extract,
    fitted: dict[str, FittedTable],
    spill: Spill | None = None,
    children: Schema | None = None,
) -> Synthetic:
    """Every table generated into ``spill`` (a new folder under the storage dir by default);
    ``children``: the schema whose FKs decide the parent views kept (generate.Generation)."""
    models = {n: f.model for n, f in fitted.items()}
    roles = {n: f.roles for n, f in fitted.items()}
    synthetic = generate(schema, plan, data, models, roles, config, spill=spill, children=children)
    synthetic.notes += [s.describe() for f in fitted.values() for s in f.suppressed]
    return synthetic


def prepare_suites(
    config: Config, schema: Schema, data: Extract, roles: dict[str, dict[str, ColumnRole]]
) -> dict[str, dict[str, Any]]:
    """The suites in git; a table without one gets a generated suite written for review."""
    suites = {}
    sums, _ = enforceable(data.profiles, config, generation_order(schema))
    for name, table in schema.tables.items():
        path = suite_path(config, schema.name, name)
        if not path.is_file():
            suite = build_suite(
                schema, table, data.profiles[name], roles[name], config, sums.get(name, [])
            )
            log.info("%s", write_suite(path, suite, name).describe())
        suites[name] = read_suite(path)
    return suites


def generate_suites(config: Config) -> list[str]:
    """``prodtwin expectations generate``: profile production, (re)write every suite."""
    schema, plan, data = read_source(config)
    roles = {
        name: column_roles(table, data.frames[name], config.override(name))
        for name, table in schema.tables.items()
    }
    sums, _ = enforceable(data.profiles, config, plan)
    return [
        write_suite(
            suite_path(config, schema.name, name),
            build_suite(
                schema, table, data.profiles[name], roles[name], config, sums.get(name, [])
            ),
            name,
        ).describe()
        for name, table in schema.tables.items()
    ]


def read_schema_frames(
    url: str, schema_name: str, schema: Schema, cap: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """The tables of a warehouse schema, typed exactly as production's extract; with ``cap``, a
    repeatable sample of at most that many rows per table (as production's side is sampled)."""
    out = {}
    with source_snapshot(url) as conn:
        for name, table in schema.tables.items():
            rows = 0
            if cap is not None:
                with raw(conn).cursor() as cur:
                    cur.execute(
                        sql.SQL("select count(*) from {}").format(qualified(schema_name, name))
                    )
                    rows = int(cur.fetchone()[0])
            out[name] = read_table(conn, schema_name, table, cap, rows, seed)
    return out


def gate(
    config: Config,
    url: str,
    schema: Schema,
    data: Extract,
    model: Model,
    suites: dict[str, dict[str, Any]],
    staging: str,
    docs_dir: Path | None,
) -> GateReport:
    """Expectations and privacy on the staging schema; raises GateError on any failure."""
    report = evaluate_gate(config, url, schema, data, model, suites, staging, docs_dir)
    failures = report.failures()
    if failures:
        shown = "\n  ".join(failures[:25])
        more = f"\n  ... and {len(failures) - 25} more" if len(failures) > 25 else ""
        raise GateError(f"the gate refused the synthetic data:\n  {shown}{more}\n{HINT}")
    return report


def evaluate_gate(
    config: Config,
    url: str,
    schema: Schema,
    data: Extract,
    model: Model,
    suites: dict[str, dict[str, Any]],
    staging: str,
    docs_dir: Path | None,
) -> GateReport:
    """Expectations and privacy on a schema of a warehouse, without deciding anything."""
    report = GateReport(docs_path=docs_dir / "index.html" if docs_dir else None)
    report.validations = validate_schema(url, staging, suites, docs_dir)
    synthetic = read_schema_frames(url, staging, schema, config.max_rows_per_table, config.seed)
    for name, table in schema.tables.items():
        report.privacy[name] = check_privacy(
            table,
            model.roles[name],
            data.frames[name],
            model.train[name],
            model.holdout[name],
            synthetic[name],
            config.privacy,
            table_seed(config.seed, name, "dcr"),
            config.is_reference(name),
        )
    return report


def access_of(config: Config, name: str) -> Access:
    env = config.environments[name]
    return Access(tuple(env.readers), env.allow_foreign_objects)


def refuse_source_as_target(config: Config, name: str, conn: psycopg.Connection) -> None:
    """The warehouse connection must not reach production, whatever its URL looks like."""
    source = config.source.url.get_secret_value()
    if is_mysql(source):
        return  # a MySQL server is never a PostgreSQL warehouse
    try:
        src = connect_warehouse(source, "the source", Backoff(attempts=1))
    except ProdtwinError:
        return  # the source was readable a moment ago; read_source reports a real outage
    try:
        src.read_only = True
        same = database_identity(src) == database_identity(conn)
    finally:
        src.close()
    if same:
        raise ConfigError(
            f"environments.{name} is the source database (same server and database, under "
            "another URL): prodtwin never writes to the source; use another database"
        )


def publish_to(
    config: Config,
    name: str,
    schema: Schema,
    plan: GenerationPlan,
    synthetic: Synthetic,
    before_swap: StagingHook | None = None,
    on_step: StepHook | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> PublishResult:
    """Publish to one environment; a lost connection starts the publish again from scratch."""
    env = config.environments[name]
    url = env.url.get_secret_value()
    access = access_of(config, name)

    def attempt() -> PublishResult:
        conn = connect_warehouse(url, f"environment {name}", backoff)
        try:
            refuse_source_as_target(config, name, conn)
            return publish(
                conn,
                name,
                schema,
                list(plan.order),
                synthetic.tables(),
                env.schema_name,
                before_swap,
                access,
                on_step or (lambda _: None),
                lambda: connect_warehouse(url, f"environment {name}", backoff),
                config.publish_connections,
            )
        finally:
            conn.close()

    try:
        return with_retries(f"publishing to environment {name}", attempt, backoff)
    except ProdtwinError as error:
        raise type(error)(f"environment {name}: {error}") from None
    except psycopg.Error as error:
        reason = scrub(str(error).strip(), url) or type(error).__name__
        raise ProdtwinError(
            f"environment {name}: publishing failed, the warehouse is unchanged: {reason}"
            + (". Run the refresh again" if is_transient(error) else "")
        ) from None


def _publish_all(
    config: Config,
    names: list[str],
    report: RefreshReport,
    schema: Schema,
    plan: GenerationPlan,
    synthetic: Synthetic,
    data: Extract,
    model: Model,
    suites: dict[str, dict[str, Any]],
    hooks: RefreshHooks,
    fingerprint: str,
) -> None:
    """Publish to each environment in turn, through the gate; stage times into the report."""
    stages = report.stages
    report_dir = report.report_dir or Path(config.validation.reports_dir)
    for name in names:
        url = config.environments[name].url.get_secret_value()
        docs_dir = report_dir / "data_docs" / name

        def before_swap(
            conn: psycopg.Connection,
            staging: str,
            url: str = url,
            env: str = name,
            docs_dir: Path = docs_dir,
        ) -> None:
            if hooks.before_gate is not None:
                hooks.before_gate(conn, staging)
            log.info("validating %s in environment %s", staging, env)
            clock = time.perf_counter()
            try:
                report.gates[env] = gate(
                    config, url, schema, data, model, suites, staging, docs_dir
                )
            except GateError as error:
                raise GateError(f"{error}\nData Docs: {docs_dir / 'index.html'}") from None
            finally:
                stages["validate"] += time.perf_counter() - clock
            stamp(conn, staging, fingerprint)  # the comment moves with the schema on the swap

        log.info("publishing to environment %s", name)
        clock, validated = time.perf_counter(), stages["validate"]
        report.published[name] = publish_to(
            config, name, schema, plan, synthetic, before_swap, hooks.on_publish_step
        )
        stages["publish"] += time.perf_counter() - clock - (stages["validate"] - validated)


def run_refresh(
    config: Config,
    environments: list[str] | None = None,
    hooks: RefreshHooks | None = None,
    skip_unchanged: bool = False,
) -> RefreshReport:
    """A full refresh. Unchanged tables reuse their cached model; with ``skip_unchanged``, when
    production and the settings are unchanged since the refresh every environment holds,
    nothing is fit or published (the nightly job does this; the engine's callers opt in)."""
    start = time.perf_counter()
    hooks = hooks or RefreshHooks()
    names = environments or list(config.environments)
    check_environments(config, names)
    for name in names:  # a warehouse that is down fails the run now, not after the fit
        connect_warehouse(
            config.environments[name].url.get_secret_value(), f"environment {name}"
        ).close()
    log.info("reading source schema %s", config.source.schema_name)
    fingerprints = read_fingerprints(config, read_schema(config))
    fingerprint = refresh_fingerprint(fingerprints, config)
    if skip_unchanged and up_to_date(config, names, fingerprint):
        log.info("production unchanged since the last refresh: nothing to do")
        return RefreshReport(None, None, None, unchanged=True, seconds=time.perf_counter() - start)
    stages: dict[str, float] = {"fingerprint": time.perf_counter() - start}
    clock = time.perf_counter()
    schema, plan, data = read_source(config)
    stages["extract"] = time.perf_counter() - clock
    log.info("fitting and sampling %d tables", len(schema.tables))
    clock = time.perf_counter()
    synthetic, model = synthesize(config, schema, plan, data, fingerprints)
    sampling = sum(s.sample_seconds for s in synthetic.stats.values())
    spilling = sum(s.spill_seconds for s in synthetic.stats.values())
    stages["fit"] = time.perf_counter() - clock - sampling - spilling
    stages["sample"] = sampling
    stages["spill"] = spilling  # COPY text, written once for every environment
    for note in synthetic.notes:
        log.info("%s", note)
    suites = prepare_suites(config, schema, data, model.roles)
    run_stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    report_dir = Path(config.validation.reports_dir) / run_stamp
    report = RefreshReport(
        schema, plan, synthetic, report_dir=report_dir, reused=model.reused, stages=stages
    )
    stages["validate"] = stages["publish"] = 0.0
    try:
        _publish_all(
            config, names, report, schema, plan, synthetic, data, model, suites, hooks, fingerprint
        )
    finally:
        synthetic.close()  # the spill: every environment has its copy, or the run failed
    from synth_assets.quality import evaluate_quality
    from synth_assets.utility import evaluate_utility

    log.info("writing the quality report")
    clock = time.perf_counter()
    # bounded samples of the synthetic tables (the privacy gate samples staging the same way)
    utility = evaluate_utility(
        schema, model.roles, model.train, model.holdout, synthetic.samples, config
    )
    report.quality = evaluate_quality(
        schema,
        data.frames,
        synthetic.samples,
        report_dir,
        seed=config.seed,
        utility=[u.as_dict() for u in utility],
        notes=synthetic.notes,
    )
    stages["report"] = time.perf_counter() - clock
    report.seconds = time.perf_counter() - start
    return report
