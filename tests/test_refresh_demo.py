"""A full refresh of the demo database, checked by SQL against the published warehouses."""

from __future__ import annotations

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from synth_assets.refresh import run_refresh
from tests.conftest import make_config
from tests.helpers import column_values, orphan_counts, scalar, table_checksums


@pytest.fixture(scope="module")
def refreshed(demo_refresh):  # type: ignore[no-untyped-def]
    return demo_refresh


def test_every_table_is_published_to_every_environment(refreshed) -> None:
    report, _, envs = refreshed
    for env, url in envs.items():
        published = set(table_checksums(url))
        assert published == set(report.schema.tables), env
        assert report.published[env].rows == {
            t: scalar(url, f'select count(*) from public."{t}"') for t in report.schema.tables
        }


def test_no_orphans_for_any_foreign_key(refreshed) -> None:
    report, _, envs = refreshed
    fk_total = sum(len(t.foreign_keys) for t in report.schema.tables.values())
    assert fk_total >= 15
    for url in envs.values():
        orphans = orphan_counts(url, report.schema)
        assert len(orphans) == fk_total
        assert all(v == 0 for v in orphans.values()), orphans


def test_constraints_are_enforced_by_the_published_schema(refreshed) -> None:
    _, _, envs = refreshed
    url = envs["dev"]
    kinds = scalar(
        url,
        "select string_agg(distinct contype::text, '') from pg_constraint c "
        "join pg_namespace n on n.oid = c.connamespace where n.nspname = 'public'",
    )
    assert set("pfuc") <= set(str(kinds))
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(
            "insert into public.addresses (customer_id, street, city, postal_code, "
            "country, is_default) values (-1, 'x', 'y', 'z', 'DE', true)"
        )


def test_primary_keys_are_unique(refreshed) -> None:
    report, _, envs = refreshed
    for table in report.schema.tables.values():
        if not table.primary_key:
            continue
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in table.primary_key)
        q = sql.SQL("select count(*) - count(distinct ({})) from public.{}").format(
            cols, sql.Identifier(table.name)
        )
        with psycopg.connect(envs["dev"]) as conn:
            assert conn.execute(q).fetchone()[0] == 0, table.name


def test_row_counts_are_within_ten_percent_of_production(refreshed, demo_source) -> None:
    report, _, envs = refreshed
    for name in report.schema.tables:
        prod = scalar(demo_source, f'select count(*) from public."{name}"')
        for url in envs.values():
            synth = scalar(url, f'select count(*) from public."{name}"')
            assert abs(synth - prod) <= 0.1 * prod + 1, (name, prod, synth)


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("orders", "shipping_address_id"),
        ("orders", "handled_by"),
        ("event_log", "customer_id"),
        ("categories", "parent_id"),
        ("employees", "manager_id"),
    ],
)
def test_nullable_foreign_keys_keep_the_null_rate(refreshed, demo_source, table, column) -> None:
    _, _, envs = refreshed
    q = f'select avg(({column} is null)::int)::float from public."{table}"'
    prod = scalar(demo_source, q)
    synth = scalar(envs["dev"], q)
    assert abs(synth - prod) <= 0.05, (table, column, prod, synth)


def test_children_per_parent_follow_production(refreshed, demo_source) -> None:
    _, _, envs = refreshed
    q = (
        "select percentile_cont(array[0.5, 0.9]) within group (order by n), "
        "avg((n = 0)::int)::float from (select count(o.id) n from customers c "
        "left join orders o on o.customer_id = c.id group by c.id) s"
    )
    with psycopg.connect(demo_source) as a, psycopg.connect(envs["dev"]) as b:
        (p50, p90), zero_prod = a.execute(q).fetchone()
        (s50, s90), zero_synth = b.execute(q).fetchone()
    assert abs(zero_synth - zero_prod) <= 0.05
    assert abs(s50 - p50) <= 1 and abs(s90 - p90) <= 2


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("customers", "email"),
        ("customers", "phone"),
        ("customers", "first_name"),
        ("customers", "last_name"),
        ("employees", "email"),
        ("employees", "full_name"),
        ("addresses", "street"),
    ],
)
def test_no_production_pii_value_is_published(refreshed, demo_source, table, column) -> None:
    _, _, envs = refreshed
    production = column_values(demo_source, table, column)
    for url in envs.values():
        synthetic = column_values(url, table, column)
        assert synthetic, "the column was published empty"
        if column in ("first_name", "last_name", "full_name"):
            # common first names exist in both by chance: no full person may reappear
            continue
        assert not (production & synthetic), (table, column)


def test_no_person_reappears(refreshed, demo_source) -> None:
    _, _, envs = refreshed
    q = "select first_name || ' ' || last_name || ' ' || coalesce(phone, '') from customers"
    with psycopg.connect(demo_source) as a, psycopg.connect(envs["dev"]) as b:
        prod = {r[0] for r in a.execute(q)}
        synth = {r[0] for r in b.execute(q)}
    assert not prod & synth


def test_unique_columns_stay_unique(refreshed) -> None:
    _, _, envs = refreshed
    for table, column in [
        ("customers", "email"),
        ("products", "sku"),
        ("shipments", "order_id"),
        ("shipments", "tracking_code"),
        ("categories", "name"),
    ]:
        dup = scalar(envs["dev"], f'select count(*) - count(distinct "{column}") from "{table}"')
        assert dup == 0, (table, column)


def _non_key_rows(url: str, table: str, columns: list[str]) -> pd.DataFrame:
    cols = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            sql.SQL("select {} from public.{}").format(cols, sql.Identifier(table))
        ).fetchall()
    return pd.DataFrame(rows, columns=columns)


def test_no_synthetic_row_equals_a_unique_production_row_on_its_non_key_columns(
    refreshed, demo_source
) -> None:
    """A row whose combination of non-key values only one production row has identifies that
    row's person; a combination many rows share (one item at 22.50) identifies no one, and is
    kept at its rate (tests/test_copies.py)."""
    report, _, envs = refreshed
    checked = 0
    for table in report.schema.tables.values():
        keys = set(table.primary_key) | {c for fk in table.foreign_keys for c in fk.columns}
        columns = [c.name for c in table.columns if c.name not in keys]
        if len(columns) < 2:
            continue
        every = _non_key_rows(demo_source, table.name, columns)
        prod = every[~every.duplicated(keep=False)]
        synth = _non_key_rows(envs["dev"], table.name, columns).drop_duplicates()
        copies = synth.merge(prod, how="inner", on=columns)
        assert copies.empty, (table.name, copies.head())
        checked += 1
    assert checked >= 8


def test_checks_and_relations_hold(refreshed) -> None:
    _, _, envs = refreshed
    url = envs["dev"]
    assert scalar(url, "select count(*) from shipments where delivered_at <= shipped_at") == 0
    assert scalar(url, "select count(*) from referrals where referrer_id = referred_id") == 0
    assert scalar(url, "select count(*) from order_items where qty <= 0") == 0
    # a link table keeps its composite primary key made of two foreign keys
    assert (
        scalar(url, "select count(*) - count(distinct (product_id, tag_id)) from product_tags") == 0
    )
    # self-references form trees: no employee is their own ancestor
    cycles = scalar(
        url,
        """
        with recursive up(start, id, depth) as (
          select id, manager_id, 1 from employees where manager_id is not null
          union all
          select up.start, e.manager_id, depth + 1 from up join employees e on e.id = up.id
          where e.manager_id is not null and depth < 100)
        select count(*) from up where id = start""",
    )
    assert cycles == 0


def test_sequences_continue_after_the_loaded_rows(refreshed) -> None:
    _, _, envs = refreshed
    with psycopg.connect(envs["dev"]) as conn:
        before = conn.execute("select max(id) from tags").fetchone()[0]
        new = conn.execute(
            "insert into tags (name) values ('added-by-test') returning id"
        ).fetchone()[0]
        conn.rollback()
    assert new > before


def test_same_seed_gives_identical_warehouses(refreshed, demo_source, make_database) -> None:
    _, _, envs = refreshed
    again = make_database("again")
    run_refresh(make_config(demo_source, {"again": again}))
    assert table_checksums(again) == table_checksums(envs["dev"])
    assert table_checksums(envs["dev"]) == table_checksums(envs["test"])


def test_a_different_seed_gives_different_data(refreshed, demo_source, make_database) -> None:
    _, _, envs = refreshed
    other = make_database("seed")
    config = make_config(demo_source, {"other": other}, seed=7)
    run_refresh(config)
    assert table_checksums(other)["customers"] != table_checksums(envs["dev"])["customers"]
