"""A category whose value implies another's (a state its country): the pairs stay production's.

A table's model draws its categories in a chain of small trees whose leaves hold a few dozen
rows, so a state of few rows is drawn given a blur of countries, and a country that comes from
the row's parent afterwards (carries.Carry) knows nothing of the state drawn before it: in
Chinook (rare values kept) 46% of synthetic invoices had a billing state and country that no
production invoice has together (SP in the USA, NY in Canada). An :class:`Implied` is learned
at fit for each category column whose values imply a coarser column's (rare.context_of), on
production's rows before rare values were replaced (rare.py); a synthetic row whose pair
production never has gets its finer value drawn again from production's shares among the rows
of its coarser value (NULLs are only traded, so the NULL share stays the model's, which the
gate checks). Rows whose pair is production's keep their values, and with them what the model
drew them with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets.rare import NULL, context_of, keys_of, text_of


@dataclass(frozen=True)
class Implied:
    column: str  # the finer category (billing_state)
    given: str  # the coarser one it implies (billing_country)
    # per coarser value (as text): the finer values production has with it and their shares
    values: dict[str, tuple[np.ndarray, np.ndarray]]

    def describe(self, table: str) -> str:
        return f"{table}.{self.column} within {table}.{self.given}"

    def apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> int:
        """Draw again the finer value of rows whose pair production never has, among the
        values production has with its coarser value; returns how many rows changed.

        The column's NULL share stays the model's, which the gate checks against production's,
        while the coarser values (a country from the row's parent) may mix differently from
        production's (Northwind with rare values kept: drawing NULLs like values took 68% of
        the orders' regions to NULL, against 60%). So a value wrong for its country is drawn
        again among the country's values, and NULLs are traded: as many rows of a country
        without states (a French order with a region) become NULL as NULL rows of a country
        with states (a US order without one) get a state; the rest keep theirs. A coarser
        value production does not have leaves its rows as they are."""
        if self.column not in frame or self.given not in frame or frame.empty:
            return 0
        fine = keys_of(frame[self.column])
        coarse = keys_of(frame[self.given])
        out = frame[self.column].astype(object).to_numpy(copy=True)
        redraw: list[np.ndarray] = []  # rows that get a value of their coarser value
        to_null: list[np.ndarray] = []  # rows with a value where production has only NULL
        to_value: list[np.ndarray] = []  # NULL rows where production always has a value
        for value, rows in pd.Series(np.arange(len(frame))).groupby(coarse).indices.items():
            known = self.values.get(str(value))
            if known is None:
                continue
            labels = _labels(known[0])
            wrong = ~np.isin(fine[rows], labels)
            null = fine[rows] == NULL
            if (labels != NULL).any():
                redraw.append(rows[wrong & ~null])
                to_value.append(rows[wrong & null])
            else:
                to_null.append(rows[wrong & ~null])
        nulls, values = (
            np.concatenate(p) if p else np.zeros(0, np.int64) for p in (to_null, to_value)
        )
        k = min(len(nulls), len(values))
        nulls = rng.permutation(nulls)[:k]
        chosen = np.concatenate([*redraw, rng.permutation(values)[:k]]) if redraw or k else []
        chosen = np.asarray(chosen, dtype=np.int64)
        for value, rows in pd.Series(chosen).groupby(coarse[chosen]).indices.items():
            choices, shares = self.values[str(value)]
            present = _labels(choices) != NULL
            choices, shares = choices[present], shares[present]
            picks = np.searchsorted(np.cumsum(shares), rng.random(len(rows)) * shares.sum())
            out[chosen[rows]] = choices[np.minimum(picks, len(choices) - 1)]
        out[nulls] = None
        changed = len(chosen) + len(nulls)
        if changed:
            frame[self.column] = pd.Series(out, index=frame.index, dtype=object).where(
                pd.notna(out), None
            )
        return changed


def _labels(values: np.ndarray) -> np.ndarray:
    """``keys_of`` of a coarser value's few finer values, without a Series per value: a pandas
    conversion costs a millisecond whatever its size, and a rule holds a hundred countries."""
    return np.array([NULL if pd.isna(v) else str(v) for v in values], dtype=object)


def find_implied(
    frame: pd.DataFrame, columns: list[str], production: pd.DataFrame | None = None
) -> list[Implied]:
    """The category columns whose values imply a coarser category column's in ``production``
    (the rows before rare values were replaced, rare.py; default ``frame``), each with
    production's shares of its values per coarser value, among the values ``frame`` (the rows
    the model is fit on) still has: a rare value is never drawn, and the pairs are production's
    (rare.py replaces a rare country independently of its state, so the fit rows pair states
    with countries they are not in). A coarser value whose finer values are all rare has none,
    and its rows keep theirs. Coarser columns come first (a state is set within its country
    before a city within its state)."""
    source = frame if production is None else production
    texts = {c: text_of(source[c]) for c in columns if c in frame and c in source}
    out = []
    for column in sorted(texts, key=lambda c: texts[c].nunique()):
        given = context_of(texts, column)
        if given is None:
            continue
        pairs = pd.DataFrame(
            {"given": texts[given].fillna(NULL), "value": source[column].astype(object)}
        )
        # only values the model draws: a rare value replaced before the fit is never drawn
        vocabulary = set(keys_of(frame[column])) | {NULL}
        pairs = pairs[(pairs["given"] != NULL) & np.isin(keys_of(pairs["value"]), list(vocabulary))]
        values = {}
        for key, group in pairs.groupby("given", sort=True)["value"]:
            labels = keys_of(group)
            _, first, counts = np.unique(labels, return_index=True, return_counts=True)
            originals = group.to_numpy(dtype=object)[first]
            originals = np.array([None if pd.isna(v) else v for v in originals], dtype=object)
            values[str(key)] = (originals, counts.astype("float64") / counts.sum())
        out.append(Implied(column, given, values))
    return out
