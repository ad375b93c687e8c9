"""Parent/child matching arithmetic (synth_assets.relations) on planted frames: what a child
shares with its parent, a price that follows the parent's, children per parent exactly kept."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_assets.extract import FkProfile
from synth_assets.keys import draw_counts
from synth_assets.relations import learn_link, parents_by_label
from synth_assets.roles import not_category
from synth_assets.schema import ForeignKey
from synth_assets.synthesize import Marginal

FK = ForeignKey("line_customer_fkey", ("customer_id",), "customer", ("id",), False)
COUNTRIES = np.array(["DE", "FR", "US", "GB", "IT", "ES"], dtype=object)


def _world(seed: int, parents: int = 300) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Customers with a country and a price level; lines of each customer in its country, at a
    price that follows the customer's level (corr ~0.95); children counts skewed."""
    rng = np.random.default_rng(seed)
    customer = pd.DataFrame(
        {
            "id": np.arange(parents),
            "country": COUNTRIES[rng.integers(0, len(COUNTRIES), parents)],
            "level": rng.gamma(3.0, 10.0, parents),
        }
    )
    counts = rng.poisson(rng.gamma(1.5, 6.0, parents))
    owner = np.repeat(np.arange(parents), counts)
    line = pd.DataFrame(
        {
            "customer_id": owner,
            "ship_country": customer["country"].to_numpy()[owner],
            "price": customer["level"].to_numpy()[owner] * rng.normal(1.0, 0.08, len(owner)),
        }
    )
    return customer, line, counts


def test_children_follow_the_parent_they_share_a_value_and_a_trend_with() -> None:
    customer, line, _ = _world(1)
    link = learn_link(customer, ["country", "level"], line, ["ship_country", "price"], FK, 7)
    assert link is not None and (link.parent_key, link.child_key) == ("country", "ship_country")
    # new parents and new child rows of the same world, paired with nothing yet
    parents, rows, counts = _world(2)
    rows = rows.sample(frac=1.0, random_state=3).reset_index(drop=True)
    rng = np.random.default_rng(4)
    idx = parents_by_label(
        rng,
        counts,
        link.parent_side(parents),
        link.child_side(rows, rng),
        np.ones(len(rows), dtype=bool),
    )
    assert (idx >= 0).all()
    same_country = (rows["ship_country"].to_numpy() == parents["country"].to_numpy()[idx]).mean()
    assert same_country >= 0.95, same_country
    paired = np.corrcoef(rows["price"], parents["level"].to_numpy()[idx])[0, 1]
    production = np.corrcoef(line["price"], customer["level"].to_numpy()[line["customer_id"]])[0, 1]
    assert abs(paired - production) <= 0.1, (paired, production)
    # with as many rows as the counts ask for, every parent gets its count (cardinality)
    got = np.sort(np.bincount(idx, minlength=len(parents)))
    assert np.abs(got - np.sort(counts)).sum() <= 0.1 * len(rows)


def test_without_a_link_children_per_parent_are_the_counts_exactly() -> None:
    counts = np.array([0, 0, 0, 250, 255, 326])  # six shippers, three never used
    rng = np.random.default_rng(5)
    idx = parents_by_label(rng, counts, None, None, np.ones(int(counts.sum()), dtype=bool))
    assert (np.bincount(idx, minlength=6) == counts).all()


def test_stratified_counts_are_production_s_at_the_same_size() -> None:
    profile = FkProfile(np.array([0, 1, 2, 9]), np.array([5, 3, 1, 1]), 0.0)
    counts = draw_counts(np.random.default_rng(6), profile, 10)
    assert sorted(counts.tolist()) == [0, 0, 0, 0, 0, 1, 1, 1, 2, 9]


def test_numbers_of_few_values_come_back_as_those_values() -> None:
    rng = np.random.default_rng(7)
    price = pd.Series(np.where(rng.random(3000) < 0.94, 0.99, 1.99))
    price[:2] = 1.49  # a value of two rows is not reproduced
    marginal, scores = Marginal.fit(price, rng)
    restored = marginal.restore(scores, np.random.default_rng(8))
    assert set(restored.unique()) <= {0.99, 1.99}
    assert abs((restored == 1.99).mean() - (price == 1.99).mean()) < 0.01
    again = marginal.restore(marginal.scores_of(restored, rng), rng)
    assert (again == restored).all()


def test_mostly_distinct_text_is_not_a_category() -> None:
    assert not_category(pd.Series(["Sales Rep"] * 6 + ["VP", "Manager", None])) is None
    countries = pd.Series(["USA"] * 4 + ["France"] * 3 + [f"c{i}" for i in range(22)])
    assert "mostly distinct" in str(not_category(countries))
