"""A MySQL/MariaDB production database, published to a PostgreSQL warehouse.

Runs when PRODTWIN_TEST_MYSQL_URL names a server (e.g. mysql+pymysql://root@127.0.0.1:3306/);
the test creates its own database there and drops it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy as sa

from synth_assets.config import Source
from synth_assets.db import source_snapshot, sqlalchemy_url
from synth_assets.refresh import (
    gate,
    prepare_suites,
    publish_to,
    read_source,
    run_refresh,
    synthesize,
)
from tests.conftest import make_config
from tests.helpers import orphan_counts, scalar

MYSQL_URL = os.environ.get("PRODTWIN_TEST_MYSQL_URL")
pytestmark = pytest.mark.skipif(not MYSQL_URL, reason="PRODTWIN_TEST_MYSQL_URL is not set")

TABLES = [
    """create table customer (
        id int auto_increment primary key,
        email varchar(120) not null unique,
        country char(2) not null,
        tier enum('free', 'pro', 'team') not null,
        active tinyint(1) not null,
        born date,
        created datetime not null,
        seen timestamp null,
        score double,
        notes text,
        index customer_country (country)
    ) engine=InnoDB""",
    """create table `order` (
        id bigint unsigned auto_increment primary key,
        customer_id int not null,
        total decimal(10,2) not null,
        items smallint unsigned not null,
        placed datetime not null,
        shipped datetime null,
        payload json,
        receipt blob,
        `select` varchar(20),
        foreign key (customer_id) references customer(id)
    ) engine=InnoDB""",
]


def _numbers(n: int) -> str:
    """1..n as a derived table (MySQL 8 and MariaDB alike)."""
    return (
        "(with recursive s (n) as (select 1 union all select n + 1 from s where n < "
        f"{n}) select n from s) numbers"
    )


def _rows(conn: sa.Connection) -> None:
    conn.exec_driver_sql(
        "insert into customer (email, country, tier, active, born, created, seen, score, notes) "
        "select concat('user', n, '@example.com'), elt(1 + mod(n, 3), 'DE', 'FR', 'US'), "
        "elt(1 + mod(n, 3), 'free', 'pro', 'team'), mod(n, 2), date_add('1970-01-01', interval n * 97 day), "
        "date_add('2024-01-01', interval n hour), date_add('2024-02-01', interval n minute), "
        "n * 1.5, concat('note ', n) from " + _numbers(60)
    )
    conn.exec_driver_sql(
        "insert into `order` (customer_id, total, items, placed, shipped, payload, receipt, `select`) "
        "select 1 + mod(n, 60), (mod(n, 50)) * 3.25, 1 + mod(n, 5), date_add('2024-03-01', interval n hour), "
        "if(mod(n, 4) = 0, null, date_add('2024-03-02', interval n hour)), "
        "json_object('k', n), unhex(md5(n)), concat('s', mod(n, 3)) from " + _numbers(240)
    )


@contextlib.contextmanager
def _database(statements: list[str], fill: Callable[[sa.Connection], None] | None = None):  # type: ignore[no-untyped-def]
    """A fresh database on the MySQL server holding ``statements``' tables, dropped afterwards:
    its URL."""
    assert MYSQL_URL is not None
    name = f"pt_mysql_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(sqlalchemy_url(MYSQL_URL), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"create database `{name}`")
    url = sa.engine.make_url(sqlalchemy_url(MYSQL_URL)).set(database=name)
    source = url.render_as_string(hide_password=False)
    db = sa.create_engine(source, poolclass=sa.pool.NullPool)
    try:
        with db.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
            if fill is not None:
                fill(conn)
        yield source
    finally:
        db.dispose()
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop database if exists `{name}`")
        engine.dispose()


@pytest.fixture(scope="module")
def mysql_source():  # type: ignore[no-untyped-def]
    with _database(TABLES, _rows) as source:
        yield source


def test_the_mysql_source_is_read_only(mysql_source) -> None:  # type: ignore[no-untyped-def]
    with source_snapshot(mysql_source) as conn:
        assert conn.exec_driver_sql("select count(*) from customer").scalar() == 60
        with pytest.raises(sa.exc.DBAPIError, match="READ ONLY"):
            conn.exec_driver_sql("delete from customer")


def test_a_mysql_source_is_published_to_postgresql(mysql_source, make_database) -> None:  # type: ignore[no-untyped-def]
    dev = make_database("mysql_dev")
    config = make_config(mysql_source, {"dev": dev}, privacy={"min_rows_for_dcr": 1000})
    # no source.schema: for MySQL the schema is the database of the URL
    config = config.model_copy(update={"source": Source(url=mysql_source)})
    assert config.source.schema_name.startswith("pt_mysql_")
    # the engine's refresh without the quality report: read, fit, sample, gate, publish
    schema, plan, data = read_source(config)
    synthetic, model = synthesize(config, schema, plan, data)
    suites = prepare_suites(config, schema, data, model.roles)

    def gated(conn, staging):  # type: ignore[no-untyped-def]
        gate(config, dev, schema, data, model, suites, staging, None)

    published = publish_to(config, "dev", schema, plan, synthetic, before_swap=gated)
    assert published.rows == {"customer": 60, "order": 240}
    assert all(v == 0 for v in orphan_counts(dev, schema).values())
    with psycopg.connect(dev) as conn:
        types = {
            (t, c): ty
            for t, c, ty in conn.execute(
                "select c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
                "from pg_attribute a join pg_class c on c.oid = a.attrelid "
                "join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = 'public' and c.relkind = 'r' and a.attnum > 0"
            )
        }
    assert types[("customer", "active")] == "boolean"
    assert types[("customer", "tier")] == "customer_tier"
    assert types[("customer", "seen")] == "timestamp with time zone"
    assert types[("customer", "created")] == "timestamp without time zone"
    assert types[("order", "id")] == "numeric(20,0)"
    assert types[("order", "total")] == "numeric(10,2)"
    assert types[("order", "payload")] in ("jsonb", "text")  # MariaDB's JSON is LONGTEXT
    assert types[("order", "receipt")] == "bytea"
    assert types[("customer", "email")] == "character varying(120)"
    assert scalar(dev, "select count(distinct email) from customer") == 60
    assert (
        scalar(dev, "select count(*) from customer where tier not in ('free', 'pro', 'team')") == 0
    )
    assert scalar(dev, 'select count(*) from "order" where shipped is null') > 0


RELATED = [
    "create table account (id int primary key, tenure int not null) engine=InnoDB",
    """create table purchase (id int primary key, account_id int not null, total decimal(12,2)
       not null, foreign key (account_id) references account(id)) engine=InnoDB""",
    """create table line (id int primary key, purchase_id int not null, qty int not null,
       price decimal(10,2) not null, foreign key (purchase_id) references purchase(id))
       engine=InnoDB""",
    # purchases per account grow with tenure; a purchase's total is the sum of its lines
    "insert into account select n, 30 * n from " + _numbers(200),
    "insert into purchase select row_number() over (order by a.id, k.n), a.id, 0 from account a "
    "join " + _numbers(12).replace("numbers", "k") + " on k.n <= 1 + a.id div 20",
    "insert into line select row_number() over (order by p.id, k.n), p.id, 1 + mod(p.id * k.n, 4), "
    "round(2 + mod(p.id * 37 + k.n * 11, 90) * 0.75, 2) from purchase p join "
    + _numbers(4).replace("numbers", "k")
    + " on k.n <= 1 + mod(p.id, 4)",
    "update purchase p join (select purchase_id, sum(qty * price) s from line group by 1) l "
    "on l.purchase_id = p.id set p.total = l.s",
]


def test_a_mysql_source_keeps_children_per_parent_and_sums(make_database) -> None:  # type: ignore[no-untyped-def]
    """The relationship profile (children counts, sums) is read from MySQL as from PostgreSQL."""
    with _database(RELATED) as source:
        dev = make_database("mysql_related")
        config = make_config(source, {"dev": dev}, privacy={"min_rows_for_dcr": 1000})
        config = config.model_copy(update={"source": Source(url=source)})
        schema, plan, data = read_source(config)
        assert data.profiles["account"].latent is not None
        synthetic, _ = synthesize(config, schema, plan, data)
        publish_to(config, "dev", schema, plan, synthetic)
    per_account = """
        select corr(a.tenure, coalesce(n.k, 0)) from account a
        left join (select account_id, count(*) k from purchase group by 1) n
          on n.account_id = a.id"""
    assert scalar(dev, per_account) > 0.8  # production's is about 0.98
    broken = """
        select count(*) from purchase p
        join (select purchase_id, sum(qty * price) s from line group by 1) l
          on l.purchase_id = p.id
        where p.total <> l.s"""
    assert scalar(dev, broken) == 0
    assert scalar(dev, "select count(distinct total) from purchase") > 50


def test_a_mysql_reference_table_is_published_whole(make_database) -> None:  # type: ignore[no-untyped-def]
    statements = [
        "create table currency (code char(3) primary key, name varchar(40) not null) engine=InnoDB",
        """create table payment (id int primary key, currency char(3) not null,
            amount decimal(10,2) not null, foreign key (currency) references currency(code))
            engine=InnoDB""",
    ]

    def fill(conn: sa.Connection) -> None:
        conn.exec_driver_sql(
            "insert into currency select concat('C', lpad(n, 2, '0')), concat('Currency ', n) "
            "from " + _numbers(80)
        )
        conn.exec_driver_sql(
            "insert into payment select n, concat('C', lpad(1 + mod(n * 7, 80), 2, '0')), "
            "mod(n * 13, 500) + 0.25 from " + _numbers(300)
        )

    with _database(statements, fill) as source:
        dev = make_database("mysql_reference_dev")
        config = make_config(
            source,
            {"dev": dev},
            max_rows_per_table=50,
            tables={"overrides": {"currency": {"reference": True}}},
        )
        config = config.model_copy(update={"source": Source(url=source)})
        run_refresh(config)
        with source_snapshot(source) as conn:
            real = sorted(tuple(r) for r in conn.exec_driver_sql("select code, name from currency"))
        with psycopg.connect(dev) as conn:
            published = sorted(conn.execute("select code, name from currency").fetchall())
        assert published == real and len(published) == 80  # whole, past the cap of 50
        assert scalar(dev, "select count(*) from payment") == 300
        assert all(v == 0 for v in orphan_counts(dev, read_source(config)[0]).values())
