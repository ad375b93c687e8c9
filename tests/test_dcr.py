"""The privacy gate's distance check: near-copies of training rows are refused, fresh rows of
the same distribution are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_assets import roles as R
from synth_assets.config import Privacy
from synth_assets.privacy import check_privacy, split_holdout
from synth_assets.schema import Column, Table

TABLE = Table(
    "readings",
    (
        Column("taken_at", "timestamp without time zone", "timestamp", False),
        Column("site", "text", "text", False),
        Column("level", "double precision", "float", False),
    ),
)
ROLES = {c.name: R.ColumnRole(R.MODEL) for c in TABLE.columns}
SITES = ["north", "south", "east", "west"]


def _draw(rng: np.random.Generator, n: int) -> pd.DataFrame:
    site = rng.choice(SITES, n, p=[0.4, 0.3, 0.2, 0.1])
    seconds = rng.uniform(0, 365 * 86400, n)
    return pd.DataFrame(
        {
            "taken_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(seconds, unit="s"),
            "site": site,
            "level": rng.normal(10, 2, n) + (site == "north") * 3,
        }
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_near_copies_are_refused_and_fresh_rows_pass(seed: int) -> None:
    rng = np.random.default_rng(seed)
    production = _draw(rng, 1200)
    settings = Privacy()
    # a split seed apart from the data's: the same seed would hold out the rows whose first
    # uniform draw is low, which are the rows drawn at the first site
    train, holdout = split_holdout(production, settings, seed + 1000)

    fresh = _draw(rng, len(production))  # what a model that learned the distribution gives
    result = check_privacy(TABLE, ROLES, production, train, holdout, fresh, settings, seed)
    assert result.passed, result.problems
    assert result.dcr_ratio is not None and 0.7 < result.dcr_ratio < 1.4
    assert result.relative_synthetic is not None and result.relative_holdout is not None
    assert 0.7 < result.relative_synthetic / result.relative_holdout < 1.4  # what decides

    # what a model that memorised its rows gives: training rows, each moved by a minute
    near = train.sample(len(production), replace=True, random_state=seed).reset_index(drop=True)
    near["taken_at"] = near["taken_at"] + pd.Timedelta(minutes=1)
    near["level"] = near["level"] + 0.01
    result = check_privacy(TABLE, ROLES, production, train, holdout, near, settings, seed)
    assert not result.passed
    assert any("synthetic rows are too close to production" in p for p in result.problems)
    assert result.copies == 0  # not one of them is an exact copy: only the distance sees them


def _seasonal(rng: np.random.Generator, n: int, spread: float = 1.0) -> pd.DataFrame:
    """Readings around three seasonal peaks; `spread` < 1 draws them tighter around the peaks."""
    site = rng.choice(SITES, n, p=[0.4, 0.3, 0.2, 0.1])
    days = rng.choice([60, 180, 300], n) + rng.normal(0, 25 * spread, n)
    return pd.DataFrame(
        {
            "taken_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D"),
            "site": site,
            "level": rng.normal(10, 2 * spread, n) + (site == "north") * 3,
        }
    )


@pytest.mark.parametrize("seed", [1, 2, 4, 7])
def test_rows_denser_than_production_pass_when_no_row_was_copied(seed: int) -> None:
    """A model that smooths towards the modes puts its rows where production is dense, so
    they are nearer production's rows than real unseen rows are, without copying any. The
    plain median distance refused these (seeds 1, 2, 4 and 7 here, 14 of seeds 0-29); what
    tells a copy is being near the training rows while no nearer the holdout."""
    rng = np.random.default_rng(seed)
    production = _seasonal(rng, 1200)
    settings = Privacy()
    train, holdout = split_holdout(production, settings, seed + 1000)  # as above

    dense = _seasonal(rng, len(production), spread=0.3)
    result = check_privacy(TABLE, ROLES, production, train, holdout, dense, settings, seed)
    assert result.dcr_ratio is not None and result.dcr_ratio < 1  # nearer than real rows
    assert result.passed, result.problems

    near = train.sample(len(production), replace=True, random_state=seed).reset_index(drop=True)
    near["taken_at"] = near["taken_at"] + pd.Timedelta(minutes=1)
    result = check_privacy(TABLE, ROLES, production, train, holdout, near, settings, seed)
    assert not result.passed
    assert result.relative_synthetic is not None and result.relative_holdout is not None
    assert result.relative_synthetic < 0.5 * result.relative_holdout
