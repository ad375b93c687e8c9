"""Relationships across tables that production has and the copy keeps (planted in the fixture)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import psycopg
import pytest

from synth_assets.refresh import run_refresh
from tests.conftest import make_config

PLANTED = """
select setseed(0.42);
create table customer (id int primary key, tenure_days int not null, country text not null,
                       segment text not null);
create table product (id int primary key, category text not null, price numeric(8,2) not null);
create table orders (id int primary key, customer_id int not null references customer(id),
                     currency text not null, amount numeric(10,2) not null);
create table order_item (order_id int not null references orders(id),
                         product_id int not null references product(id),
                         qty int not null, unit_price numeric(8,2) not null,
                         primary key (order_id, product_id));

insert into customer
select i, t, (array['DE', 'FR', 'US', 'GB'])[1 + (i % 4)],
       case when t + random() * 400 > 1500 then 'business' else 'retail' end
from (select i, (30 + random() * 2000)::int t from generate_series(1, 300) i) c;
-- orders per customer grow with tenure: planted correlation of parent attribute and child count
insert into orders
select row_number() over (), c.id,
       case when random() < 0.93 then
         case c.country when 'US' then 'USD' when 'GB' then 'GBP' else 'EUR' end
       else (array['EUR', 'USD', 'GBP'])[1 + floor(random() * 3)::int] end,
       round((20 + random() * 200)::numeric, 2)
from customer c, generate_series(1, 1 + (c.tenure_days / 150)) k
where random() < 0.9;
insert into product
select i, (array['books', 'garden', 'tools', 'toys', 'food'])[1 + (i % 5)],
       round((5 + random() * 95)::numeric, 2)
from generate_series(1, 60) i;
-- an item's unit price follows its product's price: a child with two parents
insert into order_item
select o.id, p.id, 1 + floor(random() * 4)::int, round(p.price * (0.9 + random() * 0.2)::numeric, 2)
from orders o
cross join lateral (select id, price from product
                    order by md5(o.id::text || '-' || product.id::text)
                    limit 1 + (o.id % 3)) p;
"""

COUNT_CORR = """
select corr(c.tenure_days, coalesce(n.k, 0))
from customer c left join (select customer_id, count(*) k from orders group by 1) n
  on n.customer_id = c.id
"""
HOME_CURRENCY = """
select avg((o.currency = case c.country when 'US' then 'USD' when 'GB' then 'GBP' else 'EUR' end)
           ::int)::float
from orders o join customer c on c.id = o.customer_id
"""
PRICE_CORR = """
select corr(i.unit_price, p.price) from order_item i join product p on p.id = i.product_id
"""


def _value(url: str, query: str) -> float:
    with psycopg.connect(url) as conn:
        return float(conn.execute(query).fetchone()[0])


@pytest.fixture(scope="module")
def planted(make_database):  # type: ignore[no-untyped-def]
    source = make_database("planted")
    with psycopg.connect(source) as conn:
        conn.execute(PLANTED)
    dev = make_database("planted_dev")
    report = run_refresh(make_config(source, {"dev": dev}))
    return source, dev, report


def test_children_per_parent_follow_parent_attributes(planted) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = planted
    production, synthetic = _value(source, COUNT_CORR), _value(dev, COUNT_CORR)
    assert production > 0.5  # the fixture plants a strong relation
    assert abs(synthetic - production) <= 0.1, (production, synthetic)


def test_children_per_parent_distribution_is_production_s(planted) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = planted
    query = "select count(*) from orders group by customer_id order by 1"
    with psycopg.connect(source) as a, psycopg.connect(dev) as b:
        prod = np.array([r[0] for r in a.execute(query)])
        synth = np.array([r[0] for r in b.execute(query)])
    assert abs(np.median(prod) - np.median(synth)) <= 1
    assert abs(prod.max() - synth.max()) <= 2


def test_child_attributes_follow_the_parent(planted) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = planted
    production, synthetic = _value(source, HOME_CURRENCY), _value(dev, HOME_CURRENCY)
    assert production > 0.9
    # with no link to the customer, a currency would match the country one time in three
    assert synthetic >= production - 0.15, (production, synthetic)


def test_a_child_of_two_parents_keeps_both(planted) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = planted
    production, synthetic = _value(source, PRICE_CORR), _value(dev, PRICE_CORR)
    assert production > 0.9
    assert synthetic >= production - 0.2, (production, synthetic)
    with psycopg.connect(dev) as conn:
        per_order = pd.Series(
            [r[0] for r in conn.execute("select count(*) from order_item group by order_id")]
        )
    assert per_order.between(1, 3).all()


RATIOS = """
select percentile_cont(array[0.05, 0.95]) within group (order by i.unit_price / p.price)
from order_item i join product p on p.id = i.product_id
"""


def test_a_child_number_that_tracks_its_parent_s_keeps_the_ratio(planted) -> None:  # type: ignore[no-untyped-def]
    """An item's price is its product's price within 10%: the copy holds that per row, not
    only as a trend (a rank pairing alone would give items of one product any price)."""
    source, dev, _ = planted
    production, synthetic = _value(source, PRICE_CORR), _value(dev, PRICE_CORR)
    assert abs(synthetic - production) <= 0.05, (production, synthetic)
    with psycopg.connect(dev) as conn:
        low, high = conn.execute(RATIOS).fetchone()[0]
    assert low >= 0.85 and high <= 1.15, (low, high)


def test_quality_report_has_train_on_synthetic_beside_train_on_real(planted) -> None:  # type: ignore[no-untyped-def]
    _, _, report = planted
    document = json.loads(report.quality.json_path.read_text())
    scores = {u["table"]: u for u in document["utility"]}
    segment = scores["customer"]  # an obvious target: a segment column, learnable from tenure
    assert segment["target"] == "segment" and segment["metric"] == "accuracy"
    assert segment["real"] > 0.75, segment
    assert segment["synthetic"] >= segment["real"] - 0.1, segment
    assert "train on synthetic, test on real" in report.quality.html_path.read_text()


def test_a_tracked_number_stays_inside_production_s_range() -> None:
    """A large synthetic parent times a large ratio would leave the range production has (and
    the gate expects): the tracked value is held inside it, as modelled numbers are."""
    import numpy as np

    from synth_assets.relations import Track
    from synth_assets.synthesize import Marginal

    rng = np.random.default_rng(0)
    ratios, _ = Marginal.fit(pd.Series(rng.uniform(0.5, 1.5, 500)), rng)
    track = Track("fk", "amount", "total", ratios, 2, False, low=1.0, high=100.0)
    parents = pd.Series(rng.uniform(1, 120, 50))  # the synthetic parents reach past 100
    idx = rng.integers(0, 50, 2_000)
    own = pd.Series(rng.uniform(1, 100, 2_000))
    out = track.apply(own, parents, idx, rng)
    assert out.between(1.0, 100.0).all(), (out.min(), out.max())
    assert (out == 100.0).any()  # some were held at the top, not dropped
