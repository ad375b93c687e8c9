"""The quality report on hand-built frames: scores, JSON, and the self-contained HTML page."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_assets.quality import (
    QUALITY_PROPERTIES,
    QualityResult,
    _report_classes,
    _run_report,
    evaluate_quality,
)
from synth_assets.schema import Column, ForeignKey, Schema, Table

SEGMENTS = ["consumer", "business", "vip"]


def _col(name: str, sql_type: str, kind: str, nullable: bool, **extra: object) -> Column:
    return Column(name=name, sql_type=sql_type, kind=kind, nullable=nullable, **extra)


def _fk(
    name: str, columns: tuple[str, ...], ref: str, ref_columns: tuple[str, ...], nullable: bool
) -> ForeignKey:
    return ForeignKey(
        name=name, columns=columns, ref_table=ref, ref_columns=ref_columns, nullable=nullable
    )


STATUSES = ("new", "paid", "shipped", "cancelled")


def _schema() -> Schema:
    customers = Table(
        name="customers",
        columns=(
            _col("id", "integer", "integer", False),
            _col("email", "text", "text", False),
            _col("segment", "text", "text", False),
            _col("score", "double precision", "float", True),
            _col("active", "boolean", "boolean", False),
            _col("signed_up_at", "timestamp with time zone", "timestamptz", False),
            _col("avatar", "bytea", "bytea", True),
            _col("referred_by", "integer", "integer", True),
        ),
        primary_key=("id",),
        foreign_keys=(
            _fk("customers_referred_by_fkey", ("referred_by",), "customers", ("id",), True),
        ),
    )
    orders = Table(
        name="orders",
        columns=(
            _col("id", "bigint", "integer", False),
            _col("customer_id", "integer", "integer", False),
            _col("status", "order_status", "enum", False, enum_values=STATUSES),
            _col("amount", "numeric(12,2)", "numeric", False),
            _col("shipping", "numeric(12,2)", "numeric", False),
            _col("placed_on", "date", "date", False),
            _col("note", "text", "text", True),
        ),
        primary_key=("id",),
        foreign_keys=(
            _fk("orders_customer_id_fkey", ("customer_id",), "customers", ("id",), False),
        ),
    )
    # composite primary key, referenced by nobody; its FK is a plain single-column one
    lines = Table(
        name="order_lines",
        columns=(
            _col("order_id", "bigint", "integer", False),
            _col("line_no", "integer", "integer", False),
            _col("qty", "integer", "integer", False),
        ),
        primary_key=("order_id", "line_no"),
        foreign_keys=(_fk("order_lines_order_id_fkey", ("order_id",), "orders", ("id",), False),),
    )
    return Schema("public", {t.name: t for t in (customers, orders, lines)})


def _frames(seed: int, shift: bool = False, synthetic: bool = False) -> dict[str, pd.DataFrame]:
    """Frames shaped like extract.to_frame (real) or generate (synthetic, bytea as bytes)."""
    rng = np.random.default_rng(seed)
    n = 300
    ids = np.arange(1, n + 1)
    segment_p = [0.2, 0.2, 0.6] if shift else [0.7, 0.25, 0.05]
    scores = rng.normal(80 if shift else 50, 10, n)
    scores[rng.random(n) < 0.1] = np.nan
    lengths = rng.integers(10, 200, n)
    referred = np.where(rng.random(n) < 0.3, rng.integers(1, n + 1, n), -1)
    customers = pd.DataFrame(
        {
            "id": pd.array(ids, dtype="Int64"),
            "email": [f"user{i}@example.com" for i in ids],
            "segment": rng.choice(SEGMENTS, n, p=segment_p).astype(object),
            "score": scores,
            "active": pd.array(rng.random(n) < (0.2 if shift else 0.8), dtype="boolean"),
            "signed_up_at": pd.to_datetime("2024-01-01", utc=True)
            + pd.to_timedelta(rng.integers(0, 365 * (3 if shift else 1), n), unit="D"),
            "avatar": (
                pd.Series([bytes(int(k)) for k in lengths], dtype=object)
                if synthetic
                else pd.array(lengths, dtype="Int64")
            ),
            "referred_by": pd.array(np.where(referred > 0, referred, None), dtype="Int64"),
        }
    )
    per_customer = rng.poisson(6 if shift else 2, n)
    m = int(per_customer.sum())
    order_ids = np.arange(1, m + 1)
    # real: an order's amount follows its customer's score, shipping follows the amount
    owner_score = np.nan_to_num(np.repeat(scores, per_customer), nan=50.0)
    if shift:
        amount = np.round(rng.lognormal(6, 0.5, m), 2)
        shipping = np.round(rng.uniform(0, 50, m), 2)
    else:
        amount = np.round(20 + 2 * owner_score + rng.normal(0, 5, m), 2)
        shipping = np.round(0.1 * amount + rng.normal(0, 1, m), 2)
    orders = pd.DataFrame(
        {
            "id": pd.array(order_ids, dtype="Int64"),
            "customer_id": pd.array(np.repeat(ids, per_customer), dtype="Int64"),
            "status": rng.choice(
                STATUSES, m, p=[0.1, 0.1, 0.1, 0.7] if shift else [0.1, 0.3, 0.5, 0.1]
            ).astype(object),
            "amount": amount,
            "shipping": shipping,
            "placed_on": pd.to_datetime("2023-06-01")
            + pd.to_timedelta(rng.integers(0, 700 if shift else 300, m), unit="D"),
            "note": [f"free text {i} {rng.integers(1_000_000)}" for i in range(m)],
        }
    )
    per_order = 1 + rng.poisson(4 if shift else 1, m)
    lines = pd.DataFrame(
        {
            "order_id": pd.array(np.repeat(order_ids, per_order), dtype="Int64"),
            "line_no": pd.array(
                np.concatenate([np.arange(1, k + 1) for k in per_order]), dtype="Int64"
            ),
            "qty": pd.array(rng.integers(1, 20 if shift else 4, int(per_order.sum())), "Int64"),
        }
    )
    if synthetic:  # generated frames: plain int64 keys, nullable FKs as floats
        customers["id"] = customers["id"].astype("int64")
        customers["referred_by"] = customers["referred_by"].astype("float64")
        orders["customer_id"] = orders["customer_id"].astype("int64")
    return {"customers": customers, "orders": orders, "order_lines": lines}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, QualityResult]:
    schema = _schema()
    real = _frames(1)
    same = _frames(1, synthetic=True)
    shifted = _frames(2, shift=True, synthetic=True)
    base = tmp_path_factory.mktemp("quality")
    return {
        "same": evaluate_quality(schema, real, same, base / "same", seed=3),
        "same_again": evaluate_quality(schema, real, same, base / "same_again", seed=3),
        "shifted": evaluate_quality(schema, real, shifted, base / "shifted", seed=3),
        "sampled": evaluate_quality(schema, real, shifted, base / "sampled", max_rows=120, seed=3),
    }


def test_scores_in_range_and_identical_beats_shifted(runs: dict[str, QualityResult]) -> None:
    same, shifted = runs["same"], runs["shifted"]
    for result in (same, shifted):
        assert 0 < result.score <= 1
        assert 0 < result.diagnostic <= 1
        assert set(result.properties) == set(QUALITY_PROPERTIES)
        assert all(0 <= v <= 1 for v in result.properties.values())
        assert {"Data Validity", "Data Structure", "Relationship Validity"} <= set(
            result.diagnostic_properties
        )
        assert set(result.per_table) == {"customers", "orders", "order_lines"}
        assert all(0 <= v <= 1 and not math.isnan(v) for v in result.per_table.values())
    assert same.score > shifted.score + 0.1
    assert same.properties["Column Shapes"] == pytest.approx(1.0)
    assert same.properties["Column Shapes"] > shifted.properties["Column Shapes"]
    assert same.properties["Cardinality"] > shifted.properties["Cardinality"]
    assert same.properties["Column Pair Trends"] > shifted.properties["Column Pair Trends"]
    assert same.properties["Intertable Trends"] > shifted.properties["Intertable Trends"]
    for table in same.per_table:
        assert same.per_table[table] >= shifted.per_table[table]


def test_json_is_valid_and_deterministic(runs: dict[str, QualityResult]) -> None:
    first = runs["same"].json_path.read_text()
    assert first == runs["same_again"].json_path.read_text()
    assert runs["same"].html_path.read_text() == runs["same_again"].html_path.read_text()
    doc = json.loads(first)  # strict JSON: no NaN
    json.loads(first, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert list(doc)[:4] == ["title", "sdmetrics_version", "settings", "score"]
    assert doc["score"] == pytest.approx(runs["same"].score)
    assert doc["errors"] == []
    assert list(doc["tables"]) == sorted(doc["tables"])
    pairs = {(p["where"], p["column_1"], p["column_2"]) for p in doc["pair_trends"]}
    assert ("orders", "amount", "shipping") in pairs  # correlated within a table
    assert any(p["where"].startswith("orders → customers") for p in doc["pair_trends"])
    assert all(p["score"] == pytest.approx(1.0) for p in doc["pair_trends"])

    customers = doc["tables"]["customers"]
    assert customers["columns"]["id"]["sdtype"] == "id"
    assert customers["columns"]["referred_by"]["sdtype"] == "id"
    assert customers["columns"]["segment"]["sdtype"] == "categorical"
    assert customers["columns"]["signed_up_at"]["sdtype"] == "datetime"
    assert customers["excluded"]["email"].startswith("personal data")
    assert "avatar" in customers["excluded"]
    assert "note" in doc["tables"]["orders"]["excluded"]
    assert doc["tables"]["order_lines"]["primary_key"] is None  # composite: none for SDMetrics
    assert doc["tables"]["orders"]["primary_key"] == "id"

    fks = {(f["child"], f["name"]): f for f in doc["foreign_keys"]}
    assert set(fks) == {
        ("customers", "customers_referred_by_fkey"),
        ("orders", "orders_customer_id_fkey"),
        ("order_lines", "order_lines_order_id_fkey"),
    }
    self_ref = fks[("customers", "customers_referred_by_fkey")]
    assert self_ref["sdmetrics_skipped"] == "self-reference"
    assert self_ref["cardinality"] is None
    assert self_ref["real"]["parents"] == 300
    orders_fk = fks[("orders", "orders_customer_id_fkey")]
    assert orders_fk["sdmetrics_skipped"] is None
    assert orders_fk["shape_similarity"] == pytest.approx(1.0)
    assert orders_fk["real"] == orders_fk["synthetic"]
    assert orders_fk["relationship_validity"]["ReferentialIntegrity"] == pytest.approx(1.0)
    total = sum(count * parents for count, parents in orders_fk["real"]["histogram"])
    assert total == orders_fk["real"]["child_rows"]


def test_html_is_self_contained_with_charts(runs: dict[str, QualityResult]) -> None:
    page = runs["shifted"].html_path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert len(page) < 2_000_000
    for table in ("customers", "orders"):
        section = re.search(
            rf'<section class="table" data-table="{table}">(.*?)</section>', page, re.S
        )
        assert section is not None, table
        assert "<svg" in section.group(1)
        assert "synthetic</text>" in section.group(1)  # a legend per chart
    assert "avatar (length)" in page  # bytea plotted as lengths
    assert "user1@example.com" not in page  # personal data never shown
    fk_section = page[page.index('id="children-per-parent"') :]
    for name in (
        "orders_customer_id_fkey",
        "customers_referred_by_fkey",
        "order_lines_order_id_fkey",
    ):
        card = re.search(
            rf'<div class="card fk"[^>]*data-fk="{name}"[^>]*>(.*?)</svg>', fk_section, re.S
        )
        assert card is not None, name
        assert "<svg" in card.group(1)


def test_names_are_escaped(tmp_path: Path) -> None:
    schema = Schema(
        "public",
        {
            "<b>odd</b>": Table(
                "<b>odd</b>",
                (
                    _col("id", "integer", "integer", False),
                    _col('kind"<x>', "text", "text", False),
                ),
                primary_key=("id",),
            )
        },
    )
    frame = pd.DataFrame(
        {"id": pd.array(range(40), dtype="Int64"), 'kind"<x>': ["<i>a</i>", "b&c"] * 20}
    )
    result = evaluate_quality(schema, {"<b>odd</b>": frame}, {"<b>odd</b>": frame}, tmp_path)
    page = result.html_path.read_text()
    assert "<b>odd</b>" not in page and "<i>a</i>" not in page
    assert "&lt;b&gt;odd&lt;/b&gt;" in page and "&lt;i&gt;a&lt;/i&gt;" in page
    assert result.score == pytest.approx(1.0)


def test_subsample_keeps_references(runs: dict[str, QualityResult]) -> None:
    doc = json.loads(runs["sampled"].json_path.read_text())
    for name, table in doc["tables"].items():
        assert table["rows_evaluated_real"] <= 120, name
        assert table["rows_evaluated_synthetic"] <= 120, name
    assert doc["tables"]["orders"]["sampled_real"]
    # children of a sampled parent keep only rows whose parent is in the sample
    for fk in doc["foreign_keys"]:
        if fk["sdmetrics_skipped"] is None:
            assert fk["relationship_validity"]["ReferentialIntegrity"] == pytest.approx(1.0)
    # the children-per-parent summaries still use every row
    fk = next(f for f in doc["foreign_keys"] if f["name"] == "orders_customer_id_fkey")
    assert fk["real"]["parents"] == 300


def test_failing_table_is_recorded_not_fatal() -> None:
    quality_cls, _ = _report_classes()
    good = pd.DataFrame({"id": pd.array(range(30), dtype="Int64"), "x": np.arange(30.0)})
    bad = pd.DataFrame({"id": pd.array(range(30), dtype="Int64")})  # lacks the column "y"
    metadata = {
        "tables": {
            "good": {
                "primary_key": "id",
                "columns": {"id": {"sdtype": "id"}, "x": {"sdtype": "numerical"}},
            },
            "bad": {
                "primary_key": "id",
                "columns": {"id": {"sdtype": "id"}, "y": {"sdtype": "numerical"}},
            },
        },
        "relationships": [],
    }
    errors: list[dict[str, str]] = []
    data = {"good": good, "bad": bad}
    report, tables = _run_report("quality", quality_cls, data, data, metadata, 0, errors)
    assert report is not None
    assert tables == {"good"}
    assert report.get_score() == pytest.approx(1.0)
    assert any(e["scope"] == "table bad" for e in errors)
