"""A parent number that is the sum of its children's in production is that sum in the copy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

from synth_assets.expectations import read_suite, suite_path
from synth_assets.gate import validate_schema
from synth_assets.refresh import run_refresh
from synth_assets.schema import Column, ForeignKey, Table
from synth_assets.sums import MODEL, ZERO, detect, find_row_rules
from tests.conftest import make_config

PLANTED = """
select setseed(0.17);
create table orders (id int primary key, placed date not null, discount numeric(6,2) not null,
                     total numeric(12,2) not null, shipping numeric(8,2) not null,
                     grand_total numeric(12,2) not null);
create table order_items (id int primary key, order_id int not null references orders(id),
                          qty int not null, unit_price numeric(10,2) not null,
                          line_total numeric(12,2) not null);
-- a child whose sum is not the total: refunds of some lines
create table refunds (id int primary key, order_id int not null references orders(id),
                      amount numeric(10,2) not null);
insert into orders
select i, date '2024-01-01' + (random() * 365)::int, round((random() * 5)::numeric, 2), 0,
       round((3 + random() * 12)::numeric, 2), 0
from generate_series(1, 400) i;
insert into order_items
select row_number() over (), o.id, 1 + floor(random() * 5)::int,
       round((2 + random() * 80)::numeric, 2), 0
from orders o, generate_series(1, 1 + (o.id % 4)) k
where o.id % 10 <> 0;  -- every tenth order has no lines, and a total of 0
-- within a row: a line's total is qty x price, an order's grand total its total + shipping
update order_items set line_total = qty * unit_price;
update orders o set total = s.t
from (select order_id, sum(qty * unit_price) t from order_items group by 1) s
where s.order_id = o.id;
update orders set grand_total = total + shipping;
insert into refunds
select row_number() over (), o.id, round((random() * 10)::numeric, 2)
from orders o where o.id % 7 = 0;
"""

BROKEN = """
select count(*) from orders o
left join (select order_id, sum(qty * unit_price) t from order_items group by 1) s
  on s.order_id = o.id
where o.total <> coalesce(s.t, 0)
"""


def _scalar(url: str, query: str) -> float:
    with psycopg.connect(url) as conn:
        return float(conn.execute(query).fetchone()[0])


@pytest.fixture(scope="module")
def summed(make_database):  # type: ignore[no-untyped-def]
    source = make_database("summed")
    with psycopg.connect(source) as conn:
        conn.execute(PLANTED)
    dev = make_database("summed_dev")
    config = make_config(source, {"dev": dev})
    return source, dev, run_refresh(config), config


def test_an_order_total_is_the_sum_of_its_lines(summed) -> None:  # type: ignore[no-untyped-def]
    source, dev, report, _ = summed
    assert _scalar(source, BROKEN) == 0
    assert _scalar(dev, "select count(*) from orders") > 300
    # every synthetic order: the sum of its synthetic lines, or 0 without lines, as production
    assert _scalar(dev, BROKEN) == 0
    assert _scalar(dev, "select count(*) from orders where total > 0") > 200
    assert any(
        "enforced: orders.total = sum(order_items.qty * order_items.unit_price)" in note
        for note in report.synthetic.notes
    )


def test_the_sums_hold_when_both_tables_come_in_chunks(summed, make_database) -> None:  # type: ignore[no-untyped-def]
    source, _, _, _ = summed
    dev = make_database("summed_chunks")
    # 400 orders and about 900 lines in chunks of 120: a parent's chunks wait, then take sums
    run_refresh(make_config(source, {"dev": dev}, chunk_rows=120))
    assert _scalar(dev, "select count(*) from orders") > 300
    assert _scalar(dev, BROKEN) == 0
    assert _scalar(dev, "select count(*) from orders where total > 0") > 200


ROW_BROKEN = """
select (select count(*) from order_items where line_total <> qty * unit_price)
     + (select count(*) from orders where grand_total <> total + shipping)
"""


def test_a_number_that_is_the_sum_or_product_of_two_of_its_row_stays_so(summed) -> None:  # type: ignore[no-untyped-def]
    source, dev, report, _ = summed
    assert _scalar(source, ROW_BROKEN) == 0
    assert _scalar(dev, ROW_BROKEN) == 0
    # the grand total follows the total that its lines set (derived again after the sums)
    assert _scalar(dev, BROKEN) == 0
    assert _scalar(dev, "select count(distinct shipping) from orders") > 50
    notes = report.synthetic.notes
    assert "enforced: order_items.line_total = qty * unit_price per row" in notes
    assert "enforced: orders.grand_total = total + shipping per row" in notes


def test_numbers_that_are_not_sums_are_left_to_the_model(summed) -> None:  # type: ignore[no-untyped-def]
    _, dev, report, _ = summed
    # refunds do not add up to the total, and the discount follows no child
    assert not any("refunds" in note and "enforced" in note for note in report.synthetic.notes)
    assert _scalar(dev, "select count(distinct discount) from orders") > 50


def test_the_gate_checks_the_sum(summed) -> None:  # type: ignore[no-untyped-def]
    _, dev, report, config = summed
    suites = {name: read_suite(suite_path(config, "public", name)) for name in report.schema.tables}
    assert not any(t.failures for t in validate_schema(dev, "public", suites, None).values())
    with psycopg.connect(dev) as conn:
        conn.execute("update orders set total = total + 1 where id = (select min(id) from orders)")
    try:
        failures = validate_schema(dev, "public", suites, None)["orders"].failures
    finally:
        with psycopg.connect(dev) as conn:
            conn.execute(
                "update orders set total = total - 1 where id = (select min(id) from orders)"
            )
    assert any("sum(order_items.qty * order_items.unit_price)" in f for f in failures), failures
    assert any("orders.grand_total = total + shipping" in f for f in failures), failures


def _frames(shares_broken: float) -> tuple[Table, Table, ForeignKey, pd.DataFrame, dict]:
    rng = np.random.default_rng(3)
    parent = Table(
        "orders",
        (
            Column("id", "integer", "integer", False),
            Column("total", "numeric", "numeric", False, numeric_scale=2),
        ),
        primary_key=("id",),
    )
    fk = ForeignKey("fk", ("order_id",), "orders", ("id",), False)
    child = Table(
        "lines",
        (
            Column("id", "integer", "integer", False),
            Column("order_id", "integer", "integer", False),
            Column("qty", "integer", "integer", False),
            Column("price", "numeric", "numeric", False, numeric_scale=2),
        ),
        primary_key=("id",),
        foreign_keys=(fk,),
    )
    n = 200
    qty_sum = rng.integers(1, 20, n).astype(float)
    product_sum = np.round(rng.uniform(5, 500, n), 2)
    total = product_sum.copy()
    broken = rng.random(n) < shares_broken
    total[broken] += 1.0
    counts = rng.integers(1, 5, n)
    counts[:20] = 0
    total[:20] = 0
    frame = pd.DataFrame({"id": np.arange(n), "total": total})
    sums = {("qty",): qty_sum, ("price",): qty_sum * 3, ("qty", "price"): product_sum}
    return parent, child, fk, frame, {"counts": counts, "sums": sums}


def test_a_sum_is_found_when_production_keeps_it_and_not_otherwise() -> None:
    parent, child, fk, frame, got = _frames(0.0)
    found = detect(parent, child, fk, frame, got["counts"], got["sums"])
    assert [(r.column, r.terms, r.empty) for r in found] == [("total", ("qty", "price"), ZERO)]
    # one parent in ten off by a unit: not a rule of production
    parent, child, fk, frame, got = _frames(0.1)
    assert detect(parent, child, fk, frame, got["counts"], got["sums"]) == []
    # childless parents with other values: the model's value stays for them
    parent, child, fk, frame, got = _frames(0.0)
    frame.loc[:19, "total"] = np.arange(20.0)
    assert detect(parent, child, fk, frame, got["counts"], got["sums"])[0].empty == MODEL


def test_row_rules_are_found_only_where_every_row_keeps_them() -> None:
    rng = np.random.default_rng(5)
    table = Table(
        "t",
        (
            Column("id", "integer", "integer", False),
            Column("a", "numeric", "numeric", False, numeric_scale=2),
            Column("b", "integer", "integer", False),
            Column("c", "numeric", "numeric", False, numeric_scale=2),
            Column("d", "numeric", "numeric", False, numeric_scale=2),
        ),
        primary_key=("id",),
    )
    a = np.round(rng.uniform(1, 50, 300), 2)
    b = rng.integers(1, 6, 300)
    frame = pd.DataFrame(
        {"id": np.arange(300), "a": a, "b": b, "c": np.round(a * b, 2), "d": np.round(a + 3.5, 2)}
    )
    found = find_row_rules(table, frame)
    assert [(r.column, r.left, r.op, r.right) for r in found] == [("c", "a", "*", "b")]
    frame.loc[7, "c"] += 0.01  # one row off by a cent: production does not keep it
    assert find_row_rules(table, frame) == []


TAXED = """
select setseed(0.29);
create table invoices (id int primary key, issued date not null,
                       total numeric(12,2) not null);
create table lines (id int primary key, invoice_id int not null references invoices(id),
                    qty int not null, price numeric(10,2) not null,
                    discount numeric(4,2) not null, tax numeric(4,2) not null);
insert into invoices select i, date '2024-01-01' + (random() * 365)::int, 0
from generate_series(1, 300) i;
insert into lines
select row_number() over (), v.id, 1 + floor(random() * 9)::int,
       round((20 + random() * 480)::numeric, 2), round((random() * 0.3)::numeric, 2),
       (array[0.05, 0.07, 0.19])[1 + floor(random() * 3)::int]
from invoices v, generate_series(1, 1 + v.id % 5) k;
-- a total with discount and tax, as TPC-H's o_totalprice: rounded once, at the end
update invoices v set total = s.t
from (select invoice_id, round(sum(qty * price * (1 - discount) * (1 + tax)), 2) t
      from lines group by 1) s
where s.invoice_id = v.id;
"""

TAXED_BROKEN = """
select count(*) from invoices v
join (select invoice_id, sum(qty * price * (1 - discount) * (1 + tax)) t from lines group by 1) s
  on s.invoice_id = v.id
where abs(v.total - s.t) > 0.006
"""


def test_a_total_with_discount_and_tax_is_the_sum_of_its_lines(make_database) -> None:  # type: ignore[no-untyped-def]
    """Factors of 1 - discount and 1 + tax, which lie in [0, 1), are tried on each term."""
    source = make_database("taxed")
    with psycopg.connect(source) as conn:
        conn.execute(TAXED)
    dev = make_database("taxed_dev")
    report = run_refresh(make_config(source, {"dev": dev}))  # the gate checks the sum too
    assert _scalar(source, TAXED_BROKEN) == 0
    assert _scalar(dev, "select count(*) from invoices where total > 0") > 250
    assert _scalar(dev, TAXED_BROKEN) == 0
    rule = (
        "enforced: invoices.total = sum(lines.qty * lines.price * (1 - lines.discount) * "
        "(1 + lines.tax))"
    )
    assert any(rule in note for note in report.synthetic.notes), report.synthetic.notes
