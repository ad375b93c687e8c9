"""Fingerprints of source tables: when nothing changed, nothing is refit or republished.

A table's fingerprint hashes its definition, its exact row count, PostgreSQL's cumulative
insert/update/delete counters for it (``pg_stat_user_tables``: cheap, and they move on every
write even when the row count does not) and the settings that shape its model. A model fitted
under one fingerprint is kept in ``<storage>/models`` and reused while the fingerprint holds; a
warehouse schema carries the fingerprint of the whole refresh that produced it as its comment,
so an unchanged source needs neither a fit nor a publish.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Connection

from synth_assets.config import Config
from synth_assets.db import raw
from synth_assets.extract import qualified
from synth_assets.schema import Schema, Table

log = logging.getLogger("prodtwin")
STAMP = "prodtwin refresh "  # prefix of the comment on a published schema
FIT_VERSION = 7  # bump when a change to the engine makes old fitted models wrong


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _fit_settings(config: Config, table: str) -> dict[str, Any]:
    return {
        "version": FIT_VERSION,
        "seed": config.seed,
        "synthesizer": config.synthesizer_for(table),
        "override": config.override(table).model_dump(mode="json"),
        "max_rows": config.max_rows_per_table,
        "max_categories": config.validation.max_categories,
        "privacy": config.privacy.model_dump(mode="json"),
    }


def _table_digest(config: Config, table: Table, rows: int, writes: Any) -> str:
    return _digest(
        {
            "table": dataclasses.asdict(table),
            "rows": rows,
            "writes": writes,
            "fit": _fit_settings(config, table.name),
        }
    )


def table_fingerprints(conn: Connection, schema: Schema, config: Config) -> dict[str, str]:
    """One fingerprint per table, read inside the caller's READ ONLY snapshot."""
    if conn.dialect.name == "mysql":
        return with_neighbours(schema, _mysql_fingerprints(conn, schema, config))
    cur = raw(conn).cursor()
    cur.execute(
        "select relname, n_tup_ins, n_tup_upd, n_tup_del from pg_stat_user_tables "
        "where schemaname = %s",
        (schema.name,),
    )
    counters = {r[0]: r[1:] for r in cur.fetchall()}
    out = {}
    for name, table in schema.tables.items():
        cur.execute(sql.SQL("select count(*) from {}").format(qualified(schema.name, name)))
        rows = int(cur.fetchone()[0])
        # a partitioned table's writes are counted on its partitions
        parts = table.partitioning.partitions if table.partitioning else ()
        writes = [counters.get(p) for p, _ in parts]
        out[name] = _table_digest(config, table, rows, [counters.get(name), *writes])
    cur.close()
    return with_neighbours(schema, out)


def _mysql_fingerprints(conn: Connection, schema: Schema, config: Config) -> dict[str, str]:
    """MySQL keeps no write counters; its last-update time per table stands in for them."""
    updated = dict(
        conn.execute(
            sa.text(
                "select table_name, update_time from information_schema.tables "
                "where table_schema = :db"
            ),
            {"db": schema.name},
        ).all()
    )
    out = {}
    for name, table in schema.tables.items():
        # quoted by the dialect (backticks): the PostgreSQL quotes of mysql_source._quote made
        # every refresh of a MySQL source fail here, before anything was read
        relation = sa.table(name, schema=schema.name)
        rows = conn.execute(sa.select(sa.func.count()).select_from(relation)).scalar_one()
        out[name] = _table_digest(config, table, int(rows), str(updated.get(name)))
    return out


def with_neighbours(schema: Schema, base: dict[str, str]) -> dict[str, str]:
    """A table's model also learns from its parents and children (child counts, cluster links):
    its cache key changes when theirs do."""
    near: dict[str, set[str]] = {n: set() for n in base}
    for name, table in schema.tables.items():
        for fk in table.foreign_keys:
            if fk.ref_table in base and name in base:
                near[name].add(fk.ref_table)
                near[fk.ref_table].add(name)
    return {n: _digest([base[n], sorted(base[m] for m in near[n])]) for n in base}


def refresh_fingerprint(fingerprints: dict[str, str], config: Config, extra: Any = None) -> str:
    """Of a whole refresh: every table's, plus what shapes generation beyond the models."""
    return _digest(
        {
            "tables": fingerprints,
            "scale": config.scale,
            "seed": config.seed,
            "chunk_rows": config.chunk_rows,
            "validation": config.validation.model_dump(mode="json"),
            "extra": extra,
        }
    )


class ModelCache:
    """Fitted models on disk, one file per (table, fingerprint); the newest only is kept."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder) / "models"

    def _path(self, table: str, fingerprint: str) -> Path:
        safe = hashlib.sha256(table.encode()).hexdigest()[:12]
        return self.folder / f"{safe}-{fingerprint}.pkl"

    def get(self, table: str, fingerprint: str) -> Any | None:
        path = self._path(table, fingerprint)
        if not path.is_file():
            return None
        try:
            with path.open("rb") as f:
                return pickle.load(f)
        except Exception:  # a file cut short by a crash: fit again
            log.warning("cached model of %s is unreadable; fitting again", table)
            return None

    def put(self, table: str, fingerprint: str, fitted: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(table, fingerprint)
        prefix = path.name.split("-")[0]
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(fitted, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # readers see the whole file or none
        for old in self.folder.glob(f"{prefix}-*.pkl"):
            if old != path:
                old.unlink(missing_ok=True)


def published_fingerprint(conn: psycopg.Connection, target: str) -> str | None:
    """The fingerprint of the refresh the warehouse schema holds, if prodtwin stamped it."""
    with conn.cursor() as cur:
        cur.execute(
            "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = %s",
            (target,),
        )
        row = cur.fetchone()
    conn.rollback()
    if row is None or not row[0] or not str(row[0]).startswith(STAMP):
        return None
    return str(row[0])[len(STAMP) :].strip()


def stamp(conn: psycopg.Connection, target: str, fingerprint: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("comment on schema {} is {}").format(
                sql.Identifier(target), sql.Literal(STAMP + fingerprint)
            )
        )
    conn.commit()
