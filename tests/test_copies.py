"""Copy avoidance redraws only the rows that would copy someone.

A synthetic row equal to a production row whose combination of values is unique identifies a
person and is drawn again. A combination that many production rows share (an order still open,
with no score yet) identifies no one: redrawing it would make it rare in the copy, where QA
expects to find it as often as in production.
"""

from __future__ import annotations

import psycopg
import pytest

from synth_assets.refresh import run_refresh
from tests.conftest import make_config

VISITS = """
select setseed(0.3);
create table visit (id int primary key, status text not null, score float8);
insert into visit
select i, case when i % 10 < 6 then 'open' when i % 10 < 8 then 'done' else 'late' end,
       case when i % 10 < 6 then null else round((random() * 100)::numeric, 3)::float8 end
from generate_series(1, 600) i;
"""
SHARE = "select avg((status = 'open' and score is null)::int)::float from visit"
COPIES = """
select count(*) from synthetic s join (
  select status, score from production group by status, score having count(*) = 1
) u on s.status = u.status and s.score = u.score
"""


@pytest.fixture(scope="module")
def refreshed(make_database):  # type: ignore[no-untyped-def]
    source = make_database("copies")
    with psycopg.connect(source) as conn:
        conn.execute(VISITS)
    dev = make_database("copies_dev")
    report = run_refresh(make_config(source, {"dev": dev}))
    return source, dev, report


def _one(url: str, query: str) -> float:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()[0]


def test_a_combination_many_rows_share_keeps_its_share(refreshed) -> None:  # type: ignore[no-untyped-def]
    source, dev, report = refreshed
    assert report.published["dev"].rows["visit"] == 600
    production, synthetic = _one(source, SHARE), _one(dev, SHARE)
    assert production == pytest.approx(0.6)
    assert abs(synthetic - production) <= 0.06, (production, synthetic)


def test_no_row_equals_a_unique_production_row(refreshed) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = refreshed
    with psycopg.connect(source) as conn:
        rows = conn.execute("select status, score from visit").fetchall()
    with psycopg.connect(dev) as conn:
        conn.execute("create temp table production (status text, score float8)")
        with conn.cursor().copy("copy production from stdin") as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute("create temp view synthetic as select status, score from visit")
        assert conn.execute(COPIES).fetchone()[0] == 0


PARENTS = """
select setseed(0.6);
create table member (id int primary key, tier text not null, joined date not null);
create table visit (id int primary key, member_id int not null references member(id));
-- 3 tiers x 150 days for 300 members: half of the members' (tier, day) are unique, and a
-- synthetic member drawn at random equals one of them about a third of the time
insert into member
select i, (array['basic', 'gold', 'silver'])[1 + i % 3], date '2024-01-01' + (random() * 150)::int
from generate_series(1, 300) i;
insert into visit select row_number() over (), m.id from member m, generate_series(1, 1 + m.id % 3);
"""


def test_a_parent_with_children_copies_no_member(make_database) -> None:  # type: ignore[no-untyped-def]
    """A parent's model also draws its hidden children counts: a redrawn row must still be
    compared on the table's own columns (it was compared with the count too, so every
    candidate looked new and rows stayed copies: the gate then refused the refresh)."""
    source = make_database("parents")
    with psycopg.connect(source) as conn:
        conn.execute(PARENTS)
    dev = make_database("parents_dev")
    report = run_refresh(make_config(source, {"dev": dev}))  # the gate counts copies
    assert report.published["dev"].rows["member"] == 300
    assert sum(p.copies for p in report.gates["dev"].privacy.values()) == 0
