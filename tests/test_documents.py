"""JSON documents and range values are generated, never copied: production's emails inside a
profile never reach the warehouse, and a table whose only data is a range publishes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

from synth_assets.documents import DocumentModel
from synth_assets.ranges import RangeModel, bounds_of, parts_of
from synth_assets.refresh import run_refresh
from tests.conftest import make_config

# profiles with personal data under keys that say so and under keys that do not (a contact
# list of emails), a status category, numbers, dates, free text and a map keyed by user names
PLANTED = """
select setseed(0.31);
create table accounts (
    id int primary key,
    plan text not null,
    profile jsonb not null,
    settings json,
    contact_emails text[],
    features text[] not null,
    ratings int[]
);
insert into accounts
select i, (array['free', 'pro', 'team'])[1 + i % 3],
       jsonb_build_object(
           'contact', jsonb_build_object(
               'email', 'person' || i || '@example.org',
               'phone', '+1-555-' || lpad((1000 + i)::text, 4, '0'),
               'backup', 'backup.person' || i || '@mail.example.com'),
           'status', (array['active', 'active', 'suspended', 'trial'])[1 + i % 4],
           'score', round((random() * 100)::numeric, 1),
           'logins', (random() * 40)::int,
           'joined', (date '2020-01-01' + (i * 3))::text,
           'bio', 'I am account holder number ' || i || ' and I like hiking',
           'tags', jsonb_build_array('t' || (i % 5), 't' || (i % 7)),
           'friends', jsonb_build_object('user_' || i, true)),
       case when i % 10 = 0 then null
            else json_build_object('theme', (array['dark', 'light'])[1 + i % 2], 'beta', i % 3 = 0)
       end,
       array['a' || i || '@example.org', 'b' || i || '@example.net'],
       case i % 3 when 0 then array['Trailers', 'Deleted Scenes'] when 1 then array['Commentaries']
                  else array['Trailers', 'Behind the Scenes'] end,
       array[(random() * 5)::int, (random() * 5)::int, null]
from generate_series(1, 400) i;
create table stays (id int primary key, during daterange not null, price numeric(8,2) not null,
                    booked_at date not null);
insert into stays
select i, daterange(d, d + n), round((90 * n + random() * 30)::numeric, 2), d - (n * 4)
from (select i, date '2024-01-01' + (random() * 300)::int as d, 1 + (random() * 6)::int as n
      from generate_series(1, 500) i) s;
create table windows (id int primary key, during tstzrange not null);
insert into windows
select i, tstzrange(timestamptz '2024-01-01 00:00+00' + i * interval '6 h',
                    timestamptz '2024-01-01 00:00+00' + i * interval '6 h'
                    + (1 + floor(random() * 5)) * interval '1 h')
from generate_series(1, 300) i;
create table prices (id int primary key, valid daterange, band int4range not null,
                     amount numrange);
insert into prices
select i, case when i % 20 = 0 then null
               when i % 7 = 0 then daterange(date '2023-01-01' + i, null)
               else daterange(date '2023-01-01' + i, date '2023-01-01' + i + 30) end,
       int4range(i % 50, i % 50 + 10),
       case when i % 11 = 0 then 'empty'::numrange else numrange(i * 1.25, i * 1.25 + 9.5) end
from generate_series(1, 200) i;
"""


def _all(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def _leaves(doc: object) -> list[object]:
    if isinstance(doc, dict):
        return [x for v in doc.values() for x in _leaves(v)]
    if isinstance(doc, list):
        return [x for v in doc for x in _leaves(v)]
    return [doc]


@pytest.fixture(scope="module")
def refreshed(make_database):  # type: ignore[no-untyped-def]
    source, dev = make_database("documents"), make_database("documents_dev")
    with psycopg.connect(source) as conn:
        conn.execute(PLANTED)
    return source, dev, run_refresh(make_config(source, {"dev": dev}))


def test_no_string_of_a_production_document_but_its_categories_reaches_the_warehouse(
    refreshed,
) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = refreshed
    real = [p for (p,) in _all(source, "select profile from accounts")]
    synthetic = [p for (p,) in _all(dev, "select profile from accounts")]
    assert len(synthetic) == len(real)
    # dates are drawn on production's days, so some are production's: a day is no one's
    strings = {x for doc in real for x in _leaves(doc) if isinstance(x, str)} - {
        doc["joined"] for doc in real
    }
    categories = {"active", "suspended", "trial"} | {f"t{i}" for i in range(7)}
    leaked = {x for doc in synthetic for x in _leaves(doc) if isinstance(x, str)} & strings
    assert leaked <= categories
    emails = [d["contact"]["email"] for d in synthetic] + [
        d["contact"]["backup"] for d in synthetic
    ]
    assert all("@" in e for e in emails)  # still emails, fake ones
    assert not set(emails) & strings
    # the map keyed by user names: its keys are data, scrambled, never production's
    real_keys = {k for doc in real for k in doc["friends"]}
    assert not {k for doc in synthetic for k in doc["friends"]} & real_keys


def test_document_leaves_keep_production_distribution_and_structure(refreshed) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = refreshed
    real = pd.DataFrame([p for (p,) in _all(source, "select profile from accounts")])
    synthetic = pd.DataFrame([p for (p,) in _all(dev, "select profile from accounts")])
    assert set(synthetic.columns) == set(real.columns)
    shares = real["status"].value_counts(normalize=True)
    got = synthetic["status"].value_counts(normalize=True).reindex(shares.index, fill_value=0)
    assert (got - shares).abs().max() < 0.08
    for name in ("score", "logins"):
        assert abs(synthetic[name].median() - real[name].median()) < 0.15 * real[name].std()
        assert (
            real[name].min() <= synthetic[name].min() <= synthetic[name].max() <= real[name].max()
        )
    assert all(isinstance(x, int) for x in synthetic["logins"])
    days = pd.to_datetime(synthetic["joined"], format="%Y-%m-%d")  # still dates, as text
    assert pd.to_datetime(real["joined"]).min() <= days.min()
    assert synthetic["tags"].map(len).eq(2).all()
    # a json column with NULLs keeps their share, and booleans theirs
    settings = [s for (s,) in _all(dev, "select settings from accounts")]
    assert sum(s is None for s in settings) == 40
    beta = [s["beta"] for s in settings if s is not None]
    assert 0.2 < np.mean(beta) < 0.47  # production: a third


def test_arrays_are_generated_element_by_element_or_whole(refreshed) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = refreshed
    query = "select contact_emails, features, ratings from accounts"
    real, synthetic = _all(source, query), _all(dev, query)
    real_emails = {e for row in real for e in row[0]}
    emails = [e for row in synthetic for e in row[0]]
    assert all(len(row[0]) == 2 for row in synthetic)
    assert all("@" in e for e in emails) and not set(emails) & real_emails
    # few arrays, each of many rows: drawn whole, as production has them, at their shares
    features = pd.Series([tuple(row[1]) for row in synthetic]).value_counts(normalize=True)
    assert set(features.index) == {tuple(row[1]) for row in real}
    assert features.max() - features.min() < 0.1
    ratings = [x for row in synthetic for x in row[2]]
    assert ratings[2::3] == [None] * len(synthetic)  # the third element is NULL in every row
    assert set(ratings) - {None} <= set(range(6))


def test_ranges_are_generated_on_production_grid_and_shares(refreshed) -> None:  # type: ignore[no-untyped-def]
    source, dev, report = refreshed
    # the table whose only data is a range passed the gate: its rows are no production rows
    assert "dev" in report.published and not report.gates["dev"].failures()
    real = {r for (r,) in _all(source, "select during::text from windows")}
    synthetic = [r for (r,) in _all(dev, "select during::text from windows")]
    assert len(synthetic) == 300
    assert len(set(synthetic) & real) < 30
    hours = _all(
        dev,
        "select extract(epoch from upper(during) - lower(during)) / 3600, "
        "extract(minute from lower(during)) from windows",
    )
    assert {h for h, _ in hours} <= {1, 2, 3, 4, 5} and {m for _, m in hours} == {0}
    nulls, unbounded, empty, bands = _all(
        dev,
        "select count(*) filter (where valid is null), "
        "count(*) filter (where upper_inf(valid)), count(*) filter (where isempty(amount)), "
        "count(distinct upper(band) - lower(band)) from prices",
    )[0]
    assert 7 <= nulls <= 13 and 18 <= unbounded <= 38 and 10 <= empty <= 26 and bands == 1


def test_a_range_s_start_and_length_follow_the_row(refreshed) -> None:  # type: ignore[no-untyped-def]
    # a stay's price follows its nights, and it was booked four days per night before it
    source, dev, _ = refreshed
    query = (
        "select upper(during) - lower(during), price::float, lower(during) - booked_at from stays"
    )
    real = pd.DataFrame(_all(source, query), columns=["nights", "price", "ahead"])
    synthetic = pd.DataFrame(_all(dev, query), columns=["nights", "price", "ahead"])
    assert len(synthetic) == len(real)
    assert set(synthetic["nights"]) <= set(real["nights"])
    assert synthetic["nights"].corr(synthetic["price"]) > 0.8  # production's: 0.99
    assert synthetic["nights"].corr(synthetic["ahead"]) > 0.6


def test_a_range_model_draws_within_production_span() -> None:
    texts = pd.Series([f"[{i},{i + 10})" for i in range(100)] + ["empty"] * 10 + [None] * 5)
    model = RangeModel.fit(texts, "int4range")
    assert model is not None
    drawn = pd.Series(model.sample(2000, np.random.default_rng(3)))
    assert 0.05 < (drawn == "empty").mean() < 0.13
    lower, upper = bounds_of(parts_of(drawn[drawn != "empty"]), "integer")
    assert lower.min() >= 0 and lower.max() <= 99 and set(upper - lower) == {10}


def test_a_document_model_never_copies_a_number_of_one_document() -> None:
    # {"a": 1} alone would be a category of documents, drawn whole: some variety in "b"
    real = [{"a": 1, "b": i / 7} for i in range(20)] + [{"a": 1, "salary": 123456}]
    model = DocumentModel.fit(real, "doc", 2)
    docs = model.sample(500, np.random.default_rng(1), _no_text)
    assert {d["a"] for d in docs} == {1}
    assert all(0 <= d["b"] <= 19 / 7 for d in docs if "b" in d)
    # the key only one document has is scrambled too: it may name a person
    assert not any("salary" in d for d in docs)
    salaries = [v for d in docs for k, v in d.items() if k != "a"]
    assert len(salaries) > 5 and 123456 not in salaries


def _no_text(kind: str | None, production: pd.Series, n: int) -> np.ndarray:
    return np.array(["x"] * n, dtype=object)


ODD = """
select setseed(0.5);
create table odd (
    id int primary key,
    doc jsonb,
    raw json,
    words text[],
    grid int[],
    flags boolean[],
    stamps timestamptz[],
    big int8range,
    span tsrange,
    cash numrange
);
insert into odd
select i,
       case i % 6 when 0 then '"just a string"'::jsonb when 1 then '[1, "two", null, {"x": []}]'
                  when 2 then '{}' when 3 then '{"a": {"b": {"c": {"d": [1.5, 2.25]}}}, "é": "ü"}'
                  when 4 then 'null'::jsonb else jsonb_build_object('n', i, 'mixed', case
                  when i % 2 = 0 then to_jsonb(i) else to_jsonb('s' || i) end) end,
       ('{"k": ' || i || ',  "spaced" : true}')::json,
       case i % 4 when 0 then '{}'::text[] when 1 then array['a,b', 'say "hi"', 'back\\slash', 'NULL']
                  when 2 then array[null, 'x y']::text[] else array['plain'] end,
       case when i % 3 = 0 then '{{1,2},{3,4}}'::int[] else array[i, i + 1] end,
       array[i % 2 = 0, null],
       array[timestamptz '2024-01-01 00:00+00' + i * interval '1 h'],
       case when i % 5 = 0 then '(,)'::int8range else int8range(i::bigint * 1000000000, i::bigint * 1000000000 + 7) end,
       tsrange(timestamp '2024-01-01' + i * interval '1 day', timestamp '2024-01-01' + i * interval '1 day' + interval '90 min', '[]'),
       case when i % 4 = 0 then 'empty'::numrange else numrange(i * 0.125, i * 0.125 + 1.5, '(]') end
from generate_series(1, 60) i;
"""


def test_odd_documents_arrays_and_ranges_publish(make_database) -> None:  # type: ignore[no-untyped-def]
    source, dev = make_database("odd"), make_database("odd_dev")
    with psycopg.connect(source) as conn:
        conn.execute(ODD)
    run_refresh(make_config(source, {"dev": dev}))  # PostgreSQL parsed every value it got
    rows = _all(dev, "select words, grid, big::text, span::text, cash::text from odd")
    assert len(rows) == 60
    assert {len(g) if g and isinstance(g[0], int) else 2 for _, g, *_ in rows} == {2}
    assert any(w == ["a,b", 'say "hi"', "back\\slash", "NULL"] for w, *_ in rows)
    assert all(s.startswith("[") and s.endswith("]") for *_, s, _ in rows)
    assert any(c == "empty" for *_, c in rows) and any(b == "(,)" for _, _, b, _, _ in rows)
    # times keep production's steps: stamps on whole hours, windows opening at midnight for
    # 90 minutes (the steps of starts and of lengths, each its own)
    grid = _all(
        dev,
        "select count(*) filter (where extract(minute from s) + extract(second from s) <> 0), "
        "count(*) filter (where lower(span)::time <> '00:00' or "
        "upper(span) - lower(span) <> interval '90 min') from odd, unnest(stamps) s",
    )[0]
    assert grid == (0, 0)
