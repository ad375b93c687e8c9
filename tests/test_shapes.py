"""Key shapes real schemas have, each through a full refresh into a real warehouse."""

from __future__ import annotations

import psycopg
import pytest

from synth_assets.db import source_snapshot
from synth_assets.refresh import run_refresh
from synth_assets.schema import introspect
from tests.conftest import make_config
from tests.helpers import orphan_counts, scalar

SHAPES = """
create table store (id int primary key, name text not null, manager_id int);
create table staff (id int primary key, store_id int not null references store(id),
                    first_name text not null, last_name text not null, active boolean not null);
alter table store add constraint store_manager_fk foreign key (manager_id) references staff(id);

create table "Order" ("Order ID" uuid primary key, "Code" text not null unique,
                      "placed at" timestamp not null, "select" int not null);
create table warehouse (code text primary key, region text not null);
create table bin (warehouse_code text not null, bin_no int not null, capacity int not null,
                  primary key (warehouse_code, bin_no),
                  foreign key (warehouse_code) references warehouse(code));
create table stock (id serial primary key, warehouse_code text not null, bin_no int not null,
                    "Order ID" uuid references "Order"("Order ID"), qty int not null check (qty >= 0),
                    foreign key (warehouse_code, bin_no) references bin(warehouse_code, bin_no));
create table account (id int primary key, iban text not null unique);
create table ledger (id int primary key, iban text not null references account(iban),
                     amount numeric(10,2) not null);
create table empty_table (id int primary key, note text);
create table single (id int primary key, label text not null, value numeric(6,1));
create table measurements (taken_at timestamptz not null, sensor int not null, reading float8,
                           tags text[], payload jsonb, span interval)
  partition by range (taken_at);
create table measurements_2024 partition of measurements
  for values from ('2024-01-01') to ('2025-01-01');
create table measurements_2025 partition of measurements
  for values from ('2025-01-01') to ('2026-01-01');
create table sensor_ref (id int primary key, kind text not null);
alter table measurements_2024 add constraint m24_sensor_fk foreign key (sensor) references sensor_ref(id);
alter table measurements_2025 add constraint m25_sensor_fk foreign key (sensor) references sensor_ref(id);

insert into store select i, 'Store ' || i, null from generate_series(1, 20) i;
insert into staff select i, 1 + (i % 20), 'F' || i, 'L' || i, i % 3 > 0 from generate_series(1, 200) i;
update store set manager_id = id * 3 where id % 4 > 0;
insert into "Order" select gen_random_uuid(), 'ORD-' || lpad(i::text, 6, '0'),
  timestamp '2024-01-01' + random() * interval '300 hours', i % 7 from generate_series(1, 300) i;
insert into warehouse select 'WH' || i, (array['north', 'south', 'east'])[1 + i % 3]
  from generate_series(1, 12) i;
insert into bin select 'WH' || w, b, 10 * b from generate_series(1, 12) w, generate_series(1, 1 + w % 5) b;
insert into stock (warehouse_code, bin_no, "Order ID", qty)
  select b.warehouse_code, b.bin_no, (select "Order ID" from "Order" order by "Code" limit 1 offset (i % 300)),
         i % 50 from bin b, generate_series(1, 5) i;
insert into account select i, 'DE' || lpad((i * 7919)::text, 20, '0') from generate_series(1, 100) i;
insert into ledger select i, 'DE' || lpad(((1 + i % 100) * 7919)::text, 20, '0'), (i % 97) * 1.5
  from generate_series(1, 400) i;
insert into single values (1, 'only', 3.5);
insert into sensor_ref select i, 'kind' || (i % 3) from generate_series(1, 10) i;
insert into measurements select timestamptz '2024-01-01' + i * interval '3 hours', 1 + i % 10,
  i * 0.5, array['a', 'b' || (i % 3)], jsonb_build_object('k', i % 4), (i % 5) * interval '1 minute'
  from generate_series(1, 3000) i;
"""


@pytest.fixture(scope="module")
def shapes(make_database):  # type: ignore[no-untyped-def]
    source = make_database("shapes")
    with psycopg.connect(source) as conn:
        conn.execute(SHAPES)
    dev = make_database("shapes_dev")
    report = run_refresh(make_config(source, {"dev": dev}))
    return source, dev, report


def test_every_table_arrives_with_no_orphans(shapes) -> None:  # type: ignore[no-untyped-def]
    source, dev, report = shapes
    with source_snapshot(source) as conn:
        schema = introspect(conn, "public")
    orphans = orphan_counts(dev, schema)
    assert orphans and all(v == 0 for v in orphans.values()), orphans
    assert set(report.published["dev"].rows) == set(schema.tables)


def test_nullable_cycle_is_cut_and_filled(shapes) -> None:  # type: ignore[no-untyped-def]
    source, dev, report = shapes
    assert [c.table for c in report.plan.cut] == ["store"]
    prod_nulls = scalar(source, "select avg((manager_id is null)::int)::float from store")
    synth_nulls = scalar(dev, "select avg((manager_id is null)::int)::float from store")
    assert abs(prod_nulls - synth_nulls) <= 0.25
    assert scalar(dev, "select count(*) from store where manager_id is not null") > 0


def test_identifiers_that_need_quoting(shapes) -> None:  # type: ignore[no-untyped-def]
    _, dev, _ = shapes
    assert scalar(dev, 'select count(distinct "Order ID") from "Order"') == 300
    assert scalar(dev, """select count(*) from "Order" where "Code" !~ '^ORD-[0-9]{6}$'""") == 0


def test_composite_fk_takes_its_values_from_one_parent_row(shapes) -> None:  # type: ignore[no-untyped-def]
    _, dev, _ = shapes
    assert (
        scalar(
            dev,
            "select count(*) from stock s left join bin b using (warehouse_code, bin_no) "
            "where b.capacity is null",
        )
        == 0
    )
    assert scalar(dev, "select count(*) from warehouse where code !~ '^WH[0-9]+$'") == 0


def test_fk_to_a_unique_non_key_column(shapes) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = shapes
    assert scalar(dev, "select count(*) from ledger l join account a using (iban)") == 400
    prod = {r for r in [scalar(source, "select string_agg(iban, ',') from account")]}
    assert scalar(dev, "select string_agg(iban, ',') from account") not in prod


def test_empty_and_single_row_tables(shapes) -> None:  # type: ignore[no-untyped-def]
    _, dev, _ = shapes
    assert scalar(dev, "select count(*) from empty_table") == 0
    assert scalar(dev, "select count(*) from single") == 1


def test_partitioned_table_keeps_partitions_and_fks(shapes) -> None:  # type: ignore[no-untyped-def]
    _, dev, _ = shapes
    assert (
        scalar(
            dev,
            "select count(*) from pg_inherits i join pg_class p on p.oid = i.inhparent "
            "where p.relname = 'measurements'",
        )
        == 2
    )
    assert scalar(dev, "select count(*) from measurements") == 3000
    assert (
        scalar(
            dev,
            "select count(*) from measurements where tags is null or payload is null "
            "or span is null",
        )
        == 0
    )
    assert (
        scalar(
            dev,
            "select count(*) from measurements m left join sensor_ref s "
            "on s.id = m.sensor where s.id is null",
        )
        == 0
    )
