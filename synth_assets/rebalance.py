"""``tables.overrides.<table>.rebalance``: a category column with the shares QA asks for.

The configured values get their shares of the synthetic rows, the other values share the rest in
production's proportions, and the table's model samples every other column conditional on the
value, so a refunded order still looks like a refunded order. Keys are assigned afterwards as
for any table, so children still attach to valid parents.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_assets import roles as R
from synth_assets.config import Rebalance
from synth_assets.errors import ConfigError
from synth_assets.schema import Table

KINDS = {"text", "enum", "boolean"}


def check_rebalance(
    table: Table, roles: dict[str, R.ColumnRole], production: pd.DataFrame, rebalance: Rebalance
) -> None:
    """A clear error for a rebalance that cannot work, before anything is fitted."""
    where = f"tables.overrides.{table.name}.rebalance"
    if rebalance.column not in table.column_names:
        raise ConfigError(
            f"{where}: table {table.name} has no column {rebalance.column} "
            f"(columns: {', '.join(table.column_names)})"
        )
    col = table.column(rebalance.column)
    if col.kind not in KINDS or roles[col.name].role != R.MODEL:
        raise ConfigError(
            f"{where}: column {col.name} is not a modelled category column (it is "
            f"{roles[col.name].role}, type {col.sql_type}); rebalance a status-like column"
        )
    seen = set(production[col.name].dropna().astype(str).str.lower())
    missing = [v for v in rebalance.target if str(v).lower() not in seen]
    if missing:
        raise ConfigError(
            f"{where}: value(s) {', '.join(missing)} never occur in {table.name}.{col.name} in "
            "production; conditional sampling can only shift values that exist"
        )


def rebalanced_values(
    rebalance: Rebalance, production: pd.Series, n: int, rng: np.random.Generator
) -> np.ndarray:
    """n values of the column: the targets' shares, the rest in production's proportions."""
    present = production.dropna()
    by_text = {str(v).lower(): v for v in present.unique()}
    targets = {by_text[str(k).lower()]: share for k, share in rebalance.target.items()}
    counts = {v: round(share * n) for v, share in targets.items()}
    rest = max(0, n - sum(counts.values()))
    others = production[~production.isin(list(targets))]
    if len(others) == 0:
        others = present
    drawn = others.to_numpy(dtype=object)[rng.integers(0, len(others), rest)] if rest else []
    values = np.concatenate(
        [np.array([v] * k, dtype=object) for v, k in counts.items()]
        + [np.asarray(drawn, dtype=object)]
    )[:n]
    return values[rng.permutation(len(values))]
