"""A small table's sampled columns follow production's shape as closely as its row count allows.

Independent draws of 60 rows stray from the distribution they are drawn from by chance (a
Kolmogorov-Smirnov distance of 0.1 to 0.2); QA comparing a dev table with production reads that
as a wrong shape. Unconditional rows take their values at stratified ranks, so only the
quantiles' own error is left, and the copula's dependence (in the ranks) is kept. (Rows
sampled given a value keep their conditional distribution: test_rebalance.py.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp, spearmanr

from synth_assets.generate import _with_nulls
from synth_assets.schema import Column
from synth_assets.synthesize import fit_table

COLUMNS = [Column("amount", "float8", "float", False), Column("fee", "float8", "float", False)]


def _production(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    amount = rng.lognormal(3.0, 0.8, n)
    return pd.DataFrame({"amount": amount, "fee": amount * 0.1 + rng.normal(0, 1.0, n)})


def test_a_small_table_keeps_production_s_shape_on_every_seed() -> None:
    production = _production(60)
    model = fit_table("charge", production, COLUMNS, "gaussian_copula", seed=1)
    worst = 0.0
    for seed in range(12):
        sample = model.sample(60, seed)
        for name in ("amount", "fee"):
            worst = max(worst, ks_2samp(production[name], sample[name].astype(float)).statistic)
        assert spearmanr(sample["amount"], sample["fee"]).statistic > 0.7
    assert worst <= 0.12, worst


def test_a_generated_column_takes_production_s_count_of_nulls() -> None:
    """A generated column (personal data, words, codes) has as many NULLs as production's share
    gives: a coin per row left 7 of Chinook's 59 synthetic customers without a postal code
    against production's 4 (seed 14), and the gate refused the invoices that carry it."""
    values = np.array([f"code {i}" for i in range(59)], dtype=object)
    for seed in range(200):
        out = _with_nulls(values, 4 / 59, True, np.random.default_rng(seed))
        assert sum(v is None for v in out) == 4
        assert [v for v in out if v is not None] == [v for v in values if v in set(out)]
    drawn = {
        sum(v is None for v in _with_nulls(values, 0.1, True, np.random.default_rng(seed)))
        for seed in range(200)
    }
    assert drawn == {5, 6}  # 5.9 rows' worth: 5 or 6, never a coin's 2 or 10
    assert all(v is not None for v in _with_nulls(values, 0.5, False, np.random.default_rng(0)))


def test_a_small_table_keeps_a_category_s_link_to_a_number_and_its_shares() -> None:
    # 60 rows: too few for the refiners' trees, so the copula alone links the size to the
    # weight through the category's codes; a NULL weight stays at production's share
    rng = np.random.default_rng(8)
    weight = rng.normal(50, 10, 60)
    size = np.where(weight > 55, "large", np.where(weight < 45, "small", "medium"))
    weight[:6] = np.nan
    production = pd.DataFrame({"weight": weight, "size": size})
    columns = [Column("weight", "float8", "float", True), Column("size", "text", "text", False)]
    model = fit_table("parcels", production, columns, "gaussian_copula", seed=2)
    sample = pd.concat([model.sample(60, seed) for seed in range(20)], ignore_index=True)
    shares = sample["size"].value_counts(normalize=True)
    expected = production["size"].value_counts(normalize=True)
    assert (shares.reindex(expected.index) - expected).abs().max() < 0.05
    means = sample.groupby("size")["weight"].mean()
    assert means["small"] < means["medium"] < means["large"]
    assert abs(sample["weight"].isna().mean() - 0.1) < 0.03
