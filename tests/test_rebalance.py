"""rebalance: a category's share is shifted, the other columns follow it, children stay valid."""

from __future__ import annotations

import json

import psycopg
import pytest

from synth_assets.errors import ConfigError
from synth_assets.refresh import run_refresh
from tests.conftest import make_config
from tests.helpers import scalar

SOURCE = """
select setseed(0.11);
create table purchase (id int primary key, status text not null, amount numeric(10,2) not null,
                       items int not null);
create table purchase_line (id int primary key, purchase_id int not null references purchase(id),
                            qty int not null, price numeric(8,2) not null);
insert into purchase
select i, s, case s when 'refunded' then round((600 + random() * 400)::numeric, 2)
                    else round((10 + random() * 90)::numeric, 2) end,
       1 + (i % 4)
from (select i, case when i % 33 = 0 then 'refunded' when i % 9 = 0 then 'pending' else 'paid' end s
      from generate_series(1, 600) i) x;
insert into purchase_line
select row_number() over (), p.id, 1 + k % 3, round(((1 + k % 3) * 12.5 + random() * 4)::numeric, 2)
from purchase p, generate_series(1, p.items) k;
"""
REBALANCE = {
    "overrides": {
        "purchase": {"rebalance": {"column": "status", "target": {"refunded": 0.2}}},
        "purchase_line": {"utility_target": "qty"},
    }
}


@pytest.fixture(scope="module")
def rebalanced(make_database):  # type: ignore[no-untyped-def]
    source = make_database("rebal")
    with psycopg.connect(source) as conn:
        conn.execute(SOURCE)
    dev = make_database("rebal_dev")
    report = run_refresh(make_config(source, {"dev": dev}, tables=REBALANCE))
    return source, dev, report


def test_the_share_moves_to_the_target(rebalanced) -> None:  # type: ignore[no-untyped-def]
    source, dev, _ = rebalanced
    share = "select avg((status = 'refunded')::int)::float from purchase"
    assert scalar(source, share) < 0.05
    assert abs(scalar(dev, share) - 0.2) <= 0.02
    # the other values keep their production proportions among themselves
    ratio = (
        "select (count(*) filter (where status = 'pending'))::float / "
        "count(*) filter (where status = 'paid') from purchase"
    )
    assert abs(scalar(dev, ratio) - scalar(source, ratio)) <= 0.06


def test_other_columns_stay_conditional_on_the_value(rebalanced) -> None:  # type: ignore[no-untyped-def]
    _, dev, _ = rebalanced
    refunded = scalar(dev, "select avg(amount)::float from purchase where status = 'refunded'")
    paid = scalar(dev, "select avg(amount)::float from purchase where status = 'paid'")
    assert refunded > 400 and paid < 150, (refunded, paid)


def test_children_attach_to_valid_parents(rebalanced) -> None:  # type: ignore[no-untyped-def]
    _, dev, _ = rebalanced
    orphans = (
        "select count(*) from purchase_line l left join purchase p on p.id = l.purchase_id "
        "where p.id is null"
    )
    assert scalar(dev, orphans) == 0
    with_lines = (
        "select count(distinct p.id) from purchase p join purchase_line l on l.purchase_id = p.id "
        "where p.status = 'refunded'"
    )
    assert scalar(dev, with_lines) > 50


def test_a_value_production_never_has_is_a_config_error(rebalanced, make_database) -> None:  # type: ignore[no-untyped-def]
    source, _, _ = rebalanced
    tables = {
        "overrides": {"purchase": {"rebalance": {"column": "status", "target": {"lost": 0.3}}}}
    }
    with pytest.raises(ConfigError, match=r"tables.overrides.purchase.rebalance: value\(s\) lost"):
        run_refresh(make_config(source, {"dev": make_database("rebal_bad")}, tables=tables))


def test_utility_predicts_a_configured_target(rebalanced) -> None:  # type: ignore[no-untyped-def]
    _, _, report = rebalanced
    document = json.loads(report.quality.json_path.read_text())
    scores = {u["table"]: u for u in document["utility"]}
    configured = scores["purchase_line"]  # utility_target: qty, a number: R²
    assert configured["target"] == "qty" and configured["metric"] == "r2"
    assert configured["real"] > 0.8 and configured["synthetic"] is not None, configured
