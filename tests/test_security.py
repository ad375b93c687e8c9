"""Least privilege and isolation: what prodtwin may read, where it may write, who may look.

One tiny source is read and fitted once; the tests publish it to fresh warehouses.
"""

from __future__ import annotations

import contextlib
import uuid

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg import sql

from synth_assets.config import config_from_dict
from synth_assets.db import source_snapshot
from synth_assets.errors import ConfigError, ProdtwinError, PublishError
from synth_assets.publish import MARKER
from synth_assets.refresh import check_environments, publish_to, read_source
from tests.conftest import make_config
from tests.helpers import as_role, fit_once, scalar, schemas

HOSTILE = 'x"; drop table customer; --'
SOURCE = f"""
create table customer (id int primary key, name text not null, email text);
create table orders (id serial primary key, customer_id int not null references customer(id),
                     amount numeric(8,2) not null check (amount >= 0), placed date);
create index orders_placed on orders (placed);
create table {sql.Identifier(HOSTILE).as_string()} (
    {sql.Identifier('"; drop table orders; --').as_string()} int primary key,
    "v; delete from customer" text);
create index "i""; drop table customer; --" on {sql.Identifier(HOSTILE).as_string()}
    ("v; delete from customer");
insert into customer select i, 'name ' || i, 'c' || i || '@example.com'
  from generate_series(1, 40) i;
insert into orders (customer_id, amount, placed)
  select 1 + i % 40, (i % 17) * 3.5, date '2024-01-01' + i from generate_series(1, 80) i;
insert into {sql.Identifier(HOSTILE).as_string()} select i, 'v' || (i % 3) from generate_series(1, 20) i;
"""


@pytest.fixture(scope="module")
def roles(admin_url):  # type: ignore[no-untyped-def]
    """Cluster-wide roles for one module, dropped with everything granted to them."""
    created: list[str] = []

    def make(prefix: str, password: str | None = None) -> str:
        name = f"pt_{prefix}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("create role {} login password {}").format(
                    sql.Identifier(name), sql.Literal(password or uuid.uuid4().hex)
                )
            )
        created.append(name)
        return name

    yield make
    with psycopg.connect(admin_url, autocommit=True) as conn:
        databases = [
            r[0]
            for r in conn.execute("select datname from pg_database where datname like 'pt\\_%'")
        ]
    for db in databases:
        with contextlib.suppress(psycopg.Error):
            url = psycopg.conninfo.make_conninfo(admin_url, dbname=db)
            with psycopg.connect(url, autocommit=True) as conn:
                for name in created:
                    conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in created:
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def source(make_database) -> str:  # type: ignore[no-untyped-def]
    url = make_database("sec")
    with psycopg.connect(url) as conn:
        conn.execute(SOURCE)
    return url


@pytest.fixture(scope="module")
def fitted(source):  # type: ignore[no-untyped-def]
    config = make_config(source, {"dev": source})  # environments are set per test
    return fit_once(config)


def _publish(config, fitted, env="dev"):  # type: ignore[no-untyped-def]
    schema, plan, synthetic = fitted
    return publish_to(config, env, schema, plan, synthetic)


def test_the_source_is_read_in_a_read_only_transaction(source) -> None:  # type: ignore[no-untyped-def]
    with source_snapshot(source) as conn:
        assert conn.exec_driver_sql("show transaction_read_only").scalar() == "on"
        assert conn.exec_driver_sql("show transaction_isolation").scalar() == "repeatable read"
        with pytest.raises(Exception, match="read-only transaction"):
            conn.exec_driver_sql("delete from orders")
    assert scalar(source, "select count(*) from orders") == 80


def test_a_role_with_only_select_on_the_source_schema_suffices(
    source, roles, make_database
) -> None:  # type: ignore[no-untyped-def]
    reader = roles("reader")
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(sql.SQL("revoke create on schema public from public"))
        conn.execute(sql.SQL("grant usage on schema public to {}").format(sql.Identifier(reader)))
        conn.execute(
            sql.SQL("grant select on all tables in schema public to {}").format(
                sql.Identifier(reader)
            )
        )
    dev = make_database("sec_dev")
    config = make_config(as_role(source, reader), {"dev": dev})
    schema, plan, synthetic = fit_once(config)
    assert set(schema.tables) == {"customer", "orders", HOSTILE}
    result = publish_to(config, "dev", schema, plan, synthetic)
    assert result.rows["orders"] == 80
    # the same role could not have written anything even outside prodtwin's snapshot
    with (
        psycopg.connect(as_role(source, reader)) as conn,
        pytest.raises(pg_errors.InsufficientPrivilege),
    ):
        conn.execute("delete from orders")


def test_publishing_to_the_source_is_refused_under_any_url(source, fitted) -> None:  # type: ignore[no-untyped-def]
    config = make_config(source, {"dev": source})
    with pytest.raises(ConfigError, match=r"environments\.dev points at the source database"):
        check_environments(config, ["dev"])
    # another spelling of the same database gets past the URL check: the server identity does not
    alias = (
        source.replace("postgresql://", "postgres://")
        + ("&" if "?" in source else "?")
        + "application_name=alias"
    )
    aliased = make_config(source, {"dev": alias})
    before = scalar(source, "select md5(string_agg(t::text, ',' order by id)) from orders t")
    with pytest.raises(ConfigError, match=r"environments\.dev is the source database"):
        _publish(aliased, fitted)
    after = scalar(source, "select md5(string_agg(t::text, ',' order by id)) from orders t")
    assert before == after
    assert "public__staging" not in schemas(source)


def test_a_schema_with_tables_prodtwin_did_not_create_is_refused(
    make_database, fitted, source
) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("sec_foreign")
    with psycopg.connect(dev) as conn:
        conn.execute("create table keep_me (id int); insert into keep_me values (7)")
    config = make_config(source, {"dev": dev})
    with pytest.raises(
        PublishError,
        match=r"schema public holds objects prodtwin did not create \(keep_me\).*"
        r"allow_foreign_objects: true",
    ):
        _publish(config, fitted)
    assert scalar(dev, "select id from public.keep_me") == 7
    assert schemas(dev) == {"public"}
    # allowed explicitly: published, and the foreign table is kept aside for one run
    allowed = make_config(
        source, {"dev": dev}, environments={"dev": {"url": dev, "allow_foreign_objects": True}}
    )
    _publish(allowed, fitted)
    assert scalar(dev, "select id from public__previous.keep_me") == 7
    # prodtwin's own tables are recognised on the next run; a table added by hand is not
    _publish(config, fitted)
    with psycopg.connect(dev) as conn:
        conn.execute("create view public.my_report as select count(*) from public.orders")
    with pytest.raises(PublishError, match=r"\(my_report\)"):
        _publish(config, fitted)
    assert scalar(dev, "select count(*) from public.my_report") == 1
    assert scalar(dev, "select obj_description('public.orders'::regclass)") == MARKER
    with psycopg.connect(dev) as conn:
        conn.execute("drop view public.my_report")
        conn.execute("create function public.answer() returns int language sql as 'select 42'")
        conn.execute("create type public.pair as (a int, b int)")
    with pytest.raises(PublishError, match=r"\(function answer, type pair\)"):
        _publish(config, fitted)
    assert scalar(dev, "select public.answer()") == 42


def test_published_schema_is_readable_by_qa_and_writable_only_by_prodtwin(
    make_database, fitted, source, roles
) -> None:  # type: ignore[no-untyped-def]
    qa, other = roles("qa"), roles("other")
    dev = make_database("sec_grants")
    config = make_config(source, {"dev": dev}, environments={"dev": {"url": dev, "readers": [qa]}})
    for _ in range(2):  # the grants hold after every swap, not only the first
        _publish(config, fitted)
        with psycopg.connect(as_role(dev, qa)) as conn:
            assert conn.execute("select count(*) from public.orders").fetchone()[0] == 80
            hostile = sql.SQL("select count(*) from public.{}").format(sql.Identifier(HOSTILE))
            assert conn.execute(hostile).fetchone()[0] == 20
            for statement in (
                "insert into public.customer values (1000, 'qa', null)",
                "update public.orders set amount = 0",
                "delete from public.customer",
                "truncate public.orders",
                "create table public.qa_table (id int)",
                "drop table public.customer cascade",
            ):
                with pytest.raises(pg_errors.InsufficientPrivilege):
                    conn.execute(statement)
                conn.rollback()
        with (
            psycopg.connect(as_role(dev, other)) as conn,
            pytest.raises(pg_errors.InsufficientPrivilege),
        ):
            conn.execute("select count(*) from public.orders")
    # default privileges live on the schema, so they too followed it through the rename
    assert (
        scalar(
            dev,
            "select count(*) from pg_default_acl d join pg_namespace n "
            "on n.oid = d.defaclnamespace where n.nspname = 'public' "
            "and array_to_string(d.defaclacl, ',') like %s",
            (f"%{qa}=r/%",),
        )
        == 1
    )


def test_an_unknown_reader_role_is_named(make_database, fitted, source) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("sec_noqa")
    config = make_config(
        source, {"dev": dev}, environments={"dev": {"url": dev, "readers": ["no_such_qa"]}}
    )
    with pytest.raises(PublishError, match="role no_such_qa does not exist"):
        _publish(config, fitted)
    assert schemas(dev) == {"public"}


def test_a_hostile_table_name_is_only_a_name(make_database, fitted, source) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("sec_names")
    _publish(make_config(source, {"dev": dev}), fitted)
    assert scalar(dev, "select count(*) from public.customer") == 40
    assert scalar(source, "select count(*) from customer") == 40
    q = sql.SQL("select count(distinct {}) from public.{}").format(
        sql.Identifier('"; drop table orders; --'), sql.Identifier(HOSTILE)
    )
    with psycopg.connect(dev) as conn:
        assert conn.execute(q).fetchone()[0] == 20
        index = conn.execute(
            "select indexdef from pg_indexes where schemaname = 'public' and indexname = %s",
            ('i"; drop table customer; --',),
        ).fetchone()
    assert index is not None and f'ON public."{HOSTILE.replace(chr(34), 2 * chr(34))}"' in index[0]


def test_secret_config_is_checked_before_connecting() -> None:
    data = {
        "source": {"url": "postgresql://u:TopSecret1@localhost/db"},
        "environments": {"dev": {"url": "postgresql://u:TopSecret1@localhost/db"}},
    }
    config = config_from_dict(data)
    with pytest.raises(ConfigError) as caught:
        check_environments(config, ["dev"])
    assert "TopSecret1" not in str(caught.value)
    assert "TopSecret1" not in repr(config)


def test_read_source_failure_never_shows_the_password(source) -> None:  # type: ignore[no-untyped-def]
    url = as_role(source, "pt_nobody_here", "TopSecret2").replace("/pt_", "/nodb_pt_")
    config = config_from_dict({"source": {"url": url}, "environments": {"dev": {"url": source}}})
    with pytest.raises(ProdtwinError) as caught:
        read_source(config)
    assert "TopSecret2" not in str(caught.value)
    assert "cannot connect to the source" in str(caught.value)
