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

- A child number that tracks a parent number (an order line's price is its product's price, or
  a share of it): a :class:`Track` makes it the synthetic parent's value times a ratio drawn
  from production's ratios, once the child row has its parent, so the pair holds as finely as
  in production (a label and a score only bring a price band and a rank).

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
from synth_assets.carries import learn_carries
from synth_assets.checks import check_columns
from synth_assets.config import Config
from synth_assets.db import raw
from synth_assets.encoding import Encoder
from synth_assets.extract import Extract, qualified, select_item, to_frame
from synth_assets.keys import parent_slots
from synth_assets.rare import entity_rare
from synth_assets.schema import Column, ForeignKey, Schema, Table

COUNT_PREFIX = "__n__"
MAX_CLUSTERS = 8
MIN_ROWS_TO_CLUSTER = 20
PARENTS_PER_CLUSTER = 8
KMEANS_FIT_ROWS = 20_000
PARENT_WEIGHT = 0.3
CANONICAL_RIDGE = 1e-3
MIN_WITHIN_CORRELATION = 0.05
SHARED_AGREEMENT = 0.8
# a label short of room takes up to this many times the mean count per parent: 1, not 2, as
# children per parent drift far from production's when a label takes more (Northwind's lines
# per product scored 0.75 at 2, 0.96 at 1, its intertable trends the same)
STRETCH = 1
MAX_SHARED_NUMBERS = 20
MAX_WITHIN_CORRELATION = 0.999
# a reference parent (published as production has it) of at most this many rows is its own
# label: a child row goes to the very row whose children its values resemble
MAX_REFERENCE_LABELS = 50
REFERENCE_LEAF = 20  # child rows per leaf of the tree whose shares a child's parent is drawn from


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
    for child, fk in child_links(schema):
        parent = schema.tables[fk.ref_table]
        pframe = frames[parent.name]
        if conn.dialect.name == "mysql":
            from synth_assets.mysql_source import children_per_parent

            rows = children_per_parent(conn, schema.name, child, fk)
        else:
            rows = _children_per_parent(conn, schema.name, child, fk)
        ref_cols = [parent.column(r) for r in fk.ref_columns]
        keys = to_frame(parent, [r[:-1] for r in rows], ref_cols)
        keys["__count"] = np.array([r[-1] for r in rows], dtype=np.int64)
        counts = _lookup(pframe, list(fk.ref_columns), keys, "__count")
        frame = out.setdefault(parent.name, pd.DataFrame(index=pframe.index))
        frame[count_column(child.name, fk)] = counts.fillna(0).astype("int64").to_numpy()
    return out


def _children_per_parent(conn: Connection, schema: str, child: Table, fk: ForeignKey) -> list:
    """Per parent key, its children's count (PostgreSQL)."""
    items = sql.SQL(", ").join(select_item(child.column(c)) for c in fk.columns)
    not_null = sql.SQL(" and ").join(
        sql.SQL("{} is not null").format(sql.Identifier(c)) for c in fk.columns
    )
    with raw(conn).cursor() as cur:
        cur.execute(
            sql.SQL("select {}, count(*) from {} where {} group by {}").format(
                items,
                qualified(schema, child.name),
                not_null,
                sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(fk.columns))),
            )
        )
        return cur.fetchall()


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


@dataclass(frozen=True)
class Side:
    """What matching needs of one side of a link, per row: its label and its canonical score
    (None: no linear dependence worth keeping, rows of a label are paired at random)."""

    labels: np.ndarray
    scores: np.ndarray | None = None

    def take(self, positions: np.ndarray) -> Side:
        return Side(self.labels[positions], None if self.scores is None else self.scores[positions])


def concat_sides(parts: list[Side]) -> Side:
    """The side of a table generated in chunks, from its chunks' sides."""
    scored = all(p.scores is not None for p in parts)
    return Side(
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.scores for p in parts]) if scored else None,  # type: ignore[misc]
    )


@dataclass
class Link:
    """One FK's parent/child relationship reduced to a cluster label both sides can compute,
    and one canonical direction for what the label leaves.

    The label is learned by k-means on production's parent columns plus the children's columns
    averaged per parent; two small decision trees predict it, one from a parent row and one from
    a child row. Within a label, a child row is paired with a parent by rank along the first
    canonical correlation pair of (parent columns, child columns), with noise that brings the
    paired correlation back to production's within-label one: an order line's price follows
    its product's price finely, not only by price band. Only split points, weights and one
    correlation are kept, never rows.
    """

    parent: Encoder
    parent_tree: Any
    child: Encoder
    child_tree: Any
    label_map: np.ndarray  # parent cluster -> the label its children are predicted
    parent_weights: np.ndarray | None = None
    child_weights: np.ndarray | None = None
    within: float = 0.0  # production's correlation of the two scores inside a label
    # a category the child shares with its parent (an invoice's billing country is its
    # customer's country): its values are the labels, on both sides, instead of clusters
    parent_key: str | None = None
    child_key: str | None = None
    # a reference parent's link: labels are its keys, and a child row's label is drawn from the
    # tree's shares for its values (seven genres of short tracks share their rows, not one)
    drawn: bool = False

    def parent_columns(self) -> list[str]:
        """The parent columns a child needs at generation (a compact parent view keeps these,
        or only the :meth:`parent_side` arrays)."""
        return list(self.parent.order)

    def parent_labels(self, frame: pd.DataFrame) -> np.ndarray:
        return self.parent_side(frame).labels

    def child_labels(self, frame: pd.DataFrame) -> np.ndarray:
        if frame.empty:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.child_tree.predict(self.child.transform(frame)))

    def parent_side(self, frame: pd.DataFrame) -> Side:
        """Label and score of each parent row: all a child table needs of its parent."""
        if frame.empty:
            return Side(np.zeros(0, dtype=np.int64), None)
        if self.drawn:
            return Side(_key_text(frame[self.parent_key]), None)
        x = self.parent.transform(frame)
        if self.parent_key is not None:
            labels = _key_text(frame[self.parent_key])
        else:
            labels = self.label_map[np.asarray(self.parent_tree.predict(x)).astype(np.int64)]
        return Side(labels, None if self.parent_weights is None else x @ self.parent_weights)

    def child_side(self, frame: pd.DataFrame, rng: np.random.Generator) -> Side:
        if frame.empty:
            return Side(np.zeros(0, dtype=np.int64), None)
        x = self.child.transform(frame)
        if self.drawn:
            shares = self.child_tree.predict_proba(x).cumsum(axis=1)
            pick = (shares < rng.random(len(x))[:, None] * shares[:, -1:]).sum(axis=1)
            return Side(self.child_tree.classes_[np.minimum(pick, shares.shape[1] - 1)], None)
        if self.child_key is not None:
            labels = _key_text(frame[self.child_key])
        else:
            labels = np.asarray(self.child_tree.predict(x))
        if self.child_weights is None:
            return Side(labels, None)
        scores = x @ self.child_weights
        spread = float(scores.std()) or 1.0
        # ranks paired exactly would make the correlation 1; noise of this size leaves rho
        noise = np.sqrt(max(1.0 - self.within**2, 0.0)) / max(self.within, 1e-6)
        return Side(labels, scores / spread + noise * rng.standard_normal(len(scores)))


def _predictable(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per cluster, the label the child tree predicts most often for its children."""
    size = int(max(true.max(initial=0), predicted.max(initial=0))) + 1
    table = np.zeros((size, size), dtype=np.int64)
    np.add.at(table, (true, predicted), 1)
    out = table.argmax(axis=1)
    empty = table.sum(axis=1) == 0
    out[empty] = np.flatnonzero(empty)
    return out.astype(np.int64)


def _inverse_sqrt(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    return (vectors / np.sqrt(np.maximum(values, 1e-9))) @ vectors.T


def _canonical(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights of the first canonical correlation pair of x and y (ridge-regularised)."""
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    n = max(len(x), 1)
    sxx = x.T @ x / n + CANONICAL_RIDGE * np.eye(x.shape[1])
    syy = y.T @ y / n + CANONICAL_RIDGE * np.eye(y.shape[1])
    wx, wy = _inverse_sqrt(sxx), _inverse_sqrt(syy)
    u, _, vt = np.linalg.svd(wx @ (x.T @ y / n) @ wy)
    return wx @ u[:, 0], wy @ vt[0]


def _demeaned(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    sums = np.zeros((int(groups.max(initial=0)) + 1, x.shape[1]))
    np.add.at(sums, groups, x)
    sizes = np.bincount(groups, minlength=len(sums))[:, None]
    return x - (sums / np.maximum(sizes, 1))[groups]


def _within_correlation(a: np.ndarray, b: np.ndarray, labels: np.ndarray) -> float:
    """Correlation of a and b once each label's mean is taken out."""
    groups = pd.DataFrame({"a": a, "b": b, "g": labels}).groupby("g")
    da = a - groups["a"].transform("mean").to_numpy()
    db = b - groups["b"].transform("mean").to_numpy()
    denominator = float(np.sqrt((da**2).sum() * (db**2).sum()))
    return float((da * db).sum() / denominator) if denominator > 0 else 0.0


def _scores(
    parent_x: np.ndarray, child_x: np.ndarray, labels: np.ndarray, seed: int
) -> tuple[np.ndarray | None, np.ndarray | None, float]:
    """The canonical weights of (parent row, child row) pairs and their within-label correlation,
    or Nones when that correlation is too weak to be worth keeping."""
    if parent_x.shape[1] == 0 or child_x.shape[1] == 0 or len(child_x) < MIN_ROWS_TO_CLUSTER:
        return None, None, 0.0
    rng = np.random.default_rng(seed)
    if len(child_x) > KMEANS_FIT_ROWS:
        pick = rng.choice(len(child_x), KMEANS_FIT_ROWS, replace=False)
        parent_x, child_x, labels = parent_x[pick], child_x[pick], labels[pick]
    # the direction of what the labels leave: each label's means taken out first (else the
    # first pair would be the label itself, a country shared by both sides)
    frame = pd.DataFrame({"g": pd.Series(labels, dtype=object).astype(str).to_numpy()})
    by = frame.groupby("g").ngroup().to_numpy()
    a, b = _canonical(_demeaned(parent_x, by), _demeaned(child_x, by))
    pa, pb = parent_x @ a, child_x @ b
    within = _within_correlation(pa, pb, labels)
    overall = float(np.corrcoef(pa, pb)[0, 1]) if pa.std() > 0 and pb.std() > 0 else 0.0
    if overall < 0:  # the direction's sign is free: make the pairing positive
        a, within, overall = -a, -within, -overall
    if within < MIN_WITHIN_CORRELATION:
        return None, None, 0.0
    # the noise is set for the pair's whole correlation: labels of synthetic parents only
    # roughly align with their children's, so the scores carry most of the pairing
    return a, b, min(overall, MAX_WITHIN_CORRELATION)


def _clusters(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    k = int(min(MAX_CLUSTERS, max(2, len(x) // PARENTS_PER_CLUSTER)))
    rng = np.random.default_rng(seed)
    fit_rows = x if len(x) <= KMEANS_FIT_ROWS else x[rng.choice(len(x), KMEANS_FIT_ROWS, False)]
    # one thread for the fit of at most KMEANS_FIT_ROWS rows: starting OpenMP threads costs
    # more than such a fit (30 ms against 5 ms on 100 parents), and the sums come out the same
    # whatever the number of cores
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="openmp"):
        warnings.simplefilter("ignore")
        model = KMeans(n_clusters=k, n_init=2, random_state=seed % 2**31).fit(fit_rows)
    return np.asarray(model.predict(x))


def _tree(x: np.ndarray, y: np.ndarray, seed: int, leaf: int | None = None) -> Any:
    from sklearn.tree import DecisionTreeClassifier

    leaf = leaf or max(3, len(x) // 500)
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
    # parents without children show nothing of their children: they are left out of the
    # clustering and take the label their own columns predict (at the mean of the children's
    # columns they would join the commonest cluster whatever they are)
    parented = ~np.isnan(agg).any(axis=1) if agg.size else np.zeros(len(pframe), dtype=bool)
    if parented.sum() < MIN_ROWS_TO_CLUSTER:
        return None
    agg = agg[parented]
    mean, std = agg.mean(axis=0), agg.std(axis=0)  # standardised across parents
    agg = (agg - mean) / np.where(std > 0, std, 1.0) * np.sqrt(np.clip(explained, 0.0, 1.0))
    parent_enc = Encoder.fit(pframe, pcols)
    parent_x = parent_enc.transform(pframe)
    # the clusters are about what the children show of their parent; the parent's own columns
    # weigh less (they only break ties), else its unrelated columns would use up the clusters
    clustered = _clusters(np.hstack([PARENT_WEIGHT * parent_x[parented], agg]), seed)
    parent_tree = _tree(parent_x[parented], clustered, seed)
    labels = np.asarray(parent_tree.predict(parent_x))
    labels[parented] = clustered
    # each child row with its parent's label (unknown when a row cap left the parent out)
    table = pd.DataFrame({**{k: pframe[k] for k in keys}, "__label": labels})
    own = cframe[list(fk.columns)].copy()
    own.columns = keys
    table["__pos"] = np.arange(len(pframe))
    found = _lookup_many(own, keys, table, ["__label", "__pos"])
    known = found["__label"]
    rows = known.notna().to_numpy()
    if rows.sum() < MIN_ROWS_TO_CLUSTER:
        return None
    child_labels = known[rows].astype(int).to_numpy()
    child_tree = _tree(child_x[rows], child_labels, seed)
    # a parent cluster its children cannot tell from another (tracks of one price split by
    # length, when a line only shows the price) takes the label its children are predicted:
    # else that cluster's parents would get no children and the other's all of them
    label_map = _predictable(child_labels, np.asarray(child_tree.predict(child_x[rows])))
    child_labels = label_map[child_labels]
    parent_of_row = found["__pos"][rows].astype(int).to_numpy()
    shared = _shared_category(pframe, pcols, cframe[rows], ccols, parent_of_row)
    groups = _key_text(cframe[shared[1]][rows]) if shared is not None else child_labels
    weights_p, weights_c, within = _scores(parent_x[parent_of_row], child_x[rows], groups, seed)
    return Link(
        parent_enc,
        parent_tree,
        child_enc,
        child_tree,
        label_map,
        weights_p,
        weights_c,
        within,
        shared[0] if shared is not None else None,
        shared[1] if shared is not None else None,
    )


def reference_link(
    pframe: pd.DataFrame, cframe: pd.DataFrame, ccols: list[str], fk: ForeignKey, seed: int
) -> Link | None:
    """The link of an FK to a reference table of at most MAX_REFERENCE_LABELS rows.

    Its rows are published as production has them, so a child may follow each row itself
    (Classical's tracks are long, Rock has most of them): the label is the parent's key, and a
    tree on the child's columns gives each child row production's shares of parents for rows
    like it. A parent without modelled columns (a genre is a name) gets no cluster link, and
    clusters of a few rows would merge the genres anyway.
    """
    if not ccols or len(fk.columns) != 1 or not 0 < len(pframe) <= MAX_REFERENCE_LABELS:
        return None
    own = cframe[fk.columns[0]]
    known = _key_text(pframe[fk.ref_columns[0]])
    labels = _key_text(own)
    rows = own.notna().to_numpy() & np.isin(labels, known)
    if rows.sum() < MIN_ROWS_TO_CLUSTER:
        return None
    child_enc = Encoder.fit(cframe, ccols)
    leaf = max(REFERENCE_LEAF, int(rows.sum()) // 200)
    child_tree = _tree(child_enc.transform(cframe)[rows], labels[rows], seed, leaf)
    empty = Encoder.fit(pframe, [])
    return Link(
        empty,
        None,
        child_enc,
        child_tree,
        np.zeros(0, dtype=np.int64),
        parent_key=fk.ref_columns[0],
        drawn=True,
    )


def _key_text(values: pd.Series) -> np.ndarray:
    """A shared column's values as labels: numbers by value (1 and 1.0 alike), NULL apart."""
    if pd.api.types.is_bool_dtype(values) or Encoder._is_category(values):
        return Encoder._text(values).to_numpy()
    x = pd.to_numeric(values, errors="coerce").astype("float64")
    return x.round(9).astype(str).where(x.notna(), "<null>").to_numpy()


def _few_values(values: pd.Series) -> bool:
    """A category, or a number of few values (a price of 0.99 or 1.99)."""
    if pd.api.types.is_bool_dtype(values):
        return False
    return Encoder._is_category(values) or values.nunique() <= MAX_SHARED_NUMBERS


def _shared_category(
    pframe: pd.DataFrame,
    pcols: list[str],
    children: pd.DataFrame,
    ccols: list[str],
    parent_of_row: np.ndarray,
) -> tuple[str, str] | None:
    """The (parent, child) columns of few values that agree on most child rows, when they
    agree on at least SHARED_AGREEMENT of them."""
    best: tuple[float, str, str] | None = None
    parents = [p for p in pcols if _few_values(pframe[p])]
    for c in ccols:
        if not _few_values(children[c]):
            continue
        mine = _key_text(children[c])
        for p in parents:
            theirs = _key_text(pframe[p])[parent_of_row]
            agree = float(np.mean(mine == theirs)) if len(mine) else 0.0
            if agree >= SHARED_AGREEMENT and (best is None or agree > best[0]):
                best = (agree, p, c)
    return None if best is None else (best[1], best[2])


def learn_links(
    schema: Schema,
    frames: dict[str, pd.DataFrame],
    roles: dict[str, dict[str, R.ColumnRole]],
    seed: int,
    references: frozenset[str] = frozenset(),
) -> dict[str, dict[str, Link]]:
    """Per child table, the links of its foreign keys (by FK name) that have one;
    ``references``: the tables published as production has them (reference_link)."""
    out: dict[str, dict[str, Link]] = {}
    for child, fk in child_links(schema):
        parent = fk.ref_table
        ccols = [c for c, r in roles[child.name].items() if r.role == R.MODEL]
        if parent in references and parent != child.name:
            link = reference_link(frames[parent], frames[child.name], ccols, fk, seed)
            if link is not None:
                out.setdefault(child.name, {})[fk.name] = link
                continue
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


TRACK_CORRELATION = 0.9
NUMBER_KINDS = ("integer", "numeric", "float")


@dataclass
class Track:
    """A child column that production has at (nearly) its parent's value times a ratio.

    ``ratios`` is production's distribution of child / parent (quantiles, or the few common
    values: synthesize.Marginal), never rows. At generation the ratio of each child row is
    taken at the rank the child's own modelled value has against its parent's, so the rows
    the model drew high keep a high ratio.
    """

    fk: str
    column: str
    parent_column: str
    ratios: Any  # synthesize.Marginal of child / parent
    scale: int | None  # decimals of the child column (None: as computed)
    integer: bool
    # production's range of the child column: a large parent times a large ratio stays inside
    # it, as every modelled number does (the gate expects production's range)
    low: float = -np.inf
    high: float = np.inf

    def apply(
        self,
        own: pd.Series,
        parent_values: pd.Series,
        idx: np.ndarray,
        rng: np.random.Generator,
    ) -> pd.Series:
        """``own`` with each row that has a parent set to parent value x ratio."""
        from scipy.special import ndtri

        parent = pd.to_numeric(parent_values, errors="coerce").to_numpy(dtype="float64")
        p = np.where(idx >= 0, parent[np.maximum(idx, 0)] if len(parent) else np.nan, np.nan)
        x = pd.to_numeric(own, errors="coerce").to_numpy(dtype="float64")
        rows = ~np.isnan(x) & ~np.isnan(p) & (p > 0)
        if not rows.any():
            return own
        order = np.lexsort((rng.random(int(rows.sum())), x[rows] / p[rows]))
        ranks = np.empty(len(order))
        ranks[order] = np.arange(len(order))
        z = pd.Series(ndtri((ranks + 0.5) / len(order)))
        ratio = self.ratios.restore(z, rng).to_numpy(dtype="float64")
        # tracks pickled before the range existed have none
        value = np.clip(
            p[rows] * ratio, getattr(self, "low", -np.inf), getattr(self, "high", np.inf)
        )
        out = x.copy()
        out[rows] = np.round(value, self.scale) if self.scale is not None else value
        if self.integer:
            return pd.Series(pd.array(np.round(out), dtype="Int64"), index=own.index).where(
                ~np.isnan(out), pd.NA
            )
        return pd.Series(out, index=own.index)


def _modelled_numbers(
    table: Table, frame: pd.DataFrame, roles: dict[str, dict[str, R.ColumnRole]]
) -> list[str]:
    return [
        c.name
        for c in table.columns
        if c.kind in NUMBER_KINDS and roles[table.name][c.name].role == R.MODEL and c.name in frame
    ]


def learn_tracks(
    schema: Schema,
    frames: dict[str, pd.DataFrame],
    roles: dict[str, dict[str, R.ColumnRole]],
    seed: int,
) -> dict[str, list[Track]]:
    """Per child table, its modelled numbers that follow a modelled parent number closely
    (correlation at least TRACK_CORRELATION over production's child rows, parent values
    positive): each tracks the parent column it follows best."""
    from synth_assets.synthesize import Marginal

    out: dict[str, list[Track]] = {}
    rng = np.random.default_rng(seed)
    for child, fk in child_links(schema):
        parent = schema.tables[fk.ref_table]
        pframe, cframe = frames[parent.name], frames[child.name]
        if len(cframe) < MIN_ROWS_TO_CLUSTER or pframe.empty:
            continue
        taken = {t.column for t in out.get(child.name, [])}  # a column tracks one parent
        numbers = [c for c in _modelled_numbers(child, cframe, roles) if c not in taken]
        pnumbers = _modelled_numbers(parent, pframe, roles)
        if not numbers or not pnumbers:
            continue
        keys = list(fk.ref_columns)
        own = cframe[list(fk.columns)].copy()
        own.columns = keys
        values = _lookup_many(own, keys, pframe, pnumbers)
        for name in numbers:
            x = pd.to_numeric(cframe[name], errors="coerce").to_numpy(dtype="float64")
            best: tuple[float, str] | None = None
            for p in pnumbers:
                y = pd.to_numeric(values[p], errors="coerce").to_numpy(dtype="float64")
                rows = ~np.isnan(x) & ~np.isnan(y)
                if rows.sum() < MIN_ROWS_TO_CLUSTER or (y[rows] <= 0).any():
                    continue
                if x[rows].std() == 0 or y[rows].std() == 0:
                    continue
                r = float(np.corrcoef(x[rows], y[rows])[0, 1])
                if r >= TRACK_CORRELATION and (best is None or r > best[0]):
                    best = (r, p)
            if best is None:
                continue
            y = pd.to_numeric(values[best[1]], errors="coerce").to_numpy(dtype="float64")
            rows = ~np.isnan(x) & ~np.isnan(y)
            ratios, _ = Marginal.fit(pd.Series(x[rows] / y[rows]), rng)
            col = child.column(name)
            out.setdefault(child.name, []).append(
                Track(
                    fk.name,
                    name,
                    best[1],
                    ratios,
                    col.numeric_scale if col.kind == "numeric" else None,
                    col.kind == "integer",
                    float(np.nanmin(x)),
                    float(np.nanmax(x)),
                )
            )
    return out


def learn_relations(schema: Schema, data: Extract, config: Config) -> None:
    """The links between tables, learned once from production (kept on the child's profile),
    and the values of child columns that are rare among the parents they come from."""
    roles = {
        name: R.column_roles(table, data.frames[name], config.override(name))
        for name, table in schema.tables.items()
    }
    links_of = learn_links(schema, data.frames, roles, config.seed, config.reference_tables())
    for name, links in links_of.items():
        data.profiles[name].links = links
    for name, tracks in learn_tracks(schema, data.frames, roles, config.seed).items():
        data.profiles[name].tracks = tracks
    # a column a CHECK constrains is repaired by generation: a carried value would undo that
    excluded = {
        name: {c for check in table.checks for c in check_columns(check.expression)}
        for name, table in schema.tables.items()
    }
    keep = {name: config.override(name).keep_rare for name in schema.tables}
    carried = learn_carries(
        schema, data.frames, roles, excluded, keep, child_links(schema), config.seed
    )
    for name, carries in carried.items():
        data.profiles[name].carries = carries
    rare = entity_rare(schema, data.frames, roles, config.privacy.rare_category_count, keep)
    for name, columns in rare.items():
        data.profiles[name].entity_rare = columns


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


def _ranked(labels: np.ndarray, scores: np.ndarray | None, tiebreak: np.ndarray) -> pd.DataFrame:
    """Each position's label and its rank inside the label (by score, else by ``tiebreak``)."""
    label = pd.Series(labels, dtype=object).astype(str).to_numpy()
    key = tiebreak if scores is None else scores
    order = np.lexsort((tiebreak, key, label))
    frame = pd.DataFrame({"label": label[order], "pos": order})
    frame["rank"] = frame.groupby("label", sort=False).cumcount()
    return frame


def match_rows(rng: np.random.Generator, slots: Side, rows: Side) -> np.ndarray:
    """A permutation of rows such that row ``perm[i]`` fills slot ``i`` with the same label
    wherever the label counts allow (by rank of score inside a label when both sides have
    scores, else at random); the rest are paired at random."""
    n = len(slots.labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    scored = slots.scores is not None and rows.scores is not None
    a = _ranked(slots.labels, slots.scores if scored else None, rng.permutation(n))
    b = _ranked(rows.labels, rows.scores if scored else None, rng.permutation(n))
    if scored:  # equal ranks across labels of different sizes: spread the smaller side evenly
        a["rank"] = _spread(a, b)
    pairs = a.merge(b, on=["label", "rank"], how="inner", suffixes=("_slot", "_row"))
    perm = np.full(n, -1, dtype=np.int64)
    perm[pairs["pos_slot"].to_numpy()] = pairs["pos_row"].to_numpy()
    used = np.zeros(n, dtype=bool)
    used[pairs["pos_row"].to_numpy()] = True
    free = rng.permutation(np.flatnonzero(~used))
    perm[perm == -1] = free
    return perm


def _spread(slots: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Slot ranks rescaled to the row ranks of their label, so that when a label has more
    slots than rows (or fewer) the pairs still run from low scores to high on both sides."""
    n_slots = slots.groupby("label", sort=False)["rank"].transform("size").to_numpy()
    n_rows = slots["label"].map(rows.groupby("label", sort=False).size()).fillna(0).to_numpy()
    if (n_slots == n_rows).all():
        return slots["rank"].to_numpy()
    spread = np.floor((slots["rank"].to_numpy() + 0.5) * n_rows / n_slots).astype(np.int64)
    # one slot per row rank: the first slot of each rescaled rank takes it, the others none
    taken = pd.Series(spread).groupby([slots["label"].to_numpy(), spread]).cumcount().to_numpy()
    return np.where(taken == 0, spread, -1 - np.arange(len(spread)))


def parents_by_label(
    rng: np.random.Generator,
    counts: np.ndarray,
    parents: Side | None,
    rows_side: Side | None,
    wants: np.ndarray,
    stretch: bool = True,
) -> np.ndarray:
    """Parent position per row (-1 where not wanted); ``stretch``: False for a reference
    parent's link (:func:`reference_link`), whose labels are single rows with production's
    own counts, which a stretch would undo (a small genre given the mean count).

    Each parent has room for its children count (adjusted to the rows wanted); the rows of a
    label fill the room of the parents of that label (by rank of score, see :class:`Link`),
    stretched to at most STRETCH times the mean count per parent when the label is short of
    room, and the rows left fill the room left (by rank of score, else at random). Children per
    parent stay the counts wherever the labels agree with them, where independent draws would
    smooth them (a parent without children would get some) and pile a label's rows onto its few
    parents. One pass per label (a shared column has at most 50 values, clusters 8).
    """
    n = len(wants)
    idx = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(wants)
    if len(counts) == 0 or len(rows) == 0:
        return idx
    room = np.bincount(parent_slots(rng, counts, len(rows)), minlength=len(counts))
    typical = STRETCH * max(1, int(np.ceil(len(rows) / len(room))))
    left = np.ones(len(rows), dtype=bool)
    scored = False
    if parents is not None and rows_side is not None:
        plabels = pd.Series(parents.labels, dtype=object).astype(str).to_numpy()
        mine_side = rows_side.take(rows)
        rlabels = pd.Series(mine_side.labels, dtype=object).astype(str).to_numpy()
        scored = parents.scores is not None and mine_side.scores is not None
        for label in np.unique(rlabels):
            members = np.flatnonzero(plabels == label)
            mine = np.flatnonzero(rlabels == label)
            # a label's parents may take more than their room, up to STRETCH x the mean count: a
            # label whose parents drew small counts (or that synthetic parents have fewer of
            # than production had) is not starved, and counts are stretched no further
            reach = len(members) * typical if stretch else 0
            take = int(min(len(mine), max(room[members].sum(), reach)))
            if take == 0:
                continue
            mine = mine[rng.permutation(len(mine))[:take]]  # more rows than room: some wait
            slots = members[parent_slots(rng, room[members], take)]
            if scored:  # low scores with low scores: ranks paired
                slots = slots[np.argsort(parents.scores[slots], kind="stable")]
                mine = mine[np.argsort(mine_side.scores[mine], kind="stable")]
            idx[rows[mine]] = slots
            room = np.maximum(room - np.bincount(slots, minlength=len(room)), 0)
            left[mine] = False
    rest = np.flatnonzero(left)  # the room that is left: by score where there are scores
    if len(rest):
        slots = parent_slots(rng, room, len(rest))
        if parents is not None and rows_side is not None and scored:
            slots = slots[np.argsort(parents.scores[slots], kind="stable")]
            rest = rest[np.argsort(mine_side.scores[rest], kind="stable")]
        else:
            rest = rest[rng.permutation(len(rest))]
        idx[rows[rest]] = slots
    return idx
