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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

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
    return EPOCH + pd.to_timedelta(seconds.round(6), unit="s")


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


@dataclass
class TableModel:
    """A fitted model of a table's modelled columns (or of none)."""

    table: str
    columns: list[Column]
    synthesizer: Any | None
    fallback: pd.DataFrame | None  # tiny tables: the few rows, sampled column by column
    fit_seconds: float

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
        return from_model_frame(data.reset_index(drop=True), self.columns)

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
            parts.append(from_model_frame(data.reset_index(drop=True), self.columns))
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
    return TableModel(table, columns, model, None, time.perf_counter() - start)
