"""Column statistics of production, computed by SQL over the full tables.

They feed the generated Great Expectations suites (ranges, null fractions, value sets) and the
generator (order relations such as ``delivered_at > shipped_at`` that hold in every production
row are enforced on the synthetic rows, so what the gate checks is what generation guarantees).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from psycopg import sql

from synth_assets.schema import Table

RANGED_KINDS = {"integer", "float", "numeric", "date", "timestamp", "timestamptz"}
COUNTED_KINDS = {"text", "enum", "boolean"}
MAX_RELATION_COLUMNS = 20
MIN_RELATION_ROWS = 10


@dataclass(frozen=True)
class ColumnStats:
    non_null: int
    minimum: Any = None
    maximum: Any = None
    distinct: int | None = None
    values: tuple[str, ...] | None = None  # every value, when there are few


@dataclass(frozen=True)
class Relation:
    """``left op right`` holds in every production row where both are set."""

    left: str
    op: str  # ">" or ">="
    right: str

    def expression(self) -> str:
        def q(name: str) -> str:
            return '"' + name.replace('"', '""') + '"'

        return f"{q(self.left)} {self.op} {q(self.right)}"


@dataclass
class TableStats:
    rows: int
    columns: dict[str, ColumnStats] = field(default_factory=dict)
    relations: list[Relation] = field(default_factory=list)


def relation_pairs(table: Table, excluded: set[str]) -> list[tuple[str, str]]:
    by_kind: dict[str, list[str]] = {}
    for col in table.columns:
        if col.kind in RANGED_KINDS and col.name not in excluded and col.generated is None:
            by_kind.setdefault(col.kind, []).append(col.name)
    pairs = []
    for names in by_kind.values():
        pairs += list(combinations(names[:MAX_RELATION_COLUMNS], 2))
    return pairs


def relations_from_counts(pairs: list[tuple[str, str]], counts: list[int]) -> list[Relation]:
    """Order relations that hold in every row where both values are set.

    ``counts`` holds five numbers per pair (rows with both set, a <= b, a < b, a >= b, a > b),
    as the profiling query of either dialect computes them.
    """
    out = []
    for i, (a, b) in enumerate(pairs):
        both, le, lt, ge, gt = counts[5 * i : 5 * i + 5]
        if both < MIN_RELATION_ROWS:
            continue
        if le == 0:
            out.append(Relation(a, ">", b))
        elif ge == 0:
            out.append(Relation(b, ">", a))
        elif lt == 0 and gt > 0:
            out.append(Relation(a, ">=", b))
        elif gt == 0 and lt > 0:
            out.append(Relation(b, ">=", a))
    return out


def profile_columns(
    cur: Any, schema: str, table: Table, rows: int, excluded: set[str], max_categories: int
) -> TableStats:
    """One aggregate query per table (plus one per low-cardinality column for its values)."""
    stats = TableStats(rows=rows)
    columns = [c for c in table.columns if c.generated is None]
    items: list[sql.Composable] = []
    layout: list[tuple[str, str]] = []
    for col in columns:
        ident = sql.Identifier(col.name)
        items.append(sql.SQL("count({})").format(ident))
        layout.append((col.name, "non_null"))
        if col.kind in RANGED_KINDS:
            items += [sql.SQL("min({})").format(ident), sql.SQL("max({})").format(ident)]
            layout += [(col.name, "min"), (col.name, "max")]
        if col.kind in COUNTED_KINDS:
            items.append(sql.SQL("count(distinct {})").format(ident))
            layout.append((col.name, "distinct"))
    pairs = relation_pairs(table, excluded)
    for a, b in pairs:
        ia, ib = sql.Identifier(a), sql.Identifier(b)
        items += [
            sql.SQL("count(*) filter (where {} is not null and {} is not null)").format(ia, ib),
            sql.SQL("count(*) filter (where {} <= {})").format(ia, ib),
            sql.SQL("count(*) filter (where {} < {})").format(ia, ib),
            sql.SQL("count(*) filter (where {} >= {})").format(ia, ib),
            sql.SQL("count(*) filter (where {} > {})").format(ia, ib),
        ]
    if not items:
        return stats
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table.name))
    cur.execute(sql.SQL("select {} from {}").format(sql.SQL(", ").join(items), target))
    row = list(cur.fetchone())
    raw: dict[str, dict[str, Any]] = {}
    for (name, what), value in zip(layout, row[: len(layout)], strict=True):
        raw.setdefault(name, {})[what] = value
    for col in columns:
        r = raw[col.name]
        values = None
        distinct = r.get("distinct")
        if distinct is not None and 0 < distinct <= max_categories:
            cur.execute(
                sql.SQL("select distinct {}::text from {} where {} is not null order by 1").format(
                    sql.Identifier(col.name), target, sql.Identifier(col.name)
                )
            )
            values = tuple(v[0] for v in cur.fetchall())
        stats.columns[col.name] = ColumnStats(
            r["non_null"], r.get("min"), r.get("max"), distinct, values
        )
    rest = row[len(layout) :]
    stats.relations += relations_from_counts(pairs, rest)
    return stats
