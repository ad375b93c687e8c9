"""Synthetic tables, parents first: sample values, then assign keys, then fill the rest.

Each table gets its own random streams derived from (seed, table, purpose), so the same source
and seed give the same output, and adding a table does not change the rows of the others.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synth_assets import roles as R
from synth_assets.checks import repair
from synth_assets.config import Config
from synth_assets.errors import SchemaError
from synth_assets.extract import Extract
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
from synth_assets.order import GenerationPlan
from synth_assets.pii import FakePools, replace_pii
from synth_assets.rebalance import rebalanced_values
from synth_assets.relations import (
    count_column,
    counts_by_rank,
    is_latent,
    latent_columns,
    match_rows,
    parents_by_label,
)
from synth_assets.schema import Column, ForeignKey, Schema, Table
from synth_assets.synthesize import TableModel, fit_table

MIN_NUDGE_VALUES = 20
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
    repaired: int = 0
    resampled: int = 0  # rows drawn again because they equalled a production row


@dataclass
class Synthetic:
    frames: dict[str, pd.DataFrame]
    stats: dict[str, TableStats]
    notes: list[str] = field(default_factory=list)


def fit_model(
    table: Table,
    frame: pd.DataFrame,
    roles: dict[str, R.ColumnRole],
    config: Config,
    latent: pd.DataFrame | None = None,
) -> TableModel:
    """The table's synthesizer, fit on the columns whose role is MODEL and on its hidden
    relationship columns (children counts: synth_assets.relations)."""
    columns = [c for c in table.columns if roles[c.name].role == R.MODEL]
    rebalance = config.override(table.name).rebalance
    hidden = latent_columns(latent)
    if hidden:
        frame = pd.concat([frame, latent], axis=1)
        columns = columns + hidden
    return fit_table(
        table.name,
        frame,
        columns,
        config.synthesizer_for(table.name),
        table_seed(config.seed, table.name, "fit"),
        one_hot=(rebalance.column,) if rebalance is not None else (),
    )


def _with_nulls(values: np.ndarray, rate: float, nullable: bool, rng: np.random.Generator) -> list:
    out = pd.Series(values, dtype=object)
    if nullable and rate > 0:
        out[rng.random(len(out)) < rate] = None
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


def _dedupe(values: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Make a modelled column unique: duplicates move just above the maximum."""
    dup = values.duplicated() & values.notna()
    if not dup.any():
        return values
    if pd.api.types.is_numeric_dtype(values):
        step = 1
        start = values.max() + step
        values = values.copy()
        values[dup] = start + np.arange(int(dup.sum())) * step
        return values
    if pd.api.types.is_datetime64_any_dtype(values):
        values = values.copy()
        values[dup] = values.max() + pd.to_timedelta(np.arange(1, int(dup.sum()) + 1), unit="s")
        return values
    return values.astype(str).where(
        ~dup, values.astype(str) + "-" + pd.Series(range(len(values))).astype(str)
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
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    latent: dict[str, pd.DataFrame] = field(default_factory=dict)  # sampled hidden columns

    def hidden(self, table: str, column: str) -> pd.Series | None:
        frame = self.latent.get(table)
        return frame[column] if frame is not None and column in frame else None


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
) -> np.ndarray:
    """Parent positions for n rows of a non-driving FK.

    Each parent gets one of production's children counts (in the order of the counts its model
    sampled), and a row goes to a parent of the label its own values predict (relations.Link).
    """
    n = len(frame)
    parent = ctx.frames[fk.ref_table]
    fk_profile = ctx.extract.profiles[table.name].foreign_keys[fk.name]
    weights = ctx.hidden(fk.ref_table, count_column(table.name, fk))
    link = ctx.extract.profiles[table.name].links.get(fk.name)
    unique = table.is_unique(fk.columns)
    if unique or len(parent) == 0 or (weights is None and link is None):
        return assign_parents(rng, fk_profile, len(parent), n, fk.nullable, unique)
    wants = ~(rng.random(n) < fk_profile.null_rate) if fk.nullable else np.ones(n, bool)
    w = draw_counts(rng, fk_profile, len(parent))
    if weights is not None:  # production's counts, in the order of the modelled ones
        w = counts_by_rank(rng, w, weights)
    return parents_by_label(
        rng,
        w,
        link.parent_side(parent) if link is not None else None,
        link.child_side(frame, rng) if link is not None else None,
        wants,
    )


def _set_fk(frame: pd.DataFrame, fk: ForeignKey, parent: pd.DataFrame, idx: np.ndarray) -> None:
    values = gather(parent, fk.ref_columns, idx)
    for col, ref in zip(fk.columns, fk.ref_columns, strict=True):
        frame[col] = values[ref].to_numpy()


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
            parent = ctx.frames[fk.ref_table]
            idx = rng.integers(0, len(parent), int(dup.sum()))
            values = gather(parent, fk.ref_columns, idx)
            for col, ref in zip(fk.columns, fk.ref_columns, strict=True):
                frame.loc[dup, col] = values[ref].to_numpy()
        frame = frame[~frame.duplicated(list(cols))].reset_index(drop=True)
    return frame


def _fill_column(
    ctx: _Context, table: Table, col: Column, role: R.ColumnRole, n: int, rng: np.random.Generator
) -> list | pd.Series | None:
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
        values = code_values(present.astype(str).tolist(), n, rng, unique=role.unique)
        return _with_nulls(values, 0.0 if role.unique else null_rate, col.nullable, rng)
    if role.role == R.WORDS:
        values = words_like(present, n, rng, ctx.pools)
        if role.unique:
            values = _dedupe(pd.Series(values), rng).to_numpy(dtype=object)
        return _with_nulls(values, 0.0 if role.unique else null_rate, col.nullable, rng)
    if role.role == R.SAMPLE:
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


def _generate_table(ctx: _Context, table: Table) -> tuple[pd.DataFrame, TableStats]:
    seed = ctx.config.seed
    rng = np.random.default_rng(table_seed(seed, table.name, "keys"))
    profile = ctx.extract.profiles[table.name]
    production = ctx.extract.frames[table.name]
    roles = ctx.roles[table.name]
    stats = TableStats(rows_production=profile.rows, fit_seconds=ctx.models[table.name].fit_seconds)

    in_scope = [fk for fk in table.foreign_keys if fk.ref_table in ctx.schema.tables]
    self_fks = [fk for fk in in_scope if fk.ref_table == table.name]
    later = [fk for fk in in_scope if ctx.plan.is_cut(table.name, fk)]
    normal = [fk for fk in in_scope if fk not in self_fks and fk not in later]
    driver = _driver(table, normal)

    target = round(profile.rows * ctx.config.scale_for(table.name))
    driver_idx = None
    if driver is not None:
        parent = ctx.frames[driver.ref_table]
        counts = draw_counts(rng, profile.foreign_keys[driver.name], len(parent))
        modelled = ctx.hidden(driver.ref_table, count_column(table.name, driver))
        if modelled is not None:
            counts = counts_by_rank(rng, counts, modelled)
        counts = fit_total(rng, counts, target, at_most_one=table.is_unique(driver.columns))
        driver_idx = np.repeat(np.arange(len(parent)), counts)
        n = len(driver_idx)
    else:
        n = target

    start = time.perf_counter()
    rebalance = ctx.config.override(table.name).rebalance
    if rebalance is not None:
        values = rebalanced_values(rebalance, production[rebalance.column], n, rng)
        frame = ctx.models[table.name].sample_given(
            rebalance.column, values, table_seed(seed, table.name, "sample")
        )
    else:
        frame = ctx.models[table.name].sample(n, table_seed(seed, table.name, "sample"))
    stats.sample_seconds = time.perf_counter() - start
    frame = frame.reset_index(drop=True)
    if driver is not None and driver_idx is not None:
        # rows of a cluster go to parents of that cluster: child values follow the parent's
        link = profile.links.get(driver.name)
        if link is not None and n:
            slots = link.parent_side(ctx.frames[driver.ref_table]).take(driver_idx)
            perm = match_rows(rng, slots, link.child_side(frame, rng))
            frame = frame.iloc[perm].reset_index(drop=True)

    keep = np.ones(n, dtype=bool)
    for fk in normal:
        parent = ctx.frames[fk.ref_table]
        if fk is driver and driver_idx is not None:
            idx = driver_idx
        else:
            idx = _choose_parents(ctx, table, fk, frame, rng)
        if not fk.nullable:
            keep &= idx != NO_PARENT
        _set_fk(frame, fk, parent, idx)
    for fk in self_fks + later:
        for col in fk.columns:
            if col not in frame:
                frame[col] = None
    frame = frame[keep].reset_index(drop=True)
    frame = _dedupe_key_sets(ctx, table, frame, normal, driver, rng)
    n = len(frame)

    fk_columns = {c for fk in in_scope for c in fk.columns}
    own_pk = [c for c in table.primary_key if c not in fk_columns and roles[c].role == R.KEY]
    for name in own_pk:
        col = table.column(name)
        group = [c for c in table.primary_key if c in fk_columns]
        if group and col.kind == "integer":
            base = production[name].min() if production[name].notna().any() else 1
            frame[name] = pd.array(
                frame.groupby(group, sort=False, dropna=False).cumcount().to_numpy() + int(base),
                dtype="Int64",
            )
        else:
            frame[name] = new_key_values(col, production[name], n, rng).to_numpy()

    for col in table.columns:
        role = roles[col.name]
        if role.role in (R.KEY, R.MODEL, R.GENERATED):
            continue
        frame[col.name] = _fill_column(ctx, table, col, role, n, rng)
    for fk in self_fks:
        depths = profile.tree_depths.get(fk.name)
        if depths is not None and depths.sum() > 0:
            idx = tree_parents(rng, depths, profile.foreign_keys[fk.name], n, fk.nullable)
        else:
            idx = self_parents(rng, n, profile.foreign_keys[fk.name].null_rate, fk.nullable)
        _set_fk(frame, fk, frame, idx)

    stats.resampled = _avoid_copies(ctx, table, frame, fk_columns)
    # after the resampling, which would otherwise bring duplicates back
    for col in table.columns:
        if roles[col.name].role == R.MODEL and roles[col.name].unique:
            frame[col.name] = _dedupe(frame[col.name], rng)
    rules = [c.expression for c in table.checks]
    if profile.stats is not None:
        rules += [r.expression() for r in profile.stats.relations]
    for _ in range(2):  # a second pass settles chains such as c > b > a
        for rule in rules:
            stats.repaired += repair(frame, rule, rng, set(table.primary_key), fk_columns)

    columns = [c.name for c in table.columns if c.generated is None]
    stats.rows_generated = n
    ctx.latent[table.name] = frame[[c for c in frame.columns if is_latent(c)]]
    return frame[columns], stats


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _avoid_copies(ctx: _Context, table: Table, frame: pd.DataFrame, keys: set[str]) -> int:
    """A synthetic row may not equal a production row on all its non-key columns.

    Such rows get their modelled values drawn again (a few rounds). Tables whose non-key columns
    take only a handful of value combinations cannot avoid every match; the gate reports those.
    """
    columns = [
        c.name
        for c in table.columns
        if c.generated is None and c.name not in keys and c.name not in table.primary_key
    ]
    model = ctx.models[table.name]
    rebalance = ctx.config.override(table.name).rebalance
    kept = {rebalance.column} if rebalance is not None else set()  # its shares are configured
    modelled = [c.name for c in model.columns if c.name not in kept]
    if not columns or not modelled or frame.empty:
        return 0
    production = row_hashes(ctx.extract.frames[table.name][columns])
    resampled = 0
    for attempt in range(5):
        match = np.isin(row_hashes(frame[columns]), production)
        m = int(match.sum())
        if m == 0:
            break
        fresh = model.sample(m, table_seed(ctx.config.seed, table.name, f"resample:{attempt}"))
        redrawn = frame.loc[match, columns].reset_index(drop=True)
        for name in modelled:
            redrawn[name] = fresh[name].to_numpy()
        # only rows the new draw frees from the match change: the others keep the values their
        # parent was matched on (a table of few value combinations would otherwise lose the
        # parent/child relationship and gain nothing)
        better = ~np.isin(row_hashes(redrawn), production)
        rows = np.flatnonzero(match)[better]
        for name in modelled:
            frame.loc[frame.index[rows], name] = fresh[name].to_numpy()[better]
        resampled += int(better.sum())
    # numbers with many values may move a unit; a flag or a small count may not (that would
    # change its distribution, and a combination of few values identifies no one anyway)
    real = ctx.extract.frames[table.name]
    numbers = [
        c
        for c in model.columns
        if c.name in modelled and c.name in real and real[c.name].nunique() >= MIN_NUDGE_VALUES
    ]
    _nudge_copies(ctx, table, frame, columns, production, numbers)
    return resampled


def _nudge_copies(
    ctx: _Context,
    table: Table,
    frame: pd.DataFrame,
    columns: list[str],
    production: np.ndarray,
    modelled: list[Column],
) -> None:
    """Rows that still equal a production row (dense numbers: prices to the cent) move one
    number by a unit or two of its precision, inside the column's synthetic range."""
    numbers = [c for c in modelled if c.kind in ("integer", "numeric", "float")]
    rng = np.random.default_rng(table_seed(ctx.config.seed, table.name, "nudge"))
    for attempt in range(NUDGE_ROUNDS):
        match = np.isin(row_hashes(frame[columns]), production)
        if not match.any() or not numbers:
            return
        col = numbers[attempt % len(numbers)]
        values = pd.to_numeric(frame[col.name], errors="coerce").astype("float64")
        low, high = values.min(), values.max()
        if col.kind == "integer":
            unit = 1.0
        elif col.numeric_scale is not None:
            unit = 10.0**-col.numeric_scale
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
            frame.loc[rows, col.name] = np.round(moved, scale)


def _fill_cut_edges(ctx: _Context) -> None:
    """Second pass: a cut FK points at parents that exist now."""
    for cut in ctx.plan.cut:
        rng = np.random.default_rng(
            table_seed(ctx.config.seed, cut.table, "cut:" + cut.foreign_key.name)
        )
        frame = ctx.frames[cut.table]
        parent = ctx.frames[cut.foreign_key.ref_table]
        table = ctx.schema.tables[cut.table]
        idx = _choose_parents(ctx, table, cut.foreign_key, frame, rng)
        if not cut.foreign_key.nullable and (idx == NO_PARENT).any():
            raise SchemaError(
                f"table {cut.table}: foreign key {cut.foreign_key.name} is NOT NULL but its parent "
                f"{cut.foreign_key.ref_table} has no synthetic rows to point at"
            )
        _set_fk(frame, cut.foreign_key, parent, idx)


def generate(
    schema: Schema,
    plan: GenerationPlan,
    extract: Extract,
    models: dict[str, TableModel],
    roles: dict[str, dict[str, R.ColumnRole]],
    config: Config,
    parents: dict[str, pd.DataFrame] | None = None,
) -> Synthetic:
    """Every table of ``plan.order``; ``parents`` holds synthetic tables made earlier (a daily
    partition's parents come from the last full refresh)."""
    ctx = _Context(schema, plan, extract, models, roles, config, FakePools(config.seed))
    ctx.frames.update(parents or {})
    stats = {}
    for name in plan.order:
        ctx.frames[name], stats[name] = _generate_table(ctx, schema.tables[name])
    _fill_cut_edges(ctx)
    notes = [f"cycle cut at {c.describe()}" for c in plan.cut]
    return Synthetic({n: ctx.frames[n] for n in plan.order}, stats, notes)
