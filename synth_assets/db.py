"""Connections: the read-only source snapshot and the warehouses.

URLs carry passwords, so they are only ever held as ``SecretStr`` and shown through
``redact``; connection errors are re-raised with the password removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from synth_assets.errors import ProdtwinError, TransientError
from synth_assets.retry import DEFAULT_BACKOFF, Backoff, is_transient, with_retries


def sqlalchemy_url(url: str) -> str:
    url = re.sub(r"^(mysql|mariadb)(\+\w+)?://", "mysql+pymysql://", url)
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)


def is_mysql(url: str) -> bool:
    return bool(re.match(r"^(mysql|mariadb)(\+\w+)?://", url))


def libpq_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return (
            make_url(sqlalchemy_url(url))
            .render_as_string(hide_password=True)
            .replace("postgresql+psycopg://", "postgresql://")
            .replace("mysql+pymysql://", "mysql://")
        )
    except Exception:
        return "<unparseable URL>"


URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


def scrub_urls(text: str) -> str:
    """Blank the password of every URL in a text: the last line of defence before printing."""
    return URL_PASSWORD.sub(r"\1***@", text)


def scrub(text: str, *secrets: str) -> str:
    """Remove every secret (and the password inside every URL) from a message."""
    for secret in secrets:
        if not secret:
            continue
        password = make_url(sqlalchemy_url(secret)).password if "://" in secret else None
        text = text.replace(secret, redact(secret) if "://" in secret else "***")
        if password:
            text = text.replace(str(password), "***")
    return scrub_urls(text)


def _connection_failed(
    what: str, url: str, error: Exception, retried: bool = True
) -> ProdtwinError:
    """One line without the password; ``TransientError`` when a later try may succeed and no
    retry has been made here (the caller's retry loop then tries again)."""
    first_line = scrub(str(error).strip().splitlines()[0] if str(error).strip() else "", url)
    message = f"cannot connect to {what} at {redact(url)}: {first_line}"
    if not retried and is_transient(error):
        return TransientError(message)
    return ProdtwinError(message)


@contextmanager
def source_snapshot(url: str) -> Iterator[Connection]:
    """One READ ONLY, REPEATABLE READ transaction: every table read sees the same instant.

    READ ONLY is the server's promise, not ours: a statement that writes fails inside it, so a
    bug in prodtwin cannot change production. A role with SELECT on the schema is enough.
    """
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as error:
            raise _connection_failed("the source", url, error.orig or error, False) from None
        with conn:
            if conn.dialect.name == "mysql":
                # SQLAlchemy's begin() sends nothing to MySQL: open the snapshot explicitly
                conn.exec_driver_sql("set session time_zone = '+00:00'")  # TIMESTAMPs in UTC
                conn.exec_driver_sql("set session transaction isolation level repeatable read")
                conn.exec_driver_sql("start transaction read only, with consistent snapshot")
                try:
                    yield conn
                finally:
                    conn.rollback()
                return
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with conn.begin():
                yield conn
    finally:
        engine.dispose()


def raw(conn: Connection) -> psycopg.Connection:
    """The psycopg connection under a SQLAlchemy one, for COPY and fast fetches."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def connect_warehouse(
    url: str, what: str, backoff: Backoff = DEFAULT_BACKOFF
) -> psycopg.Connection:
    """A warehouse connection; a server that is restarting gets a few tries with backoff."""
    try:
        return with_retries(
            f"connecting to {what}",
            lambda: psycopg.connect(libpq_url(url), autocommit=False),
            backoff,
        )
    except psycopg.OperationalError as error:
        raise _connection_failed(what, url, error) from None


def database_identity(conn: psycopg.Connection) -> tuple[str, str]:
    """(server's system identifier, database): equal for two URLs naming the same database,
    whatever host alias, port forward or socket each uses."""
    row = conn.execute(
        "select (select system_identifier::text from pg_control_system()), current_database()"
    ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])
