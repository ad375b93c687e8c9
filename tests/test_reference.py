"""Reference tables (``tables.overrides.<table>.reference``): lookup data such as genres and
shippers is published as production has it, so QA's ``where genre = 'Rock'`` finds rows, while
the tables that point at it stay synthetic and attach to it as production's rows do."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from synth_assets.errors import ConfigError
from synth_assets.refresh import run_refresh
from synth_assets.relations import Side, parents_by_label
from tests.conftest import make_config
from tests.helpers import scalar

GENRES = ["Rock", "Jazz", "Metal", "Blues", "Latin", "Reggae", "Pop", "Soundtrack", "Classical"]

PLANTED = f"""
select setseed(0.41);
create table genres (id int primary key, name text not null unique);
insert into genres select i, (array{GENRES!r})[i] from generate_series(1, {len(GENRES)}) i;
create table shippers (id int primary key, company_name text not null, phone text not null);
insert into shippers values (1, 'Speedy Express', '(503) 555-9831'),
  (2, 'United Package', '(503) 555-3199'), (3, 'Federal Shipping', '(503) 555-9931');
create table regions (id int primary key, description text not null);
insert into regions values (1, 'Eastern'), (2, 'Western'), (3, 'Northern'), (4, 'Southern');
create table territories (id int primary key, description text not null,
                          region_id int not null references regions(id));
insert into territories
select i, 'Territory ' || i, 1 + i % 4 from generate_series(1, 24) i;
-- Rock has most tracks, and long ones; Classical tracks are the longest and dearest (lengths
-- to the thousandth: a fifth of the synthetic tracks equal a production one and are drawn
-- again, near where they were, so they keep their genre)
create table tracks (id int primary key, genre_id int not null references genres(id),
                     shipper_id int not null references shippers(id),
                     territory_id int not null references territories(id),
                     minutes numeric(7,3) not null, price numeric(5,2) not null);
insert into tracks
select i, g, 1 + (i % 3), 1 + (i * 7) % 24,
       round((case g when 1 then 5 when 9 then 12 else 3 end + random() * 2)::numeric, 3),
       case when g = 9 then 1.99 else 0.99 end
from (select i, case when random() < 0.45 then 1
                     else 2 + floor(random() * {len(GENRES) - 1})::int end as g
      from generate_series(1, 1500) i) s;
"""

PER_GENRE = """
select g.name, count(*)::float8 / (select count(*) from tracks), avg(t.minutes)::float8
from tracks t join genres g on g.id = t.genre_id group by g.name
"""


def _rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return sorted(conn.execute(query).fetchall())


@pytest.fixture(scope="module")
def referenced(make_database):  # type: ignore[no-untyped-def]
    source = make_database("reference")
    with psycopg.connect(source) as conn:
        conn.execute(PLANTED)
    dev = make_database("reference_dev")
    overrides = {t: {"reference": True} for t in ("genres", "shippers", "regions", "territories")}
    config = make_config(source, {"dev": dev}, scale=2.0, tables={"overrides": overrides})
    return source, dev, run_refresh(config)


def test_reference_tables_are_production_rows(referenced) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = referenced
    for table in ("genres", "regions", "territories"):
        query = f"select * from {table}"
        assert _rows(dev, query) == _rows(source, query), table
    # scale applies to the synthetic tables, not to lookup data
    assert scalar(dev, "select count(*) from genres") == len(GENRES)
    assert 2700 <= scalar(dev, "select count(*) from tracks") <= 3300


def test_personal_data_of_a_reference_table_is_still_generated(referenced) -> None:  # type: ignore[no-untyped-def]
    source, dev, report = referenced
    query = "select id, company_name from shippers"
    assert _rows(dev, query) == _rows(source, query)
    phones = {r[0] for r in _rows(source, "select phone from shippers")}
    published = {r[0] for r in _rows(dev, "select phone from shippers")}
    assert len(published) == 3 and not published & phones
    privacy = report.gates["dev"].privacy["shippers"]
    assert privacy.reference and privacy.passed and privacy.leaks == {"phone": 0}


def test_children_attach_to_reference_rows_as_in_production(referenced) -> None:  # type: ignore[no-untyped-def]
    source, dev, report = referenced
    real = {name: (share, minutes) for name, share, minutes in _rows(source, PER_GENRE)}
    synthetic = {name: (share, minutes) for name, share, minutes in _rows(dev, PER_GENRE)}
    assert set(synthetic) == set(real)  # every genre by its own name, none invented
    for name, (share, _) in real.items():
        assert abs(synthetic[name][0] - share) < 0.03, (name, synthetic[name], share)
    # a track goes to the genre whose tracks it resembles: long and dear ones to Classical,
    # long-ish ones to Rock, short ones shared among the others
    assert max(synthetic, key=lambda n: synthetic[n][1]) == "Classical"
    assert synthetic["Rock"][1] > max(synthetic[n][1] for n in GENRES[1:-1]) + 1
    for name in GENRES[1:-1]:
        assert abs(synthetic[name][1] - real[name][1]) < 0.4, (name, synthetic[name], real[name])
    on = "select avg((g.name = %s)::int)::float8 from tracks t join genres g on g.id = t.genre_id "
    assert scalar(dev, on + "where minutes > 10 and price > 1", ("Classical",)) > 0.9
    assert scalar(dev, on + "where minutes between 5.3 and 7 and price < 1", ("Rock",)) > 0.8
    orphans = "select count(*) from tracks t left join territories r on r.id = t.territory_id"
    assert scalar(dev, orphans + " where r.id is null") == 0
    # the tables pointing at lookup data are still synthetic, and the gate checked them
    assert report.gates["dev"].privacy["tracks"].copies == 0
    assert not report.gates["dev"].privacy["tracks"].reference
    assert any("reference table" in note for note in report.synthetic.notes)


def test_a_reference_table_over_a_synthetic_parent_is_refused(make_database) -> None:  # type: ignore[no-untyped-def]
    source = make_database("reference_bad")
    with psycopg.connect(source) as conn:
        conn.execute(PLANTED)
    dev = make_database("reference_bad_dev")
    config = make_config(
        source, {"dev": dev}, tables={"overrides": {"territories": {"reference": True}}}
    )
    with pytest.raises(ConfigError) as error:
        run_refresh(config)
    message = str(error.value)
    assert "tables.overrides.territories.reference" in message
    assert "territories_region_id_fkey" in message and "mark regions reference too" in message
    assert scalar(dev, "select count(*) from pg_tables where schemaname = 'public'") == 0


def test_a_reference_table_cannot_be_rebalanced_or_scaled() -> None:
    with pytest.raises(ConfigError) as error:
        make_config(
            "postgresql://u@h/db",
            {"dev": "postgresql://u@h/dev"},
            tables={
                "overrides": {
                    "genres": {
                        "reference": True,
                        "scale": 2.0,
                        "rebalance": {"column": "name", "target": {"Rock": 0.5}},
                    }
                }
            },
        )
    message = str(error.value)
    assert "tables.overrides.genres" in message and "scale and rebalance cannot apply" in message


def test_a_reference_row_keeps_its_count_when_more_rows_resemble_it() -> None:
    """Chinook's tracks per genre scored 0.80 with reference genres until the stretch that
    cluster labels get (a short label takes up to the mean count) was left out for them."""
    counts = np.array([10, 100])
    parents = Side(np.array(["small", "big"]), None)
    rows = Side(np.array(["small"] * 60 + ["big"] * 50), None)
    wants = np.ones(110, dtype=bool)
    for stretch, small in ((False, 10), (True, 55)):
        idx = parents_by_label(np.random.default_rng(3), counts, parents, rows, wants, stretch)
        assert np.bincount(idx, minlength=2).tolist() == [small, 110 - small]


def test_a_reference_table_is_read_whole_past_the_row_cap(make_database) -> None:  # type: ignore[no-untyped-def]
    source = make_database("reference_cap")
    with psycopg.connect(source) as conn:
        conn.execute(
            """
            create table postcodes (code text primary key, zone text not null);
            insert into postcodes select lpad(i::text, 5, '0'), 'Zone ' || (i % 40)
            from generate_series(1, 300) i;
            create table stores (id int primary key, code text not null references postcodes,
                                 area float8 not null);
            insert into stores select i, lpad((1 + i % 300)::text, 5, '0'), 50 + i % 97
            from generate_series(1, 400) i;
            """
        )
    dev = make_database("reference_cap_dev")
    overrides = {"postcodes": {"reference": True}}
    config = make_config(
        source, {"dev": dev}, max_rows_per_table=100, tables={"overrides": overrides}
    )
    run_refresh(config)
    query = "select code, zone from postcodes"
    assert _rows(dev, query) == _rows(source, query)  # all 300, not a sample of 100
    assert scalar(dev, "select count(*) from stores") == 400


def test_the_notes_name_tables_that_look_like_lookup_data(referenced, make_database) -> None:  # type: ignore[no-untyped-def]
    source, _, report = referenced
    assert not [n for n in report.synthetic.notes if "looks like lookup data" in n]
    dev = make_database("reference_hints_dev")
    notes = run_refresh(make_config(source, {"dev": dev})).synthetic.notes
    hinted = {n.split()[1] for n in notes if "looks like lookup data" in n}
    # shippers have phone numbers (personal data); territories point at regions, not marked
    assert hinted == {"genres", "regions"}, notes
    assert (
        "table genres looks like lookup data (9 rows, name generated as new words): if it is, "
        "tables.overrides.genres.reference: true publishes production's rows" in notes
    )
