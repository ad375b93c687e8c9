"""One SDV single-table synthesizer per table, fit on the columns it models.

SDV metadata is built from the database types (not guessed from values): the database already
says which columns are integers, numerics, dates or enums. Keys and personal data are never
shown to the synthesizer; they are made elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from synth_assets.durations import Duration, as_durations, find_durations, from_durations
from synth_assets.encoding import Encoder
from synth_assets.errors import ProdtwinError
from synth_assets.implied import Implied, find_implied
from synth_assets.quotas import Quota
from synth_assets.rare import keys_of
from synth_assets.relations import is_latent
from synth_assets.schema import Column

SDTYPES: dict[str, dict[str, str]] = {
    "integer": {"sdtype": "numerical"},
    "float": {"sdtype": "numerical"},
    "numeric": {"sdtype": "numerical"},
    "boolean": {"sdtype": "boolean"},
    # times are modelled as seconds since 1970: what SDV's datetime encoder does anyway, minus
    # its per-value format sniffing when it validates data (5 ms a value, seconds a column)
    "date": {"sdtype": "numerical"},
    "timestamp": {"sdtype": "numerical"},
    "timestamptz": {"sdtype": "numerical"},
    "enum": {"sdtype": "categorical"},
    "text": {"sdtype": "categorical"},
}
MIN_ROWS_TO_FIT = 5


def _synthesizer_class(name: str) -> Any:
    from sdv import single_table

    return {
        "gaussian_copula": single_table.GaussianCopulaSynthesizer,
        "ctgan": single_table.CTGANSynthesizer,
        "tvae": single_table.TVAESynthesizer,
        "copula_gan": single_table.CopulaGANSynthesizer,
    }[name]


TIME_KINDS = ("date", "timestamp", "timestamptz")
EPOCH = pd.Timestamp("1970-01-01")


def to_seconds(s: pd.Series) -> pd.Series:
    """Naive UTC seconds since 1970 as floats (NaN for NULL)."""
    if not pd.api.types.is_datetime64_any_dtype(s):
        s = pd.to_datetime(s, errors="coerce")
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return (s - EPOCH).dt.total_seconds().astype("float64")


def from_seconds(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):  # a fallback model keeps times as they were
        return s.dt.tz_localize(None) if getattr(s.dt, "tz", None) is not None else s
    seconds = pd.to_numeric(s, errors="coerce").astype("float64")
    # whole microseconds first: float nanoseconds since 1970 are only exact to 256 ns
    micros = pd.array(np.round(seconds.to_numpy() * 1e6), dtype="Int64")
    return pd.Series(pd.to_datetime(micros, unit="us"), index=s.index).astype("datetime64[ns]")


INTEGER_BITS = {"smallint": 16, "integer": 32, "bigint": 64}


def integer_bounds(col: Column) -> tuple[float, float]:
    """The floats an integer column's sampled values are clipped to: the type's own limits
    (a float next to bigint's 2^63 - 1 is 2^63, which does not fit: the last float below)."""
    bits = INTEGER_BITS.get(col.sql_type, 64)
    return float(-(2 ** (bits - 1))), float(np.nextafter(float(2 ** (bits - 1)), 0.0))


def numeric_bounds(col: Column) -> tuple[float, float]:
    """A numeric(p, s) holds less than 10^(p - s): a sampled value next to production's
    largest (99999999.99 is 1e8 as a float, then rounded) must not overflow the column."""
    match = re.fullmatch(r"numeric\((\d+),\s*(\d+)\)", col.sql_type)
    if match is None:
        return -np.inf, np.inf
    precision, scale = int(match.group(1)), int(match.group(2))
    high = float(np.nextafter(10.0 ** (precision - scale), 0.0)) - 10.0**-scale
    return -high, high


def to_model_frame(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """What SDV accepts: floats for numbers, naive UTC datetimes, objects for the rest."""
    out = {}
    for col in columns:
        s = frame[col.name]
        if col.kind in ("integer", "float", "numeric"):
            out[col.name] = s.astype("float64")
        elif col.kind in TIME_KINDS:
            out[col.name] = to_seconds(s)
        elif col.kind == "boolean":
            out[col.name] = s.astype(object).where(s.notna(), np.nan)
        else:
            out[col.name] = s.astype(object).where(s.notna(), np.nan)
    return pd.DataFrame(out, index=frame.index)


def from_model_frame(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """Back to the column types of the database."""
    out = {}
    for col in columns:
        s = frame[col.name]
        if col.kind == "integer":
            low, high = integer_bounds(col)
            v = np.clip(np.round(s.astype("float64").to_numpy()), low, high)
            out[col.name] = pd.array(v, dtype="Int64")
        elif col.kind == "numeric":
            v = s.astype("float64").clip(*numeric_bounds(col))
            out[col.name] = v.round(col.numeric_scale) if col.numeric_scale is not None else v
        elif col.kind == "float":
            out[col.name] = s.astype("float64")
        elif col.kind == "timestamptz":
            out[col.name] = from_seconds(s).dt.tz_localize("UTC")
        elif col.kind == "date":
            out[col.name] = from_seconds(s).dt.normalize()
        elif col.kind == "timestamp":
            out[col.name] = from_seconds(s)
        elif col.kind == "boolean":
            out[col.name] = s.astype("boolean")
        else:
            out[col.name] = s.astype(object).where(s.notna(), None)
    return pd.DataFrame(out)


KNOTS = 512
MIN_LEAF_ROWS = 20
ROWS_PER_KNOT = 10
SCORE_NOISE = 0.1
MAX_DISCRETE_VALUES = 20
MIN_VALUE_ROWS = 3  # rare_category_count's default plus one


@dataclass(frozen=True)
class Marginal:
    """A numeric column's distribution as production's quantiles.

    The copula then models normal scores (exactly normal by construction, so SDV fits a plain
    normal in closed form instead of a beta by numerical search), and sampled scores map back
    through the quantiles: the column's shape is production's, ties and gaps included.
    """

    probs: np.ndarray
    knots: np.ndarray
    # few values (a price of 0.99 or 1.99, a quantity of 1 to 4): knots are the values and probs
    # their cumulative shares; a score maps to a value, never to one in between (1.34)
    discrete: bool = False

    @classmethod
    def fit(cls, values: pd.Series, rng: np.random.Generator) -> tuple[Marginal, pd.Series]:
        present = values.notna().to_numpy()
        x = values.to_numpy(dtype="float64")[present]
        support, counts = np.unique(x, return_counts=True)
        # values that at least a few rows share: a value of one or two rows is not reproduced
        common = counts >= MIN_VALUE_ROWS
        if len(support) <= MAX_DISCRETE_VALUES and common.sum() >= 2:
            shares = np.cumsum(counts[common]) / counts[common].sum()
            marginal = cls(shares, support[common], discrete=True)
        else:
            # about ten production rows per knot: finer would trace the training rows themselves
            k = int(min(KNOTS, max(2, len(x) // ROWS_PER_KNOT)))
            probs = np.linspace(0.0, 1.0, k)
            marginal = cls(probs, np.quantile(x, probs))
        # ranks with ties broken at random: the scores are normal even for a column of few values
        order = np.lexsort((rng.random(len(x)), x))
        ranks = np.empty(len(x))
        ranks[order] = np.arange(len(x))
        scores = np.full(len(values), np.nan)
        scores[present] = ndtri((ranks + 0.5) / len(x))
        return marginal, pd.Series(scores, index=values.index)

    def restore(
        self, scores: pd.Series, rng: np.random.Generator, stratified: bool = False
    ) -> pd.Series:
        """Values for normal scores. ``stratified`` (rows drawn unconditionally) replaces each
        score by its rank among the rows, jittered inside its slot: the copula's dependence is
        in the ranks and stays, while the values' spread follows production's quantiles as
        closely as n rows can (a table of 400 rows no longer drifts 4% from its own shape by
        chance). Rows sampled given a condition keep their scores: their distribution is not
        the column's."""
        z = pd.to_numeric(scores, errors="coerce").to_numpy(dtype="float64")
        present = ~np.isnan(z)
        # a little independent noise: rows of a perfectly correlated pair (a reading taken every
        # three hours) would otherwise sit on production's line, closer than its own rows are
        if not self.discrete:  # no noise for few values: a value is a value, no line to blur
            z = (z + SCORE_NOISE * rng.standard_normal(len(z))) / np.sqrt(1 + SCORE_NOISE**2)
        u = ndtr(z)
        m = int(present.sum())
        if stratified and m > 1:
            order = np.lexsort((rng.random(m), z[present]))
            slots = np.empty(m)
            slots[order] = np.arange(m)
            u[present] = (slots + rng.random(m)) / m
        if self.discrete:
            at = np.minimum(np.searchsorted(self.probs, u, side="right"), len(self.knots) - 1)
            restored = self.knots[np.where(present, at, 0)]
        else:
            restored = np.interp(u, self.probs, self.knots)
        return pd.Series(restored, index=scores.index).where(present)

    def scores_of(self, values: pd.Series, rng: np.random.Generator) -> pd.Series:
        """Normal scores that restore to the given values of a discrete column: a score drawn
        inside each value's share of the scale (NaN for NULL)."""
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        present = ~np.isnan(x)
        at = np.minimum(np.searchsorted(self.knots, x[present]), len(self.knots) - 1)
        low = np.where(at > 0, self.probs[np.maximum(at - 1, 0)], 0.0)
        u = low + rng.random(len(at)) * (self.probs[at] - low)
        scores = np.full(len(x), np.nan)
        scores[present] = ndtri(np.clip(u, 1e-9, 1 - 1e-9))
        return pd.Series(scores, index=values.index)


@dataclass(frozen=True)
class Codes:
    """A category's values on [0, 1], each on an interval as wide as its share, in order of
    appearance: what SDV's UniformEncoder does, done here so that the copula's columns are all
    numbers SDV passes through untransformed (RDT's transformers were a third of a small
    table's fit and sample: 5 ms a column)."""

    labels: np.ndarray  # object; NaN is a label of its own
    upper: np.ndarray  # each label's interval ends here; the last at 1

    @classmethod
    def fit(cls, values: pd.Series, rng: np.random.Generator) -> tuple[Codes, pd.Series]:
        codes, labels = pd.factorize(values.astype(object), use_na_sentinel=False)
        shares = np.bincount(codes, minlength=len(labels)) / max(len(codes), 1)
        upper = np.cumsum(shares)
        if len(upper):
            upper[-1] = 1.0
        low = upper - shares
        encoded = low[codes] + rng.random(len(codes)) * shares[codes]
        return cls(np.asarray(labels, dtype=object), upper), pd.Series(encoded, index=values.index)

    def encode(self, values: pd.Series, rng: np.random.Generator) -> pd.Series:
        """Given values (a condition) at a point inside their intervals; an unknown value at
        the middle of the scale."""
        keys = pd.Series(self.labels).astype(str)
        at = pd.Index(keys).get_indexer(values.astype(object).astype(str))
        low = np.concatenate([[0.0], self.upper[:-1]])
        width = self.upper - low
        u = np.where(at >= 0, low[at] + rng.random(len(at)) * width[at], 0.5)
        return pd.Series(u, index=values.index)

    def decode(self, u: pd.Series) -> pd.Series:
        x = np.clip(pd.to_numeric(u, errors="coerce").to_numpy(dtype="float64"), 0.0, 1.0)
        at = np.searchsorted(self.upper, np.nan_to_num(x, nan=0.5))
        at = np.minimum(at, len(self.labels) - 1)
        return pd.Series(self.labels[at], index=u.index, dtype=object)


# dates pandas holds at nanoseconds; PostgreSQL's run from 4713 BC to 294276 AD
NS_LOW, NS_HIGH = pd.Timestamp("1678-01-01"), pd.Timestamp("2262-01-01")


@dataclass(frozen=True)
class Specials:
    """Values of a column that a synthesizer cannot learn, reproduced at production's rate.

    A float's NaN and infinities, and dates outside pandas' nanosecond range that at least
    ``MIN_VALUE_ROWS`` rows share (sentinels such as 9999-12-31 or 0001-01-01). The model sees
    such rows as missing, so it learns the rate of "missing or special" with the other columns;
    each row it samples as missing becomes a special value with that value's share of
    production's missing-or-special rows, or stays NULL. A NOT NULL column's sentinel is thus
    never published as NULL. (A rarer out-of-range date is clipped into range for the model:
    one row's date is not copied.)
    """

    values: tuple[Any, ...]
    shares: tuple[float, ...]  # of production's rows that are NULL or special

    @staticmethod
    def split(s: pd.Series, col: Column) -> tuple[Specials | None, pd.Series]:
        """The column's specials, and the column with them as missing (what the model sees)."""
        if col.kind in ("float", "numeric"):
            x = s.to_numpy(dtype="float64", na_value=np.nan)
            special = ~s.isna().to_numpy() & ~np.isfinite(x)
            kinds = np.where(np.isnan(x), 0, np.sign(x)).astype(np.int64)  # NaN, +inf, -inf
            values = {0: np.nan, 1: np.inf, -1: -np.inf}
            counts = {k: int((special & (kinds == k)).sum()) for k in values}
            found = [(values[k], n) for k, n in counts.items() if n]
            masked = pd.Series(np.where(special, np.nan, x), index=s.index)
        elif col.kind in TIME_KINDS and pd.api.types.is_datetime64_any_dtype(s):
            tz = getattr(s.dt, "tz", None)
            naive = s.dt.tz_convert("UTC").dt.tz_localize(None) if tz is not None else s
            outside = ((naive < NS_LOW) | (naive > NS_HIGH)).to_numpy()
            if not outside.any():
                return None, s
            tally = naive[outside].value_counts()
            common = tally[tally >= MIN_VALUE_ROWS]
            found = [(v, int(n)) for v, n in common.items()]
            special = naive.isin(common.index).to_numpy()
            inside = naive.where(~special).clip(NS_LOW, NS_HIGH).astype("datetime64[ns]")
            masked = inside.dt.tz_localize("UTC") if tz is not None else inside
        else:
            return None, s
        if not found and col.kind not in TIME_KINDS:
            return None, masked
        # (a date column of rare out-of-range values keeps microseconds with no special value:
        # synthetic rows compare with production's in the same unit, in the privacy checks)
        missing = max(int(special.sum() + s.isna().sum()), 1)
        return Specials(tuple(v for v, _ in found), tuple(n / missing for _, n in found)), masked

    def apply(self, s: pd.Series, col: Column, rng: np.random.Generator) -> pd.Series:
        """Sampled missing values become special values at their shares; the column takes a
        type that holds them (Float64 keeps NaN apart from NULL; microseconds hold 9999)."""
        missing = s.isna().to_numpy()
        u = rng.random(len(s))
        ends = np.cumsum(self.shares)
        pick = np.where(missing, np.searchsorted(ends, u, side="right"), len(ends))
        if col.kind in ("float", "numeric"):
            x = s.to_numpy(dtype="float64", na_value=np.nan)
            chosen = pick < len(ends)
            x[chosen] = np.asarray(self.values, dtype="float64")[pick[chosen]]
            if not any(np.isnan(v) for v in self.values):  # infinities: float64 holds them
                return pd.Series(x, index=s.index)
            null = missing & ~chosen
            return pd.Series(pd.arrays.FloatingArray(np.where(null, 0.0, x), null), index=s.index)
        tz = getattr(s.dt, "tz", None)
        out = s.astype("datetime64[us, UTC]" if tz is not None else "datetime64[us]")
        for i, value in enumerate(self.values):
            rows = pick == i
            if rows.any():
                stamp = pd.Timestamp(value).as_unit("us")
                out[rows] = stamp.tz_localize("UTC") if tz is not None else stamp
        return out


CATEGORY_SDTYPES = ("categorical", "boolean")
NULL_CLASS = "\x00null"


@dataclass(frozen=True)
class Refiner:
    """A category column drawn again from P(category | the row's other values).

    A Gaussian copula keeps only monotone links between a category and the rest (a status that
    goes with large amounts at one end of the range, a currency that follows the country are
    mostly lost). A small decision tree fit on production (leaves of at least a few dozen rows:
    it learns groups, never a person) gives each sampled row the category distribution of rows
    like it; categories are drawn in a chain, each given the ones before.
    """

    column: str
    features: list[str]
    encoder: Encoder
    tree: Any
    classes: np.ndarray  # the original values (True, "EUR", ...), NaN for NULL

    @classmethod
    def fit(
        cls,
        data: pd.DataFrame,
        column: str,
        features: list[str],
        seed: int,
        target: pd.Series | None = None,
    ) -> Refiner | None:
        """``target``: the column's values when ``data`` holds its scores (discrete numbers)."""
        from sklearn.tree import DecisionTreeClassifier

        values = data[column] if target is None else target
        y = values.astype(object).where(values.notna(), NULL_CLASS).astype(str)
        if y.nunique() < 2 or not features:
            return None
        encoder = Encoder.fit(data, features)
        leaf = max(MIN_LEAF_ROWS, len(data) // 100)
        tree = DecisionTreeClassifier(
            max_depth=8, min_samples_leaf=leaf, random_state=seed % 2**31
        ).fit(encoder.transform(data), y.to_numpy())
        originals = {str(v): v for v in values.dropna().unique()}
        classes = np.array([originals.get(c, np.nan) for c in tree.classes_], dtype=object)
        return cls(column, features, encoder, tree, classes)

    def draw(
        self, data: pd.DataFrame, rng: np.random.Generator, quota: Quota | None = None
    ) -> pd.Series:
        """``quota``: the rows are the table's, and take the column's training shares."""
        proba = self.tree.predict_proba(self.encoder.transform(data))
        # stratified uniforms handed to the rows in random order: each row's draw is still
        # P(category | row), but the shares over the table vary far less than with independent
        # draws (a NULL share of 61% does not come out at 55% by chance)
        n = len(data)
        u = (rng.permutation(n) + rng.random()) / max(n, 1)
        picks = (proba.cumsum(axis=1) < u[:, None]).sum(axis=1)
        values = self.classes[np.minimum(picks, len(self.classes) - 1)]
        if quota is not None:
            # the tree's probability of each quota value (0 for one the tree never saw)
            at = pd.Index(keys_of(self.classes)).get_indexer(quota.keys)
            with np.errstate(divide="ignore"):
                log_p = np.where(at >= 0, np.log(proba[:, np.maximum(at, 0)]), -np.inf)
            values = quota.apply(values, rng, log_p)
        return pd.Series(values, index=data.index, dtype=object)


FOLLOW_CORRELATION = 0.9  # a number this correlated with another is drawn given it


@dataclass(frozen=True)
class ScoreRefiner:
    """A continuous number drawn again from its distribution among rows like this one.

    A Gaussian copula has no tail dependence: a track's length and size correlate at 0.96 in
    production because the long videos are also the large files, but the copula pairs a long
    track with a middling size (0.72), and a price that goes with both (videos cost 1.99) loses
    them too. A small regression tree on the other numbers (leaves of at least a few dozen
    rows) keeps, per leaf, quantiles of the column's normal scores (about ten rows per knot,
    as a Marginal: never a row); a sampled row takes the leaf quantile at its own score's rank
    among the rows of its leaf, so the copula's order inside a leaf stays.
    """

    column: str
    features: list[str]
    encoder: Encoder
    tree: Any
    leaves: dict[int, np.ndarray]  # leaf id -> quantiles of the column's scores

    @classmethod
    def fit(
        cls, data: pd.DataFrame, column: str, features: list[str], seed: int
    ) -> ScoreRefiner | None:
        from sklearn.tree import DecisionTreeRegressor

        y = data[column].to_numpy(dtype="float64")
        rows = ~np.isnan(y)
        if rows.sum() < MIN_LEAF_ROWS * 4 or not features:
            return None
        encoder = Encoder.fit(data, features)
        x = encoder.transform(data)[rows]
        leaf = max(MIN_LEAF_ROWS, int(rows.sum()) // 100)
        tree = DecisionTreeRegressor(
            max_depth=8, min_samples_leaf=leaf, random_state=seed % 2**31
        ).fit(x, y[rows])
        ids = tree.apply(x)
        leaves = {}
        for leaf_id in np.unique(ids):
            values = y[rows][ids == leaf_id]
            k = int(min(KNOTS, max(2, len(values) // ROWS_PER_KNOT)))
            leaves[int(leaf_id)] = np.quantile(values, np.linspace(0.0, 1.0, k))
        return cls(column, features, encoder, tree, leaves)

    def draw(self, data: pd.DataFrame) -> np.ndarray:
        own = data[self.column].to_numpy(dtype="float64")
        out = own.copy()
        rows = np.flatnonzero(~np.isnan(own))  # a NULL the copula drew stays NULL
        if len(rows) == 0:
            return out
        ids = self.tree.apply(self.encoder.transform(data.iloc[rows]))
        # positions per leaf in one pass (a mask per leaf would read every row once per leaf)
        for leaf_id, mine in pd.Series(ids).groupby(ids).indices.items():
            z = own[rows[mine]]
            rank = np.empty(len(mine))
            rank[np.argsort(z, kind="stable")] = np.arange(len(mine))
            knots = self.leaves[int(leaf_id)]
            u = (rank + 0.5) / len(mine)
            out[rows[mine]] = np.interp(u, np.linspace(0.0, 1.0, len(knots)), knots)
        return out


def score_refiners(
    data: pd.DataFrame, values: pd.DataFrame, continuous: list[str], seed: int
) -> list[ScoreRefiner]:
    """A ScoreRefiner for each continuous number that another continuous number of the row
    correlates with at least FOLLOW_CORRELATION in production's values (the pairs a copula
    loses); it is drawn given the numbers that are not drawn again themselves."""
    if len(data) < MIN_LEAF_ROWS * 4 or len(continuous) < 2:
        return []
    x = values[continuous].astype("float64")
    r = x.corr().abs().fillna(0.0).to_numpy()
    np.fill_diagonal(r, 0.0)
    refined: list[str] = []
    for i, name in enumerate(continuous):
        partners = [continuous[j] for j in np.flatnonzero(r[i] >= FOLLOW_CORRELATION)]
        # the earlier column of a pair is the one given: the later is drawn given it
        if any(continuous.index(p) < i and p not in refined for p in partners):
            refined.append(name)
    features = [c for c in continuous if c not in refined]
    out = []
    for name in refined:
        refiner = ScoreRefiner.fit(data, name, features, seed)
        if refiner is not None:
            out.append(refiner)
    return out


@dataclass
class TableModel:
    """A fitted model of a table's modelled columns (or of none)."""

    table: str
    columns: list[Column]
    synthesizer: Any | None
    fallback: pd.DataFrame | None  # tiny tables: the few rows, sampled column by column
    fit_seconds: float
    marginals: dict[str, Marginal] = field(default_factory=dict)
    refiners: list[Refiner] = field(default_factory=list)
    specials: dict[str, Specials] = field(default_factory=dict)
    score_refiners: list[ScoreRefiner] = field(default_factory=list)
    implied: list[Implied] = field(default_factory=list)  # a state within its country
    quotas: dict[str, Quota] = field(default_factory=dict)  # categories' training shares
    durations: dict[str, Duration] = field(default_factory=dict)  # later times from earlier
    nulls: dict[str, str] = field(default_factory=dict)  # number or time -> its NULL flag
    # the Gaussian copula's own encodings: categories as Codes, numbers' NULL shares (their
    # NULLs filled for the fit, put back at random rows, as SDV's FloatFormatter did)
    codes: dict[str, Codes] = field(default_factory=dict)
    missing: dict[str, float] = field(default_factory=dict)

    def keep_implied(self, frame: pd.DataFrame, seed: int, fixed: str | None = None) -> int:
        """Rows whose pair of implied categories production never has get the finer value
        drawn again within the coarser (implied.Implied); ``fixed``: a column whose values
        were asked for and stay. Returns the rows changed."""
        rng = np.random.default_rng(seed + 4)
        # models pickled before have none
        rules = [r for r in getattr(self, "implied", []) if r.column != fixed]
        return sum(rule.apply(frame, rng) for rule in rules)

    def _specials(self, frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        """Production's NaNs, infinities and sentinel dates, back at their rates."""
        rng = np.random.default_rng(seed + 2)
        for col in self.columns:
            if col.name in self.specials and col.name in frame:
                frame[col.name] = self.specials[col.name].apply(frame[col.name], col, rng)
        return frame

    def _restore(
        self,
        data: pd.DataFrame,
        seed: int,
        stratified: bool = False,
        fixed: str | None = None,
    ) -> pd.DataFrame:
        """Copula rows back to values: categories drawn by the refiners, numbers through their
        marginals. ``fixed``: a column whose values were given (conditional sampling); it is
        not drawn again, and the refiners after it in the chain see the given value."""
        rng = np.random.default_rng(seed + 1)
        for scored in getattr(self, "score_refiners", []):  # models pickled before have none
            if scored.column in data and set(scored.features) <= set(data.columns):
                data[scored.column] = scored.draw(data)
        quotas = getattr(self, "quotas", {}) if stratified else {}
        drawn = {r.column for r in self.refiners if set(r.features) <= set(data.columns)}
        for name, quota in quotas.items():  # the copula's own draws, before the refiners see them
            if name in data and name not in drawn and name != fixed:
                data[name] = quota.apply(data[name].to_numpy(dtype=object), rng)
        held = set()  # numbers whose values a quota set: the marginal keeps them as drawn
        for refiner in self.refiners:  # in the copula's space, where the trees were fit
            if refiner.column == fixed:
                continue
            if refiner.column in data and set(refiner.features) <= set(data.columns):
                values = refiner.draw(data, rng, quotas.get(refiner.column))
                marginal = self.marginals.get(refiner.column)
                data[refiner.column] = (
                    values if marginal is None else marginal.scores_of(values, rng)
                )
                if marginal is not None and refiner.column in quotas:
                    held.add(refiner.column)
        for name, marginal in self.marginals.items():
            if name in data:
                data[name] = marginal.restore(data[name], rng, stratified and name not in held)
        return data

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        frame = self._specials(self._draw(n, seed), seed)
        self.keep_implied(frame, seed)
        return frame

    def _draw(self, n: int, seed: int, stratified: bool = True) -> pd.DataFrame:
        """n rows of the model, specials still missing. ``stratified``: the rows are the
        table (their numbers take production's quantiles at stratified ranks); rows of which
        only some are kept (sample_given) are independent draws, the model's own
        distribution, since a subset of stratified rows is no longer stratified."""
        if not self.columns:
            return pd.DataFrame(index=range(n))
        if n == 0:
            return from_model_frame(
                pd.DataFrame({c.name: pd.Series(dtype=object) for c in self.columns}),
                self.columns,
            ).iloc[:0]
        if self.synthesizer is None:
            rng = np.random.default_rng(seed)
            base = self.fallback if self.fallback is not None else pd.DataFrame()
            if base.empty:
                data = pd.DataFrame({c.name: [np.nan] * n for c in self.columns})
            else:
                data = pd.DataFrame(
                    {
                        c.name: base[c.name].to_numpy()[rng.integers(0, len(base), n)]
                        for c in self.columns
                    }
                )
            return from_model_frame(data, self.columns)
        self.synthesizer.reset_sampling()
        self.synthesizer._set_random_state(seed)  # SDV's own hook for reproducible sampling
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = self.synthesizer.sample(num_rows=n)
        data = data[self.table] if isinstance(data, dict) else data
        data = self._decoded(data.reset_index(drop=True), seed)
        restored = self._restore(data, seed, stratified)
        return self._finish(restored)

    def _decoded(self, data: pd.DataFrame, seed: int) -> pd.DataFrame:
        """The copula's numbers as the model frame: categories from their codes, numbers'
        NULLs back at their training shares (models pickled before have neither: SDV's own
        transformers did it)."""
        rng = np.random.default_rng(seed + 5)
        for name, codes in getattr(self, "codes", {}).items():
            if name in data:
                data[name] = codes.decode(data[name])
        for name, share in getattr(self, "missing", {}).items():
            if name in data:
                data.loc[rng.random(len(data)) < share, name] = np.nan
        return data

    def _finish(self, data: pd.DataFrame) -> pd.DataFrame:
        """Restored copula rows as the table's values: NULL where a number's flag says so, then
        later times back from their durations, so a time whose base is NULL is NULL too, as
        in production, where a time is rebuilt only from one set wherever it is (models
        pickled before have neither)."""
        for name, flag in getattr(self, "nulls", {}).items():
            if flag in data and name in data:
                data.loc[data[flag].astype(str).to_numpy() == NULL_FLAG, name] = np.nan
        data = from_durations(data, getattr(self, "durations", {}))
        return from_model_frame(data, self.columns)

    def sample_given(self, column: str, values: np.ndarray, seed: int) -> pd.DataFrame:
        """Rows whose ``column`` takes the given values (in random order), the other columns
        drawn from P(other columns | value) as the model knows it.

        A rebalanced table (a refunded share raised from 3% to 20%) must keep a refunded
        order looking like a refunded order. Conditioning SDV's Gaussian copula on a category
        is weak (a copula keeps only monotone links; rows given 'gold' had a basic customer's
        amounts), while the model's unconditional rows carry the category drawn by its
        refiner from P(category | row): the rows that come out with a value are a sample of
        the model's joint distribution given that value. So the model's own rows are drawn
        and each wanted value gets rows that carry it (``_given_by_rejection``). A value the
        model draws too rarely to serve within the budget falls back to SDV's conditional
        sampling, and rows that cannot even meet that are unconditional rows given the value.
        NULL: unconditional rows, then NULL. Tiny tables (no synthesizer): whole production
        rows with the value."""
        col = next(c for c in self.columns if c.name == column)
        rng = np.random.default_rng(seed)
        given = pd.Series(values, dtype=object)
        known = to_model_frame(pd.DataFrame({column: given}), [col])
        present = known[column].notna().to_numpy()
        parts = []
        if (~present).any():  # NULL: unconditional rows, then NULL
            rest = self._draw(int((~present).sum()), seed)
            rest[column] = None
            parts.append(rest)
        wanted = known[present].reset_index(drop=True)
        if len(wanted) and self.synthesizer is None:
            base = self.fallback if self.fallback is not None else pd.DataFrame()
            keys = base[column].astype(str).to_numpy() if not base.empty else np.array([])
            want = wanted[column].astype(str).to_numpy()
            picks = np.zeros(len(want), dtype=np.int64)
            found = np.zeros(len(want), dtype=bool)
            for value in np.unique(want):
                rows = np.flatnonzero(want == value)
                members = np.flatnonzero(keys == value)
                if len(members):
                    picks[rows] = members[rng.integers(0, len(members), len(rows))]
                    found[rows] = True
            if found.any():
                parts.append(from_model_frame(base.iloc[picks[found]], self.columns))
            if (~found).any():
                parts.append(self._draw(int((~found).sum()), seed).assign(**{column: None}))
        elif len(wanted):
            rows, served = self._given_by_rejection(column, wanted[column], seed + 3)
            if len(rows):
                parts.append(rows)
            short = wanted[~served].reset_index(drop=True)
            if len(short):
                parts.extend(self._given_by_conditions(column, short, seed))
        out = pd.concat(parts, ignore_index=True) if parts else self._draw(0, seed)
        given_col = out[column]
        out = self._specials(out, seed)
        out[column] = given_col  # the given values are what the caller asked for
        self.keep_implied(out, seed, fixed=column)
        return out.iloc[rng.permutation(len(out))].reset_index(drop=True)

    def _given_by_rejection(
        self, column: str, wanted: pd.Series, seed: int
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """The model's unconditional rows handed to the wanted values they carry: the rows
        served, and which of ``wanted`` (model-frame values, no NULL) they serve.

        Batches are independent draws (not stratified). The first is a few times the rows
        wanted; each next one is sized from the shares seen so far to cover the value that is
        shortest relative to its share (the rarest), within ``GIVEN_OVERDRAW`` times the rows
        wanted in all; a value still short then is left to the caller's fallback. A value no
        row has carried yet, which even an optimistic share (one row in those drawn) cannot
        serve within what is left of the budget, is given up at once: a value the model never
        draws would otherwise cost the whole budget for nothing."""
        want = _match_keys(wanted)
        labels, inverse, needed = np.unique(want, return_inverse=True, return_counts=True)
        rng = np.random.default_rng(seed)
        budget = GIVEN_OVERDRAW * len(want)
        kept: list[list[pd.DataFrame]] = [[] for _ in labels]
        have = np.zeros(len(labels), dtype=np.int64)
        seen = np.zeros(len(labels), dtype=np.int64)
        pursued = np.ones(len(labels), dtype=bool)
        drawn = 0
        while True:
            short = needed - have
            left = budget - drawn
            if drawn:
                rate = (seen + 1) / (drawn + 1)  # optimistic for a value not seen yet
                pursued &= (seen > 0) | (short <= rate * left)
            pursued &= short > 0
            if not pursued.any() or left <= 0:
                break
            if drawn:
                cover = float((short[pursued] / rate[pursued]).max()) * GIVEN_MARGIN
            else:
                cover = GIVEN_FIRST_BATCH * len(want)
            n = int(min(max(np.ceil(cover), GIVEN_MIN_BATCH), GIVEN_MAX_BATCH, left))
            batch = self._draw(n, int(rng.integers(0, 2**31 - 2)), stratified=False)
            drawn += n
            keys = _match_keys(batch[column])
            at = np.searchsorted(labels, keys)
            at = np.minimum(at, len(labels) - 1)
            hit = (labels[at] == keys) & batch[column].notna().to_numpy()
            seen += np.bincount(at[hit], minlength=len(labels))
            for i in np.flatnonzero(pursued):
                rows = np.flatnonzero(hit & (at == i))[: short[i]]
                if len(rows):
                    kept[i].append(batch.iloc[rows])
                    have[i] += len(rows)
        # the served positions: the first have[i] rows asking for each value
        order = np.argsort(inverse, kind="stable")
        first = np.concatenate([[0], np.cumsum(needed)[:-1]])
        rank = np.empty(len(want), dtype=np.int64)
        rank[order] = np.arange(len(want)) - np.repeat(first, needed)
        served = rank < have[inverse]
        frames = [f for parts in kept for f in parts]
        rows = pd.concat(frames, ignore_index=True) if frames else self._draw(0, seed)
        return rows, served

    def _given_by_conditions(
        self, column: str, wanted: pd.DataFrame, seed: int
    ) -> list[pd.DataFrame]:
        """Rows for values the model's own rows did not serve: SDV's conditional sampling
        (weak for a copula, but rows of the value's kind at least in part), and unconditional
        rows for conditions it cannot meet; the caller sets the given values on both."""
        self.synthesizer.reset_sampling()
        self.synthesizer._set_random_state(seed)
        known = wanted.copy()
        codes = getattr(self, "codes", {})
        if column in codes:  # the copula sees the value's code
            known[column] = codes[column].encode(known[column], np.random.default_rng(seed + 6))
        try:
            with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                data = self.synthesizer.sample_remaining_columns(
                    known_columns=known, max_tries_per_batch=200
                )
        except ValueError as error:  # SDV met none of the conditions
            if "Unable to sample any rows" not in str(error):
                raise
            data = wanted.iloc[:0]
        data = data[self.table] if isinstance(data, dict) else data
        data = self._decoded(data.reset_index(drop=True), seed)
        parts = []
        if len(data):
            restored = self._restore(data.reset_index(drop=True), seed, fixed=column)
            parts.append(self._finish(restored))
        unmet = _unmet(wanted[column], data[column] if len(data) else wanted[column].iloc[:0])
        if len(unmet):  # conditions the model could not meet: unconditional rows, given them
            rest = self._draw(len(unmet), seed + 1, stratified=False)
            col = next(c for c in self.columns if c.name == column)
            given = from_model_frame(pd.DataFrame({column: unmet}), [col])[column]
            rest[column] = given.to_numpy()
            parts.append(rest)
        return parts


GIVEN_OVERDRAW = 50  # unconditional rows drawn at most for a value, per row wanted in all
GIVEN_FIRST_BATCH = 2  # the first batch, per row wanted
GIVEN_MARGIN = 1.2  # a batch covers the shortest value's estimated need with this margin
GIVEN_MIN_BATCH = 256
GIVEN_MAX_BATCH = 500_000  # rows per draw: memory stays bounded, more batches follow


def _unmet(wanted: pd.Series, got: pd.Series) -> pd.Series:
    """The wanted values (model frame) that ``got`` lacks, counted as a multiset: the rows
    SDV's conditional sampling gave up on, which come back from it without their position."""
    want, have = _match_keys(wanted), _match_keys(got)
    keep = np.zeros(len(want), dtype=bool)
    for value in np.unique(want):
        rows = np.flatnonzero(want == value)
        keep[rows[int((have == value).sum()) :]] = True
    return wanted[keep].reset_index(drop=True)


def _match_keys(values: pd.Series) -> np.ndarray:
    """Values as text, to match a given value (model frame: True, 'EUR') with a drawn one
    (database types: a pandas boolean); NULL is masked by the caller."""
    return values.astype(object).astype(str).to_numpy()


def fit_table(
    table: str,
    frame: pd.DataFrame,
    columns: list[Column],
    synthesizer: str,
    seed: int,
    production: pd.DataFrame | None = None,
) -> TableModel:
    """Fit the table's synthesizer. A rebalanced table is fit like any other: its category
    is drawn by a refiner, P(category | row), and TableModel.sample_given keeps the model's
    rows that carry each wanted value (a one-hot encoding, which the copula conditioned on
    only weakly, also biased its unconditional shares)."""
    start = time.perf_counter()
    specials: dict[str, Specials] = {}
    masked = {}
    for c in columns:
        found, masked[c.name] = Specials.split(frame[c.name], c)
        if found is not None:
            specials[c.name] = found
    data = to_model_frame(pd.DataFrame(masked, index=frame.index), columns)
    if not columns or len(data) < MIN_ROWS_TO_FIT:
        return TableModel(
            table, columns, None, data, time.perf_counter() - start, specials=specials
        )
    from sdv.metadata import Metadata

    durations = find_durations(data, columns)
    data = as_durations(data, durations)
    nulls: dict[str, str] = {}
    if synthesizer == "gaussian_copula" and len(data) >= MIN_LEAF_ROWS * 4:
        data, nulls = _null_flags(frame, data, columns, specials, np.random.default_rng(seed + 7))
    flags = [Column(flag, "text", "text", False) for flag in nulls.values()]
    model_columns = columns + flags
    metadata = Metadata.load_from_dict(
        {"tables": {table: {"columns": {c.name: dict(SDTYPES[c.kind]) for c in model_columns}}}}
    )
    cls = _synthesizer_class(synthesizer)
    kwargs: dict[str, Any] = {"enforce_min_max_values": True, "enforce_rounding": True}
    marginals: dict[str, Marginal] = {}
    refiners: list[Refiner] = []
    scored: list[ScoreRefiner] = []
    discrete: dict[str, pd.Series] = {}
    if synthesizer == "gaussian_copula":
        rng = np.random.default_rng(seed)
        values = data
        data = data.copy()
        for c in columns:
            if SDTYPES[c.kind]["sdtype"] == "numerical" and data[c.name].notna().sum() >= 2:
                marginals[c.name], data[c.name] = Marginal.fit(data[c.name], rng)
        kwargs["numerical_distributions"] = dict.fromkeys(marginals, "norm")
        discrete = {n: values[n] for n, m in marginals.items() if m.discrete}
        continuous = [
            n for n, m in marginals.items() if not m.discrete and not is_latent(n)
        ]  # (children counts are handed out by rank)
        scored = score_refiners(data, values, continuous, seed)
        refiners = _refiners(data, model_columns, seed, discrete)
        # categories are encoded uniformly on [0, 1]: that is their marginal
        kwargs["default_distribution"] = "uniform"
    if synthesizer in ("ctgan", "tvae", "copula_gan"):
        import torch

        torch.manual_seed(seed)
        kwargs["epochs"] = 100
    fit_frame, codes, missing = data, {}, {}
    if synthesizer == "gaussian_copula":
        fit_frame, codes, missing = _copula_frame(data, model_columns, seed)
        metadata = Metadata.load_from_dict(
            {"tables": {table: {"columns": {c: {"sdtype": "numerical"} for c in fit_frame}}}}
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cls(metadata, **kwargs)
            if synthesizer == "gaussian_copula":  # numbers already: no transformer needed
                model.auto_assign_transformers({table: fit_frame})
                model.update_transformers(dict.fromkeys(fit_frame.columns, None))
            model.fit({table: fit_frame})
    except Exception as error:  # SDV raises many kinds; the user needs table and reason
        raise ProdtwinError(
            f"fitting {synthesizer} on table {table} failed: {error}. Try another synthesizer "
            f"for it (tables.overrides.{table}.synthesizer) or exclude the table"
        ) from error
    categories = [c.name for c in columns if c.kind in ("text", "enum")]
    implied = find_implied(frame, categories, production)
    quotas = {
        c.name: q
        for c in model_columns
        if SDTYPES[c.kind]["sdtype"] in CATEGORY_SDTYPES
        and (q := Quota.fit(c.name, data[c.name])) is not None
    }
    # a number of few values that a refiner draws (a price of 0.99 or 1.99 given the track's
    # size) takes its shares from a quota too: the marginal's stratified slots would hand the
    # surplus of one value to random rows of the other (a 1 GB video at 0.99)
    refined = {r.column for r in refiners}
    for name, original in discrete.items():
        # children counts keep their slots: relations.py hands them out by rank
        if name in refined and not is_latent(name) and (q := Quota.fit(name, original)) is not None:
            quotas[name] = q
    return TableModel(
        table,
        columns,
        model,
        None,
        time.perf_counter() - start,
        marginals,
        refiners,
        specials,
        scored,
        implied,
        quotas,
        durations,
        nulls,
        codes,
        missing,
    )


def _copula_frame(
    data: pd.DataFrame, columns: list[Column], seed: int
) -> tuple[pd.DataFrame, dict[str, Codes], dict[str, float]]:
    """The Gaussian copula's training frame, every column a number: categories as their codes,
    numbers' NULLs filled with the column's mean (a normal score's is 0) and their shares kept,
    as SDV's UniformEncoder and FloatFormatter did."""
    rng = np.random.default_rng(seed + 8)
    out = data.copy()
    codes: dict[str, Codes] = {}
    missing: dict[str, float] = {}
    for c in columns:
        if SDTYPES[c.kind]["sdtype"] in CATEGORY_SDTYPES:
            codes[c.name], out[c.name] = Codes.fit(data[c.name], rng)
            continue
        x = pd.to_numeric(data[c.name], errors="coerce").astype("float64")
        share = float(x.isna().mean())
        if share > 0:
            missing[c.name] = share
            out[c.name] = x.fillna(x.mean() if x.notna().any() else 0.0)
    return out, codes, missing


NULL_FLAG = "null"
NULL_PREFIX = "__null__"
# NULL rows (and set rows) a flag needs: half a leaf, so that a leaf of the flag's tree can be
# mostly NULL (Northwind's 21 orders not shipped yet are 19 of the training rows)
MIN_NULL_ROWS = MIN_LEAF_ROWS // 2


def _null_flags(
    frame: pd.DataFrame,
    data: pd.DataFrame,
    columns: list[Column],
    specials: dict[str, Specials],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """A flag per number or time with NULLs, drawn by the refiners given the row, and the NULLs
    filled with the column's own values: the copula alone puts a column's NULLs on random rows,
    while production's often follow the row (an order not shipped yet is a recent one; Pagila's
    rentals not returned are all from one day). A column with special values (NaN, infinity)
    keeps the copula's NULLs: its specials are drawn among them."""
    out: dict[str, str] = {}
    filled = data
    for c in columns:
        if SDTYPES[c.kind]["sdtype"] != "numerical" or is_latent(c.name) or c.name in specials:
            continue
        missing = frame[c.name].isna().to_numpy()
        values = data[c.name].to_numpy(dtype="float64")
        pool = values[~np.isnan(values)]
        nulls = int(missing.sum())
        if min(nulls, len(pool)) < MIN_NULL_ROWS:
            continue
        if filled is data:
            filled = data.copy()
        values = values.copy()
        values[missing] = pool[rng.integers(0, len(pool), nulls)]
        flag = NULL_PREFIX + c.name
        filled[c.name] = values
        filled[flag] = np.where(missing, NULL_FLAG, "set").astype(object)
        out[c.name] = flag
    return filled, out


def _refiners(
    data: pd.DataFrame,
    columns: list[Column],
    seed: int,
    discrete: dict[str, pd.Series],
) -> list[Refiner]:
    """The chain of refiners: continuous numbers first, then the
    numbers of few values (``discrete``: their production values), then the categories, each
    given everything before it. Marginal scores are in ``data`` already: the trees see the
    copula's own space.

    A number of few values is refined too: its random tie-breaking in the copula dilutes its
    links (a price of 0.99 or 1.99 that follows a track's length keeps a quarter of it)."""
    if len(data) < MIN_LEAF_ROWS * 4:
        return []
    categories = [c.name for c in columns if SDTYPES[c.kind]["sdtype"] in CATEGORY_SDTYPES]
    chain = [c.name for c in columns if c.name in discrete] + categories
    known = [c.name for c in columns if c.name not in chain]
    out = []
    for name in chain:
        refiner = Refiner.fit(data, name, list(known), seed, discrete.get(name))
        if refiner is not None:
            out.append(refiner)
        known.append(name)
    return out
