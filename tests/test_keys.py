"""Key assignment arithmetic: cardinality, null rates, uniqueness, trees."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_assets.checks import parse, repair
from synth_assets.extract import FkProfile
from synth_assets.keys import (
    NO_PARENT,
    assign_parents,
    code_values,
    draw_counts,
    fit_total,
    self_parents,
)
from synth_assets.pii import scramble

SKEWED = FkProfile(
    counts=np.array([0, 1, 2, 50]), parents=np.array([500, 300, 190, 10]), null_rate=0.2
)


def test_counts_follow_the_production_distribution() -> None:
    counts = draw_counts(np.random.default_rng(1), SKEWED, 20_000)
    assert abs((counts == 0).mean() - 0.5) < 0.02
    assert abs((counts == 50).mean() - 0.01) < 0.004


def test_fit_total_hits_the_target_and_keeps_zeros() -> None:
    rng = np.random.default_rng(2)
    counts = draw_counts(rng, SKEWED, 1000)
    for target in (int(counts.sum() * 0.9), int(counts.sum() * 1.1)):
        fitted = fit_total(rng, counts, target, at_most_one=False)
        assert fitted.sum() == target and (fitted >= 0).all()
    one = fit_total(rng, np.zeros(100, dtype=np.int64), 40, at_most_one=True)
    assert one.sum() == 40 and one.max() == 1


def test_nullable_fk_keeps_null_rate_and_unique_fk_never_repeats() -> None:
    rng = np.random.default_rng(3)
    idx = assign_parents(rng, SKEWED, 100, 10_000, nullable=True, unique=False)
    assert abs((idx == NO_PARENT).mean() - 0.2) < 0.02
    assert idx.max() < 100
    unique = assign_parents(rng, SKEWED, 50, 80, nullable=False, unique=True)
    chosen = unique[unique != NO_PARENT]
    assert len(chosen) == 50 and len(set(chosen)) == 50


def test_self_references_form_a_forest() -> None:
    idx = self_parents(np.random.default_rng(4), 500, 0.1, nullable=True)
    assert idx[0] == NO_PARENT
    assert all(p < i for i, p in enumerate(idx) if p != NO_PARENT)


def test_codes_keep_their_format_and_are_unique() -> None:
    rng = np.random.default_rng(5)
    values = code_values(["SKU-000123", "SKU-000999"], 5000, rng, unique=True)
    assert len(set(values)) == 5000 and all(v.startswith("SKU-") and len(v) == 10 for v in values)
    scrambled = code_values(["AB12-x9", "QZ77-k1"], 200, rng, unique=True)
    assert all(len(v) == 7 and v[4] == "-" for v in scrambled)
    phones = scramble(np.array(["+49 30 1234567"]), rng)
    assert phones[0][:4] in {f"+{a}{b} " for a in "0123456789" for b in "0123456789"}


def test_check_repair_for_comparisons() -> None:
    rng = np.random.default_rng(6)
    frame = pd.DataFrame(
        {
            "shipped": pd.to_datetime(["2024-01-02", "2024-01-05", "2024-01-03"]),
            "delivered": pd.to_datetime(["2024-01-04", "2024-01-01", None]),
            "qty": [3, -1, 0],
        }
    )
    assert parse("((delivered IS NULL) OR (delivered > shipped))").right == "shipped"
    repair(frame, "delivered IS NULL OR delivered > shipped", rng, set(), set())
    repair(frame, "(qty > 0)", rng, set(), set())
    assert frame.loc[1, "delivered"] > frame.loc[1, "shipped"]
    assert pd.isna(frame.loc[2, "delivered"])
    assert (frame["qty"] > 0).all()
    assert parse("length(name) < 10") is None
