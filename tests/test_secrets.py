"""A known password goes in; it must come out nowhere: not in logs, reports, files or errors.

The role logs in with a password the server checks (a pg_hba.conf line for this role alone,
when the test can edit it; the URL carries the password either way), and it is not a
superuser: it reads production with SELECT only and owns only the warehouse database.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from synth_assets.errors import ProdtwinError
from synth_assets.refresh import publish_to, run_refresh
from tests.conftest import make_config
from tests.helpers import as_role, fit_once, scalar

TINY = {"min_rows_for_dcr": 1000}  # tables this small are below the distance check
REPO = Path(__file__).resolve().parents[1]
SOURCE = """
create table account (id int primary key, owner text not null, balance numeric(10,2) not null);
create table movement (id int primary key, account_id int not null references account(id),
                       amount numeric(10,2) not null, at timestamptz not null);
insert into account select i, 'owner ' || i, i * 10.5 from generate_series(1, 30) i;
insert into movement select i, 1 + i % 30, (i % 13) - 6.5,
  timestamptz '2024-01-01' + i * interval '5 hours' from generate_series(1, 90) i;
"""


@pytest.fixture(scope="module")
def secret_role(admin_url, make_database):  # type: ignore[no-untyped-def]
    """(role, password, source url, warehouse url, enforced) for a non-superuser role."""
    role = f"pt_secret_{uuid.uuid4().hex[:6]}"
    password = f"Pw{uuid.uuid4().hex}"
    source, dev = make_database("secret_src"), make_database("secret_dev")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create role {} login password {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        hba = conn.execute("show hba_file").fetchone()[0]
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(SOURCE)
        conn.execute(
            sql.SQL("grant select on all tables in schema public to {}").format(
                sql.Identifier(role)
            )
        )
    with psycopg.connect(dev, autocommit=True) as conn:
        conn.execute(
            sql.SQL("alter database {} owner to {}").format(
                sql.Identifier(conn.info.dbname), sql.Identifier(role)
            )
        )
        conn.execute(sql.SQL("alter schema public owner to {}").format(sql.Identifier(role)))
    lines = [f"local all {role} scram-sha-256", f"host all {role} 0.0.0.0/0 scram-sha-256"]
    original = None
    try:
        original = Path(hba).read_text()
        Path(hba).write_text("\n".join(lines) + "\n" + original)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("select pg_reload_conf()")
    except OSError:
        original = None  # not our server's files: the password is carried but not checked
    try:
        yield (
            role,
            password,
            as_role(source, role, password),
            as_role(dev, role, password),
            (original is not None),
        )
    finally:
        if original is not None:
            Path(hba).write_text(original)
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute("select pg_reload_conf()")
        for url in (source, dev):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("reassign owned by {} to current_user").format(sql.Identifier(role))
                )
                conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def _files_containing(root: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_the_password_is_checked_when_the_server_allows_it(secret_role) -> None:  # type: ignore[no-untyped-def]
    role, password, source, dev, enforced = secret_role
    if not enforced:
        pytest.skip("pg_hba.conf of the test server is not writable here")
    wrong = source.replace(password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong).close()
    config = make_config(wrong, {"dev": dev})
    with pytest.raises(ProdtwinError, match=f"cannot connect to the source.*{role}") as caught:
        run_refresh(config)
    assert "not-the-password" not in str(caught.value) and password not in str(caught.value)


def test_the_engine_logs_no_secret(secret_role, caplog) -> None:  # type: ignore[no-untyped-def]
    """In process, every log record at DEBUG while reading, fitting, publishing and failing."""
    _, password, source, dev, _ = secret_role
    config = make_config(source, {"dev": dev}, privacy=TINY)
    caplog.set_level(logging.DEBUG)
    schema, plan, synthetic = fit_once(config)
    publish_to(config, "dev", schema, plan, synthetic)
    assert scalar(dev, "select count(*) from public.movement") == 90
    assert password not in repr(config) and password not in str(config.model_dump())
    # a failure while publishing names the URL, never the password
    bad = make_config(source, {"dev": dev.replace("secret_dev", "no_such_db")})
    with pytest.raises(ProdtwinError) as caught:
        publish_to(bad, "dev", schema, plan, synthetic)
    assert "no_such_db" in str(caught.value) and password not in str(caught.value)
    assert "movement" in caplog.text or caplog.records  # the logs were captured
    assert password not in caplog.text


def test_the_command_line_prints_and_stores_no_secret(secret_role, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``prodtwin refresh`` (the Dagster job in process): stdout, stderr and every file."""
    _, password, source, dev, _ = secret_role
    config = {
        "source": {"url": "${PT_TEST_SOURCE_URL}"},
        "environments": {"dev": {"url": "${PT_TEST_DEV_URL}"}},
        "validation": {"expectations_dir": "expectations", "reports_dir": "reports"},
        "orchestration": {"storage_dir": "storage", "snapshot": "snapshot.json"},
        "privacy": TINY,
    }
    (tmp_path / "prodtwin.yaml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "PT_TEST_SOURCE_URL": source,
        "PT_TEST_DEV_URL": dev,
        "PYTHONPATH": str(REPO),
    }
    env.pop("PRODTWIN_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "synth_assets.cli", "refresh", "--config", "prodtwin.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "movement" in done.stdout
    assert password not in done.stdout and password not in done.stderr
    assert _files_containing(tmp_path, password) == []
    # and a failing run: the error message is one line without the password
    env["PT_TEST_SOURCE_URL"] = source.replace("secret_src", "no_such_db")
    failed = subprocess.run(
        [sys.executable, "-m", "synth_assets.cli", "refresh", "--config", "prodtwin.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert "no_such_db" in failed.stderr
    assert password not in failed.stdout + failed.stderr
    assert _files_containing(tmp_path, password) == []
