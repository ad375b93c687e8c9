"""The schema model: plain dataclasses read from a PostgreSQL schema.

Everything downstream (generation order, synthesis, DDL of the published copy) works from this
model, never from live catalog queries, so a snapshot of it is enough to plan a refresh.
Introspection uses SQLAlchemy's inspector (batched ``get_multi_*`` calls, one round trip per kind
of object however many tables there are) plus one catalog query for what the inspector does not
expose: exact type text, partitions, and index definitions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from synth_assets.errors import SchemaError

# How a column's values are represented when prodtwin reads and writes them.
INTEGER_TYPES = {"int2", "int4", "int8"}
FLOAT_TYPES = {"float4", "float8"}
TEXT_TYPES = {"text", "varchar", "bpchar", "citext", "name"}
KIND_BY_TYPE = {
    **dict.fromkeys(INTEGER_TYPES, "integer"),
    **dict.fromkeys(FLOAT_TYPES, "float"),
    **dict.fromkeys(TEXT_TYPES, "text"),
    "numeric": "numeric",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "json",
    "bytea": "bytea",
    "inet": "inet",
}


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # the type as PostgreSQL's format_type prints it
    kind: str  # integer, float, numeric, boolean, date, timestamp, timestamptz, text, enum,
    #            uuid, json, bytea, inet, array, other
    nullable: bool
    default: str | None = None
    identity: str | None = None  # "always" or "by default"
    generated: str | None = None  # expression of a GENERATED ... STORED column
    max_length: int | None = None
    numeric_scale: int | None = None
    enum_values: tuple[str, ...] | None = None
    local_type: str | None = None  # name of an enum/domain defined in the source schema


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    nullable: bool  # at least one of the columns accepts NULL
    deferrable: bool = False
    initially_deferred: bool = False
    on_delete: str | None = None
    on_update: str | None = None


@dataclass(frozen=True)
class UniqueConstraint:
    name: str
    columns: tuple[str, ...]
    deferrable: bool = False  # QA's transaction that swaps two values relies on it
    initially_deferred: bool = False


@dataclass(frozen=True)
class CheckConstraint:
    name: str
    expression: str  # the boolean expression, without the CHECK keyword


@dataclass(frozen=True)
class ExclusionConstraint:
    """``EXCLUDE USING gist (room_id WITH =, during WITH &&)``: no two rows whose elements all
    match by their operators (two bookings of one room that overlap)."""

    name: str
    definition: str  # as pg_get_constraintdef prints it, WHERE and DEFERRABLE included
    elements: tuple[str, ...]  # each as pg_get_indexdef prints it: a column or an expression
    operators: tuple[str, ...]  # one per element: "=", "&&" (schema-qualified outside pg_catalog)
    columns: tuple[str | None, ...]  # the element's column, None for an expression


@dataclass(frozen=True)
class Index:
    name: str
    definition: str  # CREATE INDEX ... as PostgreSQL prints it, with {table} for the target


@dataclass(frozen=True)
class Partitioning:
    key: str  # e.g. RANGE (payment_date)
    partitions: tuple[tuple[str, str], ...]  # (name, bound) e.g. FOR VALUES FROM (...) TO (...)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    primary_key_name: str | None = None
    foreign_keys: tuple[ForeignKey, ...] = ()
    uniques: tuple[UniqueConstraint, ...] = ()
    checks: tuple[CheckConstraint, ...] = ()
    indexes: tuple[Index, ...] = ()
    partitioning: Partitioning | None = None
    unique_indexes: tuple[UniqueConstraint, ...] = ()  # UNIQUE indexes that back no constraint
    exclusions: tuple[ExclusionConstraint, ...] = ()
    # a DEFERRABLE primary key: QA's transaction that renumbers two rows relies on it
    primary_key_deferral: tuple[bool, bool] = (False, False)  # deferrable, initially deferred

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name}.{name}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def unique_sets(self) -> list[tuple[str, ...]]:
        """Every set of columns whose values must be unique together (PK first)."""
        sets = [self.primary_key] if self.primary_key else []
        return sets + [u.columns for u in (*self.uniques, *self.unique_indexes)]

    def is_unique(self, columns: tuple[str, ...] | list[str]) -> bool:
        wanted = set(columns)
        return any(set(s) <= wanted for s in self.unique_sets())


@dataclass(frozen=True)
class EnumType:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class DomainType:
    name: str
    base_type: str
    not_null: bool
    default: str | None
    checks: tuple[str, ...]


@dataclass
class Schema:
    name: str
    tables: dict[str, Table] = field(default_factory=dict)
    enums: dict[str, EnumType] = field(default_factory=dict)
    domains: dict[str, DomainType] = field(default_factory=dict)

    def children_of(self, table: str) -> list[tuple[str, ForeignKey]]:
        return [
            (t.name, fk)
            for t in self.tables.values()
            for fk in t.foreign_keys
            if fk.ref_table == table
        ]

    def foreign_keys_of(self, table: Table) -> list[ForeignKey]:
        """The table's FKs whose parent is in this schema (the others are out of scope)."""
        return [fk for fk in table.foreign_keys if fk.ref_table in self.tables]

    def subset(self, names: list[str]) -> Schema:
        return Schema(
            self.name,
            {n: self.tables[n] for n in names},
            dict(self.enums),
            dict(self.domains),
        )


_TYPE_QUERY = sa.text(
    """
    select c.relname as table_name,
           a.attname as column_name,
           format_type(a.atttypid, a.atttypmod) as sql_type,
           coalesce(bt.typname, t.typname) as base_name,
           coalesce(bt.typtype, t.typtype) as base_typtype,
           coalesce(bt.typcategory, t.typcategory) as base_category,
           t.typname as type_name,
           tn.nspname as type_schema,
           t.typtype as typtype,
           case when coalesce(bt.typname, t.typname) = 'numeric' and a.atttypmod > 4
                then (a.atttypmod - 4) & 65535 end as numeric_scale,
           case when coalesce(bt.typname, t.typname) in ('varchar', 'bpchar') and a.atttypmod > 4
                then a.atttypmod - 4 end as max_length,
           a.attnum
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    join pg_type t on t.oid = a.atttypid
    join pg_namespace tn on tn.oid = t.typnamespace
    left join pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype
    where n.nspname = :schema and c.relkind in ('r', 'p') and a.attnum > 0
      and not a.attisdropped
    order by c.relname, a.attnum
    """
)

_PARTITION_QUERY = sa.text(
    """
    select c.relname as partition_name, p.relname as parent_name,
           pg_get_expr(c.relpartbound, c.oid) as bound,
           pg_get_partkeydef(p.oid) as parent_key
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    join pg_class p on p.oid = i.inhparent
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = :schema and c.relispartition
    order by p.relname, c.relname
    """
)

_INDEX_QUERY = sa.text(
    """
    select t.relname as table_name, i.relname as index_name,
           pg_get_indexdef(i.oid) as definition,
           quote_ident(n.nspname) || '.' || quote_ident(t.relname) as qualified
    from pg_index x
    join pg_class i on i.oid = x.indexrelid
    join pg_class t on t.oid = x.indrelid
    join pg_namespace n on n.oid = t.relnamespace
    where n.nspname = :schema and t.relkind in ('r', 'p')
      and not exists (select 1 from pg_constraint k where k.conindid = x.indexrelid
                      and k.contype in ('p', 'u', 'x'))
      and not exists (select 1 from pg_inherits h where h.inhrelid = x.indexrelid)
    order by t.relname, i.relname
    """
)


_CONSTRAINT_QUERY = sa.text(
    """
    select c.relname as table_name, k.conname as name, k.contype as type,
           k.condeferrable as deferrable, k.condeferred as deferred,
           pg_get_constraintdef(k.oid) as definition,
           array(select pg_get_indexdef(k.conindid, i, true)
                 from generate_series(1, coalesce(array_length(k.conexclop, 1), 0)) i) as elements,
           array(select case when o.oprnamespace = 'pg_catalog'::regnamespace then o.oprname
                             else o.oprnamespace::regnamespace::text || '.' || o.oprname end
                 from unnest(k.conexclop) with ordinality as u(op, i)
                 join pg_operator o on o.oid = u.op order by u.i) as operators,
           array(select a.attname
                 from unnest(k.conkey) with ordinality as u(n, i)
                 left join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n
                 order by u.i) as columns
    from pg_constraint k
    join pg_class c on c.oid = k.conrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = :schema and c.relkind in ('r', 'p') and k.contype in ('u', 'x', 'p')
    order by c.relname, k.conname
    """
)


def _kind(row: Any) -> str:
    if row.base_category == "A":
        return "array"
    if row.base_typtype == "e":
        return "enum"
    return KIND_BY_TYPE.get(row.base_name, "other")


def _local_type(row: Any, schema: str) -> str | None:
    """Enums and domains of the source schema are re-created beside the published tables."""
    if row.type_schema == schema and row.typtype in ("e", "d"):
        return str(row.type_name)
    return None


def _index_template(definition: str, qualified: str) -> str:
    """Replace ``ON [ONLY] schema.table`` with a placeholder the publisher fills in.

    ``qualified`` is the name exactly as pg_get_indexdef quotes it, so names with spaces,
    quotes or dots are found as a whole (a pattern over the text would split them).
    """
    for on in (f" ON ONLY {qualified} USING ", f" ON {qualified} USING "):
        if on in definition:
            return definition.replace(on, on.replace(qualified, "{table}"), 1)
    raise SchemaError(f"cannot read the definition of an index on {qualified}: {definition}")


def introspect(conn: Connection, schema: str) -> Schema:
    """Read every table of ``schema`` with its keys, constraints, enums and domains."""
    dialect = conn.dialect.name
    if dialect == "mysql":
        from synth_assets.mysql_source import introspect_mysql

        return introspect_mysql(conn, schema)
    if dialect != "postgresql":
        raise SchemaError(f"source dialect {dialect} is not supported; use PostgreSQL or MySQL")
    insp = sa.inspect(conn)
    if schema not in insp.get_schema_names():
        raise SchemaError(
            f"schema {schema!r} does not exist in the source database: set source.schema in "
            "prodtwin.yaml to one of " + ", ".join(sorted(insp.get_schema_names()))
        )

    partitions = conn.execute(_PARTITION_QUERY, {"schema": schema}).all()
    partition_parent = {p.partition_name: p.parent_name for p in partitions}

    def root(name: str) -> str:
        while name in partition_parent:
            name = partition_parent[name]
        return name

    enums = {
        e["name"]: EnumType(e["name"], tuple(e["labels"])) for e in insp.get_enums(schema=schema)
    }
    domains = {
        d["name"]: DomainType(
            d["name"],
            str(d["type"]),
            not d["nullable"],
            d["default"],
            tuple(c["check"] for c in d["constraints"]),
        )
        for d in insp.get_domains(schema=schema)
    }

    kw: dict[str, Any] = {"schema": schema}
    with warnings.catch_warnings():
        # types SQLAlchemy does not know (point, composite...) are read from _TYPE_QUERY below
        warnings.filterwarnings("ignore", "Did not recognize type", sa.exc.SAWarning)
        cols = insp.get_multi_columns(**kw)
    pks = insp.get_multi_pk_constraint(**kw)
    fks = insp.get_multi_foreign_keys(**kw)
    uniques = insp.get_multi_unique_constraints(**kw)
    checks = insp.get_multi_check_constraints(**kw)
    all_indexes = insp.get_multi_indexes(**kw)

    types = {
        (r.table_name, r.column_name): r
        for r in conn.execute(_TYPE_QUERY, {"schema": schema}).all()
    }
    index_rows = conn.execute(_INDEX_QUERY, {"schema": schema}).all()
    constraint_rows = conn.execute(_CONSTRAINT_QUERY, {"schema": schema}).all()
    deferral = {
        (r.table_name, r.name): (bool(r.deferrable), bool(r.deferred))
        for r in constraint_rows
        if r.type in ("u", "p")
    }

    table_names = sorted({key[1] for key in cols if key[1] not in partition_parent})
    tables: dict[str, Table] = {}
    for name in table_names:
        key = (schema, name)
        columns = []
        for c in cols[key]:
            row = types[(name, c["name"])]
            identity = c.get("identity")
            computed = c.get("computed")
            base_is_enum = row.base_typtype == "e"
            enum_name = row.base_name if base_is_enum else None
            columns.append(
                Column(
                    name=c["name"],
                    sql_type=str(row.sql_type),
                    local_type=_local_type(row, schema),
                    kind=_kind(row),
                    nullable=bool(c["nullable"]),
                    default=None if (identity or computed) else c.get("default"),
                    identity=(
                        ("always" if identity.get("always") else "by default") if identity else None
                    ),
                    generated=computed["sqltext"] if computed else None,
                    max_length=row.max_length,
                    numeric_scale=row.numeric_scale,
                    enum_values=enums[enum_name].values if enum_name in enums else None,
                )
            )
        nullable = {c.name: c.nullable for c in columns}

        fk_list: list[ForeignKey] = []
        seen: set[tuple[Any, ...]] = set()
        # FKs may be declared on the table or only on its partitions: merge them.
        sources = [key] + [
            (schema, p) for p, parent in partition_parent.items() if root(parent) == name
        ]
        for src in sources:
            for fk in fks.get(src, []):
                ref = root(fk["referred_table"])
                if fk.get("referred_schema") not in (None, schema):
                    continue  # a reference outside the schema cannot be reproduced inside it
                sig = (tuple(fk["constrained_columns"]), ref, tuple(fk["referred_columns"]))
                if sig in seen:
                    continue
                seen.add(sig)
                opts = fk.get("options") or {}
                fk_list.append(
                    ForeignKey(
                        name=fk["name"],
                        columns=tuple(fk["constrained_columns"]),
                        ref_table=ref,
                        ref_columns=tuple(fk["referred_columns"]),
                        nullable=any(nullable[c] for c in fk["constrained_columns"]),
                        deferrable=bool(opts.get("deferrable")),
                        initially_deferred=str(opts.get("initially", "")).upper() == "DEFERRED",
                        on_delete=opts.get("ondelete"),
                        on_update=opts.get("onupdate"),
                    )
                )
        pk = pks.get(key) or {}
        table_partitions = [p for p in partitions if p.parent_name == name]
        tables[name] = Table(
            name=name,
            columns=tuple(columns),
            primary_key=tuple(pk.get("constrained_columns") or ()),
            primary_key_name=pk.get("name"),
            primary_key_deferral=deferral.get((name, pk.get("name")), (False, False)),
            foreign_keys=tuple(fk_list),
            uniques=tuple(
                UniqueConstraint(
                    u["name"],
                    tuple(u["column_names"]),
                    *deferral.get((name, u["name"]), (False, False)),
                )
                for u in uniques.get(key, [])
            ),
            checks=tuple(CheckConstraint(c["name"], c["sqltext"]) for c in checks.get(key, [])),
            indexes=tuple(
                Index(r.index_name, _index_template(r.definition, r.qualified))
                for r in index_rows
                if r.table_name == name
            ),
            unique_indexes=tuple(
                UniqueConstraint(i["name"], tuple(i["column_names"]))
                for i in all_indexes.get(key, [])
                if i.get("unique")
                and not i.get("duplicates_constraint")
                and None not in i["column_names"]
                and not (i.get("dialect_options") or {}).get("postgresql_where")
            ),
            exclusions=tuple(
                ExclusionConstraint(
                    r.name,
                    r.definition,
                    tuple(r.elements),
                    tuple(r.operators),
                    tuple(r.columns),
                )
                for r in constraint_rows
                if r.type == "x" and r.table_name == name
            ),
            partitioning=(
                Partitioning(
                    table_partitions[0].parent_key,
                    tuple((p.partition_name, p.bound) for p in table_partitions),
                )
                if table_partitions
                else None
            ),
        )
    return Schema(schema, tables, enums, domains)
