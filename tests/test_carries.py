"""A child column that repeats its parent's in production (an order ships to its customer's
city and country) repeats its synthetic parent's in the copy, and the gate checks it."""

from __future__ import annotations

import psycopg
import pytest

from synth_assets.expectations import read_suite, suite_path
from synth_assets.gate import validate_schema
from synth_assets.refresh import run_refresh
from tests.conftest import make_config

PLANTED = """
select setseed(0.23);
create table customers (id int primary key, country text not null, segment text not null,
                        city text not null, signed_up date not null);
create table orders (id int primary key, customer_id int not null references customers(id),
                     ship_country text not null, ship_city text not null, channel text not null,
                     placed date not null, amount numeric(10,2) not null);
insert into customers
select i, (array['DE', 'FR', 'US', 'BR', 'JP', 'CA'])[1 + i % 6],
       (array['retail', 'business', 'public'])[1 + (i / 6) % 3],
       'City ' || (i % 120), date '2020-01-01' + (random() * 900)::int
from generate_series(1, 300) i;
-- every order ships to its customer's country; 3 in 100 ship to another city than the
-- customer's; the channel has nothing to do with the customer
insert into orders
select row_number() over (), c.id, c.country,
       case when random() < 0.03 then 'Elsewhere ' || (k % 5) else c.city end,
       (array['web', 'phone', 'store'])[1 + floor(random() * 3)::int],
       c.signed_up + (random() * 300)::int, round((5 + random() * 200)::numeric, 2)
from customers c, generate_series(1, 1 + c.id % 5) k;
"""

DIFFERS = """
select avg((o.{0} is distinct from c.{1})::int)::float8
from orders o join customers c on c.id = o.customer_id
"""


def _scalar(url: str, query: str) -> float:
    with psycopg.connect(url) as conn:
        return float(conn.execute(query).fetchone()[0])


@pytest.fixture(scope="module")
def carried(make_database):  # type: ignore[no-untyped-def]
    source = make_database("carried")
    with psycopg.connect(source) as conn:
        conn.execute(PLANTED)
    dev = make_database("carried_dev")
    # chunks of 250 rows: a chunk's orders find their customers' values in the parent's view
    config = make_config(source, {"dev": dev}, chunk_rows=250)
    return source, dev, run_refresh(config), config


def test_an_order_ships_to_its_customers_country_and_city(carried) -> None:  # type: ignore[no-untyped-def]
    source, dev, _, _ = carried
    assert _scalar(source, DIFFERS.format("ship_country", "country")) == 0
    assert _scalar(dev, "select count(*) from orders") > 600
    assert _scalar(dev, DIFFERS.format("ship_country", "country")) == 0
    # the city is personal data: generated for the customer, and the order repeats it at
    # production's rate (3% elsewhere)
    production = _scalar(source, DIFFERS.format("ship_city", "city"))
    synthetic = _scalar(dev, DIFFERS.format("ship_city", "city"))
    assert 0.01 < production < 0.06
    assert abs(synthetic - production) < 0.03, (synthetic, production)
    assert _scalar(dev, "select count(*) from customers where city like 'City %'") == 0
    # a column production does not repeat stays the order's own
    assert _scalar(dev, DIFFERS.format("channel", "segment")) > 0.9


def test_the_gate_checks_what_is_carried(carried) -> None:  # type: ignore[no-untyped-def]
    _, dev, report, config = carried
    suites = {name: read_suite(suite_path(config, "public", name)) for name in report.schema.tables}
    described = [e.get("description", "") for e in suites["orders"]["expectations"]]
    assert "orders.ship_country is its customers row's country (on 100% of production's rows)" in (
        described
    )
    assert not any("channel" in d for d in described)
    assert not any(t.failures for t in validate_schema(dev, "public", suites, None).values())
    with psycopg.connect(dev) as conn:
        conn.execute("create table saved as select id, ship_country from orders")
        conn.execute(
            "update orders set ship_country = case ship_country when 'DE' then 'FR' else 'DE' end "
            "where id % 20 = 0"
        )
    try:
        failures = validate_schema(dev, "public", suites, None)["orders"].failures
    finally:
        with psycopg.connect(dev) as conn:
            conn.execute(
                "update orders o set ship_country = s.ship_country from saved s where s.id = o.id"
            )
            conn.execute("drop table saved")
    assert any("ship_country is its customers row's country" in f for f in failures), failures
