"""Utility: would a model trained on the synthetic rows work on real ones ("train on synthetic,
test on real", TSTR)?

For each table with a target column (``tables.overrides.<table>.utility_target``, or an obvious
one: a status/type/flag-like category column with 2 to 20 values), a scikit-learn random forest
is trained on the synthetic rows and scored on production's holdout rows (rows no synthesizer was
fit on), beside the same model trained on production's training rows. Close scores mean QA can
build and test models on the copy. Accuracy for categories, R² for a configured numeric target.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from synth_assets import roles as R
from synth_assets.config import Config
from synth_assets.encoding import Encoder
from synth_assets.errors import ConfigError
from synth_assets.schema import Schema, Table

OBVIOUS = re.compile(
    r"(status|state|label|target|class|outcome|churn|fraud|^is_|^has_|type|category|segment|"
    r"tier|rating|grade|level|kind)",
    re.IGNORECASE,
)
CATEGORY_KINDS = {"text", "enum", "boolean"}
NUMERIC_KINDS = {"integer", "float", "numeric"}
MIN_TEST_ROWS = 20
MAX_ROWS = 20_000
MAX_CLASSES = 20


@dataclass(frozen=True)
class UtilityScore:
    table: str
    target: str
    metric: str  # accuracy or r2
    synthetic: float | None  # trained on synthetic rows, scored on production's holdout
    real: float | None  # trained on production's training rows, same holdout
    rows_test: int
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def target_column(
    table: Table, roles: dict[str, R.ColumnRole], frame: pd.DataFrame, configured: str | None
) -> str | None:
    if configured is not None:
        if configured not in table.column_names or roles[configured].role != R.MODEL:
            raise ConfigError(
                f"tables.overrides.{table.name}.utility_target: {configured} is not a modelled "
                f"column of {table.name} (modelled: "
                f"{', '.join(c for c, r in roles.items() if r.role == R.MODEL) or 'none'})"
            )
        return configured
    for col in table.columns:
        if col.kind not in CATEGORY_KINDS or roles[col.name].role != R.MODEL:
            continue
        distinct = frame[col.name].nunique(dropna=True) if col.name in frame else 0
        if OBVIOUS.search(col.name) and 2 <= distinct <= MAX_CLASSES:
            return col.name
    return None


def _sample(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.sample(MAX_ROWS, random_state=seed) if len(frame) > MAX_ROWS else frame


def table_utility(
    table: Table,
    roles: dict[str, R.ColumnRole],
    target: str,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    seed: int,
) -> UtilityScore:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.metrics import accuracy_score, r2_score

    kind = table.column(target).kind
    metric = "r2" if kind in NUMERIC_KINDS else "accuracy"
    features = [c for c, r in roles.items() if r.role == R.MODEL and c != target]

    def skip(reason: str) -> UtilityScore:
        return UtilityScore(table.name, target, metric, None, None, len(holdout), reason)

    if not features:
        return skip("no other modelled column to predict from")
    test = holdout[holdout[target].notna()]
    if len(test) < MIN_TEST_ROWS:
        return skip(f"{len(test)} holdout rows, fewer than {MIN_TEST_ROWS}")
    real = _sample(train[train[target].notna()], seed)
    fake = _sample(synthetic[synthetic[target].notna()], seed)
    if fake.empty:
        return skip("no synthetic row has the target set")
    encoder = Encoder.fit(real, features)

    def label(s: pd.Series) -> np.ndarray:
        return s.astype(str).to_numpy() if metric == "accuracy" else s.astype(float).to_numpy()

    def score(rows: pd.DataFrame) -> float | None:
        y = label(rows[target])
        if metric == "accuracy" and len(np.unique(y)) < 2:
            return None
        cls = RandomForestClassifier if metric == "accuracy" else RandomForestRegressor
        model = cls(n_estimators=60, max_depth=10, random_state=seed % 2**31, n_jobs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(encoder.transform(rows), y)
            predicted = model.predict(encoder.transform(test))
        truth = label(test[target])
        if metric == "accuracy":
            return float(accuracy_score(truth, predicted))
        return float(r2_score(truth, predicted))

    return UtilityScore(table.name, target, metric, score(fake), score(real), len(test))


def evaluate_utility(
    schema: Schema,
    roles: dict[str, dict[str, R.ColumnRole]],
    train: dict[str, pd.DataFrame],
    holdout: dict[str, pd.DataFrame],
    synthetic: dict[str, pd.DataFrame],
    config: Config,
) -> list[UtilityScore]:
    """Scores of every table that has a target column (configured or obvious)."""
    out = []
    for name, table in schema.tables.items():
        if name not in synthetic or name not in train:
            continue
        full = pd.concat([train[name], holdout[name]])
        target = target_column(table, roles[name], full, config.override(name).utility_target)
        if target is None:
            continue
        out.append(
            table_utility(
                table, roles[name], target, train[name], holdout[name], synthetic[name], config.seed
            )
        )
    return out
