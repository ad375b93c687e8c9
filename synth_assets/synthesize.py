"""One SDV single-table synthesizer per table, fit on the columns it models.

SDV metadata is built from the database types (not guessed from values): the database already
says which columns are integers, numerics, dates or enums. Keys and personal data are never
shown to the synthesizer; they are made elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from synth_assets.encoding import Encoder
from synth_assets.errors import ProdtwinError
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
            out[col.name] = pd.array(np.round(s.astype("float64")), dtype="Int64")
        elif col.kind == "numeric":
            v = s.astype("float64")
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

    def restore(self, scores: pd.Series, rng: np.random.Generator) -> pd.Series:
        z = pd.to_numeric(scores, errors="coerce").to_numpy(dtype="float64")
        # a little independent noise: rows of a perfectly correlated pair (a reading taken every
        # three hours) would otherwise sit on production's line, closer than its own rows are
        if self.discrete:  # no noise: a value is a value, there is no line to blur
            u = ndtr(z)
            at = np.minimum(np.searchsorted(self.probs, u, side="right"), len(self.knots) - 1)
            restored = self.knots[at]
        else:
            z = (z + SCORE_NOISE * rng.standard_normal(len(z))) / np.sqrt(1 + SCORE_NOISE**2)
            restored = np.interp(ndtr(z), self.probs, self.knots)
        return pd.Series(restored, index=scores.index).where(~np.isnan(z))

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

    def draw(self, data: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
        proba = self.tree.predict_proba(self.encoder.transform(data))
        # stratified uniforms handed to the rows in random order: each row's draw is still
        # P(category | row), but the shares over the table vary far less than with independent
        # draws (a NULL share of 61% does not come out at 55% by chance)
        n = len(data)
        u = (rng.permutation(n) + rng.random()) / max(n, 1)
        picks = (proba.cumsum(axis=1) < u[:, None]).sum(axis=1)
        values = self.classes[np.minimum(picks, len(self.classes) - 1)]
        return pd.Series(values, index=data.index, dtype=object)


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

    def _restore(self, data: pd.DataFrame, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed + 1)
        for refiner in self.refiners:  # in the copula's space, where the trees were fit
            if refiner.column in data and set(refiner.features) <= set(data.columns):
                values = refiner.draw(data, rng)
                marginal = self.marginals.get(refiner.column)
                data[refiner.column] = (
                    values if marginal is None else marginal.scores_of(values, rng)
                )
        for name, marginal in self.marginals.items():
            if name in data:
                data[name] = marginal.restore(data[name], rng)
        return data

    def sample(self, n: int, seed: int) -> pd.DataFrame:
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
        return from_model_frame(self._restore(data.reset_index(drop=True), seed), self.columns)

    def sample_given(self, column: str, values: np.ndarray, seed: int) -> pd.DataFrame:
        """Rows whose ``column`` takes the given values (in random order); the other columns
        are sampled conditional on it (SDV conditional sampling; whole rows for tiny tables)."""
        col = next(c for c in self.columns if c.name == column)
        rng = np.random.default_rng(seed)
        given = pd.Series(values, dtype=object)
        known = to_model_frame(pd.DataFrame({column: given}), [col])
        present = known[column].notna().to_numpy()
        parts = []
        if (~present).any():  # NULL: unconditional rows, then NULL
            rest = self.sample(int((~present).sum()), seed)
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
                parts.append(self.sample(int((~found).sum()), seed).assign(**{column: None}))
        elif len(wanted):
            self.synthesizer.reset_sampling()
            self.synthesizer._set_random_state(seed)
            with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                data = self.synthesizer.sample_remaining_columns(
                    known_columns=wanted, max_tries_per_batch=200
                )
            data = data[self.table] if isinstance(data, dict) else data
            restored = self._restore(data.reset_index(drop=True), seed)
            parts.append(from_model_frame(restored, self.columns))
            short = len(wanted) - len(data)
            if short > 0:  # conditions the model could not meet: unconditional rows
                parts.append(self.sample(short, seed + 1))
        out = pd.concat(parts, ignore_index=True) if parts else self.sample(0, seed)
        return out.iloc[rng.permutation(len(out))].reset_index(drop=True)


def fit_table(
    table: str,
    frame: pd.DataFrame,
    columns: list[Column],
    synthesizer: str,
    seed: int,
    one_hot: tuple[str, ...] = (),
) -> TableModel:
    """Fit the table's synthesizer; ``one_hot`` columns are encoded one column per category,
    which lets a Gaussian copula condition on a category (rebalance) faithfully."""
    start = time.perf_counter()
    data = to_model_frame(frame, columns)
    if not columns or len(data) < MIN_ROWS_TO_FIT:
        return TableModel(table, columns, None, data, time.perf_counter() - start)
    from sdv.metadata import Metadata

    metadata = Metadata.load_from_dict(
        {"tables": {table: {"columns": {c.name: dict(SDTYPES[c.kind]) for c in columns}}}}
    )
    cls = _synthesizer_class(synthesizer)
    kwargs: dict[str, Any] = {"enforce_min_max_values": True, "enforce_rounding": True}
    marginals: dict[str, Marginal] = {}
    refiners: list[Refiner] = []
    if synthesizer == "gaussian_copula":
        rng = np.random.default_rng(seed)
        values = data
        data = data.copy()
        for c in columns:
            if SDTYPES[c.kind]["sdtype"] == "numerical" and data[c.name].notna().sum() >= 2:
                marginals[c.name], data[c.name] = Marginal.fit(data[c.name], rng)
        kwargs["numerical_distributions"] = dict.fromkeys(marginals, "norm")
        discrete = {n: values[n] for n, m in marginals.items() if m.discrete}
        refiners = _refiners(data, columns, one_hot, seed, discrete)
        if not one_hot:  # categories are encoded uniformly on [0, 1]: that is their marginal
            kwargs["default_distribution"] = "uniform"
    if synthesizer in ("ctgan", "tvae", "copula_gan"):
        import torch

        torch.manual_seed(seed)
        kwargs["epochs"] = 100
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cls(metadata, **kwargs)
            if one_hot:
                from rdt.transformers import OneHotEncoder

                model.auto_assign_transformers({table: data})
                model.update_transformers({c: OneHotEncoder() for c in one_hot})
            model.fit({table: data})
    except Exception as error:  # SDV raises many kinds; the user needs table and reason
        raise ProdtwinError(
            f"fitting {synthesizer} on table {table} failed: {error}. Try another synthesizer "
            f"for it (tables.overrides.{table}.synthesizer) or exclude the table"
        ) from error
    return TableModel(table, columns, model, None, time.perf_counter() - start, marginals, refiners)


def _refiners(
    data: pd.DataFrame,
    columns: list[Column],
    fixed: tuple[str, ...],
    seed: int,
    discrete: dict[str, pd.Series],
) -> list[Refiner]:
    """The chain of refiners: continuous numbers (and any fixed category) first, then the
    numbers of few values (``discrete``: their production values), then the categories, each
    given everything before it. Marginal scores are in ``data`` already: the trees see the
    copula's own space.

    A number of few values is refined too: its random tie-breaking in the copula dilutes its
    links (a price of 0.99 or 1.99 that follows a track's length keeps a quarter of it)."""
    if len(data) < MIN_LEAF_ROWS * 4:
        return []
    categories = [
        c.name
        for c in columns
        if SDTYPES[c.kind]["sdtype"] in CATEGORY_SDTYPES and c.name not in fixed
    ]
    chain = [c.name for c in columns if c.name in discrete] + categories
    known = [c.name for c in columns if c.name not in chain]
    out = []
    for name in chain:
        refiner = Refiner.fit(data, name, list(known), seed, discrete.get(name))
        if refiner is not None:
            out.append(refiner)
        known.append(name)
    return out
