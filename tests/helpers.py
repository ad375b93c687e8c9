"""SQL helpers the tests share: checksums and orphan counts, computed by PostgreSQL."""

from __future__ import annotations

import psycopg
from psycopg import sql

from synth_assets.publish import count_orphans
from synth_assets.schema import Schema


def table_checksums(url: str, schema: str = "public") -> dict[str, str]:
    """md5 of every table's rows in a stable order: equal checksums mean equal contents."""
    out = {}
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relkind in ('r', 'p') and not c.relispartition "
                "order by 1",
                (schema,),
            )
        ]
        for t in tables:
            q = sql.SQL(
                "select md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from {}.{} x"
            ).format(sql.Identifier(schema), sql.Identifier(t))
            out[t] = conn.execute(q).fetchone()[0]
    return out


def orphan_counts(url: str, schema: Schema, target: str = "public") -> dict[str, int]:
    """Rows whose FK is set but matches no parent row, per FK, by anti-join."""
    with psycopg.connect(url) as conn:
        return count_orphans(conn, schema, target)


def scalar(url: str, query: str, params: tuple = ()) -> object:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params or None).fetchone()[0]


def column_values(url: str, table: str, column: str) -> set:
    with psycopg.connect(url) as conn:
        q = sql.SQL("select distinct {} from public.{} where {} is not null").format(
            sql.Identifier(column), sql.Identifier(table), sql.Identifier(column)
        )
        return {r[0] for r in conn.execute(q)}


def fit_once(config):  # type: ignore[no-untyped-def]
    """Read and fit a source once, so a test can publish the result many times."""
    from synth_assets.refresh import read_source, synthesize

    schema, plan, data = read_source(config)
    synthetic, _ = synthesize(config, schema, plan, data)
    return schema, plan, synthetic


def as_role(url: str, role: str, password: str | None = None) -> str:
    """The same database (a postgresql:// URL), logged in as another role."""
    from sqlalchemy.engine import make_url

    changed = make_url(url).set(username=role, password=password)
    return changed.render_as_string(hide_password=False)


def libpq(url: str) -> str:
    from synth_assets.db import libpq_url

    return libpq_url(url)


def schemas(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {
            r[0]
            for r in conn.execute(
                "select nspname from pg_namespace where nspname not like 'pg\\_%' "
                "and nspname <> 'information_schema'"
            )
        }
