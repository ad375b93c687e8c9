"""Rare categories: a value that only one or two production rows have can identify a person.

Before a table's model is fit, such values of its modelled category columns (text and enum) are
replaced in the training rows by values drawn from the column's frequent ones, so the model
cannot reproduce them. ``privacy.rare_category_count`` sets the threshold (0 turns it off) and
``tables.overrides.<table>.keep_rare`` lists columns whose rare values may be kept. What was
suppressed is reported by column with counts only: listing the values would leak them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets import roles as R
from synth_assets.schema import Table

CATEGORY_KINDS = {"text", "enum"}


@dataclass(frozen=True)
class Suppressed:
    table: str
    column: str
    categories: int  # distinct rare values replaced
    rows: int  # training rows that had one
    replaced: bool = True  # False: no frequent value to replace with, the values were kept

    def describe(self) -> str:
        if not self.replaced:
            return (
                f"{self.table}.{self.column}: {self.categories} rare categories kept (the column "
                "has no frequent value to replace them with)"
            )
        return (
            f"{self.table}.{self.column}: {self.categories} rare categories "
            f"({self.rows} training rows) suppressed"
        )


def suppress_rare(
    table: Table,
    production: pd.DataFrame,
    train: pd.DataFrame,
    roles: dict[str, R.ColumnRole],
    max_count: int,
    keep: list[str],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, list[Suppressed]]:
    """``train`` with the rare values of its modelled category columns replaced.

    Rarity is counted over every production row read, not only the training rows.
    """
    if max_count <= 0 or train.empty:
        return train, []
    out = train
    report: list[Suppressed] = []
    for col in table.columns:
        if (
            col.kind not in CATEGORY_KINDS
            or roles[col.name].role != R.MODEL
            or col.name in keep
            or col.name not in train
        ):
            continue
        counts = production[col.name].dropna().astype(str).value_counts()
        rare = counts.index[counts <= max_count]
        if len(rare) == 0:
            continue
        values = train[col.name]
        hit = values.notna().to_numpy() & values.astype(str).isin(rare).to_numpy()
        frequent = counts[counts > max_count]
        if len(frequent) == 0:
            report.append(Suppressed(table.name, col.name, len(rare), int(hit.sum()), False))
            continue
        if out is train:
            out = train.copy()
        # replacements keep the frequent values' proportions (and their Python type)
        pool = values[values.notna() & ~values.astype(str).isin(rare)].to_numpy(dtype=object)
        picks = pool[rng.integers(0, len(pool), int(hit.sum()))] if len(pool) else None
        if picks is None:
            report.append(Suppressed(table.name, col.name, len(rare), int(hit.sum()), False))
            continue
        column = out[col.name].astype(object).copy()
        column[hit] = picks
        out[col.name] = column
        report.append(Suppressed(table.name, col.name, len(rare), int(hit.sum())))
    return out, report
