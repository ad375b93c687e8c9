"""Introspection of every FK shape of the demo database, and the generation order."""

from __future__ import annotations

import pytest

from synth_assets.db import source_snapshot
from synth_assets.errors import SchemaError
from synth_assets.order import generation_order
from synth_assets.schema import Column, ForeignKey, Schema, Table, introspect


@pytest.fixture(scope="module")
def demo_schema(demo_source: str) -> Schema:
    with source_snapshot(demo_source) as conn:
        return introspect(conn, "public")


def _fk(schema: Schema, table: str, *cols: str) -> ForeignKey:
    return next(fk for fk in schema.tables[table].foreign_keys if fk.columns == cols)


def test_composite_primary_key(demo_schema: Schema) -> None:
    assert demo_schema.tables["order_items"].primary_key == ("order_id", "line_no")


def test_link_table_has_a_primary_key_of_two_foreign_keys(demo_schema: Schema) -> None:
    table = demo_schema.tables["product_tags"]
    assert set(table.primary_key) == {"product_id", "tag_id"}
    assert {fk.ref_table for fk in table.foreign_keys} == {"products", "tags"}


def test_self_references_are_nullable(demo_schema: Schema) -> None:
    for table, col in (("categories", "parent_id"), ("employees", "manager_id")):
        fk = _fk(demo_schema, table, col)
        assert fk.ref_table == table and fk.nullable


def test_two_foreign_keys_to_the_same_parent(demo_schema: Schema) -> None:
    refs = [fk.ref_table for fk in demo_schema.tables["referrals"].foreign_keys]
    assert refs == ["customers", "customers"]


def test_nullable_and_not_null_foreign_keys(demo_schema: Schema) -> None:
    assert _fk(demo_schema, "orders", "shipping_address_id").nullable
    assert not _fk(demo_schema, "orders", "customer_id").nullable


def test_table_without_primary_key(demo_schema: Schema) -> None:
    assert demo_schema.tables["event_log"].primary_key == ()


def test_types_enums_uniques_checks(demo_schema: Schema) -> None:
    orders = demo_schema.tables["orders"]
    assert orders.column("status").kind == "enum"
    assert orders.column("status").local_type == "order_status"
    assert demo_schema.enums["order_status"].values[:2] == ("pending", "paid")
    price = demo_schema.tables["products"].column("price")
    assert (price.kind, price.numeric_scale) == ("numeric", 2)
    assert demo_schema.tables["products"].column("attributes").kind == "json"
    assert demo_schema.tables["event_log"].column("ip_address").kind == "inet"
    assert demo_schema.tables["customers"].is_unique(("email",))
    assert any("price > " in c.expression for c in demo_schema.tables["products"].checks)
    assert demo_schema.tables["customers"].column("id").identity == "by default"


def test_generation_order_puts_parents_first(demo_schema: Schema) -> None:
    plan = generation_order(demo_schema)
    position = {t: i for i, t in enumerate(plan.order)}
    assert sorted(plan.order) == sorted(demo_schema.tables)
    for table in demo_schema.tables.values():
        for fk in table.foreign_keys:
            if fk.ref_table != table.name:
                assert position[fk.ref_table] < position[table.name], (table.name, fk.ref_table)
    assert plan.cut == ()


def _table(name: str, *fks: ForeignKey) -> Table:
    cols = [Column("id", "integer", "integer", False)]
    cols += [Column(c, "integer", "integer", fk.nullable) for fk in fks for c in fk.columns]
    return Table(name, tuple(cols), ("id",), foreign_keys=fks)


def _ref(col: str, table: str, nullable: bool, deferrable: bool = False) -> ForeignKey:
    return ForeignKey(f"{col}_fk", (col,), table, ("id",), nullable, deferrable)


def test_a_cycle_is_cut_at_its_nullable_edge() -> None:
    schema = Schema(
        "s",
        {
            "store": _table("store", _ref("manager_id", "staff", nullable=True)),
            "staff": _table("staff", _ref("store_id", "store", nullable=False)),
        },
    )
    plan = generation_order(schema)
    assert plan.order == ("store", "staff")
    assert [(c.table, c.foreign_key.columns) for c in plan.cut] == [("store", ("manager_id",))]
    assert "store(manager_id) -> staff (nullable" in plan.cut[0].describe()


def test_a_not_null_cycle_without_deferrable_edge_is_a_clear_error() -> None:
    schema = Schema(
        "s",
        {
            "a": _table("a", _ref("b_id", "b", nullable=False)),
            "b": _table("b", _ref("c_id", "c", nullable=False)),
            "c": _table("c", _ref("a_id", "a", nullable=False)),
            "d": _table("d"),
        },
    )
    with pytest.raises(
        SchemaError,
        match=r"cycle with no nullable or deferrable link: "
        r"a -> b -> c -> a",
    ):
        generation_order(schema)


def test_a_not_null_cycle_is_cut_at_a_deferrable_edge() -> None:
    schema = Schema(
        "s",
        {
            "a": _table("a", _ref("b_id", "b", nullable=False)),
            "b": _table("b", _ref("a_id", "a", nullable=False, deferrable=True)),
        },
    )
    plan = generation_order(schema)
    assert plan.order == ("b", "a")
    assert plan.cut[0].table == "b" and "deferrable" in plan.cut[0].describe()
