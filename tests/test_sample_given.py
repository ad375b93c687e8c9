"""Rows sampled given a category value follow P(other columns | value), as rebalance needs.

A Gaussian copula conditions on a category only weakly: rows given 'gold' came out with a
basic customer's amounts (a median of about 35 where production's gold median is about 500).
sample_given now keeps the model's own unconditional rows that carry each wanted value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_assets.schema import Column
from synth_assets.synthesize import TableModel, fit_table

COLUMNS = [Column("tier", "text", "text", False), Column("amount", "float8", "float", False)]


def _production() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    gold = rng.random(400) < 0.2
    return pd.DataFrame(
        {
            "tier": np.where(gold, "gold", "basic").astype(object),
            "amount": np.where(gold, 500.0, 50.0) * rng.lognormal(0.0, 0.3, 400),
        }
    )


def _model(production: pd.DataFrame) -> TableModel:
    return fit_table("charge", production, COLUMNS, "gaussian_copula", seed=1)


def test_rows_given_a_value_look_like_that_value_s_rows() -> None:
    production = _production()
    model = _model(production)
    given = model.sample_given("tier", np.array(["gold"] * 40, dtype=object), seed=3)
    assert len(given) == 40 and (given["tier"] == "gold").all()
    assert given["amount"].median() > production["amount"].quantile(0.8), given["amount"].median()


def test_a_rebalanced_sample_keeps_each_value_s_distribution() -> None:
    production = _production()
    model = _model(production)
    values = np.array(["gold"] * 200 + ["basic"] * 200, dtype=object)
    sample = model.sample_given("tier", values, seed=4)
    assert sample["tier"].value_counts().to_dict() == {"gold": 200, "basic": 200}
    for tier in ("gold", "basic"):
        real = production.loc[production["tier"] == tier, "amount"].median()
        synthetic = sample.loc[sample["tier"] == tier, "amount"].median()
        assert abs(synthetic / real - 1) <= 0.25, (tier, synthetic, real)


def test_the_same_seed_gives_the_same_rows() -> None:
    model = _model(_production())
    values = np.array(["gold", "basic", None] * 30, dtype=object)
    first = model.sample_given("tier", values, seed=11)
    again = model.sample_given("tier", values, seed=11)
    pd.testing.assert_frame_equal(first, again)
    assert first["tier"].isna().sum() == 30


def test_a_value_the_model_never_draws_is_still_served() -> None:
    """A value the unconditional rows never carry falls back to conditional sampling (or, last,
    to unconditional rows given the value): the caller gets every row it asked for."""
    production = _production()
    production.loc[:2, "tier"] = "platinum"  # three rows: the tree's leaves never predict it
    model = _model(production)
    values = np.array(["platinum"] * 10 + ["basic"] * 10, dtype=object)
    sample = model.sample_given("tier", values, seed=5)
    assert sample["tier"].value_counts().to_dict() == {"platinum": 10, "basic": 10}
    assert sample["amount"].notna().all()


def test_conditions_the_model_cannot_meet_become_unconditional_rows(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    production = _production()
    production.loc[:2, "tier"] = "platinum"
    model = _model(production)

    def unable(*args: object, **kwargs: object) -> pd.DataFrame:
        raise ValueError("Unable to sample any rows for the given conditions.")

    monkeypatch.setattr(model.synthesizer, "sample_remaining_columns", unable)
    values = np.array(["platinum"] * 200, dtype=object)
    sample = model.sample_given("tier", values, seed=5)
    assert (sample["tier"] == "platinum").all() and len(sample) == 200
    assert sample["amount"].notna().all()
