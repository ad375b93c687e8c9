"""The privacy gate: no real record, no real personal value, not too close to production.

Checks per table, on the synthetic rows as loaded in staging:
- copies: a synthetic row equal, on all its non-key columns, to a production row whose
  combination of values is unique in production (that row identifies someone). Combinations that
  many production rows share (a constant column, qty=1) identify no one and are only counted;
- leaks: a value of a personal-data column that also occurs in production's column;
- distance to closest record (DCR): a holdout of real rows is kept out of fitting. The median
  distance from synthetic rows to their closest training row must not fall below the holdout
  rows' median by more than the configured margin; a model that memorised its training rows
  puts its output closer to them than unseen real rows are. Rows can also be that close
  without being near any one training row: a model that smooths towards the modes puts its
  rows where production is dense, and a held-out row of a customer whose rows avoid each other
  by design (one invoice of each size) stands farther from the training rows than any
  independent row can. So a table below the floor is refused only if its rows are also nearer
  the training rows than the holdout by as much: the relative DCR, a row's distance to its
  closest training row over its distance to its closest holdout row (another holdout row's,
  for a holdout row), whose synthetic median must not fall below the holdout's by the margin.
  Dense rows come nearer both sets alike; near-copies come nearer the training rows only.
  On a table whose modelled columns are all categories a distance only counts differing
  values, so most rows of either set sit at 0 or 1 and both medians read ties: there the
  gate judges combinations instead (`_check_combinations`);
- part copied: a model that copies a quarter of its rows leaves both medians where they were,
  but puts that quarter far nearer one training row than real rows come to each other: the
  share of such rows is held to real unseen rows' (`_check_near`).
Distances are measured to every training row (up to ``privacy.dcr_reference_rows``) from
samples of the synthetic and holdout rows: a copy of a training row left out of a sample of
the reference would be a row like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synth_assets import roles as R
from synth_assets.config import Privacy
from synth_assets.schema import Table


@dataclass
class PrivacyResult:
    table: str
    copies: int = 0  # synthetic rows equal to a unique production row
    common_matches: int = 0  # rows equal to a combination shared by several production rows
    leaks: dict[str, int] = field(default_factory=dict)
    dcr_synthetic: float | None = None
    dcr_holdout: float | None = None
    # medians of (distance to the closest training row / distance to the closest holdout row)
    relative_synthetic: float | None = None
    relative_holdout: float | None = None
    # tables of categories only: shares of rows whose combination of modelled values is one
    # that exactly one training row has, of values other training rows have too (a
    # memoriser's share is the training rows')
    unique_synthetic: float | None = None
    unique_fresh: float | None = None  # a real row's, unseen in fitting
    unique_training: float | None = None
    # shares of rows far nearer one training row than real unseen rows come to each other
    # (a relative DCR at most a third of the closest 5% of theirs): a model that copies part
    # of its rows puts that part there, and leaves the medians where they were
    near_synthetic: float | None = None
    near_fresh: float | None = None  # real rows': the training rows, each against the others
    # a reference table (tables.overrides.<t>.reference): its rows are production's by design,
    # so only its personal-data columns are checked
    reference: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def dcr_ratio(self) -> float | None:
        if self.dcr_synthetic is None or self.dcr_holdout is None:
            return None
        if self.dcr_holdout == 0:
            return None if self.dcr_synthetic == 0 else float("inf")
        return self.dcr_synthetic / self.dcr_holdout

    @property
    def passed(self) -> bool:
        return not self.problems


def split_holdout(
    frame: pd.DataFrame, settings: Privacy, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows the model is fit on, and rows kept out of fitting as the DCR baseline."""
    if len(frame) < settings.min_rows_for_dcr:
        return frame, frame.iloc[:0]
    rng = np.random.default_rng(seed)
    held = rng.random(len(frame)) < settings.holdout_fraction
    return frame[~held], frame[held]


def _hashes(frame: pd.DataFrame) -> np.ndarray:
    """Row hashes that depend on the values only: times at one unit, so that a production
    column read at microseconds (it holds 9999-12-31) matches the same instant in nanoseconds."""
    times = {
        name: s.dt.as_unit("us")
        for name, s in frame.items()
        if pd.api.types.is_datetime64_any_dtype(s)
    }
    return pd.util.hash_pandas_object(frame.assign(**times), index=False).to_numpy()


def _non_key_columns(table: Table, roles: dict[str, R.ColumnRole]) -> list[str]:
    return [c.name for c in table.columns if roles[c.name].role not in (R.KEY, R.GENERATED)]


def _is_number(s: pd.Series) -> bool:
    """Whether the distance measures a column on a scale (else it compares categories)."""
    return pd.api.types.is_datetime64_any_dtype(s) or (
        pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    )


def encode(
    frames: list[pd.DataFrame], columns: list[str], reference: pd.DataFrame
) -> list[np.ndarray]:
    """Numbers and times scaled to [0, 1] by production's range; categories one-hot; NaN flagged."""
    parts: list[list[np.ndarray]] = [[] for _ in frames]
    for name in columns:
        ref = reference[name]
        if _is_number(ref):

            def num(s: pd.Series) -> np.ndarray:
                if pd.api.types.is_datetime64_any_dtype(s):
                    s = s.dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
                    # a microsecond epoch: 9999-12-31 (a sentinel) overflows nanoseconds
                    epoch = pd.Timestamp(0).as_unit("us")
                    return (s - epoch).dt.total_seconds().to_numpy(dtype="float64")
                return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()

            base = num(ref)
            low, high = (
                np.nanmin(base) if np.isfinite(base).any() else 0.0,
                (np.nanmax(base) if np.isfinite(base).any() else 1.0),
            )
            span = (high - low) or 1.0
            for i, f in enumerate(frames):
                v = (num(f[name]) - low) / span
                parts[i].append(np.nan_to_num(v, nan=0.0).reshape(-1, 1))
                parts[i].append(np.isnan(v).astype(float).reshape(-1, 1))
        else:
            top = ref.astype(str).value_counts().index[:20].tolist()
            for i, f in enumerate(frames):
                s = f[name].astype(str)
                onehot = (
                    np.stack([(s == t).to_numpy(float) for t in top], axis=1)
                    if top
                    else (np.zeros((len(f), 0)))
                )
                parts[i].append(onehot)
    return [
        np.hstack(p) if p else np.zeros((len(f), 0)) for p, f in zip(parts, frames, strict=True)
    ]


def _index(reference: np.ndarray) -> Any:
    """A nearest-neighbour index over ``reference``, fitted once and asked several times."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=1, metric="manhattan").fit(reference)


def _distances(index: Any, query: np.ndarray, itself: bool = False) -> np.ndarray:
    """Distance from each query row to its closest row of the index; `itself` when the query
    rows are rows of the index, so that a row's closest is another row (a duplicate counts)."""
    distances, _ = index.kneighbors(query, n_neighbors=2 if itself else 1)
    return distances[:, -1]


# in the encoded units (a number's whole range is 1): a row as far from both sets counts as 1,
# also when it equals a row of each
_TIE = 1e-6


def _relative(to_train: np.ndarray, to_holdout: np.ndarray) -> np.ndarray:
    return (to_train + _TIE) / (to_holdout + _TIE)


def _low_median(values: np.ndarray, rng: np.random.Generator, rounds: int = 400) -> float:
    """Lower end (2.5%) of the bootstrap interval of a median.

    A holdout of a few dozen rows gives a noisy median: even a perfect generator lands below it
    by 30% now and then. Comparing with the low end of its interval keeps the gate quiet on
    noise and loud on memorisation, which moves synthetic rows much closer than that.
    """
    picks = rng.integers(0, len(values), (rounds, len(values)))
    return float(np.quantile(np.median(values[picks], axis=1), 0.025))


def _interval(hits: int, rows: int) -> tuple[float, float]:
    """The (Clopper-Pearson) 95% interval of a share seen as hits out of rows."""
    from scipy.stats import beta

    low = 0.0 if hits <= 0 else float(beta.ppf(0.025, hits, rows - hits + 1))
    high = 1.0 if hits >= rows else float(beta.ppf(0.975, hits + 1, rows - hits))
    return low, high


# a real unseen row this close counts as near: a third of the relative DCR of the closest 5%
NEAR_QUANTILE, NEAR_FACTOR = 0.05, 0.3


def _check_near(
    result: PrivacyResult, fresh: np.ndarray, synthetic: np.ndarray, margin: float
) -> str | None:
    """Why part of the synthetic rows are copies of training rows, or None.

    A model that copies a quarter or a third of its rows with a small change leaves the median
    distances where fresh rows put them (Chinook's tracks and Pagila's rentals passed both),
    but puts those rows far nearer one training row than real rows come to each other. The
    baseline is each training row against the others, which is what the synthetic rows are
    measured against, and of as many rows; the line is a third of the relative DCR of its
    closest 5%, not the 5% itself: rows of a table built to a pattern (a customer's seven
    invoices of seven different totals, dates that cycle through levels) stand farther from
    each other than rows of any model that learned their distribution, and a line at the 5%
    put 7-25% of a good model's Chinook invoices and 28% of such a table's rows below it. A
    table is refused when the low end of the synthetic share's interval is more than ``margin``
    above the upper end of the real rows'.
    """
    line = NEAR_FACTOR * float(np.quantile(fresh, NEAR_QUANTILE))
    near, seen = int((synthetic <= line).sum()), int((fresh <= line).sum())
    result.near_synthetic, result.near_fresh = near / len(synthetic), seen / len(fresh)
    low, _ = _interval(near, len(synthetic))
    _, high = _interval(seen, len(fresh))
    if low <= high + margin:
        return None
    return (
        f"{result.near_synthetic:.0%} of them are as near one training row (relative to the "
        f"holdout) as only {result.near_fresh:.1%} of real rows the model did not see are; the "
        f"low end of that share's 95% interval, {low:.1%}, is above {high + margin:.1%} (the "
        f"real rows' upper end {high:.1%} plus privacy.near_copy_share {margin})"
    )


def _check_combinations(
    result: PrivacyResult,
    columns: list[str],
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    margin: float,
) -> str | None:
    """Why a table of categories is too close to production, or None.

    What a memoriser gives away is a combination only one training row has, of values other
    rows have too (a value one row alone has is the rare-category rule's, which replaces it
    unless configured to keep it; counting it here would refuse every model that keeps
    production's rare values as it was told to). A row drawn from production's distribution
    matches such a combination now and then too. How often is measured on real rows the model
    did not see: the holdout's rows, and each training row left out of the others (its
    combination is then one of those among the rest when exactly two training rows have it and
    each of its values at least three), a baseline of every row rather than of a holdout of a
    few. A table is refused when its synthetic rows match such combinations well above that
    baseline (the low end of their share's interval above the upper end of the baseline's, over
    1 - margin) and at least half way to the training rows' own share.
    """

    def counts(keys: pd.Series) -> np.ndarray:
        return keys.map(keys.value_counts()).to_numpy()

    train_keys = pd.Series(_hashes(train[columns]))
    together = counts(train_keys)
    least = np.min([counts(pd.Series(_hashes(train[[c]]))) for c in columns], axis=0)
    alone = (together == 1) & (least >= 2)  # its combination, of values other rows have
    once = set(train_keys[alone])
    fresh_hits = int(((together == 2) & (least >= 3)).sum()) + int(
        pd.Series(_hashes(holdout[columns])).isin(once).sum()
    )
    fresh_rows = len(train) + len(holdout)
    synthetic_hits = int(pd.Series(_hashes(synthetic[columns])).isin(once).sum())
    result.unique_fresh = fresh_hits / fresh_rows
    result.unique_training = float(alone.mean())
    result.unique_synthetic = synthetic_hits / len(synthetic)
    high = _interval(fresh_hits, fresh_rows)[1]
    floor = high / (1 - margin)
    ceiling = max(floor, (high + result.unique_training) / 2)
    low = _interval(synthetic_hits, len(synthetic))[0]
    if low <= floor:
        return None  # the synthetic rows' own count is noisy too
    if result.unique_synthetic <= ceiling:
        return None
    return (
        f"{result.unique_synthetic:.0%} of its rows have a combination of "
        f"{', '.join(columns)} that one training row alone has (of values other rows have), "
        f"against {result.unique_fresh:.0%} of real rows the model did not see: the low end of "
        f"that share's 95% interval, {low:.0%}, is above {floor:.0%} (the unseen rows' upper "
        f"end {high:.0%} over 1 - privacy.dcr_margin), and the share is above "
        f"{ceiling:.0%} (that or half way to the training rows' own "
        f"{result.unique_training:.0%}, the larger)"
    )


def check_privacy(
    table: Table,
    roles: dict[str, R.ColumnRole],
    production: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    settings: Privacy,
    seed: int,
    reference: bool = False,
) -> PrivacyResult:
    result = PrivacyResult(table.name, reference=reference)
    columns = _non_key_columns(table, roles)
    if columns and len(synthetic) and len(production) and not reference:
        prod_hash = pd.Series(_hashes(production[columns]))
        counts = prod_hash.value_counts()
        unique = set(counts[counts == 1].index)
        shared = set(counts[counts > 1].index)
        synth_hash = pd.Series(_hashes(synthetic[columns]))
        result.copies = int(synth_hash.isin(unique).sum())
        result.common_matches = int(synth_hash.isin(shared).sum())
        if result.copies:
            result.problems.append(
                f"{table.name}: {result.copies} synthetic rows equal a production row on all "
                f"non-key columns ({', '.join(columns)}); if {table.name} is lookup data (a "
                f"calendar, a list of currencies), tables.overrides.{table.name}.reference: true "
                "publishes it as production has it"
            )
    for name, role in roles.items():
        if role.role != R.PII or name not in synthetic:
            continue
        real = set(production[name].dropna().astype(str))
        leaked = int(synthetic[name].dropna().astype(str).isin(real).sum())
        result.leaks[name] = leaked
        if leaked:
            result.problems.append(
                f"{table.name}.{name}: {leaked} values are production values of this "
                "personal-data column"
            )
    if reference:
        return result
    modelled = [c for c, r in roles.items() if r.role == R.MODEL and c in synthetic]
    if modelled and len(holdout) and len(train) >= settings.min_rows_for_dcr and len(synthetic):
        rng = np.random.default_rng(seed)

        def some(n: int, rows: int = settings.dcr_rows) -> np.ndarray:
            """Positions of at most ``rows`` of ``n`` rows, in order."""
            return np.sort(rng.choice(n, rows, replace=False)) if n > rows else np.arange(n)

        def cap(f: pd.DataFrame, rows: int = settings.dcr_rows) -> pd.DataFrame:
            return f if len(f) <= rows else f.iloc[some(len(f), rows)]

        if not any(_is_number(train[c]) for c in modelled):
            why = _check_combinations(
                result, modelled, train, holdout, synthetic, settings.dcr_margin
            )
            if why:
                result.problems.append(
                    f"{table.name}: synthetic rows are too close to production: {why}; the "
                    "model reproduces its rare rows: try another synthesizer "
                    f"(tables.overrides.{table.name}.synthesizer)"
                )
            return result
        # distances to every training row (up to dcr_reference_rows), from samples of the
        # rows asked about: a copy of a training row left out of a sample of the reference is
        # a row like any other (a sample of 2,000 of Pagila's 14,531 rentals passed a model
        # that gave back every rental moved by seconds)
        t, h, s = encode(
            [cap(train, settings.dcr_reference_rows), cap(holdout), cap(synthetic)], modelled, train
        )
        to_train = _index(t)
        holdout_d, synthetic_d = _distances(to_train, h), _distances(to_train, s)
        result.dcr_holdout = float(np.median(holdout_d))
        result.dcr_synthetic = float(np.median(synthetic_d))
        plain_floor = (1 - settings.dcr_margin) * _low_median(holdout_d, rng)
        close = result.dcr_synthetic < plain_floor
        why = (
            f"median distance to the closest training row {result.dcr_synthetic:.4f} < "
            f"{plain_floor:.4f} ({1 - settings.dcr_margin:.2f} x the low end of the holdout "
            f"rows' median {result.dcr_holdout:.4f})"
        )
        near = None
        if len(h) >= 2:  # a holdout row's closest holdout row is another one
            to_holdout = _index(h)
            holdout_r = _relative(holdout_d, _distances(to_holdout, h, itself=True))
            synthetic_r = _relative(synthetic_d, _distances(to_holdout, s))
            result.relative_holdout = float(np.median(holdout_r))
            result.relative_synthetic = float(np.median(synthetic_r))
            floor = (1 - settings.dcr_margin) * _low_median(holdout_r, rng)
            close = close and result.relative_synthetic < floor
            why += (
                ", and nearer the training rows than the holdout by as much: the median of "
                "the distance to the closest training row over the distance to the closest "
                f"holdout row is {result.relative_synthetic:.3f} < {floor:.3f} (the holdout "
                f"rows' own {result.relative_holdout:.3f})"
            )
            # real rows unseen in fitting, as many as the synthetic rows: training rows, each
            # against the others
            own = t[some(len(t))]
            own_r = _relative(_distances(to_train, own, itself=True), _distances(to_holdout, own))
            near = _check_near(result, own_r, synthetic_r, settings.near_copy_share)
        if close:
            result.problems.append(
                f"{table.name}: synthetic rows are too close to production: {why}; its rows sit "
                "near rows the model was fit on: try another synthesizer "
                f"(tables.overrides.{table.name}.synthesizer)"
            )
        elif near:
            result.problems.append(
                f"{table.name}: part of the synthetic rows copy training rows: {near}; try "
                f"another synthesizer (tables.overrides.{table.name}.synthesizer)"
            )
    return result
