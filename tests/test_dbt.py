"""dbt over the published copy: the scaffolded staging models build and their tests catch orphans."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import psycopg
import yaml

from synth_assets.db import source_snapshot
from synth_assets.dbt_scaffold import dbt_env, run_dbt, scaffold
from synth_assets.refresh import run_refresh
from synth_assets.schema import Column, ForeignKey, Schema, Table, introspect
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parent.parent
STAGING = Path("models") / "staging"
DONE = re.compile(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+)")


def copy_project(tmp_path: Path, with_staging: bool = True) -> Path:
    """The repository's dbt project in a temporary folder, without dbt's output folders."""
    ignore = shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml")
    project = tmp_path / "dbt_project"
    shutil.copytree(ROOT / "dbt_project", project, ignore=ignore)
    if not with_staging:
        shutil.rmtree(project / STAGING)
    return project


def build(project: Path, url: str, tmp_path: Path) -> tuple[int, str, dict[str, int]]:
    code, output = run_dbt(
        project, "dev", dbt_env(url, "public"), ["build"], work_dir=tmp_path / "dbt"
    )
    done = DONE.search(output)
    assert done, output
    counts = dict(zip(("pass", "warn", "error", "skip"), map(int, done.groups()), strict=True))
    assert not (project / "target").exists() and not (project / "logs").exists()
    return code, output, counts


def test_the_committed_staging_models_build_and_pass_on_a_fresh_refresh(
    demo_refresh, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    report, _, envs = demo_refresh
    schema = report.schema
    project = copy_project(tmp_path)
    lines = scaffold(schema, project)
    changed = [line for line in lines if not line.startswith("unchanged")]
    assert not changed, (
        f"dbt_project/ is out of date with the demo schema: run the scaffold ({changed})"
    )

    code, output, counts = build(project, envs["dev"], tmp_path)

    assert code == 0, output
    fks = [fk for t in schema.tables.values() for fk in t.foreign_keys]
    tests = int(re.search(r"Finished running (\d+) data tests, (\d+) view models", output).group(1))
    assert f"Found {len(schema.tables)} models, {tests} data tests" in output
    assert counts == {"pass": tests + len(schema.tables), "warn": 0, "error": 0, "skip": 0}
    assert output.count(" PASS relationships_") == len(fks)
    # every key is tested: unique + not_null per single-column PK, a combination per composite one
    keyed = [t for t in schema.tables.values() if t.primary_key]
    assert tests >= len(fks) + 2 * len(keyed)
    assert " PASS unique_combination_stg_order_items_order_id__line_no " in output
    assert " PASS relationships_stg_referrals_referrer_id__id__ref_stg_customers_ " in output
    assert " PASS relationships_stg_referrals_referred_id__id__ref_stg_customers_ " in output
    with psycopg.connect(envs["dev"]) as conn:
        views = conn.execute(
            "select table_name from information_schema.views where table_schema = 'public_staging' order by 1"
        ).fetchall()
        assert [v[0] for v in views] == sorted(f"stg_{t}" for t in schema.tables)
        assert (
            conn.execute("select count(*) from public_staging.stg_orders").fetchone()[0]
            == conn.execute("select count(*) from public.orders").fetchone()[0]
        )


def _schema_changed(schema: Schema) -> Schema:
    """The demo schema after a release: orders lost currency, gift_cards is new, event_log gone."""
    orders = schema.tables["orders"]
    orders = dataclasses.replace(
        orders, columns=tuple(c for c in orders.columns if c.name != "currency")
    )
    gift_cards = Table(
        name="gift_cards",
        columns=(
            Column("code", "text", "text", nullable=False),
            Column("customer_id", "integer", "integer", nullable=False),
            Column("Balance", "numeric(8,2)", "numeric", nullable=True),
        ),
        primary_key=("code",),
        foreign_keys=(
            ForeignKey(
                "gift_cards_customer_id_fkey",
                ("customer_id",),
                "customers",
                ("id",),
                nullable=False,
            ),
        ),
    )
    tables = {n: t for n, t in schema.tables.items() if n != "event_log"}
    tables.update(orders=orders, gift_cards=gift_cards)
    return Schema(schema.name, dict(sorted(tables.items())), schema.enums, schema.domains)


def test_scaffold_keeps_hand_edits_and_adds_new_tables(demo_refresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report, _, envs = demo_refresh
    project = copy_project(tmp_path)
    staging = project / STAGING
    assert all(line.startswith("unchanged") for line in scaffold(report.schema, project))

    # A person edits the SQL and the yml of orders.
    sql_path, yml_path = staging / "stg_orders.sql", staging / "stg_orders.yml"
    sql = sql_path.read_text().replace(
        "        total\n", "        total,\n        total * 100 as total_cents\n"
    )
    sql_path.write_text(sql)
    doc = yaml.safe_load(yml_path.read_text())
    model = doc["models"][0]
    model["description"] = "Orders, one row per order, as the shop team sees them."
    columns = {c["name"]: c for c in model["columns"]}
    columns["customer_id"]["description"] = "Who placed the order."
    status_test = {
        "accepted_values": {
            "arguments": {"values": ["new", "paid", "shipped", "delivered", "cancelled"]}
        }
    }
    columns["status"]["data_tests"] = [status_test]
    own_unique = {"unique": {"config": {"severity": "warn"}}}  # the generated test, made one's own
    columns["id"]["data_tests"] = [own_unique, *columns["id"]["data_tests"][1:]]
    model["columns"].append({"name": "total_cents", "description": "total in cents"})
    hand_yml = "# shop team: keep these tests in sync with the app\n" + yaml.safe_dump(
        doc, sort_keys=False
    )
    yml_path.write_text(hand_yml)

    lines = scaffold(_schema_changed(report.schema), project)

    assert "unchanged models/staging/stg_orders.sql: kept as written" in lines
    assert "updated models/staging/stg_orders.yml" in lines
    assert "created models/staging/stg_gift_cards.sql" in lines
    assert "created models/staging/stg_gift_cards.yml" in lines
    assert "updated models/staging/__sources.yml" in lines
    assert "unchanged models/staging/stg_customers.yml" in lines
    assert any(
        line.startswith("note: table event_log is no longer in the schema") for line in lines
    )
    assert (staging / "stg_event_log.sql").is_file() and (staging / "stg_event_log.yml").is_file()
    assert sql_path.read_text() == sql

    text = yml_path.read_text()
    assert text.rstrip().endswith("# shop team: keep these tests in sync with the app")
    model = yaml.safe_load(text)["models"][0]
    assert model["description"] == "Orders, one row per order, as the shop team sees them."
    columns = {c["name"]: c for c in model["columns"]}
    assert list(columns)[-1] == "total_cents" and columns["total_cents"] == {
        "name": "total_cents",
        "description": "total in cents",
    }
    assert "currency" not in columns
    assert columns["customer_id"]["description"] == "Who placed the order."
    assert [next(iter(t)) for t in columns["customer_id"]["data_tests"]] == [
        "not_null",
        "relationships",
    ]
    assert columns["status"]["data_tests"] == [status_test]
    assert columns["id"]["data_tests"] == [
        {"not_null": {"config": {"meta": {"prodtwin": "generated"}}}},
        own_unique,
    ]

    gift = yaml.safe_load((staging / "stg_gift_cards.yml").read_text())["models"][0]
    gift_columns = {c["name"]: c for c in gift["columns"]}
    assert gift_columns["Balance"]["quote"] is True
    assert {
        "relationships": {
            "arguments": {"to": "ref('stg_customers')", "field": "id"},
            "config": {"meta": {"prodtwin": "generated"}},
        }
    } in gift_columns["customer_id"]["data_tests"]
    assert '"Balance"' in (staging / "stg_gift_cards.sql").read_text()
    sources = yaml.safe_load((staging / "__sources.yml").read_text())["sources"][0]
    assert [t["name"] for t in sources["tables"]][-2:] == ["tags", "event_log"]
    assert "gift_cards" in [t["name"] for t in sources["tables"]]

    # Running it again changes nothing; dbt accepts the merged files.
    assert all(
        line.startswith(("unchanged", "note:"))
        for line in scaffold(_schema_changed(report.schema), project)
    )
    code, output = run_dbt(
        project, "dev", dbt_env(envs["dev"], "public"), ["parse"], work_dir=tmp_path / "dbt"
    )
    assert code == 0, output
    assert "Deprecat" not in output and "[WARNING]" not in output, output


def test_an_orphan_fails_the_relationships_test(
    demo_source: str, make_database, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = make_database("dbt_orphan")
    subset = ["customers", "addresses", "employees", "orders"]
    report = run_refresh(make_config(demo_source, {"dev": url}, tables={"include": subset}))
    project = copy_project(tmp_path, with_staging=False)
    scaffold(report.schema, project)
    assert sorted(p.name for p in (project / STAGING).glob("*.sql")) == sorted(
        f"stg_{t}.sql" for t in subset
    )
    with psycopg.connect(url) as conn:
        conn.execute("alter table orders drop constraint orders_customer_id_fkey")
        conn.execute("update orders set customer_id = -5 where id = (select min(id) from orders)")

    code, output, counts = build(project, url, tmp_path)

    assert code == 1, output
    failed = re.findall(r" FAIL (\d+) (\S+) ", output)
    assert failed == [("1", "relationships_stg_orders_customer_id__id__ref_stg_customers_")], output
    assert counts["error"] == 1 and counts["skip"] == 0 and counts["pass"] > 10


SHAPES = """
create table "Warehouse" ("Code" text primary key, "select" int not null);
create table bin (
    warehouse_code text not null references "Warehouse" ("Code"),
    "Bin No" int not null,
    label text,
    primary key (warehouse_code, "Bin No"),
    unique (label, warehouse_code)
);
create table stock (
    id int generated always as identity primary key,
    warehouse_code text,
    bin_no int,
    "user" text not null,
    constraint stock_bin_fkey foreign key (warehouse_code, bin_no) references bin (warehouse_code, "Bin No")
);
insert into "Warehouse" select 'WH' || i, i from generate_series(1, 3) i;
insert into bin select 'WH' || w, b, case when b % 2 = 0 then 'L' || b end
  from generate_series(1, 3) w, generate_series(1, 4) b;
insert into stock (warehouse_code, bin_no, "user")
  select case when i % 5 = 0 then null else 'WH' || (1 + i % 3) end, 1 + i % 4, 'u' || i
  from generate_series(1, 40) i;
"""


def test_quoted_names_and_composite_keys(make_database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = make_database("dbt_shapes")
    with psycopg.connect(url) as conn:
        conn.execute(SHAPES)
    with source_snapshot(url) as conn:
        schema = introspect(conn, "public")
    project = copy_project(tmp_path, with_staging=False)
    scaffold(schema, project)
    staging = project / STAGING
    assert "{{ source('prodtwin', 'Warehouse') }}" in (staging / "stg_warehouse.sql").read_text()
    assert '"Code",\n        "select"\n' in (staging / "stg_warehouse.sql").read_text()
    stock = yaml.safe_load((staging / "stg_stock.yml").read_text())["models"][0]
    assert stock["data_tests"] == [
        {
            "relationships_multi": {
                "arguments": {
                    "columns": ["warehouse_code", "bin_no"],
                    "to": "ref('stg_bin')",
                    "fields": ["warehouse_code", "Bin No"],
                },
                "config": {"meta": {"prodtwin": "generated"}},
            }
        }
    ]

    code, output, counts = build(project, url, tmp_path)
    assert code == 0, output
    for name in (
        "unique_stg_warehouse__Code_",
        "not_null_stg_bin__Bin_No_",
        "relationships_stg_bin_warehouse_code___Code___ref_stg_warehouse_",
        "unique_combination_stg_bin_warehouse_code__Bin_No",
        "unique_combination_stg_bin_label__warehouse_code",
        "relationships_multi_stg_stock_warehouse_code__bin_no__warehouse_code__Bin_No__ref_stg_bin_",
    ):
        assert f" PASS {name} " in output, name
    assert counts == {"pass": 13, "warn": 0, "error": 0, "skip": 0}

    with psycopg.connect(url) as conn:
        conn.execute("alter table stock drop constraint stock_bin_fkey")
        conn.execute(
            "insert into stock (warehouse_code, bin_no, \"user\") values ('WH1', 99, 'x'), (null, 99, 'y')"
        )
    code, output, counts = build(project, url, tmp_path)
    assert code == 1, output
    failed = re.findall(r" FAIL (\d+) (\S+) ", output)
    assert (
        len(failed) == 1
        and failed[0][0] == "1"
        and failed[0][1].startswith("relationships_multi_stg_stock")
    ), output
