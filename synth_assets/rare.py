"""Rare categories: a value that only one or two production rows have can identify a person.

Before a table's model is fit, such values of its modelled category columns (text and enum) are
replaced in the training rows by values drawn from the column's frequent ones, so the model
cannot reproduce them. ``privacy.rare_category_count`` sets the threshold (0 turns it off) and
``tables.overrides.<table>.keep_rare`` lists columns whose rare values may be kept. What was
suppressed is reported by column with counts only: listing the values would leak them.

Rarity is about people, not rows: a customer's rare country is one row of ``customers`` but
many rows of ``invoices.billing_country``, where it would look frequent and be reproduced,
telling the customer's country again (and the pair customer.country x billing_country would
no longer align). A child column that carries its parent's values (most child rows equal the
parent column) counts each value by the parents that have it, in their own column or through
their children: what is rare among the entities is rare in every table that repeats it
(:func:`entity_rare`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets import roles as R
from synth_assets.schema import ForeignKey, Schema, Table

CATEGORY_KINDS = {"text", "enum"}
SHARED_AGREEMENT = 0.8  # child rows that equal their parent's column: it carries its values


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
    also: dict[str, frozenset[str]] | None = None,
) -> tuple[pd.DataFrame, list[Suppressed]]:
    """``train`` with the rare values of its modelled category columns replaced.

    Rarity is counted over every production row read, not only the training rows; ``also``
    adds, per column, values rare among the parents whose column this one carries
    (:func:`entity_rare`).

    A column whose values imply a coarser one (a state its country, :func:`context_of`) is
    replaced within its row's coarser value: a rare Brazilian state becomes a frequent
    Brazilian state, not a state of another country; only a country without a frequent state
    takes any frequent state (a NULL instead would change the column's NULL share, which QA's
    tests and the gate check). Coarser columns are replaced first, independently of their finer
    ones: replacing a rare country together with its state from one donor row concentrated the
    copy on production's commonest combinations, which the gate's distance check refused
    (Chinook invoices).
    """
    if max_count <= 0 or train.empty:
        return train, []
    report: list[Suppressed] = []
    categories = [
        c.name
        for c in table.columns
        if c.kind in CATEGORY_KINDS and roles[c.name].role == R.MODEL and c.name in train
    ]
    values = {name: train[name].astype(object).to_numpy() for name in categories}
    replaced: list[str] = []
    texts: dict[str, pd.Series] | None = None
    # coarser columns first: a state is replaced within its country as it will be published
    for name in sorted(categories, key=lambda c: production[c].nunique()):
        if name in keep:
            continue
        counts = production[name].dropna().astype(str).value_counts()
        extra = (also or {}).get(name, frozenset())
        rare = counts.index[(counts <= max_count).to_numpy() | counts.index.isin(list(extra))]
        if len(rare) == 0:
            continue
        present = train[name].notna().to_numpy()
        hit = present & train[name].astype(str).isin(rare).to_numpy()
        donors = present & ~hit
        if not donors.any():
            report.append(Suppressed(table.name, name, len(rare), int(hit.sum()), False))
            continue
        rows = np.flatnonzero(hit)
        picks = np.full(len(rows), -1, dtype=np.int64)
        if texts is None:  # once, and only for a table with something to replace
            texts = {c: text_of(production[c]) for c in categories}
        context = context_of(texts, name)
        if context is not None:
            groups = text_of(pd.Series(values[context])).fillna(NULL_GROUP).to_numpy(dtype=object)
            for group in pd.unique(groups[rows]):
                mine = np.flatnonzero(groups[rows] == group)
                theirs = np.flatnonzero(donors & (groups == group))
                if len(theirs):
                    picks[mine] = theirs[rng.integers(0, len(theirs), len(mine))]
        left = picks < 0
        pool = np.flatnonzero(donors)
        picks[left] = pool[rng.integers(0, len(pool), int(left.sum()))]
        values[name][rows] = values[name][picks]
        replaced.append(name)
        report.append(Suppressed(table.name, name, len(rare), int(hit.sum())))
    if not replaced:
        return train, report
    out = train.copy()
    for name in replaced:
        out[name] = pd.Series(values[name], index=out.index, dtype=object)
    return out, report


NULL_GROUP = "\x00null"
DETERMINED = 0.95  # rows whose value implies the context's value: a state implies its country
# rows a context is learned from at least: nine employees imply many things by chance (each
# courtesy title "implies" a country)
CONTEXT_ROWS = 50


def context_of(texts: dict[str, pd.Series], column: str) -> str | None:
    """The coarser category that ``column``'s values imply (the country of a state), if any;
    ``texts``: production's category columns as text."""
    best: tuple[float, str] | None = None
    values = texts[column]
    for other, theirs in texts.items():
        if other == column:
            continue
        both = values.notna() & theirs.notna()
        if both.sum() < CONTEXT_ROWS or theirs[both].nunique() >= values[both].nunique():
            continue
        pairs = pd.DataFrame({"v": values[both], "o": theirs[both]})
        share = float(pairs.value_counts().groupby(level=0).max().sum()) / len(pairs)
        if share >= DETERMINED and (best is None or share > best[0]):
            best = (share, other)
    return None if best is None else best[1]


def text_of(values: pd.Series) -> pd.Series:
    """Values as their text, NULL as NaN (numpy's casts: two pandas ``where`` took 40% longer,
    and this runs for every category column of every table at fit)."""
    present = values.notna().to_numpy()
    out = np.full(len(values), np.nan, dtype=object)
    out[present] = values.to_numpy(dtype=object)[present].astype(str)
    return pd.Series(out, index=values.index, dtype=object)


NULL = "\x00null"  # NULL's key: no text value holds a NUL character


def keys_of(values: pd.Series | np.ndarray) -> np.ndarray:
    """Category values as keys that compare as the database does (a boolean's True and the
    text 'True' are one value), NULL as a key of its own."""
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    return text_of(series).fillna(NULL).to_numpy(dtype=object)


def _parent_positions(child: pd.DataFrame, fk: ForeignKey, parent: pd.DataFrame) -> np.ndarray:
    """Per child row, the position of its parent row (NaN where the parent was not read)."""
    keys = list(fk.ref_columns)
    left = child[list(fk.columns)].astype(str)
    left.columns = keys
    right = parent[keys].astype(str)
    right["__pos"] = np.arange(len(parent))
    merged = left.merge(right.drop_duplicates(keys), on=keys, how="left")
    return merged["__pos"].to_numpy(dtype="float64")


def _rare_entities(
    parent_values: pd.Series, positions: np.ndarray, own: pd.Series, max_count: int
) -> frozenset[str]:
    """The child's values that at most ``max_count`` parents have, in the parent's column or
    through their children's (``positions``: each child row's parent position)."""
    present = own.notna().to_numpy() & ~np.isnan(positions)
    carried = pd.DataFrame(
        {"pos": positions[present].astype(np.int64), "value": own[present].to_numpy()}
    )
    held = pd.DataFrame(
        {"pos": np.arange(len(parent_values)), "value": parent_values.to_numpy()}
    ).dropna()
    entities = pd.concat([carried, held]).drop_duplicates().groupby("value")["pos"].size()
    rare = entities.index[entities.to_numpy() <= max_count]
    return frozenset(str(v) for v in set(rare) & set(carried["value"]))


def entity_rare(
    schema: Schema,
    frames: dict[str, pd.DataFrame],
    roles: dict[str, dict[str, R.ColumnRole]],
    max_count: int,
    keep: dict[str, list[str]],
) -> dict[str, dict[str, frozenset[str]]]:
    """Per child table and modelled category column that carries a parent column's values, the
    values at most ``max_count`` parents have (see the module's docstring).

    A parent column whose rare values are configured to be kept (``keep_rare``) lets its
    child's copies of them be kept too.
    """
    out: dict[str, dict[str, frozenset[str]]] = {}
    if max_count <= 0:
        return out
    for child in schema.tables.values():
        cframe = frames.get(child.name)
        if cframe is None or cframe.empty:
            continue
        for fk in schema.foreign_keys_of(child):
            parent = schema.tables[fk.ref_table]
            pframe = frames.get(parent.name)
            if fk.ref_table == child.name or pframe is None or pframe.empty:
                continue
            pcols = [
                c.name
                for c in parent.columns
                if c.kind in CATEGORY_KINDS and c.name in pframe and c.name not in keep[parent.name]
            ]
            if not pcols:
                continue
            positions: np.ndarray | None = None  # computed once per FK, when needed
            theirs = {p: text_of(pframe[p]).to_numpy(dtype=object) for p in pcols}
            for col in child.columns:
                if (
                    col.kind not in CATEGORY_KINDS
                    or roles[child.name][col.name].role != R.MODEL
                    or col.name in keep[child.name]
                    or col.name not in cframe
                ):
                    continue
                own = text_of(cframe[col.name])
                if positions is None:
                    positions = _parent_positions(cframe, fk, pframe)
                for p in pcols:
                    rows = own.notna().to_numpy() & ~np.isnan(positions)
                    if not rows.any():
                        continue
                    values = theirs[p][positions[rows].astype(np.int64)]
                    agree = float(np.mean(own[rows].to_numpy(dtype=object) == values))
                    if agree < SHARED_AGREEMENT:
                        continue
                    rare = _rare_entities(text_of(pframe[p]), positions, own, max_count)
                    if rare:
                        table = out.setdefault(child.name, {})
                        table[col.name] = table.get(col.name, frozenset()) | rare
    return out
