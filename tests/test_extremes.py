"""Values a float64 or a nanosecond timestamp cannot hold, through a full refresh.

Real schemas hold sentinel dates (9999-12-31 for "still valid", 0001-01-01 for "unknown"),
NaN readings and bigints beyond 2^53; the copy must keep them as production has them (at
production's rates) and never turn them into NULL, which a NOT NULL column would refuse.
"""

from __future__ import annotations

import psycopg
import pytest

from synth_assets.refresh import run_refresh
from tests.conftest import make_config

EXTREMES = """
select setseed(0.7);
create table contract (id int primary key, valid_from date not null, valid_to date not null,
                       signed_at timestamptz not null, reading float8 not null, spread float8,
                       ref bigint, amount numeric(10,2) not null);
insert into contract
select i, d, case when i % 10 < 3 then date '9999-12-31' else d + (10 + i % 300) end,
       case when i % 20 = 0 then timestamptz '0001-01-01 00:00:00+00'
            else timestamptz '2024-01-01 00:00+00' + i * interval '7 hours' end,
       case when i % 5 = 0 then 'NaN'::float8 else 20 + random() * 5 end,
       case when i % 10 = 1 then null when i % 10 = 2 then 'NaN' else random() end,
       case when i % 4 = 0 then null when i % 4 = 1 then 9223372036854775807
            else 9007199254740993 + i end,
       case when i % 50 = 0 then 99999999.99 else round((random() * 1000)::numeric, 2) end
from (select i, date '2020-01-01' + (i % 900) as d from generate_series(1, 400) i) s;
-- a child: its rows are matched to parents by the parents' values, sentinels and NaN included
-- (fee makes every row's combination unique: rows equal to a production row are drawn again,
-- and (9999-12-31, NaN) would be such a row far more often than a row of ordinary values)
create table payment (id int primary key, contract_id int not null references contract(id),
                      due date not null, ratio float8 not null, fee float8 not null);
insert into payment
select i, 1 + (i * 7) % 400, case when i % 8 = 0 then date '9999-12-31' else date '2024-01-01' + i % 365 end,
       case when i % 9 = 0 then 'Infinity' when i % 9 = 1 then '-Infinity' when i % 9 = 2 then 'NaN'
            else random() end, random() * 10
from generate_series(1, 1200) i;
-- few combinations: many rows equal a production row and are drawn again
create table flag (id int primary key, contract_id int not null references contract(id),
                   level float8 not null, day date not null);
insert into flag
select i, 1 + i % 400, case when i % 3 = 0 then 'NaN' else (i % 4)::float8 end,
       date '2020-01-01' + (i * 37) % 1500
from generate_series(1, 600) i;
-- keys above 2^53 (snowflake ids) in a self-reference with NULL roots: a float64 would merge
-- neighbouring keys, and the trees with them
create table node (id bigint primary key, parent_id bigint references node(id), w int not null);
insert into node select 1152921504606846976 + 3 * i,
  case when i % 8 = 1 then null else 1152921504606846976 + 3 * (i - 1) end, i % 5
from generate_series(1, 240) i;
"""

SHARES = """
select avg((valid_to = '9999-12-31')::int)::float, avg((signed_at = '0001-01-01 00:00+00')::int)::float,
       avg((reading = 'NaN')::int)::float, avg(coalesce(spread = 'NaN', false)::int)::float,
       avg((spread is null)::int)::float, count(*) filter (where valid_to < valid_from)
from contract
"""


@pytest.fixture(scope="module")
def refreshed(make_database):  # type: ignore[no-untyped-def]
    source = make_database("extremes")
    with psycopg.connect(source) as conn:
        conn.execute(EXTREMES)
    dev = make_database("extremes_dev")
    report = run_refresh(make_config(source, {"dev": dev}))
    return source, dev, report


def _row(url: str, query: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()


def test_the_refresh_publishes_sentinels_nan_and_large_bigints(refreshed) -> None:  # type: ignore[no-untyped-def]
    """The NOT NULL columns holding 9999-12-31, 0001-01-01 and NaN load and pass the gate."""
    _, _, report = refreshed
    assert report.published["dev"].rows["contract"] == 400
    assert report.published["dev"].rows["payment"] == 1200
    assert report.published["dev"].rows["flag"] == 600


def test_rows_drawn_again_keep_their_nan(refreshed) -> None:  # type: ignore[no-untyped-def]
    """Redrawing the rows that equal a production row does not turn a NaN into a NULL."""
    _, dev, _ = refreshed
    nan, null = _row(
        dev,
        "select count(*) filter (where level = 'NaN'), count(*) filter (where level is null) "
        "from flag",
    )
    assert nan > 0 and null == 0


def test_a_child_keeps_its_infinities_nan_and_sentinels(refreshed) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = refreshed
    query = (
        "select avg((ratio = 'Infinity')::int)::float, avg((ratio = '-Infinity')::int)::float, "
        "avg((ratio = 'NaN')::int)::float, avg((due = '9999-12-31')::int)::float, "
        "count(*) filter (where ratio is null or due is null) from payment"
    )
    production, synthetic = _row(source, query), _row(dev, query)
    for want, got in zip(production[:4], synthetic[:4], strict=True):
        assert abs(want - got) <= 0.04, (production, synthetic)
    assert synthetic[4] == 0


def test_sentinels_and_nan_keep_production_s_rates(refreshed) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = refreshed
    production, synthetic = _row(source, SHARES), _row(dev, SHARES)
    assert production[:5] == pytest.approx((0.3, 0.05, 0.2, 0.1, 0.1))
    for want, got in zip(production[:5], synthetic[:5], strict=True):
        assert abs(want - got) <= 0.06, (production, synthetic)
    assert synthetic[5] == 0  # valid_to >= valid_from still holds, sentinel rows included


def test_nan_and_null_stay_apart_and_dates_stay_in_range(refreshed) -> None:  # type: ignore[no-untyped-def]
    _, dev, _ = refreshed
    spread_nan, spread_null, odd_dates = _row(
        dev,
        "select count(*) filter (where spread = 'NaN'), count(*) filter (where spread is null), "
        "count(*) filter (where valid_to <> '9999-12-31' and valid_to > '2300-01-01') "
        "from contract",
    )
    assert spread_nan > 0 and spread_null > 0
    assert odd_dates == 0  # the sentinel is reproduced, not smeared into dates between


def test_integers_and_numerics_near_their_type_limits_fit(refreshed) -> None:  # type: ignore[no-untyped-def]
    """A bigint at 2^63 - 1 and a numeric(10,2) at 99999999.99 are sampled inside their types
    (as floats they round up, to 2^63 and 1e8, which do not fit)."""
    _, dev, _ = refreshed
    big, amount = _row(dev, "select max(ref), max(amount) from contract")
    assert big <= 9223372036854775807 and amount <= 99999999.99


def test_the_privacy_gate_sees_a_copied_row_whatever_the_time_unit(make_database) -> None:  # type: ignore[no-untyped-def]
    """Production's dates are read at microseconds (one row holds 9999-12-31); a synthetic
    table without such a date is read at nanoseconds: a copied row must still be found."""
    from synth_assets import roles as R
    from synth_assets.config import Privacy
    from synth_assets.db import source_snapshot
    from synth_assets.extract import read_table
    from synth_assets.privacy import check_privacy
    from synth_assets.schema import introspect

    url = make_database("units")
    with psycopg.connect(url) as conn:
        conn.execute(
            "create table real_rows (id int primary key, d date not null, v int not null);"
            "create table copied (id int primary key, d date not null, v int not null);"
            "insert into real_rows select i, date '2024-01-01' + i, i from generate_series(1, 20) i;"
            "insert into real_rows values (21, '9999-12-31', 21);"
            "insert into copied select i, date '2024-01-01' + i, i + 100 from generate_series(1, 20) i;"
            "update copied set v = 5 where id = 5"  # (2024-01-06, 5) is production's row 5
        )
    with source_snapshot(url) as conn:
        schema = introspect(conn, "public")
        real = read_table(conn, "public", schema.tables["real_rows"], None, 0, 1)
        synthetic = read_table(conn, "public", schema.tables["copied"], None, 0, 1)
    assert str(real["d"].dtype) != str(synthetic["d"].dtype)  # the situation this is about
    roles = {"id": R.ColumnRole(R.KEY), "d": R.ColumnRole(R.MODEL), "v": R.ColumnRole(R.MODEL)}
    table = schema.tables["real_rows"]
    result = check_privacy(table, roles, real, real, real.iloc[:0], synthetic, Privacy(), 1)
    assert result.copies == 1


def test_a_tree_of_keys_above_2_53_keeps_its_depths(refreshed) -> None:  # type: ignore[no-untyped-def]
    """Chains of eight under each NULL root, keyed by bigints a float64 cannot tell apart."""
    source, dev, _ = refreshed
    depths = """
    with recursive up(id, depth) as (
      select id, 0 from node where parent_id is null
      union all select n.id, up.depth + 1 from node n join up on n.parent_id = up.id)
    select max(depth), count(*) from up
    """
    assert _row(source, depths) == (7, 240)
    assert _row(dev, depths) == (7, 240)
    assert _row(dev, "select min(id) from node")[0] > 2**60


ROUND_TRIP_DDL = """
create table x (id int primary key, big bigint, f float8 not null, fn float8, n numeric,
  d date not null, ts timestamp, tz timestamptz);
insert into x values
  (1, 9007199254740993, 'NaN', 'NaN', 'NaN', '9999-12-31', '9999-12-31 23:59:59.999999',
   '9999-12-31 23:59:59.999999+00'),
  (2, null, 1.5, null, 1234567.5678, '0001-01-01', '0001-01-01 00:00:00',
   '0001-01-01 00:00:00+00'),
  (3, 9223372036854775807, 'Infinity', 2.5, null, '2024-02-29', null, null),
  (4, -9223372036854775808, 'NaN', 'NaN', 'NaN', '9999-12-31', '2024-01-01', '2024-01-01 00:00+00');
"""


def test_extreme_values_round_trip_exactly(make_database) -> None:
    """What a float64 or a nanosecond timestamp cannot hold arrives as production has it: a
    bigint above 2^53 beside a NULL, NaN apart from NULL (float and numeric), 9999-12-31 and
    0001-01-01 sentinels in dates and timestamps."""
    from synth_assets.db import source_snapshot
    from synth_assets.extract import read_table
    from synth_assets.publish import load_staging
    from synth_assets.schema import introspect

    src = make_database("src")
    with psycopg.connect(src) as conn:
        conn.execute(ROUND_TRIP_DDL)
    with source_snapshot(src) as conn:
        schema = introspect(conn, "public")
        frame = read_table(conn, "public", schema.tables["x"], None, 0, 1)
    dst = make_database("dst")
    query = "select x::text from {}.x order by id"
    with psycopg.connect(src) as conn:
        expected = [r[0] for r in conn.execute(query.format("public")).fetchall()]
    with psycopg.connect(dst) as conn:
        load_staging(conn, schema, ["x"], {"x": frame}, "public")
        published = [r[0] for r in conn.execute(query.format("public__staging")).fetchall()]
    assert published == expected


def test_an_infinite_date_is_refused_with_table_and_column(make_database) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL's 'infinity' has no Python date: the user is told where it is and what to do,
    and nothing is published."""
    from synth_assets.errors import ProdtwinError

    source = make_database("infinite")
    with psycopg.connect(source) as conn:
        conn.execute(
            "create table ok (id int primary key, d date not null);"
            "insert into ok select i, date '2024-01-01' + i from generate_series(1, 20) i;"
            'create table "Plan" (id int primary key, ends timestamptz, starts date not null);'
            """insert into "Plan" select i, case when i % 4 = 0 then 'infinity'::timestamptz end, """
            "date '2024-01-01' + i from generate_series(1, 20) i"
        )
    dev = make_database("infinite_dev")
    with pytest.raises(
        ProdtwinError, match=r"table Plan: column ends holds 'infinity'.*9999-12-31"
    ):
        run_refresh(make_config(source, {"dev": dev}))
    assert _row(dev, "select count(*) from pg_namespace where nspname like 'public%'")[0] == 1


def test_a_unique_date_column_stays_unique_and_in_its_span(make_database) -> None:  # type: ignore[no-untyped-def]
    """Duplicates of a unique date moved a second above the maximum, the same date once
    published as a date: PostgreSQL refused the UNIQUE index and nothing was published. They
    now take free days near them, inside production's span."""
    source = make_database("unique_days")
    with psycopg.connect(source) as conn:
        conn.execute(
            "select setseed(0.7); create table daily (id int primary key, day date not null "
            "unique, visits int not null); insert into daily select row_number() over (), d, "
            "(100 + random() * 900)::int from (select distinct date '2022-01-01' + (random() * "
            "729)::int as d from generate_series(1, 330)) s"
        )
    dev = make_database("unique_days_dev")
    run_refresh(make_config(source, {"dev": dev}))
    with psycopg.connect(source) as conn:
        low, high, rows = conn.execute("select min(day), max(day), count(*) from daily").fetchone()
    with psycopg.connect(dev) as conn:
        found = conn.execute("select min(day), max(day), count(distinct day) from daily").fetchone()
    assert found[2] == rows and low <= found[0] and found[1] <= high, (found, low, high, rows)
