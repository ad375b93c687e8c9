"""A category whose value implies another's (a state its country) keeps production's pairs,
also when the coarser one comes from the row's parent (carries.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg

from synth_assets.implied import find_implied
from synth_assets.refresh import run_refresh
from tests.conftest import make_config

PLANTED = """
select setseed(0.31);
create table customers (id int primary key, country text not null, segment text not null,
                        signed_up date not null);
create table invoices (id int primary key, customer_id int not null references customers(id),
                       billing_country text not null, billing_state text,
                       total numeric(10,2) not null);
create table states (country text, state text, weight int);
insert into states values ('US', 'CA', 5), ('US', 'NY', 3), ('US', 'TX', 2), ('DE', 'BY', 3),
  ('DE', 'BE', 2), ('BR', 'SP', 4), ('BR', 'RJ', 2), ('FR', null, 1), ('JP', null, 1);
insert into customers
select i, (array['US', 'US', 'DE', 'BR', 'FR', 'JP'])[1 + i % 6],
       (array['retail', 'business'])[1 + i % 2], date '2021-01-01' + (random() * 700)::int
from generate_series(1, 240) i;
-- each invoice is billed to its customer's country, in a state of that country (the
-- customer has no state: the invoice's is its own)
insert into invoices
select row_number() over (), c.id, c.country,
       (select s.state from states s, generate_series(1, s.weight) w
        where s.country = c.country order by random() + k * 0 limit 1),
       round((5 + random() * 300)::numeric, 2)
from customers c, generate_series(1, 2 + c.id % 4) k;
drop table states;
"""

PAIRS = "select distinct billing_state, billing_country from invoices"


def _pairs(url: str) -> set[tuple[str | None, str]]:
    with psycopg.connect(url) as conn:
        return {(r[0], r[1]) for r in conn.execute(PAIRS).fetchall()}


def test_a_billing_state_stays_in_the_country_its_customer_gives(make_database) -> None:  # type: ignore[no-untyped-def]
    source = make_database("implied")
    with psycopg.connect(source) as conn:
        conn.execute(PLANTED)
    dev = make_database("implied_dev")
    run_refresh(make_config(source, {"dev": dev}))
    production, synthetic = _pairs(source), _pairs(dev)
    # every state is one of its country's (a NULL stays where the model drew it: the NULL
    # share is the model's, which the gate checks)
    states = {pair for pair in synthetic if pair[0] is not None}
    assert states <= production, states - production
    assert len(states) >= 6
    with psycopg.connect(dev) as conn:
        differs = conn.execute(
            "select count(*) from invoices i join customers c on c.id = i.customer_id "
            "where i.billing_country <> c.country"
        ).fetchone()[0]
    assert differs == 0


def test_pairs_production_never_has_are_drawn_again_within_the_coarser_value() -> None:
    rng = np.random.default_rng(5)
    countries = np.array(["US"] * 60 + ["BR"] * 40 + ["CA"] * 20 + ["FR"] * 30, dtype=object)
    states = np.array(
        list(rng.choice(["NY", "TX"], 60)) + ["SP"] * 40 + ["ON"] * 20 + [None] * 30,
        dtype=object,
    )
    production = pd.DataFrame({"country": countries, "state": states})
    (rule,) = find_implied(production, ["country", "state"])
    assert (rule.column, rule.given) == ("state", "country")
    synthetic = pd.DataFrame(
        {
            "country": ["BR", "BR", "FR", "US", "JP", "US", "US"],
            "state": ["NY", None, "SP", "TX", "NY", None, "SP"],
        }
    )
    assert rule.apply(synthetic, np.random.default_rng(0)) == 4
    assert synthetic["state"][0] == "SP"  # a state of another country: one of Brazil's
    assert synthetic["state"][6] in ("NY", "TX")
    assert synthetic["state"][3] == "TX"  # a pair production has stays
    assert synthetic["state"][4] == "NY"  # a country production lacks: nothing to draw from
    # NULLs are traded, never made: the French row with a state becomes NULL, one of the two
    # NULL rows of countries that always have a state gets one (the NULL share is the
    # model's, which the gate checks)
    assert synthetic["state"][2] is None
    assert sorted([synthetic["state"][1] is None, synthetic["state"][5] is None]) == [False, True]
    assert synthetic["state"].isna().sum() == 2
    # rare values replaced before the fit (two rare provinces became a US state in the fit
    # rows): the pairs are production's, among the values the model still draws
    fit_rows = production.copy()
    fit_rows.loc[fit_rows.index[100:102], "state"] = "NY"
    fit_rows.loc[fit_rows.index[102:120], "state"] = "NY"
    (rule,) = find_implied(fit_rows, ["country", "state"], production)
    assert "CA" not in rule.values  # no province left to draw: its rows keep theirs
    assert list(rule.values["US"][0]) == ["NY", "TX"]
