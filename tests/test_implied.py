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
    assert synthetic <= production, synthetic - production
    assert len(synthetic) >= 7  # the states of each country, and the NULLs of FR and JP
    with psycopg.connect(dev) as conn:
        differs = conn.execute(
            "select count(*) from invoices i join customers c on c.id = i.customer_id "
            "where i.billing_country <> c.country"
        ).fetchone()[0]
    assert differs == 0


def test_rare_values_are_not_drawn_and_pairs_are_productions() -> None:
    """Shares come from production's pairs among the values the model was fit on: a rare state
    replaced before the fit (sitting in another country in the fit rows) is never drawn, and a
    country whose states are all rare keeps its rows' values."""
    rng = np.random.default_rng(5)
    countries = np.array(["US"] * 60 + ["BR"] * 40 + ["CA"] * 20 + ["FR"] * 30, dtype=object)
    states = np.array(
        list(rng.choice(["NY", "TX"], 60))
        + ["SP"] * 38
        + ["DF"] * 2
        # Canada's two provinces are rare (a province or two identify a customer)
        + ["ON"] * 2
        + ["QC"] * 18
        + [None] * 30,
        dtype=object,
    )
    production = pd.DataFrame({"country": countries, "state": states})
    fit_rows = production.copy()  # as rare.py leaves them: DF -> SP, QC -> a US state
    fit_rows.loc[fit_rows["state"] == "DF", "state"] = "SP"
    fit_rows.loc[fit_rows["state"].isin(["ON", "QC"]), "state"] = "NY"
    (rule,) = find_implied(fit_rows, ["country", "state"], production)
    assert (rule.column, rule.given) == ("state", "country")
    assert list(rule.values["BR"][0]) == ["SP"]
    assert "CA" not in rule.values  # no frequent province: nothing to draw from
    synthetic = pd.DataFrame(
        {
            "country": ["BR", "BR", "FR", "US", "CA", "US"],
            "state": ["NY", None, "SP", "TX", "NY", None],
        }
    )
    changed = rule.apply(synthetic, np.random.default_rng(0))
    assert changed == 4
    assert list(synthetic["state"][:3]) == ["SP", "SP", None]
    assert synthetic["state"][3] == "TX"  # a pair production has stays
    assert synthetic["state"][4] == "NY"  # Canada: nothing frequent to draw
    assert synthetic["state"][5] in ("NY", "TX")
