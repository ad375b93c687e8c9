"""The order tables are generated in: parents before children.

A foreign-key cycle is broken at one edge, filled in a second pass once both ends exist. The edge
chosen is nullable if the cycle has one (rows can be inserted before it is set), else deferrable
(PostgreSQL checks it at commit); a cycle with neither cannot be loaded by anyone and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from synth_assets.errors import SchemaError
from synth_assets.schema import ForeignKey, Schema


@dataclass(frozen=True)
class CutEdge:
    table: str
    foreign_key: ForeignKey

    def describe(self) -> str:
        cols = ", ".join(self.foreign_key.columns)
        how = "nullable" if self.foreign_key.nullable else "deferrable"
        return (
            f"{self.table}({cols}) -> {self.foreign_key.ref_table} ({how}, filled in a second pass)"
        )


@dataclass(frozen=True)
class GenerationPlan:
    order: tuple[str, ...]
    cut: tuple[CutEdge, ...]

    def is_cut(self, table: str, fk: ForeignKey) -> bool:
        return any(c.table == table and c.foreign_key == fk for c in self.cut)


def _edges(schema: Schema, cut: list[CutEdge]) -> dict[str, list[tuple[str, ForeignKey]]]:
    """Parents each table waits for: FKs to other tables that are not cut."""
    cut_set = {(c.table, c.foreign_key) for c in cut}
    return {
        name: [
            (fk.ref_table, fk)
            for fk in table.foreign_keys
            if fk.ref_table != name and fk.ref_table in schema.tables and (name, fk) not in cut_set
        ]
        for name, table in schema.tables.items()
    }


def _find_cycle(
    remaining: list[str], edges: dict[str, list[tuple[str, ForeignKey]]], done: set[str]
) -> list[tuple[str, ForeignKey]]:
    """Follow unfinished parents from a stuck table until one repeats: that loop is a cycle."""
    path: list[tuple[str, ForeignKey]] = []
    seen: dict[str, int] = {}
    node = remaining[0]
    while node not in seen:
        seen[node] = len(path)
        parent, fk = next((p, f) for p, f in edges[node] if p not in done)
        path.append((node, fk))
        node = parent
    return path[seen[node] :]


def generation_order(schema: Schema) -> GenerationPlan:
    cut: list[CutEdge] = []
    order: list[str] = []
    done: set[str] = set()
    names = sorted(schema.tables)
    edges = _edges(schema, cut)
    while len(order) < len(names):
        ready = [n for n in names if n not in done and all(p in done for p, _ in edges[n])]
        if ready:
            for name in ready:
                order.append(name)
                done.add(name)
            continue
        remaining = [n for n in names if n not in done]
        cycle = _find_cycle(remaining, edges, done)
        choice = next((e for e in cycle if e[1].nullable), None) or next(
            (e for e in cycle if e[1].deferrable), None
        )
        if choice is None:
            loop = " -> ".join([t for t, _ in cycle] + [cycle[0][0]])
            raise SchemaError(
                f"foreign keys form a cycle with no nullable or deferrable link: {loop}. "
                "Make one of these foreign keys DEFERRABLE (or nullable) in the source, or "
                "exclude one of the tables in prodtwin.yaml (tables.exclude)"
            )
        cut.append(CutEdge(choice[0], choice[1]))
        edges = _edges(schema, cut)
    return GenerationPlan(tuple(order), tuple(cut))
