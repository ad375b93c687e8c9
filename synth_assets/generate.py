"""Synthetic tables, parents first: sample values, then assign keys, then fill the rest.

Each table gets its own random streams derived from (seed, table, purpose), so the same source
and seed give the same output, and adding a table does not change the rows of the others.

A table larger than ``chunk_rows`` is generated in chunks (see :func:`whole_reason` for the
tables that cannot be), each written to the spill and dropped; children draw their FKs from
their parents' :class:`ParentView`, a few arrays per parent, never the parent's rows.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from synth_assets import roles as R
from synth_assets.arrays import element_kind, format_array, parse_all
from synth_assets.carries import carry
from synth_assets.checks import repair
from synth_assets.config import Config
from synth_assets.documents import MAX_DOCUMENTS, DocumentModel, TextMaker, parse_json
from synth_assets.errors import SchemaError
from synth_assets.exclusion import Rule, keep_apart, latest_end, rules_of
from synth_assets.extract import Extract, TableProfile
from synth_assets.keys import (
    NO_PARENT,
    assign_parents,
    code_values,
    draw_counts,
    fit_total,
    gather,
    new_key_values,
    self_parents,
    tree_parents,
)
from synth_assets.lookup import lookup_hints
from synth_assets.order import GenerationPlan
from synth_assets.pii import FakePools, replace_pii
from synth_assets.privacy import encode
from synth_assets.ranges import RangeModel, hidden_names, is_hidden
from synth_assets.rebalance import rebalanced_values
from synth_assets.relations import (
    Side,
    child_links,
    concat_sides,
    count_column,
    counts_by_rank,
    is_latent,
    latent_columns,
    match_rows,
    parents_by_label,
)
from synth_assets.resolution import decimals_of, snap, step_of
from synth_assets.schema import Column, ForeignKey, Schema, Table
from synth_assets.spill import Spill
from synth_assets.sums import (
    Accumulator,
    RowRule,
    SumRule,
    derive,
    enforceable,
    positions,
    usable_row_rules,
)
from synth_assets.synthesize import TableModel, fit_table

MIN_NUDGE_VALUES = 20
RESAMPLE_ROUNDS = 2
# rows drawn per production-equal row in a round, the nearest that frees it taken: 32, as with
# 4 a planted table's long tracks became short ones (the model's 106 of 1,500 came out 101; 106
# with 32); at most RESAMPLE_ROWS in all, so that memory follows the chunk
RESAMPLE_CANDIDATES = 32
RESAMPLE_ROWS = 200_000
MAX_DEDUPE_GRID = 5_000_000  # grid points a unique column's free values are looked for among
NUDGE_ROUNDS = 64  # dense columns (a price to the cent, 1.2 production rows per cent) need room


def table_seed(seed: int, table: str, purpose: str) -> int:
    digest = hashlib.sha256(f"{seed}\x00{table}\x00{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass
class TableStats:
    rows_production: int
    rows_generated: int = 0
    fit_seconds: float = 0.0
    sample_seconds: float = 0.0
    spill_seconds: float = 0.0  # formatting its rows as COPY text, once for every environment
    repaired: int = 0
    resampled: int = 0  # rows drawn again because they equalled a production row


def fit_model(
    table: Table,
    frame: pd.DataFrame,
    roles: dict[str, R.ColumnRole],
    config: Config,
    latent: pd.DataFrame | None = None,
    production: pd.DataFrame | None = None,
) -> TableModel:
    """The table's synthesizer, fit on the columns whose role is MODEL and on its hidden
    relationship columns (children counts: synth_assets.relations). ``production``: the rows
    before rare values were replaced, where the categories that imply others are found."""
    columns = [c for c in table.columns if roles[c.name].role == R.MODEL]
    hidden = latent_columns(latent)
    if config.is_reference(table.name):  # published as production has it: nothing to learn
        columns, hidden = [], []
    if hidden:
        frame = pd.concat([frame, latent], axis=1)
        columns = columns + hidden
    for col in table.columns:  # a range's start and length, learned with the row
        if config.is_reference(table.name) or roles[col.name].role != R.RANGE:
            continue
        ranged = RangeModel.fit(frame[col.name], col.sql_type) if col.name in frame else None
        if ranged is not None:
            extra = ranged.hidden(frame[col.name])
            frame = pd.concat([frame, extra], axis=1)
            columns = columns + ranged.hidden_columns(col.name)
    return fit_table(
        table.name,
        frame,
        columns,
        config.synthesizer_for(table.name),
        table_seed(config.seed, table.name, "fit"),
        production,
    )


def _with_nulls(values: np.ndarray, rate: float, nullable: bool, rng: np.random.Generator) -> list:
    """``values`` with production's share of NULLs, as many as the share of these rows gives
    (its fraction of a row drawn) at random rows. A coin per row left 7 of Chinook's 59
    synthetic customers without a postal code against production's 4, and the gate refused
    their invoices, which carry it (a null share beyond the suite's tolerance)."""
    out = pd.Series(values, dtype=object, copy=True)  # the caller's array stays as it was
    if nullable and rate > 0 and len(out):
        nulls = int(np.floor(rate * len(out) + rng.random()))  # a share: at most len(out)
        out.iloc[rng.choice(len(out), nulls, replace=False)] = None
    return out.tolist()


def words_like(
    production: pd.Series, n: int, rng: np.random.Generator, pools: FakePools
) -> np.ndarray:
    """Generated text with production's lengths: free text is never copied."""
    lengths = production.dropna().astype(str).str.len().to_numpy()
    if len(lengths) == 0:
        lengths = np.array([20])
    target = lengths[rng.integers(0, len(lengths), n)]
    counts = np.maximum(1, np.round(target / 7).astype(int))
    picks = pools.words[rng.integers(0, len(pools.words), (n, int(counts.max(initial=1))))]
    text = [
        " ".join(row[:k]).capitalize()[: max(1, t)]
        for row, k, t in zip(picks, counts, target, strict=True)
    ]
    return np.array(text, dtype=object)


REDRAW_ROUNDS = 10


def _not_production(
    values: np.ndarray, production: pd.Series, redraw: Callable[[int], np.ndarray]
) -> np.ndarray:
    """Generated text (free text, codes) that is never one of the column's production values.

    A short title drawn from the word pool can come out equal to a real one ("Facelift"), and
    the privacy gate then refuses the whole refresh for a copied row. Such values are drawn
    again a few rounds; one that still matches ends in "~" instead of its last character (its
    length, which a varchar limits, stays). Values equal to no production value consume no
    extra draws, so a refresh without matches is unchanged.
    """
    real = pd.unique(production.astype(str).to_numpy())
    if len(values) == 0 or len(real) == 0:
        return values
    values = np.asarray(values, dtype=object).copy()
    for _ in range(REDRAW_ROUNDS):
        hit = pd.Series(values).isin(real).to_numpy()
        if not hit.any():
            return values
        values[hit] = redraw(int(hit.sum()))
    hit = pd.Series(values).isin(real).to_numpy()
    values[hit] = (pd.Series(values[hit]).astype(str).str[:-1] + "~").to_numpy(dtype=object)
    return values


def _dedupe(values: pd.Series, rng: np.random.Generator, step: float | None = None) -> pd.Series:
    """Make a modelled column unique: duplicates move just above the maximum, or, given the
    column's ``step`` (a day for a date, a cent, the step production's values are on; in
    seconds for times), each to the free value on that grid nearest it inside the span where
    there is one (a date dimension's days stay in its years). One second above the maximum
    made a date column's duplicates equal again once published as dates."""
    dup = values.duplicated() & values.notna()
    if not dup.any():
        return values
    timed = pd.api.types.is_datetime64_any_dtype(values)
    if not timed and not pd.api.types.is_numeric_dtype(values):
        return values.astype(str).where(
            ~dup, values.astype(str) + "-" + pd.Series(range(len(values))).astype(str)
        )
    tz = getattr(values.dt, "tz", None) if timed else None
    if timed:
        naive = values.dt.tz_convert("UTC").dt.tz_localize(None) if tz is not None else values
        x = (naive - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype="float64")
    else:
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    unit = step or 1.0
    grid = np.round(x / unit) if step else x / unit
    moved = np.flatnonzero(dup.to_numpy())
    taken = np.unique(grid[np.isfinite(grid)])
    free = np.zeros(0)
    if step and taken[-1] - taken[0] < MAX_DEDUPE_GRID:
        free = np.setdiff1d(np.arange(taken[0], taken[-1] + 1), taken)
    k = min(len(free), len(moved))
    near = moved if k == len(moved) else np.sort(rng.permutation(moved)[:k]) if k else moved[:0]
    near = near[np.argsort(grid[near], kind="stable")]
    if k:  # in order: the i-th smallest duplicate takes a free value at or above its own
        want = np.searchsorted(free, grid[near])
        slot = np.maximum.accumulate(want - np.arange(k)) + np.arange(k)
        grid[near] = free[np.minimum(slot, len(free) - k + np.arange(k))]
    rest = np.setdiff1d(moved, near)
    grid[rest] = np.floor(taken[-1]) + 1 + np.arange(len(rest))
    out = values.copy()
    if timed:
        stamps = pd.Series(pd.to_datetime(grid[moved] * unit, unit="s"), index=values.index[moved])
        out[dup] = stamps.dt.tz_localize("UTC").dt.tz_convert(tz) if tz is not None else stamps
    else:
        out[dup] = np.round(grid[moved] * unit, decimals_of(unit) if step else 12)
    return out


@dataclass
class ParentView:
    """What children need of a synthetic table, kept instead of the table.

    Children draw their FKs from the parent's key values, weight parents by the children
    counts the parent's model sampled, and pair rows with parents by the parent's side (label
    and score) per link (relations.py). That is a few compact arrays per parent, so a parent of
    any size can be generated in chunks and dropped. :func:`view_of` alone decides what is kept.
    """

    rows: int
    keys: pd.DataFrame  # the columns children's FKs reference
    counts: pd.DataFrame  # hidden children counts (relations.count_column)
    sides: dict[str, Side] = field(default_factory=dict)  # by _label_key(child, fk)
    values: pd.DataFrame = field(default_factory=pd.DataFrame)  # numbers children track

    def hidden(self, column: str) -> pd.Series | None:
        return self.counts.get(column)

    def side(self, child: str, fk: ForeignKey) -> Side | None:
        return self.sides.get(_label_key(child, fk))


def _label_key(child: str, fk: ForeignKey) -> str:
    return f"{child}\x00{fk.name}"


def referenced_columns(schema: Schema, table: str) -> list[str]:
    """Columns of ``table`` that an FK of another table of ``schema`` points at."""
    out: list[str] = []
    for _, fk in child_links(schema):
        if fk.ref_table == table:
            out += [c for c in fk.ref_columns if c not in out]
    return out


def view_of(
    schema: Schema, profiles: dict[str, TableProfile], table: str, frame: pd.DataFrame
) -> ParentView:
    """The one place that decides which columns of a synthetic table its children may use:
    the referenced keys, the hidden children counts, each link's parent label and the parent
    numbers a child's Track follows (relations.Track) and the columns a child carries
    (carries.Carry)."""
    keys = [c for c in referenced_columns(schema, table) if c in frame]
    sides = {}
    tracked: list[str] = []
    for child, fk in child_links(schema):
        profile = profiles.get(child.name)
        link = profile.links.get(fk.name) if profile is not None else None
        if fk.ref_table == table and link is not None:
            sides[_label_key(child.name, fk)] = link.parent_side(frame)
        # profiles pickled before tracks existed have none
        tracks = getattr(profile, "tracks", []) if fk.ref_table == table else []
        carries = getattr(profile, "carries", []) if fk.ref_table == table else []
        for rule in [*tracks, *carries]:
            if rule.fk == fk.name and rule.parent_column in frame:
                tracked += [rule.parent_column] if rule.parent_column not in tracked else []
    return ParentView(
        len(frame),
        frame[keys].reset_index(drop=True),
        frame[[c for c in frame.columns if is_latent(c)]].reset_index(drop=True),
        sides,
        frame[tracked].reset_index(drop=True),
    )


def concat_views(parts: list[ParentView]) -> ParentView:
    """The view of a table generated in chunks, from the views of its chunks."""
    if len(parts) == 1:
        return parts[0]
    return ParentView(
        sum(p.rows for p in parts),
        pd.concat([p.keys for p in parts], ignore_index=True),
        pd.concat([p.counts for p in parts], ignore_index=True),
        {k: concat_sides([p.sides[k] for p in parts]) for k in parts[0].sides},
        pd.concat([getattr(p, "values", pd.DataFrame()) for p in parts], ignore_index=True),
    )


@dataclass
class _Context:
    schema: Schema
    plan: GenerationPlan
    extract: Extract
    models: dict[str, TableModel]
    roles: dict[str, dict[str, R.ColumnRole]]
    config: Config
    pools: FakePools
    views: dict[str, ParentView] = field(default_factory=dict)  # tables generated so far
    held: dict[str, pd.DataFrame] = field(default_factory=dict)  # whole: a cut FK is set later
    stats: dict[str, TableStats] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    production_hashes: dict[str, np.ndarray] = field(default_factory=dict)
    # sums.SumRule kept, per parent; their running sums, per child table being generated
    sum_rules: dict[str, list[SumRule]] = field(default_factory=dict)
    summing: dict[str, list[tuple[str, ForeignKey, Accumulator]]] = field(default_factory=dict)
    row_rules: dict[str, list[RowRule]] = field(default_factory=dict)  # sums.RowRule enforced
    steps: dict[str, dict[str, float]] = field(default_factory=dict)  # resolution.step_of
    # exclusion.Rule kept per table, with production's latest end of its span
    exclusions: dict[str, list[tuple[Rule, float]]] = field(default_factory=dict)
    # documents.DocumentModel and ranges.RangeModel per (table, column), learned once
    documents: dict[tuple[str, str], DocumentModel | None] = field(default_factory=dict)
    ranges: dict[tuple[str, str], RangeModel | None] = field(default_factory=dict)

    def hidden(self, table: str, column: str) -> pd.Series | None:
        return self.views[table].hidden(column)


def _driver(table: Table, fks: list[ForeignKey]) -> ForeignKey | None:
    """The FK whose children-per-parent distribution decides how many rows the table gets."""
    candidates = [fk for fk in fks if not fk.nullable]
    candidates.sort(key=lambda fk: not set(fk.columns) <= set(table.primary_key))
    return candidates[0] if candidates else None


def _choose_parents(
    ctx: _Context,
    table: Table,
    fk: ForeignKey,
    frame: pd.DataFrame,
    rng: np.random.Generator,
    drawn: np.ndarray | None = None,
) -> np.ndarray:
    """Parent positions for n rows of a non-driving FK.

    Each parent gets one of production's children counts (in the order of the counts its model
    sampled), and a row goes to a parent of the label its own values predict (relations.Link).
    ``drawn``: production's counts drawn once for all of a table's chunks, so that every chunk
    favours the same parents.
    """
    n = len(frame)
    parent = ctx.views[fk.ref_table]
    fk_profile = ctx.extract.profiles[table.name].foreign_keys[fk.name]
    weights = parent.hidden(count_column(table.name, fk))
    link = ctx.extract.profiles[table.name].links.get(fk.name)
    side = parent.side(table.name, fk) if link is not None else None
    unique = table.is_unique(fk.columns)
    if unique or parent.rows == 0 or (weights is None and side is None):
        return assign_parents(rng, fk_profile, parent.rows, n, fk.nullable, unique, drawn)
    wants = ~(rng.random(n) < fk_profile.null_rate) if fk.nullable else np.ones(n, bool)
    w = drawn if drawn is not None else draw_counts(rng, fk_profile, parent.rows)
    if weights is not None:  # production's counts, in the order of the modelled ones
        w = counts_by_rank(rng, w, weights)
    return parents_by_label(
        rng,
        w,
        side,
        link.child_side(frame, rng) if side is not None else None,
        wants,
        stretch=not (link is not None and link.drawn),
    )


def _set_fk(frame: pd.DataFrame, fk: ForeignKey, parent: pd.DataFrame, idx: np.ndarray) -> None:
    values = gather(parent, fk.ref_columns, idx)
    for col, ref in zip(fk.columns, fk.ref_columns, strict=True):
        frame[col] = values[ref].array  # Int64 with NULLs: to_numpy() is float, inexact


def _dedupe_key_sets(
    ctx: _Context,
    table: Table,
    frame: pd.DataFrame,
    fks: list[ForeignKey],
    driver: ForeignKey | None,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Link tables: a (product, tag) pair occurs once; re-draw the non-driving side, then drop."""
    fk_cols = {c for fk in fks for c in fk.columns}
    for cols in table.unique_sets():
        if len(cols) < 2 or not set(cols) <= set(frame.columns) or not set(cols) & fk_cols:
            continue
        movable = [fk for fk in fks if fk is not driver and set(fk.columns) <= set(cols)]
        for _ in range(10):
            dup = frame.duplicated(list(cols)).to_numpy()
            if not dup.any() or not movable:
                break
            fk = movable[0]
            parent = ctx.views[fk.ref_table]
            idx = rng.integers(0, parent.rows, int(dup.sum()))
            values = gather(parent.keys, fk.ref_columns, idx)
            for col, ref in zip(fk.columns, fk.ref_columns, strict=True):
                frame.loc[dup, col] = values[ref].to_numpy()
        frame = frame[~frame.duplicated(list(cols))].reset_index(drop=True)
    return frame


def _fill_column(
    ctx: _Context,
    table: Table,
    col: Column,
    role: R.ColumnRole,
    n: int,
    rng: np.random.Generator,
    sampled: pd.DataFrame | None = None,
) -> list | pd.Series | None:
    """A column no model draws; ``sampled``: the chunk's model rows (a range's start and
    length are among them)."""
    production = (
        ctx.extract.frames[table.name][col.name]
        if col.name in ctx.extract.frames[table.name]
        else pd.Series(dtype=object)
    )
    null_rate = float(production.isna().mean()) if len(production) else 0.0
    present = production.dropna()
    if role.role == R.PII:
        values = replace_pii(
            role.pii_kind or "generic", n, rng, ctx.pools, production, role.unique, col.max_length
        )
        return _with_nulls(values, 0.0 if role.unique else null_rate, col.nullable, rng)
    if role.role == R.CODE:
        values = _new_text(ctx, present, n, rng, code=True, unique=role.unique)
        return _with_nulls(values, 0.0 if role.unique else null_rate, col.nullable, rng)
    if role.role == R.WORDS:
        values = _new_text(ctx, present, n, rng, code=False)
        if role.unique:
            values = _dedupe(pd.Series(values), rng).to_numpy(dtype=object)
        return _with_nulls(values, 0.0 if role.unique else null_rate, col.nullable, rng)
    if role.role == R.DOCUMENT and (found := _documents(ctx, table, col, present)) is not None:
        docs = found.sample(n, rng, _document_text(ctx, rng))
        write = format_array if col.kind == "array" else partial(json.dumps, ensure_ascii=False)
        values = np.array([write(d) for d in docs], dtype=object)
        return _with_nulls(values, null_rate, col.nullable, rng)
    if role.role == R.RANGE and (ranged := _ranges(ctx, table, col, production)) is not None:
        alone = not [c for c in _data_columns(ctx, table) if c != col.name]
        start, length = hidden_names(col.name)
        if sampled is not None and start in sampled and length in sampled:
            return list(ranged.build(sampled[start], sampled[length], rng, avoid=alone))
        return _with_nulls(ranged.sample(n, rng, avoid=alone), null_rate, col.nullable, rng)
    if role.role in (R.SAMPLE, R.DOCUMENT, R.RANGE):
        base = present.to_numpy(dtype=object)
        values = base[rng.integers(0, len(base), n)] if len(base) else np.full(n, None)
        return _with_nulls(values, null_rate, col.nullable, rng)
    if role.role == R.BYTES:
        lengths = present.to_numpy(dtype=np.int64) if len(present) else np.array([16])
        sizes = lengths[rng.integers(0, len(lengths), n)]
        values = np.array([rng.bytes(int(s)) for s in sizes], dtype=object)
        return _with_nulls(values, null_rate, col.nullable, rng)
    if role.role == R.UUID:
        return _with_nulls(
            new_key_values(col, production, n, rng).to_numpy(dtype=object),
            0.0 if role.unique else null_rate,
            col.nullable,
            rng,
        )
    if role.role == R.EMPTY:
        return [None] * n
    return None


def _data_columns(ctx: _Context, table: Table) -> list[str]:
    """The columns whose values can tell a synthetic row from a production one: neither keys,
    nor computed, nor always NULL."""
    roles = ctx.roles[table.name]
    skip = (R.KEY, R.GENERATED, R.EMPTY)
    return [c.name for c in table.columns if c.name in roles and roles[c.name].role not in skip]


def _documents(
    ctx: _Context, table: Table, col: Column, present: pd.Series
) -> DocumentModel | None:
    """The column's document model, learned once for all the table's chunks."""
    key = (table.name, col.name)
    if key not in ctx.documents:
        rare = ctx.config.privacy.rare_category_count
        if col.name in ctx.config.override(table.name).keep_rare:
            rare = 0
        seed = table_seed(ctx.config.seed, table.name, "documents:" + col.name)
        rng = np.random.default_rng(seed)
        if len(present) > MAX_DOCUMENTS:  # parsed one by one: a sample of them
            present = present.iloc[np.sort(rng.choice(len(present), MAX_DOCUMENTS, replace=False))]
        kind = element_kind(col.sql_type)
        docs = parse_all(present, kind) if kind else parse_json(present)
        ctx.documents[key] = None if docs is None else DocumentModel.fit(docs, col.name, rare)
    return ctx.documents[key]


def _ranges(ctx: _Context, table: Table, col: Column, production: pd.Series) -> RangeModel | None:
    """The column's range model, learned once for all the table's chunks."""
    key = (table.name, col.name)
    if key not in ctx.ranges:
        ctx.ranges[key] = RangeModel.fit(production, col.sql_type)
    return ctx.ranges[key]


def _new_text(
    ctx: _Context,
    production: pd.Series,
    n: int,
    rng: np.random.Generator,
    code: bool,
    unique: bool = False,
) -> np.ndarray:
    """Codes in production's format, or words of production's lengths; never production's own
    values (unique codes count up, as keys do, and cannot be)."""
    if code:
        samples = production.astype(str).tolist()
        values = code_values(samples, n, rng, unique=unique)
        if unique:
            return values
        return _not_production(values, production, lambda k: code_values(samples, k, rng, False))
    values = words_like(production, n, rng, ctx.pools)
    return _not_production(values, production, lambda k: words_like(production, k, rng, ctx.pools))


def _document_text(ctx: _Context, rng: np.random.Generator) -> TextMaker:
    """A document's strings that are not categories: fakes of a kind of personal data, or new
    codes or words."""

    def make(kind: str | None, production: pd.Series, n: int) -> np.ndarray:
        if kind is not None:
            return replace_pii(kind, n, rng, ctx.pools, production, False, None)
        return _new_text(ctx, production, n, rng, code=R.looks_like_code(production))

    return make


@dataclass
class _Shape:
    """A table's foreign keys by kind and its own keys, decided once for all its chunks."""

    in_scope: list[ForeignKey]
    self_fks: list[ForeignKey]
    later: list[ForeignKey]  # cut FKs: set once their parent exists (_fill_cut_edges)
    normal: list[ForeignKey]
    driver: ForeignKey | None
    fk_columns: set[str]
    own_pk: list[str]  # PK columns that are no FK: prodtwin makes their values


def _shape(ctx: _Context, table: Table) -> _Shape:
    in_scope = ctx.schema.foreign_keys_of(table)
    self_fks = [fk for fk in in_scope if fk.ref_table == table.name]
    later = [fk for fk in in_scope if ctx.plan.is_cut(table.name, fk)]
    normal = [fk for fk in in_scope if fk not in self_fks and fk not in later]
    fk_columns = {c for fk in in_scope for c in fk.columns}
    roles = ctx.roles[table.name]
    own_pk = [c for c in table.primary_key if c not in fk_columns and roles[c].role == R.KEY]
    return _Shape(in_scope, self_fks, later, normal, _driver(table, normal), fk_columns, own_pk)


@dataclass
class _Part:
    """One chunk of a table: its driver parents' positions (or its row count), where its own
    keys start, and the parent weights every chunk shares."""

    n: int
    driver_idx: np.ndarray | None
    key_offset: int = 0
    total: int = 0  # rows of the whole table, for the range of its integer keys
    drawn: dict[str, np.ndarray] = field(default_factory=dict)  # by FK name


def whole_reason(ctx: _Context, table: Table, shape: _Shape) -> str | None:
    """Why a table larger than ``chunk_rows`` is generated whole (None: it is chunked).

    Chunks are independent draws, so what must hold across the whole table has to follow from
    how the chunks are cut: own keys count on from the previous chunk (numbers only), and
    every unique column set either holds such a key or the driving FK (a driving parent's
    children are all in one chunk). A self-reference or a cut cycle needs the whole table.
    """
    if shape.self_fks:
        return "it references itself"
    if shape.later or any(c.foreign_key.ref_table == table.name for c in ctx.plan.cut):
        return "it is in a foreign-key cycle"
    driver = set(shape.driver.columns) if shape.driver is not None else None
    counted: set[str] = set()
    for name in shape.own_pk:
        group = {c for c in table.primary_key if c in shape.fk_columns}
        kind = table.column(name).kind
        if not group and kind in ("integer", "float", "numeric"):
            counted.add(name)
        elif not (group and kind == "integer" and driver is not None and driver <= group):
            return f"its key {name} is not a number prodtwin counts up"
    for cols in table.unique_sets():
        if not set(cols) & counted and not (driver is not None and driver <= set(cols)):
            return f"its unique columns ({', '.join(cols)}) could repeat across chunks"
    for rule, _ in ctx.exclusions.get(table.name, []):
        if not (driver is not None and driver <= set(rule.equal)):
            return f"its exclusion constraint {rule.constraint} could be broken across chunks"
    return None


def chunk_bounds(counts: np.ndarray | None, n: int, chunk_rows: int) -> list[tuple[int, int]]:
    """Ranges of driving parents (or of rows, without a driver) of about ``chunk_rows`` rows
    each; a parent's children are never split (a chunk can exceed the size by one parent's)."""
    if counts is None:
        return [(s, min(s + chunk_rows, n)) for s in range(0, n, chunk_rows)] or [(0, 0)]
    if len(counts) == 0:
        return [(0, 0)]
    first_row = np.cumsum(counts) - counts
    edges = np.flatnonzero(np.diff(first_row // chunk_rows)) + 1
    bounds = [0, *edges.tolist(), len(counts)]
    return list(itertools.pairwise(bounds))


def _table_chunks(ctx: _Context, table: Table) -> Iterator[pd.DataFrame]:
    """A table's rows, in chunks of about ``chunk_rows`` when it is larger and may be cut.

    A table that fits in one chunk is drawn exactly as a whole table always was; a chunked
    table draws each chunk from seeds of (seed, table, chunk index), so the output stays the
    same for the same seed and ``chunk_rows``.
    """
    seed = ctx.config.seed
    if ctx.config.is_reference(table.name):
        yield _reference_rows(ctx, table)
        return
    rng = np.random.default_rng(table_seed(seed, table.name, "keys"))
    profile = ctx.extract.profiles[table.name]
    shape = _shape(ctx, table)
    driver = shape.driver
    ctx.stats[table.name] = TableStats(
        rows_production=profile.rows, fit_seconds=ctx.models[table.name].fit_seconds
    )
    target = round(profile.rows * ctx.config.scale_for(table.name))
    counts = None
    if driver is not None:
        parent = ctx.views[driver.ref_table]
        counts = draw_counts(rng, profile.foreign_keys[driver.name], parent.rows)
        modelled = ctx.hidden(driver.ref_table, count_column(table.name, driver))
        if modelled is not None:
            counts = counts_by_rank(rng, counts, modelled)
        counts = fit_total(rng, counts, target, at_most_one=table.is_unique(driver.columns))
    n = int(counts.sum()) if counts is not None else target
    limit = ctx.config.chunk_rows
    reason = whole_reason(ctx, table, shape) if n > limit else None
    if n <= limit or reason is not None:
        if reason is not None:
            ctx.notes.append(f"table {table.name}: generated whole ({n} rows), because {reason}")
        idx = np.repeat(np.arange(len(counts)), counts) if counts is not None else None
        yield _make_chunk(ctx, table, shape, _Part(n, idx, 0, n), rng, "")
        return
    drawn = {
        fk.name: draw_counts(
            rng, profile.foreign_keys[fk.name], ctx.views[fk.ref_table].rows
        ).astype(float)
        for fk in shape.normal
        if fk is not driver
    }
    offset = 0
    for i, (lo, hi) in enumerate(chunk_bounds(counts, n, limit)):
        idx = np.repeat(np.arange(lo, hi), counts[lo:hi]) if counts is not None else None
        part = _Part(len(idx) if idx is not None else hi - lo, idx, offset, n, drawn)
        chunk_rng = np.random.default_rng(table_seed(seed, table.name, f"keys:{i}"))
        chunk = _make_chunk(ctx, table, shape, part, chunk_rng, f":{i}")
        offset += len(chunk)
        yield chunk


def _reference_rows(ctx: _Context, table: Table) -> pd.DataFrame:
    """A reference table (``tables.overrides.<table>.reference``): production's rows as they
    are, keys and FKs included (select_tables allows only reference parents, whose rows are
    production's too), except its personal-data columns, generated as in any table.

    Its hidden columns (children counts, link labels) are production's own rows' values, so
    children attach to each genre as production's attach to it: the view children draw from
    reads them like any parent's.
    """
    production = ctx.extract.frames[table.name]
    profile = ctx.extract.profiles[table.name]
    if len(production) < profile.rows:  # extract reads reference tables whole: a changed table
        raise SchemaError(
            f"table {table.name}: a reference table is published whole, but {len(production)} "
            f"of its {profile.rows} rows were read; run the refresh again"
        )
    ctx.stats[table.name] = TableStats(
        rows_production=profile.rows, fit_seconds=ctx.models[table.name].fit_seconds
    )
    rng = np.random.default_rng(table_seed(ctx.config.seed, table.name, "reference"))
    latent = profile.latent if profile.latent is not None else pd.DataFrame(index=production.index)
    frame = pd.concat([production, latent.loc[production.index]], axis=1).reset_index(drop=True)
    roles = ctx.roles[table.name]
    generated = [c.name for c in table.columns if roles[c.name].role == R.PII]
    for name in generated:
        col = table.column(name)
        frame[name] = _fill_column(ctx, table, col, roles[name], len(frame), rng)
    ctx.stats[table.name].rows_generated = len(frame)
    ctx.notes.append(
        f"table {table.name}: reference table, production's {len(frame)} rows published as they "
        "are" + (f" but for {', '.join(generated)} (personal data, generated)" if generated else "")
    )
    return frame


def _sample(
    ctx: _Context, table: Table, n: int, rng: np.random.Generator, tag: str
) -> pd.DataFrame:
    """n rows of the table's model (with the configured shares of a rebalanced column)."""
    seed = table_seed(ctx.config.seed, table.name, "sample" + tag)
    rebalance = ctx.config.override(table.name).rebalance
    model = ctx.models[table.name]
    if rebalance is None:
        return model.sample(n, seed).reset_index(drop=True)
    production = ctx.extract.frames[table.name][rebalance.column]
    values = rebalanced_values(rebalance, production, n, rng)
    return model.sample_given(rebalance.column, values, seed).reset_index(drop=True)


def _make_chunk(
    ctx: _Context, table: Table, shape: _Shape, part: _Part, rng: np.random.Generator, tag: str
) -> pd.DataFrame:
    """One chunk of a table (or the whole table): values, then keys, then the rest."""
    profile = ctx.extract.profiles[table.name]
    production = ctx.extract.frames[table.name]
    roles = ctx.roles[table.name]
    stats = ctx.stats[table.name]
    driver = shape.driver
    n = part.n

    start = time.perf_counter()
    frame = _sample(ctx, table, n, rng, tag)
    stats.sample_seconds += time.perf_counter() - start
    if driver is not None and part.driver_idx is not None:
        # rows of a cluster go to parents of that cluster: child values follow the parent's
        link = profile.links.get(driver.name)
        side = ctx.views[driver.ref_table].side(table.name, driver)
        if link is not None and side is not None and n:
            perm = match_rows(rng, side.take(part.driver_idx), link.child_side(frame, rng))
            frame = frame.iloc[perm].reset_index(drop=True)

    keep = np.ones(n, dtype=bool)
    chosen: dict[str, np.ndarray] = {}
    for fk in shape.normal:
        parent = ctx.views[fk.ref_table]
        if fk is driver and part.driver_idx is not None:
            idx = part.driver_idx
        else:
            idx = _choose_parents(ctx, table, fk, frame, rng, part.drawn.get(fk.name))
        if not fk.nullable:
            keep &= idx != NO_PARENT
        _set_fk(frame, fk, parent.keys, idx)
        chosen[fk.name] = idx
    for track in getattr(profile, "tracks", []):  # numbers that follow their parent's
        fk = next((f for f in shape.normal if f.name == track.fk), None)
        # a view kept by an earlier refresh (a daily partition's parents) may have no values
        values = getattr(ctx.views[fk.ref_table], "values", None) if fk is not None else None
        if fk is not None and values is not None and track.parent_column in values:
            frame[track.column] = track.apply(
                frame[track.column], values[track.parent_column], chosen[fk.name], rng
            )
    for fk in shape.self_fks + shape.later:
        for col in fk.columns:
            if col not in frame:
                frame[col] = None
    frame = frame[keep].reset_index(drop=True)
    frame = _dedupe_key_sets(ctx, table, frame, shape.normal, driver, rng)
    n = len(frame)

    for name in shape.own_pk:
        col = table.column(name)
        group = [c for c in table.primary_key if c in shape.fk_columns]
        if group and col.kind == "integer":
            base = production[name].min() if production[name].notna().any() else 1
            frame[name] = pd.array(
                frame.groupby(group, sort=False, dropna=False).cumcount().to_numpy() + int(base),
                dtype="Int64",
            )
        else:
            frame[name] = new_key_values(
                col, production[name], n, rng, part.key_offset, part.total
            ).to_numpy()

    for col in table.columns:
        role = roles[col.name]
        if role.role in (R.KEY, R.MODEL, R.GENERATED):
            continue
        frame[col.name] = _fill_column(ctx, table, col, role, n, rng, frame)
    for fk in shape.self_fks:
        depths = profile.tree_depths.get(fk.name)
        if depths is not None and depths.sum() > 0:
            idx = tree_parents(rng, depths, profile.foreign_keys[fk.name], n, fk.nullable)
        else:
            idx = self_parents(rng, n, profile.foreign_keys[fk.name].null_rate, fk.nullable)
        _set_fk(frame, fk, frame, idx)

    _carry(ctx, table, frame, shape)
    model = ctx.models[table.name]
    fixed = getattr(ctx.config.override(table.name).rebalance, "column", None)
    implied_seed = table_seed(ctx.config.seed, table.name, "implied" + tag)
    model.keep_implied(frame, implied_seed, fixed)  # a carried country, the state within it
    derived = ctx.row_rules.get(table.name, [])
    _snap(ctx, table, frame)  # before copy avoidance: rounding must not make a copy after it
    stats.resampled += _avoid_copies(ctx, table, frame, shape.fk_columns, tag)
    model.keep_implied(frame, implied_seed + 1, fixed)  # states redrawn with another country
    derive(table, frame, derived)  # from the terms as copy avoidance left them, before repairs
    # after the resampling, which would otherwise bring duplicates back
    for col in table.columns:
        if roles[col.name].role == R.MODEL and roles[col.name].unique:
            frame[col.name] = _dedupe(frame[col.name], rng, _unit(ctx, table, col))
    rules = [c.expression for c in table.checks]
    if profile.stats is not None:
        rules += [r.expression() for r in profile.stats.relations]
    for _ in range(2):  # a second pass settles chains such as c > b > a
        for rule in rules:
            stats.repaired += repair(
                frame, rule, rng, set(table.primary_key), shape.fk_columns, _steps(ctx, table)
            )
    moved = 0
    for rule, latest in ctx.exclusions.get(table.name, []):  # no two bookings of a room overlap
        moved += keep_apart(frame, table, rule, latest)
    stats.repaired += moved
    if moved:  # a span moved onto production's grid can make its row a copy after all
        _nudge_laid_out(ctx, table, frame, shape.fk_columns, tag)
    derive(table, frame, derived)  # terms redrawn or repaired since
    for parent, fk, acc in ctx.summing.get(table.name, []):  # the values published, final
        acc.add(table, fk, ctx.views[parent].keys, frame)
    stats.rows_generated += n
    return frame.drop(columns=[c for c in frame.columns if is_hidden(c)])


def _unit(ctx: _Context, table: Table, col: Column) -> float | None:
    """The grid a unique modelled column's values are on (seconds for times), for _dedupe."""
    if col.kind == "date":
        return 86_400.0
    if col.kind == "integer":
        return 1.0
    if col.kind == "numeric" and col.numeric_scale is not None:
        return 10.0**-col.numeric_scale
    return _steps(ctx, table).get(col.name)


def _snap(ctx: _Context, table: Table, frame: pd.DataFrame) -> None:
    """Modelled times and floats rounded to the step production writes them at (midnights,
    whole seconds, cents): resolution.py."""
    for name, step in _steps(ctx, table).items():
        if name in frame:
            frame[name] = snap(frame[name], step)


def _steps(ctx: _Context, table: Table) -> dict[str, float]:
    """The table's columns with a step (learned once per refresh, on production's rows read).
    Unique columns have none: dedupe spreads their values by less than a step."""
    if table.name not in ctx.steps:
        production = ctx.extract.frames[table.name]
        roles = ctx.roles[table.name]
        found = {}
        for col in table.columns:
            role = roles.get(col.name)
            if role is None or role.role != R.MODEL or role.unique or col.name not in production:
                continue
            step = step_of(col, production[col.name])
            if step is not None:
                found[col.name] = step
        ctx.steps[table.name] = found
    return ctx.steps[table.name]


def _carry(ctx: _Context, table: Table, frame: pd.DataFrame, shape: _Shape) -> None:
    """Columns that repeat their parent's (carries.Carry) set from the synthetic parent each
    row has now (after its keys are final, which dedupe may have changed)."""
    production = ctx.extract.frames[table.name]
    found: dict[str, np.ndarray] = {}  # per FK, once for all the columns it carries
    for rule in getattr(ctx.extract.profiles[table.name], "carries", []):  # none in old pickles
        fk = next((f for f in shape.normal if f.name == rule.fk), None)
        view = ctx.views.get(fk.ref_table) if fk is not None else None
        values = getattr(view, "values", None)
        if fk is None or values is None or rule.parent_column not in values:
            continue  # a cut FK is set later; a view of an earlier refresh may lack the column
        if rule.column not in frame or rule.column not in production:
            continue
        if fk.name not in found:
            found[fk.name] = positions(view.keys, fk, frame)
        frame[rule.column] = carry(
            rule,
            table.column(rule.column),
            ctx.roles[table.name][rule.column],
            frame[rule.column],
            values[rule.parent_column],
            found[fk.name],
            production[rule.column],
            np.random.default_rng(table_seed(ctx.config.seed, table.name, f"carry:{rule.column}")),
        )


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _avoid_copies(
    ctx: _Context, table: Table, frame: pd.DataFrame, keys: set[str], tag: str = ""
) -> int:
    """A synthetic row may not equal, on all its non-key columns, a production row whose
    combination of values is unique in production.

    Such rows get their modelled values drawn again (a few rounds). Tables whose non-key columns
    take only a handful of value combinations cannot avoid every match; the gate reports those.
    """
    profile = ctx.extract.profiles[table.name]
    derived = {r.column for r in ctx.row_rules.get(table.name, [])}
    columns = _compared(ctx, table, keys)
    model = ctx.models[table.name]
    rebalance = ctx.config.override(table.name).rebalance
    kept = {rebalance.column} if rebalance is not None else set()  # its shares are configured
    # a number that tracks its parent's was set from the parent: a fresh draw would undo that
    # (a nudge of a unit keeps it)
    tracked = {t.column for t in getattr(profile, "tracks", [])}
    tracked |= {c.column for c in getattr(profile, "carries", [])}  # set from the parent too
    nudged = [c.name for c in model.columns if c.name not in kept and c.name not in derived]
    modelled = [c for c in nudged if c not in tracked]
    if not columns or not nudged or frame.empty:
        return 0
    production = _unique_rows(ctx, table, columns)
    resampled = 0
    real = ctx.extract.frames[table.name]
    near = [c for c in modelled if c in real.columns]  # what "nearest" is measured on
    for attempt in range(RESAMPLE_ROUNDS if modelled else 0):
        match = np.isin(row_hashes(frame[columns]), production)
        rows = np.flatnonzero(match)
        m = len(rows)
        if m == 0:
            break
        # one draw of several candidates per matching row: a call of the model costs far more
        # than its rows (80 ms for a few rows); candidate k of row i is fresh row k * m + i
        per_row = max(2, min(RESAMPLE_CANDIDATES, RESAMPLE_ROWS // m))
        fresh = model.sample(
            m * per_row, table_seed(ctx.config.seed, table.name, f"resample:{attempt}{tag}")
        ).reset_index(drop=True)
        _snap(ctx, table, fresh)  # compared as they will be published
        current = frame.loc[frame.index[rows]].reset_index(drop=True)
        frees = np.zeros((m, per_row), dtype=bool)
        redrawn = current[columns].copy()  # its modelled columns are each candidate's in turn
        for k in range(per_row):
            for name in modelled:  # the dtype production is hashed in
                redrawn[name] = fresh[name].array[k * m : (k + 1) * m]
            # on the compared columns only: a hidden children count drawn with the row is no
            # column of production's, and with it every candidate looked new
            frees[:, k] = ~np.isin(row_hashes(redrawn[columns]), production)
        # of the candidates that free a row, the one nearest it: a copy happens where values
        # are unique (long tracks, to the thousandth), and the first candidate that freed it
        # was a row of the dense values (the long tracks thinned out), with values its parent
        # was not matched on (a Classical track became a short one)
        if near:
            here, there = encode([current, fresh], near, real)
            gap = ((there.reshape(per_row, m, -1) - here[None]) ** 2).sum(axis=2).T
        else:
            gap = np.zeros((m, per_row))
        gap[~frees] = np.inf
        better = np.isfinite(gap).any(axis=1)
        # only rows a new draw frees change: the others keep the values their parent was
        # matched on (a table of few value combinations would otherwise lose the parent/child
        # relationship and gain nothing)
        pick = gap.argmin(axis=1)[better] * m + np.flatnonzero(better)
        for name in modelled:
            frame.loc[frame.index[rows[better]], name] = fresh[name].array[pick]  # NaN stays
        resampled += int(better.sum())
        if better.all():
            break
    # numbers with many values may move a unit; a flag or a small count may not (that would
    # change its distribution, and a combination of few values identifies no one anyway)
    numbers = [
        c
        for c in model.columns
        if c.name in nudged and c.name in real and real[c.name].nunique() >= MIN_NUDGE_VALUES
    ]
    _nudge_copies(ctx, table, frame, columns, production, numbers, tag)
    return resampled


def _compared(ctx: _Context, table: Table, keys: set[str]) -> list[str]:
    """The columns a copy is judged on. A number derived from two others of its row
    (sums.RowRule) is equal where they are: it is neither compared nor drawn again (derive sets
    it afterwards)."""
    derived = {r.column for r in ctx.row_rules.get(table.name, [])}
    return [
        c.name
        for c in table.columns
        if c.generated is None
        and c.name not in keys
        and c.name not in table.primary_key
        and c.name not in derived
    ]


def _unique_rows(ctx: _Context, table: Table, columns: list[str]) -> np.ndarray:
    """Hashes of production's rows whose combination of values no other row has, once per
    table, not once per chunk: only those identify a row (the gate's copies); one that many
    production rows share is a common value, and redrawing it would lower the rates of such
    rows (NULLs, NaN, sentinels, the commonest category)."""
    if table.name not in ctx.production_hashes:
        hashes, counts = np.unique(
            row_hashes(ctx.extract.frames[table.name][columns]), return_counts=True
        )
        ctx.production_hashes[table.name] = hashes[counts == 1]
    return ctx.production_hashes[table.name]


def _nudge_laid_out(
    ctx: _Context, table: Table, frame: pd.DataFrame, keys: set[str], tag: str
) -> None:
    """Rows whose span exclusion.keep_apart moved onto one of production's (a generated range on
    production's grid, with a price production's row of that range has) move a number that no
    constraint lays out by a unit: drawn again, their spans would overlap once more."""
    columns = _compared(ctx, table, keys)
    if not columns:
        return
    laid_out = {
        name
        for rule, _ in ctx.exclusions.get(table.name, [])
        for name in (*rule.equal, rule.span.column, rule.span.start, rule.span.end)
        if name is not None
    }
    real = ctx.extract.frames[table.name]
    numbers = [
        c
        for c in ctx.models[table.name].columns
        if c.name in columns
        and c.name not in laid_out
        and c.name in real
        and real[c.name].nunique() >= MIN_NUDGE_VALUES
    ]
    _nudge_copies(
        ctx, table, frame, columns, _unique_rows(ctx, table, columns), numbers, tag + ":laid-out"
    )


def _nudge_copies(
    ctx: _Context,
    table: Table,
    frame: pd.DataFrame,
    columns: list[str],
    production: np.ndarray,
    modelled: list[Column],
    tag: str = "",
) -> None:
    """Rows that still equal a production row (dense numbers: prices to the cent) move one
    number by a unit or two of its precision, inside the column's synthetic range."""
    numbers = [c for c in modelled if c.kind in ("integer", "numeric", "float")]
    rng = np.random.default_rng(table_seed(ctx.config.seed, table.name, "nudge" + tag))
    for attempt in range(NUDGE_ROUNDS):
        match = np.isin(row_hashes(frame[columns]), production)
        if not match.any() or not numbers:
            return
        col = numbers[attempt % len(numbers)]
        values = pd.to_numeric(frame[col.name], errors="coerce").astype("float64")
        low, high = values.min(), values.max()
        grid = _steps(ctx, table).get(col.name)
        if col.kind == "integer":
            unit = 1.0
        elif col.numeric_scale is not None:
            unit = 10.0**-col.numeric_scale
        elif grid is not None:
            unit = grid
        else:
            unit = 1e-6 * float(high - low or 1.0)
        rows = match & values.notna().to_numpy()
        reach = 2 + attempt // len(numbers)  # further each time the same column comes round
        k = int(rows.sum())
        step = rng.choice([-1.0, 1.0], k) * unit * rng.integers(1, reach + 1, k)
        moved = np.clip(values[rows].to_numpy() + step, low, high)
        if col.kind == "integer":
            frame.loc[rows, col.name] = pd.array(np.round(moved).astype(np.int64), dtype="Int64")
        else:
            scale = col.numeric_scale if col.numeric_scale is not None else 12
            if grid is not None:
                scale = decimals_of(grid)
            frame.loc[rows, col.name] = np.round(moved, scale)


def _fill_cut_edges(ctx: _Context) -> None:
    """Second pass: a cut FK points at parents that exist now (its table was held whole)."""
    for cut in ctx.plan.cut:
        if ctx.config.is_reference(cut.table):
            continue  # production's FK values, which point at production's (copied) parents
        rng = np.random.default_rng(
            table_seed(ctx.config.seed, cut.table, "cut:" + cut.foreign_key.name)
        )
        frame = ctx.held[cut.table]
        parent = ctx.views[cut.foreign_key.ref_table]
        table = ctx.schema.tables[cut.table]
        idx = _choose_parents(ctx, table, cut.foreign_key, frame, rng)
        if not cut.foreign_key.nullable and (idx == NO_PARENT).any():
            raise SchemaError(
                f"table {cut.table}: foreign key {cut.foreign_key.name} is NOT NULL but its parent "
                f"{cut.foreign_key.ref_table} has no synthetic rows to point at"
            )
        _set_fk(frame, cut.foreign_key, parent.keys, idx)


def output_columns(table: Table) -> list[str]:
    """The columns a synthetic table is published with (GENERATED ones PostgreSQL computes)."""
    return [c.name for c in table.columns if c.generated is None]


class Generation:
    """Every table of ``plan.order``, parents first, as a stream of chunks.

    Only compact :class:`ParentView` arrays of the tables made so far stay in memory, plus the
    tables with a cut FK, which are held whole until their cycle's second pass. ``parents``
    holds synthetic tables made earlier (a daily partition's parents come from the last full
    refresh), as frames or views; ``children`` is the schema whose FKs decide what the views
    keep, when tables outside this generation draw from them later (daily partitions).
    """

    def __init__(
        self,
        schema: Schema,
        plan: GenerationPlan,
        extract: Extract,
        models: dict[str, TableModel],
        roles: dict[str, dict[str, R.ColumnRole]],
        config: Config,
        parents: dict[str, pd.DataFrame | ParentView] | None = None,
        children: Schema | None = None,
    ) -> None:
        self.ctx = _Context(schema, plan, extract, models, roles, config, FakePools(config.seed))
        self.children = children or schema
        self.ctx.sum_rules, notes = enforceable(extract.profiles, config, plan)
        self.ctx.notes += notes
        self.ctx.notes += lookup_hints(schema, extract.frames, roles, config)
        for name in plan.order:
            rules = getattr(extract.profiles[name], "row_rules", [])  # none in older pickles
            self.ctx.row_rules[name] = usable_row_rules(rules, roles[name])
            self.ctx.notes += [f"enforced: {r.describe(name)}" for r in self.ctx.row_rules[name]]
            table, production = schema.tables[name], extract.frames.get(name, pd.DataFrame())
            kept, skipped = rules_of(table)
            if kept and config.override(name).partition is not None:
                skipped += [
                    f"table {name}: exclusion constraint {r.constraint} holds within each day; "
                    "it is not published, since the table is refreshed a day at a time"
                    for r in kept
                ]
            self.ctx.exclusions[name] = [(r, latest_end(production, table, r.span)) for r in kept]
            self.ctx.notes += [f"enforced: {r.describe(name)}" for r in kept] + skipped
        for name, given in (parents or {}).items():
            self.ctx.views[name] = (
                given
                if isinstance(given, ParentView)
                else view_of(schema, extract.profiles, name, given)
            )

    @property
    def stats(self) -> dict[str, TableStats]:
        return self.ctx.stats

    @property
    def views(self) -> dict[str, ParentView]:
        return self.ctx.views

    @property
    def notes(self) -> list[str]:
        return self.ctx.notes + [f"cycle cut at {c.describe()}" for c in self.ctx.plan.cut]

    def chunks(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """(table, rows) pairs: each table's chunks in turn, rows in published columns."""
        ctx = self.ctx
        cut = {c.table for c in ctx.plan.cut}
        waiting = _Waiting(ctx.config.orchestration.storage_dir)
        try:
            for step, name in enumerate(ctx.plan.order):
                table = ctx.schema.tables[name]
                parts = []
                for chunk in _table_chunks(ctx, table):
                    parts.append(view_of(self.children, ctx.extract.profiles, name, chunk))
                    if name in cut:  # never chunked (whole_reason): one chunk, the whole table
                        ctx.held[name] = chunk
                    elif name in ctx.sum_rules:  # its sums are known once its children are
                        waiting.put(name, chunk)
                    else:
                        yield name, chunk[output_columns(table)]
                ctx.views[name] = concat_views(parts)
                for rule in ctx.sum_rules.get(name, []):
                    child = ctx.schema.tables[rule.child]
                    fk = next(f for f in child.foreign_keys if f.name == rule.fk)
                    acc = Accumulator.empty(rule, ctx.views[name].rows)
                    ctx.summing.setdefault(rule.child, []).append((name, fk, acc))
                for parent in waiting.parents():
                    children = [ctx.plan.order.index(r.child) for r in ctx.sum_rules[parent]]
                    if max(children) <= step:
                        yield from self._released(parent, waiting)
        finally:
            waiting.close()
        _fill_cut_edges(ctx)
        for name in ctx.plan.order:
            if name in ctx.held:
                yield name, ctx.held.pop(name)[output_columns(ctx.schema.tables[name])]

    def _released(self, parent: str, waiting: _Waiting) -> Iterator[tuple[str, pd.DataFrame]]:
        """A parent's waiting chunks, their sums set from the children generated since."""
        table = self.ctx.schema.tables[parent]
        accs = [
            acc for entries in self.ctx.summing.values() for p, _, acc in entries if p == parent
        ]
        for offset, chunk in waiting.take(parent):
            for acc in accs:
                acc.apply(table, chunk, offset)
            derive(table, chunk, self.ctx.row_rules[parent])  # grand total = new total + shipping
            yield parent, chunk[output_columns(table)]


class _Waiting:
    """Chunks of parents whose sums wait for their children, on disk (memory holds one)."""

    def __init__(self, storage_dir: str | Path) -> None:
        self.storage_dir = Path(storage_dir)
        self.folder: Path | None = None
        self.files: dict[str, list[tuple[int, Path]]] = {}
        self.rows: dict[str, int] = {}
        self.written = 0

    def put(self, table: str, chunk: pd.DataFrame) -> None:
        if self.folder is None:
            self.storage_dir.mkdir(parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix="sums-", dir=self.storage_dir))
        files = self.files.setdefault(table, [])
        path = self.folder / f"{self.written}.pkl"
        self.written += 1
        chunk.reset_index(drop=True).to_pickle(path)
        files.append((self.rows.get(table, 0), path))
        self.rows[table] = self.rows.get(table, 0) + len(chunk)

    def parents(self) -> list[str]:
        return list(self.files)

    def take(self, table: str) -> Iterator[tuple[int, pd.DataFrame]]:
        for offset, path in self.files.pop(table):
            chunk = pd.read_pickle(path)
            path.unlink()
            yield offset, chunk

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


class Samples:
    """A bounded, repeatable sample of each synthetic table, for the reports and previews.

    A table of at most ``cap`` rows is kept whole (as the reports always saw it); a larger
    one keeps each row with probability cap / its planned rows, drawn from (seed, table).
    """

    def __init__(self, config: Config, extract: Extract) -> None:
        self.cap = config.max_rows_per_table
        self.config = config
        self.extract = extract
        self.parts: dict[str, list[pd.DataFrame]] = {}
        self.kept: dict[str, int] = {}
        self.rngs: dict[str, np.random.Generator] = {}

    def add(self, name: str, chunk: pd.DataFrame) -> None:
        parts = self.parts.setdefault(name, [])
        planned = round(self.extract.profiles[name].rows * self.config.scale_for(name))
        if self.cap is not None and planned > self.cap:
            rng = self.rngs.setdefault(
                name, np.random.default_rng(table_seed(self.config.seed, name, "report sample"))
            )
            room = self.cap - self.kept.get(name, 0)
            chunk = chunk[rng.random(len(chunk)) < self.cap / planned].iloc[: max(room, 0)]
        parts.append(chunk.reset_index(drop=True))
        self.kept[name] = self.kept.get(name, 0) + len(chunk)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {
            n: p[0] if len(p) == 1 else pd.concat(p, ignore_index=True)
            for n, p in self.parts.items()
        }


@dataclass
class Synthetic:
    """A generated schema: on disk as COPY text (``spill``), in memory as bounded samples."""

    spill: Spill
    samples: dict[str, pd.DataFrame]
    stats: dict[str, TableStats]
    views: dict[str, ParentView] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, Path]:
        """What publish loads: each table's COPY text file."""
        return dict(self.spill.paths)

    def close(self) -> None:
        self.spill.close()


def generate(
    schema: Schema,
    plan: GenerationPlan,
    extract: Extract,
    models: dict[str, TableModel],
    roles: dict[str, dict[str, R.ColumnRole]],
    config: Config,
    parents: dict[str, pd.DataFrame | ParentView] | None = None,
    spill: Spill | None = None,
    children: Schema | None = None,
) -> Synthetic:
    """Generate every table into a spill (each chunk written once, then dropped)."""
    spill = spill or Spill.create(config.orchestration.storage_dir)
    generation = Generation(schema, plan, extract, models, roles, config, parents, children)
    samples = Samples(config, extract)
    for name in plan.order:
        spill.paths.setdefault(name, spill.path_of(name)).touch()
    for name, chunk in generation.chunks():
        start = time.perf_counter()
        spill.write(schema.tables[name], chunk)
        generation.stats[name].spill_seconds += time.perf_counter() - start
        samples.add(name, chunk)
    views = {n: generation.views[n] for n in plan.order}
    return Synthetic(spill, samples.frames(), generation.stats, views, generation.notes)
