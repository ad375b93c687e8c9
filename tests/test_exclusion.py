"""Exclusion constraints (no two bookings of a room overlap) and deferrable UNIQUE and primary keys
survive a refresh: the warehouse has production's constraints and the synthetic rows keep them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

from synth_assets.errors import PublishError
from synth_assets.exclusion import keep_apart, rule_of
from synth_assets.refresh import run_refresh
from synth_assets.schema import Column, ExclusionConstraint, Table
from tests.conftest import make_config
from tests.helpers import scalar

# built-in gist operator classes only (the embedded server has no btree_gist): one resource's
# maintenance windows, shifts as a range of two columns, a tariff's successive periods (the
# current one open-ended), and a shape prodtwin does not keep (boxes that must not overlap)
PLANTED = """
select setseed(0.17);
create table rooms (id int primary key, label text not null,
                    constraint rooms_label_key unique (label) deferrable initially deferred);
insert into rooms select i, 'Room ' || i from generate_series(1, 12) i;
create table maintenance (id int primary key, during tstzrange not null, cost numeric(8,2),
                          exclude using gist (during with &&));
insert into maintenance
select i, tstzrange(timestamptz '2024-01-01 00:00+00' + i * interval '6 h',
                    timestamptz '2024-01-01 00:00+00' + i * interval '6 h'
                    + (1 + floor(random() * 5)) * interval '1 h'),
       round((50 + random() * 400)::numeric, 2)
from generate_series(1, 300) i;
create table shifts (id int primary key, room_id int not null references rooms(id),
                     starts_at timestamptz not null, ends_at timestamptz not null,
                     wage numeric(8,2) not null, check (ends_at > starts_at),
                     exclude using gist (tstzrange(starts_at, ends_at) with &&));
insert into shifts
select i, 1 + i % 12, timestamptz '2024-03-01 00:00+00' + i * interval '10 h',
       timestamptz '2024-03-01 00:00+00' + i * interval '10 h'
       + (4 + floor(random() * 5)) * interval '1 h', round((15 + random() * 30)::numeric, 2)
from generate_series(1, 400) i;
create table tariffs (id int, rate numeric(6,2) not null, valid daterange not null,
                      constraint tariffs_pkey primary key (id) deferrable,
                      exclude using gist (valid with &&));
insert into tariffs
select i, 10 + i * 0.5, daterange(date '2020-01-01' + (i - 1) * 30,
                                  case when i < 40 then date '2020-01-01' + i * 30 end)
from generate_series(1, 40) i;
create table zones (id int primary key, area box not null, rent numeric(8,2) not null,
                    exclude using gist (area with &&));
insert into zones select i, box(point(i * 10, 0), point(i * 10 + 5, 5)),
                         round((100 + random() * 900)::numeric, 2)
from generate_series(1, 60) i;
"""

EXCLUSIONS = """
select c.relname, k.conname, pg_get_constraintdef(k.oid) from pg_constraint k
join pg_class c on c.oid = k.conrelid where k.contype = 'x' and c.relnamespace = 'public'::regnamespace
"""


def _rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return sorted(conn.execute(query, params or None).fetchall())


@pytest.fixture(scope="module")
def refreshed(make_database):  # type: ignore[no-untyped-def]
    source, dev = make_database("exclusion"), make_database("exclusion_dev")
    with psycopg.connect(source) as conn:
        conn.execute(PLANTED)
    return source, dev, run_refresh(make_config(source, {"dev": dev}))


def test_the_warehouse_has_production_exclusion_constraints_and_keeps_them(refreshed) -> None:  # type: ignore[no-untyped-def]
    source, dev, report = refreshed
    published = _rows(dev, EXCLUSIONS)
    # PostgreSQL checked every synthetic row against them while adding them
    assert published == [r for r in _rows(source, EXCLUSIONS) if r[0] != "zones"]
    for table in ("maintenance", "shifts", "tariffs"):
        assert scalar(dev, f"select count(*) from {table}") == scalar(
            source, f"select count(*) from {table}"
        )
    # a window keeps a length production has: it moved, it was not cut
    lengths = "select distinct upper(during) - lower(during) from maintenance"
    assert set(_rows(dev, lengths)) <= set(_rows(source, lengths))
    # and the windows still lie where production's do
    span = "select min(lower(during)), max(upper(during)) from maintenance"
    (low, high), (real_low, real_high) = _rows(dev, span)[0], _rows(source, span)[0]
    assert real_low <= low and high <= real_high
    # a tariff's periods follow one another; at most one is open-ended, as in production
    assert scalar(dev, "select count(*) from tariffs where upper_inf(valid)") <= 1
    # shifts last as long as production's (4 to 8 hours), laid end to end at most
    hours = "select extract(epoch from ends_at - starts_at) / 3600 from shifts"
    assert {round(h) for (h,) in _rows(dev, hours)} <= {4, 5, 6, 7, 8}
    # what is not kept is said, not silently dropped
    notes = [n for n in report.synthetic.notes if "exclusion constraint" in n]
    assert any(
        n.startswith("table zones: exclusion constraint zones_area_excl is not") for n in notes
    )
    assert any("maintenance" in n and n.startswith("enforced:") for n in notes)


def test_a_deferrable_primary_key_stays_deferrable(refreshed) -> None:  # type: ignore[no-untyped-def]
    _, dev, _ = refreshed
    query = "select condeferrable, condeferred from pg_constraint where conname = 'tariffs_pkey'"
    assert _rows(dev, query) == [(True, False)]
    with psycopg.connect(dev) as conn:  # QA renumbers two tariffs in one statement
        a, b = conn.execute("select id from tariffs order by id limit 2").fetchall()
        conn.execute(
            "update tariffs set id = case id when %s then %s else %s end where id in (%s, %s)",
            (a[0], b[0], a[0], a[0], b[0]),
        )


def test_a_deferrable_unique_constraint_stays_deferrable(refreshed) -> None:  # type: ignore[no-untyped-def]
    _, dev, _ = refreshed
    query = "select condeferrable, condeferred from pg_constraint where conname = 'rooms_label_key'"
    assert _rows(dev, query) == [(True, True)]
    with psycopg.connect(dev) as conn:  # QA swaps two labels in one transaction
        a, b = conn.execute("select id, label from rooms order by id limit 2").fetchall()
        conn.execute("update rooms set label = %s where id = %s", (b[1], a[0]))
        conn.execute("update rooms set label = %s where id = %s", (a[1], b[0]))
    assert _rows(dev, "select id, label from rooms where id in (%s, %s)", (a[0], b[0])) == [
        (a[0], b[1]),
        (b[0], a[1]),
    ]


def _bookings(admin_url: str) -> str:
    with psycopg.connect(admin_url) as conn:
        found = conn.execute(
            "select 1 from pg_available_extensions where name = 'btree_gist'"
        ).fetchone()
    if found is None:
        pytest.skip("this server has no btree_gist (= on a column inside a gist constraint)")
    return """
create extension if not exists btree_gist;
select setseed(0.23);
create table rooms (id int primary key, floor int not null);
insert into rooms select i, 1 + i % 4 from generate_series(1, 40) i;
create table bookings (id int primary key, room_id int not null references rooms(id),
                       during tstzrange not null, price numeric(8,2) not null,
                       exclude using gist (room_id with =, during with &&));
insert into bookings
select i, 1 + i % 40,
       tstzrange(timestamptz '2024-01-01 00:00+00' + (i / 40) * interval '3 day',
                 timestamptz '2024-01-01 00:00+00' + (i / 40) * interval '3 day'
                 + (1 + floor(random() * 2)) * interval '1 day'),
       round((60 + random() * 200)::numeric, 2)
from generate_series(1, 2000) i;
"""


def test_bookings_of_a_room_never_overlap_across_chunks(admin_url: str, make_database) -> None:  # type: ignore[no-untyped-def]
    planted = _bookings(admin_url)
    source, dev = make_database("bookings"), make_database("bookings_dev")
    with psycopg.connect(source) as conn:
        conn.execute(planted)
    # btree_gist where the guide says: outside the published schema
    with psycopg.connect(dev) as conn:
        conn.execute("create schema extensions; create extension btree_gist schema extensions")
    # chunks of about 300 rows: a room's bookings stay in one chunk (the room is the driver)
    run_refresh(make_config(source, {"dev": dev}, chunk_rows=300))
    assert _rows(dev, EXCLUSIONS) == _rows(source, EXCLUSIONS)
    overlapping = (
        "select count(*) from bookings a join bookings b on a.room_id = b.room_id "
        "and a.id < b.id and a.during && b.during"
    )
    assert scalar(dev, overlapping) == 0
    rooms = "select count(distinct room_id) from bookings"
    assert scalar(dev, rooms) > 0.8 * scalar(source, rooms)


def test_a_warehouse_without_the_operator_classes_is_told_what_to_install(
    admin_url: str, make_database
) -> None:  # type: ignore[no-untyped-def]
    planted = _bookings(admin_url)
    source, dev = make_database("bookings_src"), make_database("bookings_plain")
    with psycopg.connect(source) as conn:
        conn.execute(planted)
    with pytest.raises(PublishError, match=r"bookings_room_id_during_excl .*btree_gist"):
        run_refresh(make_config(source, {"dev": dev}))
    with psycopg.connect(dev) as conn:  # nothing was published
        assert conn.execute("select to_regclass('public.bookings')").fetchone() == (None,)


def test_spans_of_a_group_are_laid_out_apart_in_their_span() -> None:
    table = Table(
        "visits",
        (
            Column("id", "integer", "integer", False),
            Column("room", "integer", "integer", True),
            Column("starts", "timestamp without time zone", "timestamp", False),
            Column("ends", "timestamp without time zone", "timestamp", False),
        ),
        ("id",),
        exclusions=(
            ExclusionConstraint(
                "visits_excl", "", ("room", "tsrange(starts, ends)"), ("=", "&&"), ("room", None)
            ),
        ),
    )
    rule = rule_of(table, table.exclusions[0])
    assert not isinstance(rule, str)
    rng = np.random.default_rng(3)
    n = 400
    starts = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60 * 24, n), unit="h")
    hours = pd.to_timedelta(rng.integers(1, 48, n), unit="h")
    room = pd.array(rng.integers(0, 8, n), dtype="Int64")
    room[:5] = pd.NA  # no room: no constraint
    frame = pd.DataFrame({"id": range(n), "room": room, "starts": starts, "ends": starts + hours})
    latest = (frame["ends"].max() - pd.Timestamp(0)) // pd.Timedelta(microseconds=1)
    before = frame.copy()
    assert keep_apart(frame, table, rule, float(latest)) > 0
    assert ((frame["ends"] - frame["starts"]) == hours).all()  # lengths kept
    assert frame["ends"].max() <= before["ends"].max()
    assert frame.loc[:4].equals(before.loc[:4])
    for _, group in frame.dropna(subset=["room"]).groupby("room"):
        ordered = group.sort_values("starts")
        assert (ordered["starts"].to_numpy()[1:] >= ordered["ends"].to_numpy()[:-1]).all()
