"""A category's shares in a table's rows: the training rows', not a draw's.

A table's rows draw their categories one row at a time (P(category | row) from the refiner's
tree, or the copula's own draw), so a small table's shares drift by chance: Northwind's 91
customers came out 16% (total variation) from production's countries, its 51 US states 14%
from their 4 regions, its 9 employees 6 Americans and 3 Britons against 5 and 4. Stratified
uniforms narrow the drift of one draw but not of a chain of them.

A quota gives each value its training share of the rows exactly (largest remainders, the
remainders handed out at random in proportion to their fractions). The rows of a value drawn
too often give up the surplus, picked at random: picking the rows that liked the value least
would sharpen the links beyond production's and bring rows nearer their training rows. Each
freed row then takes the value it likes best among those still short, by its log-probability
plus Gumbel noise (a draw, not an argmax), in rounds in which each short value takes its
strongest askers. A value of fewer than MIN_ROWS training rows gets no quota: an exact count
would put a one-customer country (kept with `keep_rare`) back into every night's output.
Only rows drawn unconditionally are held to quotas: rows sampled given a value have the
distribution of that value, not the table's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets.rare import keys_of

MIN_ROWS = 3  # rare_category_count's default plus one


@dataclass(frozen=True)
class Quota:
    column: str
    keys: np.ndarray  # the values that have a quota, as keys_of gives them
    values: np.ndarray  # the value of each key, as the column holds it (True, 'EUR', None)
    shares: np.ndarray  # their shares among the training rows holding one of them

    @classmethod
    def fit(cls, column: str, values: pd.Series) -> Quota | None:
        keys, first, counts = np.unique(keys_of(values), return_index=True, return_counts=True)
        held = counts >= MIN_ROWS
        if held.sum() < 2:  # one value: nothing to share out
            return None
        originals = values.astype(object).where(values.notna(), None).to_numpy()[first[held]]
        return cls(column, keys[held], originals, counts[held] / counts[held].sum())

    def targets(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Rows per value for n rows: largest remainders, handed out at random."""
        exact = n * self.shares
        counts = np.floor(exact).astype(np.int64)
        left = int(n - counts.sum())
        if left > 0:
            fractions = exact - counts
            picks = rng.choice(len(counts), left, replace=False, p=fractions / fractions.sum())
            counts[picks] += 1
        return counts

    def apply(
        self,
        values: np.ndarray,
        rng: np.random.Generator,
        log_p: np.ndarray | None = None,
    ) -> np.ndarray:
        """``values`` (the drawn category of each row) with each quota value on its count.

        ``log_p``: per row, the log-probability of each of ``self.keys`` (rows x keys), the
        refiner's; without it a freed row takes a short value at random. A value of
        probability 0 for a row (-inf: a state outside the row's country) is never forced on
        it: the row keeps its own and the value stays short."""
        keys = keys_of(values)
        slot = pd.Index(self.keys).get_indexer(keys)  # -1: a value without a quota
        rows = np.flatnonzero(slot >= 0)
        if len(rows) < 2:
            return values
        have = np.bincount(slot[rows], minlength=len(self.keys))
        need = self.targets(len(rows), rng) - have
        if not need.any():
            return values
        movable = np.ones(len(values), dtype=bool)
        if log_p is not None:  # rows some short value is possible for
            movable = np.isfinite(log_p[:, need > 0]).any(axis=1)
        freed = self._surplus(rows, slot, need, movable, rng)
        score = rng.gumbel(size=(len(freed), len(self.keys)))
        if log_p is not None:
            score += log_p[freed]
        taken = _assign(score, np.maximum(need, 0))
        out = np.asarray(values, dtype=object).copy()
        moved = taken >= 0  # a row no short value is possible for keeps its own
        out[freed[moved]] = self.values[taken[moved]]
        return out

    @staticmethod
    def _surplus(
        rows: np.ndarray,
        slot: np.ndarray,
        need: np.ndarray,
        movable: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Rows of the over-drawn values, as many as each is over, picked at random among
        those that can move (a short value is possible for them) before the others."""
        order = rows[rng.permutation(len(rows))]
        order = order[np.argsort(~movable[order], kind="stable")]
        by_value = pd.Series(order).groupby(slot[order]).indices
        parts = [order[at[: -need[v]]] for v, at in by_value.items() if need[v] < 0]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _assign(score: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Each row's value (a column of ``score``; -1 for none), no value taking more rows than
    its capacity: every row asks for its best open value, each value keeps its strongest
    askers, and the others ask again in the next round (a value closes each round, or all are
    in). A row whose open values all score -inf asks for none."""
    capacity = capacity.copy()
    choice = np.full(len(score), -1)
    waiting = np.arange(len(score))
    while len(waiting) and capacity.any():
        masked = np.where(capacity > 0, score[waiting], -np.inf)
        best = masked.argmax(axis=1)
        strength = masked[np.arange(len(waiting)), best]
        possible = np.isfinite(strength)
        waiting, best, strength = waiting[possible], best[possible], strength[possible]
        order = np.lexsort((-strength, best))  # by value, strongest first
        ranked = best[order]
        starts = np.searchsorted(ranked, ranked, side="left")
        rank = np.arange(len(order)) - starts
        accepted = rank < capacity[ranked]
        choice[waiting[order[accepted]]] = ranked[accepted]
        capacity -= np.bincount(ranked[accepted], minlength=len(capacity))
        waiting = waiting[order[~accepted]]
    return choice
