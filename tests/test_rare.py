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
