"""A full refresh: source -> schema -> extract -> fit -> sample -> publish, for each environment.

The engine has no orchestrator in it: Dagster (orchestration/) and the command line both call
these functions. Progress goes to the ``prodtwin`` logger; nothing logged contains a URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from synth_assets.config import Config
from synth_assets.db import connect_warehouse, libpq_url, redact, scrub, source_snapshot
from synth_assets.errors import ConfigError, ProdtwinError
from synth_assets.extract import Extract, extract
from synth_assets.generate import Synthetic, fit_models, generate
from synth_assets.order import GenerationPlan, generation_order
from synth_assets.publish import PublishResult, publish
from synth_assets.roles import column_roles
from synth_assets.schema import Schema, introspect

log = logging.getLogger("prodtwin")
BeforeSwap = Callable[[psycopg.Connection, str], None]


@dataclass
class RefreshReport:
    schema: Schema
    plan: GenerationPlan
    synthetic: Synthetic
    published: dict[str, PublishResult] = field(default_factory=dict)
    seconds: float = 0.0


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
    return schema.subset(chosen)


def _same_database(a: str, b: str) -> bool:
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


def read_source(config: Config) -> tuple[Schema, GenerationPlan, Extract]:
    url = config.source.url.get_secret_value()
    try:
        with source_snapshot(url) as conn:
            full = introspect(conn, config.source.schema_name)
            schema = select_tables(full, config)
            plan = generation_order(schema)
            data = extract(conn, schema, config.max_rows_per_table, config.seed)
    except ProdtwinError:
        raise
    except Exception as error:  # driver errors: keep the reason, never the password
        raise ProdtwinError(f"reading the source failed: {scrub(str(error), url)}") from None
    return schema, plan, data


def synthesize(config: Config, schema: Schema, plan: GenerationPlan, data: Extract) -> Synthetic:
    roles = {
        name: column_roles(table, data.frames[name], config.override(name))
        for name, table in schema.tables.items()
    }
    models = fit_models(schema, data, roles, config)
    return generate(schema, plan, data, models, roles, config)


def publish_to(
    config: Config,
    name: str,
    schema: Schema,
    plan: GenerationPlan,
    synthetic: Synthetic,
    before_swap: BeforeSwap | None = None,
) -> PublishResult:
    env = config.environments[name]
    url = env.url.get_secret_value()
    conn = connect_warehouse(url, f"environment {name}")
    try:
        return publish(
            conn, name, schema, list(plan.order), synthetic.frames, env.schema_name, before_swap
        )
    except ProdtwinError as error:
        raise type(error)(f"environment {name}: {error}") from None
    except psycopg.Error as error:
        raise ProdtwinError(
            f"environment {name}: publishing failed, the warehouse is unchanged: "
            f"{scrub(str(error).strip(), url)}"
        ) from None
    finally:
        conn.close()


def run_refresh(
    config: Config,
    environments: list[str] | None = None,
    before_swap: BeforeSwap | None = None,
) -> RefreshReport:
    start = time.perf_counter()
    names = environments or list(config.environments)
    check_environments(config, names)
    log.info("reading source schema %s", config.source.schema_name)
    schema, plan, data = read_source(config)
    for edge in plan.cut:
        log.info("cycle cut at %s", edge.describe())
    log.info("fitting and sampling %d tables", len(schema.tables))
    synthetic = synthesize(config, schema, plan, data)
    report = RefreshReport(schema, plan, synthetic)
    for name in names:
        log.info("publishing to environment %s", name)
        report.published[name] = publish_to(config, name, schema, plan, synthetic, before_swap)
    report.seconds = time.perf_counter() - start
    return report
