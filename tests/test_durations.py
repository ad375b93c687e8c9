"""Times that follow another time of their row closely (an order shipped days after it was
placed, a shift that ends hours after it starts) keep production's durations, not only the
correlation of the two times across the table's months; a number's NULLs fall on the rows
production's would (the orders not shipped yet are the recent ones)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg

from synth_assets.durations import find_durations
from synth_assets.refresh import run_refresh
from synth_assets.schema import Column
from synth_assets.synthesize import fit_table
from tests.conftest import make_config
from tests.helpers import scalar

PLANTED = """
select setseed(0.31);
create table orders (id int primary key, placed_at timestamptz not null, shipped_at timestamptz,
                     required_on date not null, amount numeric(8,2) not null);
insert into orders
-- the orders of the last 30 days are not shipped yet
select i, p, case when p < timestamptz '2024-01-06 00:00+00'
                  then p + (1 + random() * 4) * interval '1 day' end,
       (p + interval '28 day')::date, round((20 + random() * 300)::numeric, 2)
from (select i, timestamptz '2023-01-01 00:00+00' + random() * interval '400 day' as p
      from generate_series(1, 1500) i) s;
"""
DAYS = """
select percentile_cont(array[0.05, 0.5, 0.95]) within group (order by extract(epoch from
       shipped_at - placed_at) / 86400) from orders
"""


def test_an_order_ships_and_is_due_as_many_days_after_it_is_placed(make_database) -> None:  # type: ignore[no-untyped-def]
    source, dev = make_database("durations"), make_database("durations_dev")
    with psycopg.connect(source) as conn:
        conn.execute(PLANTED)
    run_refresh(make_config(source, {"dev": dev}))
    real, synthetic = scalar(source, DAYS), scalar(dev, DAYS)
    for got, want in zip(synthetic, real, strict=True):  # 5%, median, 95%: within 0.3 days
        assert abs(got - want) < 0.3, (synthetic, real)
    # a date 28 days after a timestamp's day: whole days after it, not 27.4
    due = (
        "select count(*) from orders where required_on <> (placed_at at time zone 'UTC')::date + 28"
    )
    assert scalar(dev, due) == 0
    assert scalar(dev, "select count(*) from orders where shipped_at <= placed_at") == 0
    unshipped = "select avg((shipped_at is null)::int)::float8 from orders"
    assert abs(scalar(dev, unshipped) - scalar(source, unshipped)) < 0.02
    # and the orders not shipped are the recent ones, as in production (NULLs follow the row)
    recent = (
        "select avg((placed_at >= timestamptz '2024-01-01 00:00+00')::int)::float8 "
        "from orders where shipped_at is null"
    )
    assert scalar(source, recent) > 0.8
    assert scalar(dev, recent) > 0.8


def test_a_time_is_modelled_from_the_closest_earlier_one_it_follows() -> None:
    rng = np.random.default_rng(5)
    n = 500
    day = 86_400.0
    placed = rng.uniform(0, 400 * day, n)
    shipped = placed + rng.uniform(1, 5, n) * day
    delivered = shipped + rng.uniform(1, 3, n) * day
    required = placed + 28 * day
    born = rng.uniform(-40 * 365 * day, -20 * 365 * day, n)
    hired = placed + rng.uniform(-200, 200, n) * day  # follows placed no closer than itself
    frame = pd.DataFrame(
        {
            "born": born,
            "hired": hired,
            "placed": placed,
            "shipped": shipped,
            "delivered": delivered,
            "required": required,
        }
    )
    frame.loc[:9, "placed"] = np.nan  # shipped is set there: it cannot follow placed
    columns = [Column(name, "timestamp with time zone", "timestamptz", True) for name in frame]

    def bases() -> dict[str, str]:
        return {later: d.base for later, d in find_durations(frame, columns).items()}

    assert bases() in (
        {"delivered": "shipped", "required": "shipped"},
        {"delivered": "shipped", "required": "delivered"},
    )
    frame.loc[:9, "placed"] = placed[:10]
    assert bases() == {"shipped": "placed", "delivered": "shipped", "required": "placed"}
    assert list(bases()) == ["shipped", "delivered", "required"]  # bases first


def test_a_time_whose_base_is_null_is_null_too() -> None:
    rng = np.random.default_rng(8)
    n = 600
    day = 86_400.0
    created = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.uniform(0, 300, n), unit="D")
    approved = created + pd.to_timedelta(rng.uniform(0.1, 2, n), unit="D")
    approved = approved.where(pd.Series(rng.random(n) < 0.7))  # 30% never approved
    shipped = approved + pd.to_timedelta(rng.uniform(1, 3, n) * day, unit="s")
    frame = pd.DataFrame({"created": created, "approved": approved, "shipped": shipped})
    columns = [
        Column("created", "timestamp without time zone", "timestamp", False),
        Column("approved", "timestamp without time zone", "timestamp", True),
        Column("shipped", "timestamp without time zone", "timestamp", True),
    ]
    model = fit_table("orders", frame, columns, "gaussian_copula", seed=3)
    assert model.durations["shipped"].base == "approved" and "approved" in model.nulls
    out = model.sample(n, seed=4)
    assert not (out["shipped"].notna() & out["approved"].isna()).any()
    assert abs(out["approved"].isna().mean() - frame["approved"].isna().mean()) < 0.03
    days = (out["shipped"] - out["approved"]).dt.total_seconds() / day
    assert days.min() >= 1 - 1e-6 and days.max() <= 3 + 1e-6
