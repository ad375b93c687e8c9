"""Values that identify someone by being rare are not reproduced, and free text is never copied."""

from __future__ import annotations

import psycopg
import pytest

from synth_assets.refresh import run_refresh
from tests.conftest import make_config
from tests.helpers import column_values

RARE = """
select setseed(0.7);
create type tier as enum ('basic', 'plus', 'vip', 'founder');
create table member (id int primary key, team text not null, tier tier not null,
                     plan text not null, joined date not null, spend numeric(8,2) not null,
                     bio text);
insert into member
select i,
       case when i = 7 then 'Tiny Village' when i in (8, 9) then 'Hamlet'
            else (array['Berlin', 'Paris', 'Rome'])[1 + i % 3] end,
       (case when i = 11 then 'founder' else (array['basic', 'plus', 'vip'])[1 + i % 3] end)::tier,
       case when i = 12 then 'legacy-2009' else (array['monthly', 'yearly'])[1 + i % 2] end,
       date '2020-01-01' + (random() * 1000)::int,
       round((random() * 500)::numeric, 2),
       'Member ' || i || ' wrote a long story about their life in ' ||
         (array['Berlin', 'Paris', 'Rome'])[1 + i % 3] || ' and many other personal things.'
from generate_series(1, 240) i;
"""


@pytest.fixture(scope="module")
def rare(make_database):  # type: ignore[no-untyped-def]
    source = make_database("rare")
    with psycopg.connect(source) as conn:
        conn.execute(RARE)
    dev = make_database("rare_dev")
    config = make_config(
        source, {"dev": dev}, tables={"overrides": {"member": {"keep_rare": ["plan"]}}}
    )
    return source, dev, run_refresh(config)


def test_rare_categories_are_not_reproduced(rare) -> None:  # type: ignore[no-untyped-def]
    _, dev, _ = rare
    teams = column_values(dev, "member", "team")
    assert teams and not teams & {"Tiny Village", "Hamlet"}
    assert "founder" not in column_values(dev, "member", "tier")
    assert {"Berlin", "Paris", "Rome"} <= teams


def test_suppression_is_reported_without_the_values(rare) -> None:  # type: ignore[no-untyped-def]
    _, _, report = rare
    notes = [n for n in report.synthetic.notes if "rare categories" in n]
    assert any(n.startswith("member.team: 2 rare categories") for n in notes), notes
    assert any(n.startswith("member.tier: 1 rare categories") for n in notes), notes
    # plan is configured to keep its rare values: not suppressed, so not reported
    assert not any(n.startswith("member.plan") for n in notes)
    assert not any(v in n for n in notes for v in ("Tiny Village", "Hamlet", "founder"))


def test_free_text_is_generated_never_copied(rare) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = rare
    production = column_values(source, "member", "bio")
    synthetic = column_values(dev, "member", "bio")
    assert synthetic and not synthetic & production
    assert not any("Member " in s for s in synthetic)


# one customer in Liechtenstein and two in Monaco (rare among customers), each with many
# invoices billed to their own country: in the invoices those values look frequent
SHARED = """
select setseed(0.3);
create table customer (id int primary key, country text not null, segment text not null);
insert into customer
select i,
       case when i = 1 then 'Liechtenstein' when i in (2, 3) then 'Monaco'
            else (array['Germany', 'France', 'USA', 'Brazil'])[1 + i % 4] end,
       (array['retail', 'business'])[1 + i % 2]
from generate_series(1, 80) i;
create table invoice (id int primary key, customer_id int not null references customer,
                      billing_country text not null, total numeric(8,2) not null);
insert into invoice
select row_number() over (), c.id,
       case when k % 10 = 0 and c.id > 3 then 'USA' else c.country end,
       round((random() * 100)::numeric, 2)
from customer c, generate_series(1, case when c.id <= 3 then 25 else 4 + c.id % 5 end) k;
"""


def _shared_refresh(make_database, keep: list[str]):  # type: ignore[no-untyped-def]
    source = make_database("shared_rare")
    with psycopg.connect(source) as conn:
        conn.execute(SHARED)
    dev = make_database("shared_rare_dev")
    overrides = {"invoice": {"keep_rare": keep}} if keep else {}
    config = make_config(source, {"dev": dev}, tables={"overrides": overrides})
    return dev, run_refresh(config)


def test_a_value_rare_among_parents_is_rare_in_children_that_carry_it(make_database) -> None:  # type: ignore[no-untyped-def]
    dev, report = _shared_refresh(make_database, [])
    rare = {"Liechtenstein", "Monaco"}
    assert not column_values(dev, "customer", "country") & rare
    # 25 invoices each: frequent by rows, yet they tell the one customer's country
    billed = column_values(dev, "invoice", "billing_country")
    assert not billed & rare, billed
    assert {"Germany", "France", "USA", "Brazil"} <= billed
    notes = [n for n in report.synthetic.notes if "rare categories" in n]
    assert any(n.startswith("invoice.billing_country: 2 rare categories") for n in notes), notes
    assert not any(v in n for n in notes for v in rare)
    # both sides suppressed alike, so an invoice is still billed to its customer's country
    with psycopg.connect(dev) as conn:
        same = conn.execute(
            "select avg((i.billing_country = c.country)::int) from invoice i "
            "join customer c on c.id = i.customer_id"
        ).fetchone()[0]
    assert same >= 0.8


def test_a_child_column_configured_to_keep_rare_values_keeps_them(make_database) -> None:  # type: ignore[no-untyped-def]
    dev, report = _shared_refresh(make_database, ["billing_country"])
    assert not any(n.startswith("invoice.billing_country") for n in report.synthetic.notes)
    assert column_values(dev, "invoice", "billing_country") & {"Liechtenstein", "Monaco"}


def test_a_rare_value_is_replaced_within_the_coarser_value_it_implies() -> None:
    """A rare state becomes a frequent state of the same country, never one of another country
    (a Canadian row billed in Sao Paulo would be visibly wrong to anyone querying the copy)."""
    import numpy as np
    import pandas as pd

    from synth_assets.rare import suppress_rare
    from synth_assets.roles import MODEL, ColumnRole
    from synth_assets.schema import Column, Table

    states = {
        "USA": ["CA"] * 30 + ["NV", "UT"],
        "Brazil": ["SP"] * 20 + ["RJ"],
        "Canada": ["ON"] * 10,
    }
    rows = [(s, c) for c, ss in states.items() for s in ss] + [(None, "France")] * 25
    frame = pd.DataFrame(rows, columns=["state", "country"], dtype=object)
    table = Table(
        "invoice", (Column("state", "text", "text", True), Column("country", "text", "text", False))
    )
    roles = {c: ColumnRole(MODEL) for c in ("state", "country")}
    out, report = suppress_rare(table, frame, frame, roles, 2, [], np.random.default_rng(1))
    assert {r.column for r in report} == {"state"}
    country_of = {"CA": "USA", "SP": "Brazil", "ON": "Canada"}
    replaced = out[frame["state"].isin(["NV", "UT", "RJ"])]
    assert len(replaced) == 3
    assert all(
        country_of[s] == c for s, c in zip(replaced["state"], replaced["country"], strict=True)
    )
    assert out["state"].isna().sum() == 25  # NULL is no rare value
