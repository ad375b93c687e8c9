"""The schema snapshot: the introspected schema as a JSON file.

Orchestration builds its asset graph from this file (as dagster-dbt builds from dbt's
manifest), so loading a code location never connects to a database. ``prodtwin schema
snapshot`` writes it; comparing a fresh introspection with it tells what changed in production.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from synth_assets.schema import (
    CheckConstraint,
    Column,
    DomainType,
    EnumType,
    ExclusionConstraint,
    ForeignKey,
    Index,
    Partitioning,
    Schema,
    Table,
    UniqueConstraint,
)

VERSION = 1


def schema_to_dict(schema: Schema) -> dict[str, Any]:
    return {"version": VERSION, **dataclasses.asdict(schema)}


def _tuple(items: Any) -> tuple:
    return tuple(tuple(i) if isinstance(i, list) else i for i in items)


def _table(data: dict[str, Any]) -> Table:
    part = data.get("partitioning")
    return Table(
        name=data["name"],
        columns=tuple(
            Column(**{**c, "enum_values": _tuple(c["enum_values"]) if c["enum_values"] else None})
            for c in data["columns"]
        ),
        primary_key=tuple(data["primary_key"]),
        primary_key_name=data["primary_key_name"],
        primary_key_deferral=tuple(data.get("primary_key_deferral", (False, False))),  # type: ignore[arg-type]
        foreign_keys=tuple(
            ForeignKey(
                **{**f, "columns": tuple(f["columns"]), "ref_columns": tuple(f["ref_columns"])}
            )
            for f in data["foreign_keys"]
        ),
        uniques=tuple(_unique(u) for u in data["uniques"]),
        checks=tuple(CheckConstraint(**c) for c in data["checks"]),
        indexes=tuple(Index(**i) for i in data["indexes"]),
        partitioning=(Partitioning(part["key"], _tuple(part["partitions"])) if part else None),
        unique_indexes=tuple(_unique(u) for u in data.get("unique_indexes", [])),
        exclusions=tuple(
            ExclusionConstraint(
                x["name"],
                x["definition"],
                tuple(x["elements"]),
                tuple(x["operators"]),
                tuple(x["columns"]),
            )
            for x in data.get("exclusions", [])
        ),
    )


def _unique(data: dict[str, Any]) -> UniqueConstraint:
    return UniqueConstraint(
        data["name"],
        tuple(data["columns"]),
        data.get("deferrable", False),
        data.get("initially_deferred", False),
    )


def schema_from_dict(data: dict[str, Any]) -> Schema:
    return Schema(
        name=data["name"],
        tables={name: _table(t) for name, t in data["tables"].items()},
        enums={n: EnumType(e["name"], tuple(e["values"])) for n, e in data["enums"].items()},
        domains={
            n: DomainType(
                d["name"], d["base_type"], d["not_null"], d["default"], tuple(d["checks"])
            )
            for n, d in data["domains"].items()
        },
    )


def write_snapshot(schema: Schema, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema_to_dict(schema), indent=1, sort_keys=True) + "\n")


def read_snapshot(path: Path) -> Schema:
    return schema_from_dict(json.loads(path.read_text()))


@dataclasses.dataclass
class SchemaChange:
    added_tables: list[str]
    dropped_tables: list[str]
    added_columns: list[str]  # table.column
    dropped_columns: list[str]
    retyped_columns: list[str]  # table.column: old -> new

    @property
    def empty(self) -> bool:
        return not any(dataclasses.astuple(self))

    def describe(self) -> str:
        parts = []
        for label, items in (
            ("tables added", self.added_tables),
            ("tables dropped", self.dropped_tables),
            ("columns added", self.added_columns),
            ("columns dropped", self.dropped_columns),
            ("columns retyped", self.retyped_columns),
        ):
            if items:
                parts.append(f"{label}: {', '.join(items)}")
        return "; ".join(parts) or "no change"


def enforce_policy(snapshot: Schema, live: Schema, policy: str) -> SchemaChange:
    """Refuse new or retyped columns unless prodtwin.yaml says to include them."""
    from synth_assets.errors import SchemaError

    change = diff(snapshot, live)
    blocked = change.added_columns + change.retyped_columns
    if blocked and policy == "block":
        raise SchemaError(
            f"production changed since the schema snapshot ({change.describe()}): prodtwin will "
            "not publish a column it was not told about. Set schema_changes: include in "
            "prodtwin.yaml (or exclude the table), then run prodtwin schema snapshot"
        )
    return change


def diff(old: Schema, new: Schema) -> SchemaChange:
    """What changed between a snapshot and the live schema."""
    change = SchemaChange([], [], [], [], [])
    change.added_tables = sorted(set(new.tables) - set(old.tables))
    change.dropped_tables = sorted(set(old.tables) - set(new.tables))
    for name in sorted(set(old.tables) & set(new.tables)):
        before = {c.name: c for c in old.tables[name].columns}
        after = {c.name: c for c in new.tables[name].columns}
        change.added_columns += [f"{name}.{c}" for c in after if c not in before]
        change.dropped_columns += [f"{name}.{c}" for c in before if c not in after]
        change.retyped_columns += [
            f"{name}.{c}: {before[c].sql_type} -> {after[c].sql_type}"
            for c in before
            if c in after and before[c].sql_type != after[c].sql_type
        ]
    return change
