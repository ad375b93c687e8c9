"""Publishing: exact round trips through COPY, the atomic swap, and failures that change nothing."""

from __future__ import annotations

import psycopg
import pytest

from synth_assets.errors import ProdtwinError
from synth_assets.refresh import RefreshHooks, run_refresh
from tests.conftest import make_config
from tests.helpers import scalar, table_checksums

TRICKY = [
    "tab\there",
    "new\nline",
    "back\\slash",
    "quote ' and \"",
    "",
    "ünïcödé ✓",
    r"\N",
    "\\x00",
]


def _source(make_database, ddl: str) -> str:  # type: ignore[no-untyped-def]
    url = make_database("src")
    with psycopg.connect(url) as conn:
        conn.execute(ddl)
    return url


def test_text_values_round_trip_exactly(make_database) -> None:
    """Strings that COPY treats specially arrive unchanged; '' stays distinct from NULL."""
    from synth_assets.db import source_snapshot
    from synth_assets.extract import read_table
    from synth_assets.publish import load_staging
    from synth_assets.schema import introspect

    values = ", ".join(f"({i}, %s)" for i in range(len(TRICKY))) + f", ({len(TRICKY)}, null)"
    src = _source(make_database, "create table t (id int primary key, v text)")
    with psycopg.connect(src) as conn:
        conn.execute(f"insert into t values {values}", TRICKY)
    with source_snapshot(src) as conn:
        schema = introspect(conn, "public")
        frame = read_table(conn, "public", schema.tables["t"], None, 0, 1)
    dst = make_database("dst")
    with psycopg.connect(dst) as conn:
        load_staging(conn, schema, ["t"], {"t": frame}, "public")
        rows = conn.execute("select v from public__staging.t order by id").fetchall()
    assert [r[0] for r in rows] == [*TRICKY, None]


def test_failed_gate_leaves_the_previous_warehouse_unchanged(demo_refresh) -> None:  # type: ignore[no-untyped-def]
    _, config, envs = demo_refresh
    before = table_checksums(envs["dev"])

    def refuse(conn: psycopg.Connection, staging: str) -> None:
        assert scalar(envs["dev"], f"select count(*) from {staging}.customers") > 0
        raise ProdtwinError("gate refused the data")

    with pytest.raises(ProdtwinError, match="gate refused"):
        run_refresh(config, ["dev"], hooks=RefreshHooks(before_gate=refuse))
    assert table_checksums(envs["dev"]) == before
    assert (
        scalar(envs["dev"], "select count(*) from pg_namespace where nspname = 'public__staging'")
        == 0
    )


def test_a_constraint_the_synthesizer_breaks_fails_cleanly(make_database) -> None:
    """PostgreSQL rejects the rows; the error names table and constraint; nothing is swapped."""
    src = _source(
        make_database,
        """
        create table parts (id int primary key, a numeric(8,2) not null, b numeric(8,2) not null,
                            constraint sums_to_100 check (a + b = 100));
        select setseed(0.42);
        insert into parts select i, x, 100 - x from
          (select i, round((random() * 100)::numeric, 2) x from generate_series(1, 300) i) s;
    """,
    )
    dst = make_database("dst")
    with psycopg.connect(dst) as conn:
        conn.execute("create table keep_me (id int); insert into keep_me values (1)")
    envs = {"dev": {"url": dst, "allow_foreign_objects": True}}
    with pytest.raises(ProdtwinError, match=r"table parts: .*CHECK constraint sums_to_100"):
        run_refresh(make_config(src, {"dev": dst}, environments=envs))
    assert scalar(dst, "select count(*) from public.keep_me") == 1
    assert scalar(dst, "select count(*) from pg_namespace where nspname like 'public__%'") == 0


def test_previous_version_is_kept_for_one_run(demo_refresh, make_database) -> None:  # type: ignore[no-untyped-def]
    _, config, _ = demo_refresh
    dst = make_database("swap")
    with psycopg.connect(dst) as conn:
        conn.execute("create table old_marker (id int)")
    source = config.source.url.get_secret_value()
    # old_marker is not prodtwin's: publishing over it must be allowed explicitly
    envs = {"dev": {"url": dst, "allow_foreign_objects": True}}
    tables = {"include": ["tags"]}
    run_refresh(make_config(source, {"dev": dst}, tables=tables, environments=envs))
    assert (
        scalar(
            dst,
            "select count(*) from information_schema.tables where "
            "table_schema = 'public__previous' and table_name = 'old_marker'",
        )
        == 1
    )
    run_refresh(make_config(source, {"dev": dst}, tables=tables))
    assert (
        scalar(
            dst, "select count(*) from information_schema.tables where table_name = 'old_marker'"
        )
        == 0
    )
    assert scalar(dst, "select count(*) from public.tags") == 25


def test_leftover_staging_from_a_killed_run_is_replaced(demo_refresh, make_database) -> None:  # type: ignore[no-untyped-def]
    _, config, _ = demo_refresh
    dst = make_database("leftover")
    with psycopg.connect(dst) as conn:
        conn.execute("create schema public__staging; create table public__staging.junk (x int)")
    source = config.source.url.get_secret_value()
    run_refresh(make_config(source, {"dev": dst}, tables={"include": ["tags"]}))
    assert scalar(dst, "select count(*) from pg_namespace where nspname = 'public__staging'") == 0
    assert scalar(dst, "select count(*) from public.tags") == 25


KINDS_DDL = """
create table k (id int primary key, i int, b bigint, f float8, n numeric(10,2), nn numeric,
  bo bool, ts timestamp, tz timestamptz, d date, t text, a int[], j jsonb, js json, u uuid);
insert into k select g, v.* from generate_series(1, 24) g, lateral (select * from (values
  (1, 9007199254740991, -0.0::float8, 0.13, 1.5, true, '2024-02-29 23:59:59.999999'::timestamp,
   '2024-01-01 12:00:00.000001+05:30'::timestamptz, '1700-01-01'::date, 'tab\there', '{1,NULL,3}'::int[],
   '{"a": [1, "x\\ny"]}'::jsonb, '{"b":  "\\\\"}'::json, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid),
  (-2147483648, -1, '-Infinity', -99999999.99, -2.5, false, '1970-01-01', '1999-12-31 23:00:00+00',
   '2024-02-29', '', '{}', '[]', 'null', null),
  (null, null, 'Infinity', null, null, null, null, null, null, null, null, null, null, null),
  (7, 0, 1e-300, 0.01, 0.125, true, '2038-01-19 03:14:08', '2024-06-30 23:59:60+00',
   '2200-12-31', 'ünïcödé ✓ \\N', '{-5}', '{"k": "\\"q\\""}', '1', null),
  (7, 0, 0, 0.01, 0.1, true, '2038-01-19 03:14:08', '2024-06-30 23:59:60+00', '2200-12-31',
   'back\\slash', '{-5}', '{}', '2', null)
) v offset (g % 5) limit 1) v;
"""


def test_every_column_kind_round_trips_exactly(make_database) -> None:
    """Repeated values (formatted once per distinct value), NULLs among them, -0, infinities,
    numeric scale, time zones and microseconds, arrays and JSON arrive as production has them
    (NaN, sentinel dates and bigints above 2^53: test_extremes.py)."""
    from synth_assets.db import source_snapshot
    from synth_assets.extract import read_table
    from synth_assets.publish import load_staging
    from synth_assets.schema import introspect

    src = _source(make_database, KINDS_DDL)
    with source_snapshot(src) as conn:
        schema = introspect(conn, "public")
        frame = read_table(conn, "public", schema.tables["k"], None, 0, 1)
    dst = make_database("dst")
    query = "select k::text from {}.k order by id"
    with psycopg.connect(src) as conn:
        expected = [r[0] for r in conn.execute(query.format("public")).fetchall()]
    with psycopg.connect(dst) as conn:
        load_staging(conn, schema, ["k"], {"k": frame}, "public")
        published = [r[0] for r in conn.execute(query.format("public__staging")).fetchall()]
    assert len({row.split(",", 1)[1] for row in expected}) == 5  # each row repeated, NULLs too
    assert published == expected


def test_bytea_round_trips_exactly(make_database) -> None:
    """Bytes that COPY escapes (NUL, tab, backslash, high bytes) arrive unchanged, NULL too."""
    import pandas as pd

    from synth_assets.db import source_snapshot
    from synth_assets.publish import load_staging
    from synth_assets.schema import introspect

    values = [b"\x00\t\\\n\xff", None, b"", b"\x00\t\\\n\xff", b"plain"]
    src = _source(make_database, "create table k (id int primary key, v bytea)")
    with source_snapshot(src) as conn:
        schema = introspect(conn, "public")
    frame = pd.DataFrame(
        {"id": pd.array(range(len(values)), dtype="Int64"), "v": pd.Series(values, dtype=object)}
    )
    dst = make_database("dst")
    with psycopg.connect(dst) as conn:
        load_staging(conn, schema, ["k"], {"k": frame}, "public")
        rows = conn.execute("select v from public__staging.k order by id").fetchall()
    assert [None if r[0] is None else bytes(r[0]) for r in rows] == values


def test_a_large_spilled_table_is_sent_in_streams_side_by_side(
    make_database, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The largest table goes over several connections at once, each COPY a run of whole rows
    of its file: every row arrives once and exactly, the keys hold, the rows are counted."""
    import pandas as pd

    from synth_assets import publish as P
    from synth_assets.db import source_snapshot
    from synth_assets.schema import introspect
    from synth_assets.spill import Spill

    src = _source(
        make_database,
        "create table p (id int primary key, v text);"
        "create table c (id int primary key, p_id int not null references p, v text)",
    )
    with source_snapshot(src) as conn:
        schema = introspect(conn, "public")
    n = 3_000
    texts = [TRICKY[i % len(TRICKY)] + str(i) for i in range(n)]
    spill = Spill.create(tmp_path)
    spill.write(schema.tables["p"], pd.DataFrame({"id": range(n), "v": texts}))
    spill.write(
        schema.tables["c"],
        pd.DataFrame({"id": range(2 * n), "p_id": [i % n for i in range(2 * n)], "v": texts * 2}),
    )
    path = spill.paths["c"]
    spans = P.split_lines(path, 3)
    data = path.read_bytes()
    assert [s[0] for s in spans[1:]] == [s[1] for s in spans[:-1]]  # contiguous
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(data[e - 1 : e] == b"\n" for _, e in spans)  # each ends with a whole row

    monkeypatch.setattr(P, "SPLIT_BYTES", 1)  # the test's tables are small
    dst = make_database("dst")
    steps: list[str] = []
    with psycopg.connect(dst) as conn:
        staged = P.load_staging(
            conn,
            schema,
            ["p", "c"],
            dict(spill.paths),
            "public",
            on_step=steps.append,
            connect=lambda: psycopg.connect(dst),
            connections=3,
        )
        rows = conn.execute("select id, p_id, v from public__staging.c order by id").fetchall()
        pk = scalar(dst, "select count(*) from pg_constraint where conname = 'c_pkey'")
    assert sum(s.startswith("copy c bytes") for s in steps) == 3
    assert staged.rows == {"p": n, "c": 2 * n}
    assert staged.foreign_keys == {"p": 0, "c": 1}
    assert rows == [(i, i % n, texts[i % n]) for i in range(2 * n)]
    assert pk == 1
