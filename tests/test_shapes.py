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
select setseed(0.42);
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
insert into "Order" select md5('order ' || i)::uuid, 'ORD-' || lpad(i::text, 6, '0'),
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

-- a NOT NULL cycle that only loads with deferred constraints (Pagila's store <-> staff)
create table shop (id int primary key, name text not null, head_clerk_id int not null);
create table clerk (id int primary key, shop_id int not null references shop(id),
                    grade int not null);
alter table shop add constraint shop_head_fk foreign key (head_clerk_id) references clerk(id)
  deferrable initially deferred;
-- self-references: a bushy tree (depth 0-4) and threads that are chains (depth 0-24)
create table employee (id int primary key, manager_id int references employee(id),
                       salary int not null);
create table post (id int primary key, parent_id int references post(id), score int not null);
-- two FKs to one parent, one nullable, with a CHECK between them
create table transfer (id int primary key, from_shop int not null references shop(id),
                       to_shop int references shop(id), amount int not null,
                       check (from_shop <> to_shop));
-- a link table and a child whose composite FK points at it
create table film (id int primary key, title text not null);
create table actor (id int primary key, born int not null);
create table film_actor (film_id int not null references film(id),
                         actor_id int not null references actor(id), primary key (film_id, actor_id));
create table scene (id int primary key, film_id int not null, actor_id int not null,
                    minutes int not null,
                    foreign key (film_id, actor_id) references film_actor(film_id, actor_id));
-- no primary key; children of a one-row parent and of an empty parent
create table audit_log (at timestamptz not null, shop_id int references shop(id), kind text not null);
create table single_child (id int primary key, single_id int not null references single(id));
create table empty_child (id int primary key, empty_id int references empty_table(id), v int);

begin;
insert into shop select i, 'Shop ' || i, i * 10 from generate_series(1, 15) i;
insert into clerk select i, 1 + (i % 15), i % 4 from generate_series(1, 150) i;
commit;
insert into employee select i, case when i = 1 then null else (i + 2) / 4 end, 1000 + i % 37
  from generate_series(1, 400) i;
insert into post select i, case when i % 25 = 1 then null else i - 1 end, i % 11
  from generate_series(1, 500) i;
insert into transfer select i, 1 + i % 15, case when i % 5 = 0 then null else 1 + (i + 3) % 15 end,
  i % 90 from generate_series(1, 300) i;
insert into film select i, 'Film ' || i from generate_series(1, 40) i;
insert into actor select i, 1950 + i % 10 from generate_series(1, 60) i;
insert into film_actor select f, a from generate_series(1, 40) f, generate_series(1, 60) a
  where (f * 7 + a * 3) % 10 = 0;
insert into scene select row_number() over (), fa.film_id, fa.actor_id, 1 + k % 9
  from film_actor fa, generate_series(1, 2) k;
select setseed(0.3);
insert into audit_log select timestamptz '2024-01-01' + random() * interval '300 days',
  case when i % 3 = 0 then null else 1 + i % 15 end, (array['open', 'close'])[1 + i % 2]
  from generate_series(1, 200) i;
insert into single_child select i, 1 from generate_series(1, 5) i;
insert into empty_child select i, null, i % 2 from generate_series(1, 8) i;
"""

DEPTHS = """
with recursive up(id, depth) as (
  select id, 0 from {t} where {p} is null
  union all
  select c.id, up.depth + 1 from {t} c join up on c.{p} = up.id where up.depth < 1000)
select max(depth), avg(depth)::float, count(*) from up
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
    assert "store" in [c.table for c in report.plan.cut]
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


def test_not_null_cycle_loads_with_deferred_constraints(shapes) -> None:  # type: ignore[no-untyped-def]
    _, dev, report = shapes
    assert any(c.table == "shop" and c.foreign_key.deferrable for c in report.plan.cut)
    assert scalar(dev, "select count(*) from shop") == 15
    assert scalar(dev, "select count(*) from shop s join clerk c on c.id = s.head_clerk_id") == 15


@pytest.mark.parametrize("table, column", [("employee", "manager_id"), ("post", "parent_id")])
def test_self_reference_trees_keep_their_depths(shapes, table, column) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = shapes
    query = DEPTHS.format(t=table, p=column)
    with psycopg.connect(source) as a, psycopg.connect(dev) as b:
        prod_max, prod_mean, _ = a.execute(query).fetchone()
        synth_max, synth_mean, synth_reached = b.execute(query).fetchone()
        rows = b.execute(f"select count(*) from {table}").fetchone()[0]
    # every row is reached from a root: no cycles, no row hanging off a loop
    assert synth_reached == rows
    assert abs(synth_max - prod_max) <= max(1, 0.1 * prod_max), (prod_max, synth_max)
    assert abs(synth_mean - prod_mean) <= 0.15 * prod_mean, (prod_mean, synth_mean)


def test_two_foreign_keys_to_one_parent(shapes) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = shapes
    assert scalar(dev, "select count(*) from transfer where from_shop = to_shop") == 0
    assert scalar(dev, "select count(distinct from_shop) from transfer") > 5
    assert scalar(dev, "select count(distinct to_shop) from transfer") > 5
    nulls = "select avg((to_shop is null)::int)::float from transfer"
    assert abs(scalar(dev, nulls) - scalar(source, nulls)) <= 0.05


def test_composite_fk_to_a_link_table(shapes) -> None:  # type: ignore[no-untyped-def]
    _, dev, _ = shapes
    assert scalar(dev, "select count(*) from scene") > 0
    assert (
        scalar(
            dev,
            "select count(*) from scene s left join film_actor fa using (film_id, actor_id) "
            "where fa.film_id is null",
        )
        == 0
    )
    assert (
        scalar(
            dev,
            "select count(*) from (select film_id, actor_id from film_actor "
            "group by 1, 2 having count(*) > 1) d",
        )
        == 0
    )


def test_table_without_primary_key_and_children_of_tiny_parents(shapes) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = shapes
    assert scalar(dev, "select count(*) from audit_log") == 200
    nulls = "select avg((shop_id is null)::int)::float from audit_log"
    assert abs(scalar(dev, nulls) - scalar(source, nulls)) <= 0.07
    assert (
        scalar(dev, "select count(*) from single_child c join single s on s.id = c.single_id") == 5
    )
    assert scalar(dev, "select count(*) from empty_child where empty_id is null") == 8
