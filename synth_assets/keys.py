"""Keys: fresh primary keys, and foreign keys that only point at synthetic parents.

Children per parent are drawn from production's children-per-parent distribution, so a
parent with no children, the typical parent and the parent with hundreds all exist in the copy
in the same proportions. Everything here is index arithmetic on numpy arrays: a child row holds
the position of its parent row, and the key values are gathered at the end.
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from synth_assets.extract import FkProfile
from synth_assets.pii import common_prefix, scramble
from synth_assets.schema import Column

INT_LIMITS = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "bigint": 2**63 - 1}
NO_PARENT = -1


def draw_counts(rng: np.random.Generator, profile: FkProfile, n_parents: int) -> np.ndarray:
    """Children of each synthetic parent: production's distribution at evenly spaced quantiles
    (one random offset), in random order.

    Stratified rather than independent draws: with as many synthetic parents as production has,
    the counts are exactly production's (6 shippers, 3 of them without orders, stay so), and on
    other scales the distribution is met as closely as whole parents allow.
    """
    total = int(profile.parents.sum())
    if n_parents == 0 or total == 0:
        return np.zeros(n_parents, dtype=np.int64)
    order = np.argsort(profile.counts, kind="stable")
    values = np.asarray(profile.counts)[order]
    ends = np.cumsum(np.asarray(profile.parents, dtype=np.int64)[order])
    offset = rng.random()
    positions = np.floor((np.arange(n_parents) + offset) * total / n_parents).astype(np.int64)
    picks = values[np.searchsorted(ends, positions, side="right")]
    return picks[rng.permutation(n_parents)].astype(np.int64)


def fit_total(
    rng: np.random.Generator, counts: np.ndarray, target: int, at_most_one: bool
) -> np.ndarray:
    """Adjust drawn counts so that they add up to the target row count, keeping their shape."""
    counts = counts.copy()
    diff = target - int(counts.sum())
    if diff < 0:
        owners = np.repeat(np.arange(len(counts)), counts)
        drop = rng.choice(len(owners), size=-diff, replace=False)
        np.subtract.at(counts, owners[drop], 1)
    elif diff > 0 and len(counts):
        if at_most_one:
            free = np.flatnonzero(counts == 0)
            chosen = rng.choice(free, size=min(diff, len(free)), replace=False)
            counts[chosen] = 1
        else:
            weights = counts.astype(float) + (0.0 if counts.sum() else 1.0)
            np.add.at(counts, rng.choice(len(counts), size=diff, p=weights / weights.sum()), 1)
    return counts


def assign_parents(
    rng: np.random.Generator,
    profile: FkProfile,
    n_parents: int,
    n_rows: int,
    nullable: bool,
    unique: bool,
    drawn: np.ndarray | None = None,
) -> np.ndarray:
    """Parent position of each child row; NO_PARENT where the FK is NULL (or cannot be set).

    ``drawn``: children counts per parent drawn beforehand (once for all chunks of a table).
    """
    idx = np.full(n_rows, NO_PARENT, dtype=np.int64)
    wants = ~(rng.random(n_rows) < profile.null_rate) if nullable else np.ones(n_rows, bool)
    m = int(wants.sum())
    if n_parents == 0 or m == 0:
        return idx
    if unique:
        chosen = rng.permutation(n_parents)[: min(m, n_parents)]
        positions = np.flatnonzero(wants)[: len(chosen)]
        idx[positions] = chosen
        return idx
    counts = drawn if drawn is not None else draw_counts(rng, profile, n_parents)
    slots = parent_slots(rng, counts, m)
    idx[wants] = slots[rng.permutation(m)]
    return idx


def parent_slots(rng: np.random.Generator, counts: np.ndarray, rows: int) -> np.ndarray:
    """Parent positions, parent i repeated as often as its count, adjusted to ``rows`` in all:
    the children per parent of the rows that fill them are exactly these counts."""
    c = np.round(np.nan_to_num(np.asarray(counts, dtype="float64"))).clip(min=0).astype(np.int64)
    return np.repeat(np.arange(len(c)), fit_total(rng, c, rows, at_most_one=False))


def self_parents(
    rng: np.random.Generator, n_rows: int, null_rate: float, nullable: bool
) -> np.ndarray:
    """Each row's parent is an earlier row, so the references form trees and never a cycle."""
    idx = np.floor(rng.random(n_rows) * np.arange(n_rows)).astype(np.int64)
    if nullable:
        idx[rng.random(n_rows) < null_rate] = NO_PARENT
        if n_rows:
            idx[0] = NO_PARENT
    elif n_rows:
        idx[0] = 0  # a NOT NULL self-reference needs a root that points at itself
    return idx


def tree_depths(parent_pos: np.ndarray, max_rounds: int = 64) -> np.ndarray:
    """Depth of every node of a forest given each node's parent position (-1 for a root).

    Pointer doubling: log2(depth) vectorised rounds, so a chain of a million rows costs twenty
    array operations. Nodes on a cycle (no root above them) end with a depth of at least 2^64
    capped to the number of nodes.
    """
    n = len(parent_pos)
    nxt = np.where(parent_pos == np.arange(n), -1, parent_pos).astype(np.int64)
    depth = (nxt >= 0).astype(np.int64)
    for _ in range(max_rounds):
        alive = nxt >= 0
        if not alive.any():
            break
        ahead = nxt[alive]
        depth[alive] = np.minimum(depth[alive] + depth[ahead], n)
        nxt[alive] = nxt[ahead]
    return depth


def tree_parents(
    rng: np.random.Generator,
    depth_counts: np.ndarray,
    profile: FkProfile,
    n_rows: int,
    nullable: bool,
) -> np.ndarray:
    """Parents for a self-reference, level by level with production's depth distribution.

    Each row gets a depth (production's depths resampled by quantile, so chains stay chains and
    flat trees stay flat); a row at depth d points at a row at depth d-1, chosen with production's
    children-per-parent weights. Rows only point one level up, so there is never a cycle.
    Roots have no parent (NULL), or point at themselves when the column is NOT NULL.
    """
    idx = np.full(n_rows, NO_PARENT, dtype=np.int64)
    if n_rows == 0:
        return idx
    levels = np.repeat(np.arange(len(depth_counts)), depth_counts)
    if len(levels) == 0:
        levels = np.zeros(1, dtype=np.int64)
    picks = np.floor((np.arange(n_rows) + 0.5) * len(levels) / n_rows).astype(np.int64)
    depth = levels[picks]
    depth = np.unique(depth, return_inverse=True)[1]  # no empty level between two full ones
    depth = depth[rng.permutation(n_rows)]
    weights = draw_counts(rng, profile, n_rows).astype(float)
    for d in range(1, int(depth.max()) + 1):
        rows = np.flatnonzero(depth == d)
        above = np.flatnonzero(depth == d - 1)
        w = weights[above]
        w = w / w.sum() if w.sum() > 0 else np.full(len(above), 1.0 / len(above))
        idx[rows] = above[rng.choice(len(above), size=len(rows), p=w)]
    if not nullable:
        roots = np.flatnonzero(idx == NO_PARENT)
        idx[roots] = roots
    return idx


def gather(parent: pd.DataFrame, columns: tuple[str, ...], idx: np.ndarray) -> dict[str, pd.Series]:
    """Key values of the parent rows at the given positions (NULL where there is no parent)."""
    out = {}
    valid = idx != NO_PARENT
    safe = np.where(valid, idx, 0)
    for col in columns:
        values = parent[col]
        if len(values) == 0:
            out[col] = pd.Series([None] * len(idx), dtype=object)
            continue
        taken = values.iloc[safe].reset_index(drop=True)
        if not valid.all() and taken.dtype.kind in "iu":
            # NULL in an int64 column would make it float64: keys above 2^53 would merge
            taken = taken.astype("Int64")
        out[col] = taken.where(pd.Series(valid), None) if not valid.all() else taken
    return out


def _integer_start(col: Column, production: pd.Series, n: int) -> int:
    start = 1
    present = production.dropna()
    if len(present):
        start = max(1, int(present.min()))
    limit = INT_LIMITS.get(col.sql_type, 2**31 - 1)
    return start if start + n <= limit else 1


def new_key_values(
    col: Column,
    production: pd.Series,
    n: int,
    rng: np.random.Generator,
    offset: int = 0,
    total: int = 0,
) -> pd.Series:
    """n distinct values in the type and format of a key column.

    Numbers count on: the values ``offset .. offset + n`` of a table of ``total`` rows made in
    chunks, so that the keys of two chunks never collide.
    """
    if col.kind == "integer":
        start = _integer_start(col, production, max(total, offset + n)) + offset
        return pd.Series(pd.array(np.arange(start, start + n), dtype="Int64"))
    if col.kind in ("float", "numeric"):
        return pd.Series(np.arange(offset + 1, offset + n + 1, dtype="float64"))
    if col.kind == "uuid":
        raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16) if n else []
        return pd.Series([str(uuid.UUID(bytes=bytes(r), version=4)) for r in raw], dtype=object)
    if col.kind in ("date", "timestamp", "timestamptz"):
        base = production.dropna().min() if production.notna().any() else pd.Timestamp("2000-01-01")
        unit = "D" if col.kind == "date" else "s"
        return pd.Series(base + pd.to_timedelta(np.arange(n), unit=unit))
    return pd.Series(code_values(production.dropna().astype(str).tolist(), n, rng, unique=True))


def code_values(samples: list[str], n: int, rng: np.random.Generator, unique: bool) -> np.ndarray:
    """Identifiers shaped like production's: PREFIX-000123 counts up, anything else is scrambled."""
    prefix = common_prefix(samples)
    while prefix and samples[0][prefix - 1].isdigit():
        prefix -= 1  # SKU-000123 and SKU-000999 share "SKU-000", but the zeros are the number
    rest = [s[prefix:] for s in samples]
    if samples and all(r.isdigit() for r in rest):
        width = max(max(len(r) for r in rest), len(str(n)))
        numbers = pd.Series(np.arange(1, n + 1) if unique else rng.integers(1, 10**width, n))
        return (samples[0][:prefix] + numbers.astype(str).str.zfill(width)).to_numpy(dtype=object)
    base = np.array(samples or ["K0000000"], dtype=object)
    values = scramble(base[rng.integers(0, len(base), n)], rng, keep_prefix=prefix)
    if unique:
        forbidden = set(samples)
        for _ in range(20):
            bad = (
                pd.Series(values).duplicated().to_numpy()
                | pd.Series(values).isin(forbidden).to_numpy()
            )
            if not bad.any():
                break
            values[bad] = scramble(base[rng.integers(0, len(base), int(bad.sum()))], rng, prefix)
        else:
            suffix = pd.Series(np.arange(n)).astype(str)
            values = (pd.Series(values) + "-" + suffix).to_numpy(dtype=object)
    return values
