"""Columns as numbers for k-means, decision trees and forests (relations, refine, utility)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MAX_ONE_HOT = 20


@dataclass
class Encoder:
    """Columns as numbers for k-means and the trees: numbers and times standardised by
    production's mean and spread, categories one-hot (each column weighs about one)."""

    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)
    categories: dict[str, tuple[list[str], float]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    @staticmethod
    def _is_category(s: pd.Series) -> bool:
        return pd.api.types.is_bool_dtype(s) or not (
            pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s)
        )

    @staticmethod
    def _number(s: pd.Series) -> pd.Series:
        if pd.api.types.is_datetime64_any_dtype(s):
            if getattr(s.dt, "tz", None) is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            seconds = (s - pd.Timestamp("1970-01-01")).dt.total_seconds()
            return seconds.astype("float64")
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        # an infinity (a float's special value) counts as unknown
        return pd.Series(np.where(np.isfinite(x), x, np.nan), index=s.index)

    @staticmethod
    def _text(s: pd.Series) -> pd.Series:
        return s.astype(object).where(s.notna(), "<null>").astype(str)

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str]) -> Encoder:
        enc = cls(order=list(columns))
        for name in columns:
            s = frame[name]
            if cls._is_category(s):
                values = cls._text(s)
                shares = values.value_counts(normalize=True).iloc[:MAX_ONE_HOT]
                spread = float(np.sqrt(max(float((shares * (1 - shares)).sum()), 1e-9)))
                enc.categories[name] = ([str(v) for v in shares.index], spread)
            else:
                x = cls._number(s)
                std = float(x.std()) if x.notna().sum() > 1 else 1.0
                mean = float(x.mean()) if x.notna().any() else 0.0
                enc.numeric[name] = (mean, std if std > 0 and np.isfinite(std) else 1.0)
        return enc

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        parts: list[np.ndarray] = []
        for name in self.order:
            if name in self.categories:
                top, spread = self.categories[name]
                values = self._text(frame[name]).to_numpy(dtype=object)
                onehot = values[:, None] == np.array(top, dtype=object)[None, :]
                parts.append(onehot.astype(float) / spread)
            else:
                mean, std = self.numeric[name]
                z = (self._number(frame[name]) - mean) / std
                parts.append(z.fillna(0.0).to_numpy()[:, None])
        return np.hstack(parts) if parts else np.zeros((len(frame), 0))
