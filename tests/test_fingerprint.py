"""Incremental refreshes: an unchanged source refits and republishes nothing."""

from __future__ import annotations

import psycopg

from synth_assets.refresh import run_refresh
from tests.conftest import make_config
from tests.helpers import scalar

SOURCE = """
create table region (id int primary key, name text not null, area float8 not null);
create table shop (id int primary key, region_id int not null references region(id),
                   opened date not null, size int not null);
create table holiday (day date primary key, kind text not null, hours float8 not null);
insert into region select i, 'R' || i, i * 1.5 from generate_series(1, 30) i;
insert into holiday select date '2020-01-01' + 7 * i, (array['bank', 'school', 'local'])[1 + i % 3],
  (i * 37 % 80) / 10.0 from generate_series(1, 40) i;
insert into shop select i, 1 + i % 30, date '2020-01-01' + i, 10 + i % 40
  from generate_series(1, 400) i;
"""


def test_unchanged_source_is_not_refit_nor_republished(make_database) -> None:  # type: ignore[no-untyped-def]
    source, dev = make_database("fp_src"), make_database("fp_dev")
    with psycopg.connect(source) as conn:
        conn.execute(SOURCE)
    config = make_config(source, {"dev": dev})

    first = run_refresh(config, skip_unchanged=True)
    assert not first.unchanged and first.reused == set()
    published = scalar(dev, "select count(*) from public.shop")
    assert published == 400
    with psycopg.connect(dev) as conn:
        oid = conn.execute("select oid from pg_namespace where nspname = 'public'").fetchone()

    second = run_refresh(config, skip_unchanged=True)
    assert second.unchanged  # nothing read beyond counts, nothing fit, nothing swapped
    with psycopg.connect(dev) as conn:
        assert (
            conn.execute("select oid from pg_namespace where nspname = 'public'").fetchone() == oid
        )

    # one table changes: its model and its neighbours' (they learn from its rows) are fit
    # again, the unrelated table's is reused, and the warehouse is republished
    with psycopg.connect(source) as conn:
        conn.execute("insert into shop values (401, 1, date '2021-01-01', 12)")
    third = run_refresh(config, skip_unchanged=True)
    assert not third.unchanged
    assert third.reused == {"holiday"}
    assert scalar(dev, "select count(*) from public.shop") == 401

    # without skip_unchanged (prodtwin refresh --force) it refreshes anyway, from cached models
    forced = run_refresh(config)
    assert not forced.unchanged and forced.reused == {"region", "shop", "holiday"}
