"""What ties a child table to its parents, learned so that per-table models can carry it.

A table's synthesizer sees one table; joins across tables need more:

- Children per parent depend on the parent (customers who signed up earlier have more orders):
  a hidden column ``__n__<child>.<fk>`` on the parent's production frame holds how many rows of
  ``child`` point at each parent row through ``fk``. The parent's synthesizer models it with the
  parent's columns, so a synthetic parent gets a count that fits its attributes; the counts
  handed out are production's children-per-parent values, in the order of the modelled ones.
- Child values depend on the parent (orders of German customers are in EUR; an order line's
  price follows its product's): a :class:`Link` per FK, a cluster label learned on parent and
  child columns together (ClavaDDPM's idea, Pang et al. 2024), which both sides can predict from
  their own values. A synthetic child row goes to a synthetic parent of the label its values
  predict. A child with two parents has two links and keeps both relationships.

Everything is vectorised: one SQL aggregate per FK for the counts, one k-means and two small
decision trees per FK to learn, and group-wise numpy to match at generation time.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from psycopg import sql
from sqlalchemy.engine import Connection

from synth_assets import roles as R
from synth_assets.config import Config
from synth_assets.db import raw
from synth_assets.encoding import Encoder
from synth_assets.extract import Extract, qualified, select_item, to_frame
from synth_assets.keys import parent_slots
from synth_assets.schema import Column, ForeignKey, Schema, Table

COUNT_PREFIX = "__n__"
MAX_CLUSTERS = 8
MIN_ROWS_TO_CLUSTER = 20
PARENTS_PER_CLUSTER = 8
KMEANS_FIT_ROWS = 20_000
PARENT_WEIGHT = 0.3


def count_column(child: str, fk: ForeignKey) -> str:
    return f"{COUNT_PREFIX}{child}.{fk.name}"


def is_latent(name: str) -> bool:
    return name.startswith(COUNT_PREFIX)


def latent_columns(frame: pd.DataFrame | None) -> list[Column]:
    """How the synthesizer models the hidden columns: children counts are integers."""
    if frame is None:
        return []
    return [Column(name, "bigint", "integer", False) for name in frame.columns]


def child_links(schema: Schema) -> list[tuple[Table, ForeignKey]]:
    """Every (child, FK) to another selected table; self-references are trees, not parents."""
    return [
        (table, fk)
        for table in schema.tables.values()
        for fk in table.foreign_keys
        if fk.ref_table in schema.tables and fk.ref_table != table.name
    ]


def children_counts(
    conn: Connection, schema: Schema, frames: dict[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    """Per parent table, the children each production row has, per child FK (full tables)."""
    out: dict[str, pd.DataFrame] = {}
    cur = raw(conn).cursor()
    for child, fk in child_links(schema):
        parent = schema.tables[fk.ref_table]
        pframe = frames[parent.name]
        items = sql.SQL(", ").join(select_item(child.column(c)) for c in fk.columns)
        not_null = sql.SQL(" and ").join(
            sql.SQL("{} is not null").format(sql.Identifier(c)) for c in fk.columns
        )
        cur.execute(
            sql.SQL("select {}, count(*) from {} where {} group by {}").format(
                items,
                qualified(schema.name, child.name),
                not_null,
                sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(fk.columns))),
            )
        )
        rows = cur.fetchall()
        ref_cols = [parent.column(r) for r in fk.ref_columns]
        keys = to_frame(parent, [r[:-1] for r in rows], ref_cols)
        keys["__count"] = np.array([r[-1] for r in rows], dtype=np.int64)
        counts = _lookup(pframe, list(fk.ref_columns), keys, "__count")
        frame = out.setdefault(parent.name, pd.DataFrame(index=pframe.index))
        frame[count_column(child.name, fk)] = counts.fillna(0).astype("int64").to_numpy()
    cur.close()
    return out


def _lookup_many(
    frame: pd.DataFrame, columns: list[str], table: pd.DataFrame, values: list[Any]
) -> pd.DataFrame:
    """``table[values]`` for each row of ``frame``, matched on ``columns`` (NaN where none)."""
    left = frame[columns].copy()
    right = table[[*columns, *values]].drop_duplicates(columns)
    for c in columns:  # the same key as text on both sides: types never get in the way
        left[c] = left[c].astype(str)
        right[c] = right[c].astype(str)
    merged = left.merge(right, on=columns, how="left")
    return pd.DataFrame({v: merged[v].to_numpy() for v in values}, index=frame.index)


def _lookup(frame: pd.DataFrame, columns: list[str], table: pd.DataFrame, value: str) -> pd.Series:
    return _lookup_many(frame, columns, table, [value])[value]


@dataclass
class Link:
    """One FK's parent/child relationship reduced to a cluster label both sides can compute.

    The label is learned by k-means on production's parent columns plus the children's columns
    averaged per parent; two small decision trees predict it, one from a parent row and one from
    a child row. Only production-derived split points are kept, never rows.
    """

    parent: Encoder
    parent_tree: Any
    child: Encoder
    child_tree: Any

    def parent_labels(self, frame: pd.DataFrame) -> np.ndarray:
        if frame.empty:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.parent_tree.predict(self.parent.transform(frame)))

    def child_labels(self, frame: pd.DataFrame) -> np.ndarray:
        if frame.empty:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.child_tree.predict(self.child.transform(frame)))


def _clusters(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    k = int(min(MAX_CLUSTERS, max(2, len(x) // PARENTS_PER_CLUSTER)))
    rng = np.random.default_rng(seed)
    fit_rows = x if len(x) <= KMEANS_FIT_ROWS else x[rng.choice(len(x), KMEANS_FIT_ROWS, False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = KMeans(n_clusters=k, n_init=2, random_state=seed % 2**31).fit(fit_rows)
    return np.asarray(model.predict(x))


def _tree(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.tree import DecisionTreeClassifier

    leaf = max(3, len(x) // 500)
    return DecisionTreeClassifier(
        max_depth=10, min_samples_leaf=leaf, random_state=seed % 2**31
    ).fit(x, y)


def learn_link(
    pframe: pd.DataFrame,
    pcols: list[str],
    cframe: pd.DataFrame,
    ccols: list[str],
    fk: ForeignKey,
    seed: int,
) -> Link | None:
    """The link of one FK, or None when there is nothing to learn it from."""
    if not ccols or not pcols:
        return None  # nothing in the child to condition, or nothing to predict it from
    if len(pframe) < MIN_ROWS_TO_CLUSTER or len(cframe) < MIN_ROWS_TO_CLUSTER:
        return None
    keys = list(fk.ref_columns)
    child_enc = Encoder.fit(cframe, ccols)
    child_x = child_enc.transform(cframe)
    child_key = cframe[list(fk.columns)].astype(str)
    child_key.columns = keys
    grouped = pd.concat([child_key, pd.DataFrame(child_x, index=cframe.index)], axis=1).groupby(
        keys, sort=False
    )
    means = grouped.mean().reset_index()
    agg_cols = [c for c in means.columns if c not in keys]
    # how much of a child column the parent explains (between-parent share of its variance):
    # a column that only varies within parents would make clusters of noise
    explained = grouped[agg_cols].transform("mean").to_numpy().var(axis=0) / np.maximum(
        child_x.var(axis=0), 1e-12
    )
    agg = _lookup_many(pframe, keys, means, agg_cols).to_numpy(dtype=float)
    if agg.size:  # standardise across parents; parents without children sit at the mean
        mean, std = np.nanmean(agg, axis=0), np.nanstd(agg, axis=0)
        agg = np.nan_to_num((agg - mean) / np.where(std > 0, std, 1.0))
        agg = agg * np.sqrt(np.clip(explained, 0.0, 1.0))
    parent_enc = Encoder.fit(pframe, pcols)
    parent_x = parent_enc.transform(pframe)
    # the clusters are about what the children show of their parent; the parent's own columns
    # weigh less (they only break ties), else its unrelated columns would use up the clusters
    labels = _clusters(np.hstack([PARENT_WEIGHT * parent_x, agg]), seed)
    # each child row with its parent's label (unknown when a row cap left the parent out)
    table = pd.DataFrame({**{k: pframe[k] for k in keys}, "__label": labels})
    own = cframe[list(fk.columns)].copy()
    own.columns = keys
    known = _lookup(own, keys, table, "__label")
    rows = known.notna().to_numpy()
    if rows.sum() < MIN_ROWS_TO_CLUSTER:
        return None
    return Link(
        parent_enc,
        _tree(parent_x, labels, seed),
        child_enc,
        _tree(child_x[rows], known[rows].astype(int).to_numpy(), seed),
    )


def learn_links(
    schema: Schema,
    frames: dict[str, pd.DataFrame],
    roles: dict[str, dict[str, R.ColumnRole]],
    seed: int,
) -> dict[str, dict[str, Link]]:
    """Per child table, the links of its foreign keys (by FK name) that have one."""
    out: dict[str, dict[str, Link]] = {}
    for child, fk in child_links(schema):
        parent = fk.ref_table
        link = learn_link(
            frames[parent],
            [c for c, r in roles[parent].items() if r.role == R.MODEL],
            frames[child.name],
            [c for c, r in roles[child.name].items() if r.role == R.MODEL],
            fk,
            seed,
        )
        if link is not None:
            out.setdefault(child.name, {})[fk.name] = link
    return out


def learn_relations(schema: Schema, data: Extract, config: Config) -> None:
    """The links between tables, learned once from production (kept on the child's profile)."""
    roles = {
        name: R.column_roles(table, data.frames[name], config.override(name))
        for name, table in schema.tables.items()
    }
    for name, links in learn_links(schema, data.frames, roles, config.seed).items():
        data.profiles[name].links = links


# --- generation side ---------------------------------------------------------------------


def counts_by_rank(rng: np.random.Generator, drawn: np.ndarray, modelled: Any) -> np.ndarray:
    """Production's children-per-parent values, handed out in the order of the modelled counts.

    The marginal stays exactly production's (cardinality), the ranks follow the parent's model
    (the parent attributes that go with many children get many).
    """
    modelled = np.asarray(pd.Series(modelled).astype("float64").fillna(0.0))
    order = np.lexsort((rng.random(len(drawn)), modelled))
    out = np.empty_like(drawn)
    out[order] = np.sort(drawn)
    return out


def match_rows(
    rng: np.random.Generator, slot_labels: np.ndarray, row_labels: np.ndarray
) -> np.ndarray:
    """A permutation of rows such that row ``perm[i]`` fills slot ``i`` with the same label
    wherever the label counts allow; the rest are paired at random."""
    n = len(slot_labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    slots = pd.DataFrame({"label": pd.Series(slot_labels, dtype=object).astype(str)})
    slots["rank"] = slots.groupby("label").cumcount()
    slots["slot"] = np.arange(n)
    shuffled = rng.permutation(n)
    rows = pd.DataFrame(
        {"label": pd.Series(row_labels, dtype=object).astype(str).to_numpy()[shuffled]}
    )
    rows["rank"] = rows.groupby("label").cumcount()
    rows["row"] = shuffled
    pairs = slots.merge(rows, on=["label", "rank"], how="inner")
    perm = np.full(n, -1, dtype=np.int64)
    perm[pairs["slot"].to_numpy()] = pairs["row"].to_numpy()
    used = np.zeros(n, dtype=bool)
    used[pairs["row"].to_numpy()] = True
    free = rng.permutation(np.flatnonzero(~used))
    perm[perm == -1] = free
    return perm


def parents_by_label(
    rng: np.random.Generator,
    counts: np.ndarray,
    parent_labels: np.ndarray | None,
    row_labels: np.ndarray | None,
    wants: np.ndarray,
) -> np.ndarray:
    """Parent position per row (-1 where not wanted).

    Each parent starts from its children count; the rows of a label go to the parents of that
    label, whose counts are adjusted (keys.fit_total: a few children more or less, in
    proportion) to the rows of the label; rows of a label no parent has fill the counts of the
    other parents. Children per parent stay close to production's distribution (a parent
    without children keeps none unless its label lacks room), where independent draws would
    smooth it and pile a label's rows onto its few parents.
    """
    n = len(wants)
    idx = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(wants)
    if len(counts) == 0 or len(rows) == 0:
        return idx
    c = np.round(np.nan_to_num(np.asarray(counts, dtype="float64"))).clip(min=0).astype(np.int64)
    left = np.ones(len(rows), dtype=bool)
    free = np.ones(len(c), dtype=bool)  # parents whose label no row asked for
    if parent_labels is not None and row_labels is not None:
        plabels = pd.Series(parent_labels, dtype=object).astype(str).to_numpy()
        rlabels = pd.Series(row_labels, dtype=object).astype(str).to_numpy()[rows]
        for label in np.unique(rlabels):
            members = np.flatnonzero(plabels == label)
            if len(members) == 0:
                continue
            mine = np.flatnonzero(rlabels == label)
            slots = members[parent_slots(rng, c[members], len(mine))]
            idx[rows[mine[rng.permutation(len(mine))]]] = slots
            left[mine] = False
            free[members] = False
    rest = rows[left]
    if len(rest):
        pool = np.flatnonzero(free) if free.any() and c[free].sum() else np.arange(len(c))
        idx[rest[rng.permutation(len(rest))]] = pool[parent_slots(rng, c[pool], len(rest))]
    return idx
