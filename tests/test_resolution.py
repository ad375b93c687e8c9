"""Synthetic values are written at production's resolution: a timestamp column of midnights
stays at midnights, a float price of cents stays in cents, and a measurement of full
precision keeps it."""

from __future__ import annotations

import psycopg

from synth_assets.refresh import run_refresh
from tests.conftest import make_config

PLANTED = """
select setseed(0.17);
create table orders (
  id int primary key,
  ordered_at timestamp not null,         -- always a midnight
  shipped_at timestamp not null,         -- whole seconds, after ordered_at
  price real not null,                   -- cents in a float column
  weight double precision not null       -- full precision
);
insert into orders
select i, o, o + make_interval(secs => (3600 + random() * 400000)::int),
       round((5 + random() * 95)::numeric, 2)::real, 0.1 + random() * 20
from (select i, timestamp '2023-01-01' + make_interval(days => (random() * 600)::int) as o
      from generate_series(1, 400) i) s;
"""

CHECKS = """
select count(*) filter (where ordered_at <> date_trunc('day', ordered_at)),
       count(*) filter (where shipped_at <> date_trunc('second', shipped_at)),
       count(*) filter (where shipped_at <= ordered_at),
       count(*) filter (where abs(price * 100 - round(price * 100)) > 0.01),
       count(*) filter (where abs(weight * 10000 - round(weight * 10000)) > 0.01),
       count(*)
from orders
"""


def test_values_keep_the_resolution_production_writes_them_at(make_database) -> None:  # type: ignore[no-untyped-def]
    source, dev = make_database("resolution"), make_database("resolution_dev")
    with psycopg.connect(source) as conn:
        conn.execute(PLANTED)
        assert conn.execute(CHECKS).fetchone()[:4] == (0, 0, 0, 0)
    run_refresh(make_config(source, {"dev": dev}))
    with psycopg.connect(dev) as conn:
        off_day, off_second, unordered, off_cent, fine, rows = conn.execute(CHECKS).fetchone()
    assert rows >= 350
    assert off_day == 0 and off_second == 0 and off_cent == 0
    assert unordered == 0  # the order relation still holds after rounding
    # a column of full precision is not rounded to any step (a 0.0001 one included)
    assert fine > rows * 0.9
