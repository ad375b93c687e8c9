"""A parent number that is the sum of its children's (an order's total is the sum of its lines).

Per-table synthesizers cannot keep such a rule: the total is drawn with the order's columns, the
lines later and on their own. So the rule is detected on production and enforced by deriving
the parent's value from its synthetic children once they exist:

- detection: for every (child, FK), the sums of each child number and of each product of two
  (``qty * unit_price``) per parent are compared with each number of the parent, on a sample
  of parents (one grouped query per FK over their children); a rule holds when the parent's
  value equals one of them, to the parent's rounding, on at least ``MIN_SHARE`` of the
  parents that have children (and on ``MIN_PARENTS`` of them at least). Each of those terms
  may also be taken times ``1 - f`` or ``1 + f`` of up to ``MAX_FRACTIONS`` child numbers
  that lie in [0, 1) (a discount, a tax rate: TPC-H's ``o_totalprice`` is the sum of
  ``l_extendedprice * (1 - l_discount) * (1 + l_tax)``); such a total is compared to within
  ``ADJUSTED_TOLERANCE`` of its value, since a generator that rounds each step leaves cents.
  Parents without children keep what production shows for them (0, NULL, or the model's value).
- enforcement (synth_assets.generate): the parent's chunks wait on disk until the child table is
  generated; the children's terms are summed per parent position as they are made, then the
  parent's column is set from those sums, so memory holds an array per rule, not the tables.
- validation (synth_assets.expectations): the rule becomes an expectation (its query is built
  there, with the other row checks), so the gate checks what generation guarantees.

A rule generation cannot enforce (its child is refreshed a day at a time, or its tables sit on
a cut FK cycle) is reported, not enforced.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, product
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from synth_assets.config import Config
from synth_assets.order import GenerationPlan
from synth_assets.schema import Column, ForeignKey, Schema, Table

NUMBER_KINDS = ("integer", "float", "numeric")
MAX_TERMS = 6  # child numbers tried, so at most 6 + 15 sums per FK
MAX_TOTALS = 8  # parent numbers tried per FK
MIN_PARENTS = 10
MIN_SHARE = 0.99
SAMPLE_PARENTS = 5_000
MAX_FRACTIONS = 2  # child numbers in [0, 1) tried as 1 - f and 1 + f factors
ADJUSTED_TOLERANCE = 1e-5  # relative: TPC-H SF 0.1 totals match on 99.95% (1e-6: 97.6%)
ZERO, NULL, MODEL = "zero", "null", "model"


def factor(term: str) -> tuple[int, str]:
    """A term's sign and column: ``"1-l_discount"`` is (-1, l_discount), ``"1+l_tax"``
    (+1, l_tax), a plain column (0, itself)."""
    if term.startswith("1-"):
        return -1, term[2:]
    if term.startswith("1+"):
        return 1, term[2:]
    return 0, term


def factor_text(term: str, prefix: str = "") -> str:
    sign, name = factor(term)
    return prefix + name if sign == 0 else f"(1 {'-' if sign < 0 else '+'} {prefix}{name})"


def adjusted(terms: tuple[str, ...]) -> bool:
    return any(factor(t)[0] != 0 for t in terms)


@dataclass(frozen=True)
class SumRule:
    """``parent.column`` = sum over the rows of ``child`` pointing at it through ``fk`` of the
    product of ``terms``; a parent without such rows holds ``empty`` (zero, null, or the model's
    value)."""

    column: str
    child: str
    fk: str
    terms: tuple[str, ...]
    empty: str = MODEL
    parents: int = 0  # production parents with children it was checked on

    def describe(self, parent: str) -> str:
        product = " * ".join(factor_text(t, f"{self.child}.") for t in self.terms)
        return f"{parent}.{self.column} = sum({product}) per {parent} row (through {self.fk})"


def _numbers(table: Table, excluded: set[str], limit: int) -> list[Column]:
    return [
        c
        for c in table.columns
        if c.kind in NUMBER_KINDS and c.name not in excluded and c.generated is None
    ][:limit]


def _keys(table: Table) -> set[str]:
    return set(table.primary_key) | {c for fk in table.foreign_keys for c in fk.columns}


def candidate_terms(child: Table, frame: pd.DataFrame | None = None) -> list[tuple[str, ...]]:
    """Each child number alone and each product of two; with ``frame`` (production's child
    rows), each of those also times 1 - f or 1 + f of the numbers that lie in [0, 1) there."""
    names = [c.name for c in _numbers(child, _keys(child), MAX_TERMS)]
    bases: list[tuple[str, ...]] = [(n,) for n in names] + list(combinations(names, 2))
    if frame is None:
        return bases
    fractions = [n for n in names if n in frame and _fraction(frame[n])][:MAX_FRACTIONS]
    out = list(bases)
    for base in bases:
        others = [f for f in fractions if f not in base]
        for choice in product(*[(None, "1-" + f, "1+" + f) for f in others]):
            extra = tuple(c for c in choice if c is not None)
            if extra:
                out.append(base + extra)
    return out


def _fraction(values: pd.Series) -> bool:
    """A rate: not all whole numbers, every value in [0, 1)."""
    x = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    return bool(len(x)) and x.min() >= 0 and x.max() < 1 and bool((x != np.round(x)).any())


def find_sums(
    conn: Connection, schema: Schema, frames: dict[str, pd.DataFrame], seed: int
) -> dict[str, list[SumRule]]:
    """The sum rules of every single-column FK, per parent table (inside the caller's
    snapshot). Per FK one grouped query over the children of at most ``SAMPLE_PARENTS`` parents
    of the parent's production rows: a rule that holds on 99% of all parents shows on a few
    thousand, and the query reads those parents' children (by index where there is one), not
    the child table, whatever its size."""
    from synth_assets.relations import child_links

    rng = np.random.default_rng(seed)
    out: dict[str, list[SumRule]] = {}
    for child, fk in child_links(schema):
        parent = schema.tables[fk.ref_table]
        terms = candidate_terms(child, frames.get(child.name))
        totals = _numbers(parent, _keys(parent), MAX_TOTALS)
        if len(fk.columns) != 1 or not terms or not totals:
            continue
        frame = frames[parent.name]
        ref = fk.ref_columns[0]
        frame = frame[frame[ref].notna()]
        if len(frame) > SAMPLE_PARENTS:
            frame = frame.iloc[np.sort(rng.choice(len(frame), SAMPLE_PARENTS, replace=False))]
        if len(frame) < MIN_PARENTS:
            continue
        rows = _per_parent(conn, schema.name, child, fk, terms, frame[ref].tolist())
        keys = pd.DataFrame(
            [r[1:] for r in rows], columns=["__count", *range(len(terms))], dtype=float
        )
        keys["__key"] = [str(r[0]) for r in rows]
        found = frame[[ref]].astype(str).merge(keys, how="left", left_on=ref, right_on="__key")
        counts = found["__count"].fillna(0).to_numpy()
        sums = {t: found[i].to_numpy(dtype=float) for i, t in enumerate(terms)}
        rules = detect(parent, child, fk, frame.reset_index(drop=True), counts, sums)
        out.setdefault(parent.name, []).extend(rules)
    return {p: r for p, r in out.items() if r}


def _per_parent(
    conn: Connection,
    schema: str,
    child: Table,
    fk: ForeignKey,
    terms: list[tuple[str, ...]],
    keys: list[Any],
) -> list[tuple]:
    """Per given parent key: its children's count, then each term's sum (portable SQL)."""
    col = child.column(fk.columns[0])
    t = sa.table(child.name, *[sa.column(c.name) for c in child.columns], schema=schema)
    own = t.c[col.name]
    if col.kind not in ("integer", "text"):  # a uuid, a date...: compared as text
        own, keys = sa.cast(own, sa.String), [str(k) for k in keys]
    sums = []
    for term in terms:
        factors = [_factor_column(t, name) for name in term]
        value: Any = factors[0]
        for f in factors[1:]:
            value = value * f
        sums.append(sa.func.sum(value))
    query = (
        sa.select(own, sa.func.count(), *sums)
        .where(own.in_([k.item() if isinstance(k, np.generic) else k for k in keys]))
        .group_by(own)
    )
    return [tuple(r) for r in conn.execute(query).all()]


def _factor_column(t: Any, term: str) -> Any:
    sign, name = factor(term)
    if sign == 0:
        return t.c[name]
    return sa.literal(1) - t.c[name] if sign < 0 else sa.literal(1) + t.c[name]


def tolerance(col: Column, values: np.ndarray) -> np.ndarray:
    """Half a unit of the parent's last digit (its rounding), else a relative float epsilon."""
    if col.kind == "integer":
        return np.full(len(values), 0.5)
    if col.kind == "numeric" and col.numeric_scale is not None:
        return np.full(len(values), 0.5 * 10.0**-col.numeric_scale + 1e-9)
    return 1e-9 * np.maximum(np.abs(values), 1.0)


def detect(
    parent: Table,
    child: Table,
    fk: ForeignKey,
    frame: pd.DataFrame,
    counts: np.ndarray,
    sums: dict[tuple[str, ...], np.ndarray],
) -> list[SumRule]:
    """The rules of one FK: ``frame`` is the parent's production rows, ``counts`` and ``sums``
    its children's count and each candidate sum per row of it (NaN where it has none)."""
    found: list[SumRule] = []
    has = counts > 0
    for col in _numbers(parent, _keys(parent), MAX_TOTALS):
        values = pd.to_numeric(frame[col.name], errors="coerce").to_numpy(dtype=float)
        scored = has & np.isfinite(values)
        if scored.sum() < MIN_PARENTS or np.unique(values[scored]).size < 2:
            continue
        best: tuple[float, tuple[str, ...]] | None = None
        for term, total in sums.items():
            allowed = tolerance(col, values[scored])
            if adjusted(term):
                allowed = np.maximum(allowed, ADJUSTED_TOLERANCE * np.abs(values[scored]))
            close = np.abs(values[scored] - total[scored]) <= allowed
            share = float(close.mean())
            # a tie (every quantity is 1) reads as the product, the usual shape of such totals
            if share >= MIN_SHARE and (
                best is None or (share, len(term)) > (best[0], len(best[1]))
            ):
                best = (share, term)
        if best is not None:
            empty = _empty(frame, col, has)
            found.append(SumRule(col.name, child.name, fk.name, best[1], empty, int(scored.sum())))
    return found


def _empty(frame: pd.DataFrame, col: Column, has: np.ndarray) -> str:
    """What a parent without children holds in production: always 0, always NULL, or else."""
    values = frame[col.name][~has]
    if values.empty:
        return ZERO
    if values.isna().all():
        return NULL
    numbers = pd.to_numeric(values, errors="coerce")
    return ZERO if bool((numbers == 0).all()) else MODEL


def enforceable(
    profiles: dict[str, Any], config: Config, plan: GenerationPlan
) -> tuple[dict[str, list[SumRule]], list[str]]:
    """The rules of ``profiles`` (extract.TableProfile) generation keeps, per parent, and why
    each other one is not kept.

    Kept: parent and child are both generated here, parent first, neither on a cut FK cycle
    (those are held whole and set later); the child is not refreshed a day at a time (a day's
    new lines would leave the kept totals wrong); its terms are not sums themselves; one rule
    per column.
    """
    order = plan.order
    cut = {c.table for c in plan.cut}
    # profiles pickled before sums existed have none
    rules = {n: list(getattr(p, "sums", [])) for n, p in profiles.items() if n in order}
    derived = {(p, r.column) for p, found in rules.items() for r in found}
    kept: dict[str, list[SumRule]] = {}
    notes: list[str] = []
    for parent, found in rules.items():
        # where two children sum to one column, the one more parents have wins
        for rule in sorted(found, key=lambda r: -r.parents):
            why = None
            if parent not in order or rule.child not in order:
                why = "its tables are not generated together"
            elif order.index(rule.child) < order.index(parent) or {parent, rule.child} & cut:
                why = "its tables are on an FK cycle"
            elif config.is_reference(parent):
                why = f"{parent} is a reference table (its rows are production's)"
            elif config.override(rule.child).partition is not None:
                why = f"{rule.child} is refreshed a day at a time"
            elif any((rule.child, factor(t)[1]) in derived for t in rule.terms):
                why = "its terms are sums themselves"
            elif any(r.column == rule.column for r in kept.get(parent, [])):
                why = f"{parent}.{rule.column} already follows another sum"
            if why is None:
                kept.setdefault(parent, []).append(rule)
            else:
                notes.append(f"not enforced: {rule.describe(parent)}: {why}")
    for parent, found in kept.items():
        notes += [f"enforced: {r.describe(parent)}" for r in found]
    return kept, notes


def rounded(values: np.ndarray, col: Column) -> np.ndarray:
    """A number as it will be published (COPY text rounds a numeric to its scale)."""
    if col.kind == "integer":
        return np.rint(values)
    if col.kind == "numeric" and col.numeric_scale is not None:
        return np.round(values, col.numeric_scale)
    return values


def _assign(frame: pd.DataFrame, col: Column, values: np.ndarray) -> None:
    """A derived number into its frame column, as an exact nullable integer where it is one."""
    if col.kind == "integer":
        frame[col.name] = pd.array(np.where(np.isnan(values), None, values), dtype="Int64")
    else:
        frame[col.name] = values


def term_values(table: Table, frame: pd.DataFrame, terms: tuple[str, ...]) -> np.ndarray:
    """The product of ``terms`` per row, each as published (``1-x`` and ``1+x`` factors of
    x as published); NaN where one is NULL."""
    out = np.ones(len(frame))
    for term in terms:
        sign, name = factor(term)
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        values = rounded(values, table.column(name))
        out *= values if sign == 0 else 1.0 + sign * values
    return out


def positions(keys: pd.DataFrame, fk: ForeignKey, frame: pd.DataFrame) -> np.ndarray:
    """Row positions in the parent (whose referenced ``keys`` are in generation order) of each
    child row's parent; -1 where it has none."""
    own = frame[list(fk.columns)]
    if len(fk.columns) == 1:
        index = pd.Index(keys[fk.ref_columns[0]])
        return np.asarray(index.get_indexer(own[fk.columns[0]]))
    index = pd.MultiIndex.from_frame(keys[list(fk.ref_columns)])
    return np.asarray(index.get_indexer(pd.MultiIndex.from_frame(own)))


@dataclass
class Accumulator:
    """A rule's running sum and child count per parent position."""

    rule: SumRule
    total: np.ndarray
    count: np.ndarray

    @classmethod
    def empty(cls, rule: SumRule, rows: int) -> Accumulator:
        return cls(rule, np.zeros(rows), np.zeros(rows, dtype=np.int64))

    def add(self, child: Table, fk: ForeignKey, keys: pd.DataFrame, frame: pd.DataFrame) -> None:
        pos = positions(keys, fk, frame)
        values = term_values(child, frame, self.rule.terms)
        ok = (pos >= 0) & np.isfinite(values)
        np.add.at(self.total, pos[ok], values[ok])
        np.add.at(self.count, pos[pos >= 0], 1)

    def apply(self, parent: Table, chunk: pd.DataFrame, offset: int) -> None:
        """Set the rule's column on rows ``offset ..`` of the parent."""
        col = parent.column(self.rule.column)
        span = slice(offset, offset + len(chunk))
        has = self.count[span] > 0
        old = pd.to_numeric(chunk[col.name], errors="coerce").to_numpy(dtype=float)
        new = rounded(self.total[span], col)
        if self.rule.empty == ZERO:
            new = np.where(has, new, 0.0)
        elif self.rule.empty == NULL:
            new = np.where(has, new, np.nan)
        else:
            new = np.where(has, new, old)
        _assign(chunk, col, new)


# --- sums within a row: total = subtotal + tax, line_total = qty * unit_price -------------------

MAX_ROW_NUMBERS = 8  # numbers of a table tried, so at most 8 x 21 x 2 checks on the fit rows
ROW_OPS = ("+", "*")


@dataclass(frozen=True)
class RowRule:
    """``column`` = ``left op right`` on every production row where the three are set."""

    column: str
    left: str
    op: str  # "+" or "*"
    right: str

    def describe(self, table: str) -> str:
        return f"{table}.{self.column} = {self.left} {self.op} {self.right} per row"

    def columns(self) -> tuple[str, str, str]:
        return (self.column, self.left, self.right)


def _combined(left: np.ndarray, op: str, right: np.ndarray) -> np.ndarray:
    return left + right if op == "+" else left * right


def find_row_rules(table: Table, frame: pd.DataFrame) -> list[RowRule]:
    """The numbers of ``frame`` (production's fit rows) that are the sum or the product of two
    others on every row where all three are set (at least MIN_PARENTS such rows, the terms not
    constant); one rule per column, and no derived column is a term of another rule."""
    names = [c.name for c in _numbers(table, _keys(table), MAX_ROW_NUMBERS) if c.name in frame]
    values = {n: term_values(table, frame, (n,)) for n in names}
    varied = {n for n in names if np.unique(values[n][np.isfinite(values[n])]).size >= 2}
    found: list[RowRule] = []
    for target in [n for n in names if n in varied]:
        used = {c for r in found for c in r.columns()}
        if target in used:
            continue
        col = table.column(target)
        terms = [
            n for n in names if n != target and n in varied and n not in {r.column for r in found}
        ]
        for left, right in combinations(terms, 2):
            rule = _holding(values, col, left, right)
            if rule is not None:
                found.append(rule)
                break
    return found


def _holding(values: dict[str, np.ndarray], col: Column, left: str, right: str) -> RowRule | None:
    x, a, b = values[col.name], values[left], values[right]
    rows = np.isfinite(x) & np.isfinite(a) & np.isfinite(b)
    if rows.sum() < MIN_PARENTS:
        return None
    for op in ROW_OPS:
        got = rounded(_combined(a[rows], op, b[rows]), col)
        if bool((np.abs(x[rows] - got) <= tolerance(col, x[rows])).all()):
            return RowRule(col.name, left, op, right)
    return None


def usable_row_rules(rules: list[RowRule], roles: dict[str, Any]) -> list[RowRule]:
    """The rules generation enforces: the three columns are modelled (not personal data,
    keys or columns drawn from production's values)."""
    from synth_assets.roles import MODEL

    return [
        r for r in rules if all(getattr(roles.get(c), "role", None) == MODEL for c in r.columns())
    ]


def derive(table: Table, frame: pd.DataFrame, rules: list[RowRule]) -> None:
    """Set each rule's column from its terms where both are set (the model's value stays on
    rows where one is NULL, as production's rows there are not bound by the rule)."""
    for rule in rules:
        if rule.column not in frame or rule.left not in frame or rule.right not in frame:
            continue
        col = table.column(rule.column)
        a = term_values(table, frame, (rule.left,))
        b = term_values(table, frame, (rule.right,))
        old = pd.to_numeric(frame[rule.column], errors="coerce").to_numpy(dtype=float)
        new = np.where(np.isfinite(a) & np.isfinite(b), rounded(_combined(a, rule.op, b), col), old)
        _assign(frame, col, new)
