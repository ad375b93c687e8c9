"""Bad input, one test each: it works (and the published data is valid) or it fails with one
clear ProdtwinError naming the table, column or setting, and the previous warehouse stays.

Each data case is a schema of its own in one shared source database, published to the schema
of the same name in one shared warehouse; no gate or quality report (test_publish covers them).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from synth_assets.config import config_from_dict, load_config
from synth_assets.errors import ConfigError, ProdtwinError
from synth_assets.publish import MARKER
from synth_assets.refresh import check_environments, publish_to, read_source, synthesize
from synth_assets.retry import Backoff
from tests.conftest import make_config
from tests.helpers import orphan_counts

REPO = Path(__file__).resolve().parents[1]
ONCE = Backoff(attempts=1)


@dataclass(frozen=True)
class Case:
    id: str
    ddl: str  # run with search_path set to the case's schema
    error: str | None = None  # regex of the ProdtwinError; None: it must publish


def rows(table: str, select: str, n: int = 30) -> str:
    return f"insert into {table} select {select} from generate_series(1, {n}) i;"


DATA_CASES = [
    Case("empty", "create table t (id int primary key, v text);"),
    Case("one_row", "create table t (id int primary key, v text); insert into t values (1, 'x');"),
    Case(
        "all_null",
        "create table t (id int primary key, v numeric, w text);" + rows("t", "i, null, null"),
    ),
    Case(
        "constant",
        "create table t (id int primary key, v int not null, w text);" + rows("t", "i, 7, 'same'"),
    ),
    Case(
        "two_hundred_columns",
        "create table t (id int primary key, "
        + ", ".join(f"c{i} int" for i in range(199))
        + ");"
        + rows("t", "i, " + ", ".join(f"i % {i + 2}" for i in range(199)), 12),
    ),
    Case(
        "long_text",
        "create table t (id int primary key, body text not null);"
        + rows("t", "i, repeat(md5(i::text), 3000)", 8),
    ),
    Case(
        "bytea",
        "create table t (id int primary key, blob bytea, small bytea not null);"
        + rows("t", "i, decode(repeat(md5(i::text), 10), 'hex'), '\\x00ff'::bytea"),
    ),
    Case(
        "arrays",
        "create table t (id int primary key, ints int[], tags text[] not null);"
        + rows("t", "i, array[i, i + 1], array['a', 'b' || i]"),
    ),
    Case(
        "json",
        "create table t (id int primary key, j json, jb jsonb not null);"
        + rows("t", "i, json_build_object('k', i), jsonb_build_object('a', array[i])"),
    ),
    Case(
        "ranges",
        "create table t (id int primary key, r int4range, tr tstzrange not null);"
        + rows("t", "i, int4range(i, i + 5), tstzrange(now(), now() + interval '1 day')"),
    ),
    Case(
        "intervals",
        "create table t (id int primary key, span interval not null);"
        + rows("t", "i, i * interval '90 minutes'"),
    ),
    Case(
        "money",
        "create table t (id int primary key, price money not null);"
        + rows("t", "i, (i * 1.25)::money"),
    ),
    Case(
        "geometric",
        "create table t (id int primary key, p point, b box, c circle, poly polygon);"
        + rows(
            "t",
            "i, point(i, i), box(point(0, 0), point(i, i)), circle(point(i, 0), 1), "
            "polygon(box(point(0, 0), point(1, i)))",
        ),
    ),
    Case(
        "network_uuid_bits",
        "create table t (id uuid primary key, ip inet, net cidr, mac macaddr, flags bit(8), "
        "doc tsvector);"
        + rows(
            "t",
            "gen_random_uuid(), ('10.0.0.' || i)::inet, '10.0.0.0/24', "
            "'08:00:2b:01:02:03', (i % 256)::bit(8), to_tsvector('simple', 'word ' || i)",
        ),
    ),
    Case(
        "composite_type",
        "create type pair as (a int, b text); create table t (id int primary key, p pair);"
        + rows("t", "i, row(i, 'x')::pair"),
        error=r"table t: .*pair",
    ),
    Case(
        "enum_and_domain",
        "create type mood as enum ('sad', 'ok', 'happy');"
        "create domain percent as numeric(5,2) check (value between 0 and 100);"
        "create table t (id int primary key, m mood not null, p percent);"
        + rows("t", "i, (array['sad','ok','happy']::mood[])[1 + i % 3], i % 100"),
    ),
    Case(
        "spaces",
        'create table "my table" ("the id" int primary key, "a value" text);'
        'create index "my index" on "my table" ("a value");' + rows('"my table"', "i, 'v' || i"),
    ),
    Case(
        "quotes",
        'create table "it""s" ("q""id" int primary key, "say ""hi""" text);'
        'create index "i""dx" on "it""s" ("say ""hi""");' + rows('"it""s"', "i, 'v' || i"),
    ),
    Case(
        "upper_case",
        'create table "Customer" ("ID" int primary key, "Name" text not null);'
        'create table "Order" ("ID" int primary key, "CustomerID" int references "Customer");'
        + rows('"Customer"', "i, 'n' || i")
        + rows('"Order"', "i, 1 + i % 30"),
    ),
    Case(
        "unicode",
        'create table "café" ("ñ" int primary key, "名前" text not null, "emoji😀" text);'
        + rows('"café"', "i, '名' || i, '😀'"),
    ),
    Case(
        "reserved_words",
        'create table "order" ("select" int primary key, "from" text, "where" date);'
        'create table "group" ("user" int primary key, "order" int references "order");'
        'create index "index" on "order" ("from");'
        + rows('"order"', "i, 'f' || i, date '2024-01-01' + i")
        + rows('"group"', "i, 1 + i % 30"),
    ),
    Case(
        "no_primary_key",
        "create table t (a int, b text, c timestamptz);"
        + rows("t", "i % 5, 'b' || (i % 3), now() - i * interval '1 hour'"),
    ),
    Case(
        "not_null_cycle",
        "create table a (id int primary key, b_id int not null);"
        "create table b (id int primary key, a_id int not null references a(id));"
        "alter table a add foreign key (b_id) references b(id);",
        error=r"(?s)cycle.*\ba\b.*\bb\b",
    ),
    Case(
        "unsatisfiable_check",
        "create table t (id int primary key, v int not null constraint v_mod check (v % 97 = 13));"
        + rows("t", "i, 13 + 97 * i"),
        error=r"table t: .*CHECK constraint v_mod",
    ),
    Case(
        "generated_and_identity",
        "create table t (id int generated always as identity primary key, a int not null, "
        "twice int generated always as (a * 2) stored);"
        "insert into t (a) select i from generate_series(1, 30) i;",
    ),
]


@pytest.fixture(scope="module")
def databases(make_database):  # type: ignore[no-untyped-def]
    return make_database("bad_src"), make_database("bad_wh")


def _previous(wh: str, schema: str) -> None:
    """A warehouse as an earlier refresh left it: one prodtwin table with one row."""
    with psycopg.connect(wh) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("create table {}.earlier (id int)").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("insert into {}.earlier values (1)").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL("comment on table {}.earlier is {}").format(
                sql.Identifier(schema), sql.Literal(MARKER)
            )
        )


def _columns(url: str, schema: str) -> dict[tuple[str, str], str]:
    with psycopg.connect(url) as conn:
        return {
            (r[0], r[1]): r[2]
            for r in conn.execute(
                "select c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
                "from pg_attribute a join pg_class c on c.oid = a.attrelid "
                "join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relkind in ('r', 'p') and a.attnum > 0 "
                "and not a.attisdropped",
                (schema,),
            )
        }


def _counts(url: str, schema: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(
                sql.SQL("select count(*) from {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(t)
                )
            ).fetchone()[0]
            for t in tables
        }


@pytest.mark.parametrize("case", DATA_CASES, ids=lambda c: c.id)
def test_data(case: Case, databases) -> None:  # type: ignore[no-untyped-def]
    src, wh = databases
    name = f"c_{case.id}"
    with psycopg.connect(src) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("set search_path to {}, public").format(sql.Identifier(name)))
        conn.execute(case.ddl)
    _previous(wh, name)
    config = make_config(src, {"dev": wh})
    config = config.model_copy(
        update={
            "source": config.source.model_copy(update={"schema_": name}),
            "environments": {
                "dev": config.environments["dev"].model_copy(update={"schema_": name})
            },
        }
    )
    try:
        schema, plan, data = read_source(config, ONCE)
        synthetic, _ = synthesize(config, schema, plan, data)
        publish_to(config, "dev", schema, plan, synthetic, backoff=ONCE)
    except ProdtwinError as error:
        if case.error is None:
            raise
        assert len(str(error).splitlines()) <= 3, str(error)
        assert re.search(case.error, str(error)), str(error)
        assert _counts(wh, name, ["earlier"]) == {"earlier": 1}  # the previous one is intact
        with psycopg.connect(wh) as conn:
            left = conn.execute(
                "select count(*) from pg_namespace where nspname = %s", (f"{name}__staging",)
            ).fetchone()[0]
        assert left == 0
        return
    assert case.error is None, f"expected an error matching {case.error}"
    # valid: the source's tables with the source's column types, the expected rows, no orphans
    source_cols, published_cols = _columns(src, name), _columns(wh, name)
    assert published_cols == source_cols
    tables = sorted({t for t, _ in source_cols})
    expected = {t: len(data.frames[t]) for t in tables}
    assert _counts(wh, name, tables) == expected
    assert all(v == 0 for v in orphan_counts(wh, schema, name).values())
    assert _counts(wh, f"{name}__previous", ["earlier"]) == {"earlier": 1}


# --- configuration ---------------------------------------------------------------------------

GOOD = {
    "source": {"url": "postgresql://u@localhost/prod"},
    "environments": {"dev": {"url": "postgresql://u@localhost/dev"}},
}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**GOOD, "sede": 1}, r"sede: unknown key"),
        (
            {**GOOD, "environments": {"dev": {"url": "postgresql://u@h/d", "shema": "x"}}},
            r"environments\.dev\.shema: unknown key",
        ),
        ({**GOOD, "source": {"url": "${PT_NOT_SET_ANYWHERE}"}}, r"source\.url: .*PT_NOT_SET"),
        ({**GOOD, "source": {"url": "localhost:5432/prod"}}, r"source\.url: must be a"),
        ({**GOOD, "environments": {}}, r"environments: .*at least one environment"),
        (
            {**GOOD, "environments": {"dev": {"url": "postgresql://u@h/d", "readers": "qa"}}},
            r"environments\.dev\.readers",
        ),
    ],
    ids=["unknown_key", "unknown_nested_key", "missing_env_var", "bad_url", "no_env", "readers"],
)
def test_config_rejected_with_the_setting_named(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data, environ={})


def test_duplicate_environment_names(tmp_path: Path) -> None:
    path = tmp_path / "prodtwin.yaml"
    path.write_text(
        "source: {url: 'postgresql://u@h/p'}\nenvironments:\n"
        "  dev: {url: 'postgresql://u@h/a'}\n  dev: {url: 'postgresql://u@h/b'}\n"
    )
    with pytest.raises(ConfigError, match=r"line 4: 'dev' is given twice"):
        load_config(path)


def test_environment_equal_to_the_source(databases) -> None:  # type: ignore[no-untyped-def]
    src, _ = databases
    with pytest.raises(ConfigError, match=r"environments\.dev points at the source database"):
        check_environments(make_config(src, {"dev": src}), ["dev"])


def test_unknown_environment_named_on_the_command_line(databases) -> None:  # type: ignore[no-untyped-def]
    src, wh = databases
    with pytest.raises(ConfigError, match=r"environment qa is not in prodtwin\.yaml"):
        check_environments(make_config(src, {"dev": wh}), ["qa"])


def test_unreachable_host() -> None:
    config = make_config("postgresql://u:pw@127.0.0.1:1/prod", {"dev": "postgresql://u@h/dev"})
    with pytest.raises(
        ProdtwinError, match=r"cannot connect to the source at postgresql://u:\*\*\*@127"
    ):
        read_source(config, ONCE)


def test_unknown_source_schema_and_unknown_table(databases) -> None:  # type: ignore[no-untyped-def]
    src, wh = databases
    config = make_config(src, {"dev": wh})
    wrong = config.model_copy(
        update={"source": config.source.model_copy(update={"schema_": "nope"})}
    )
    with pytest.raises(ProdtwinError, match=r"schema 'nope' does not exist .* source\.schema"):
        read_source(wrong, ONCE)
    with psycopg.connect(src) as conn:
        conn.execute("create table if not exists public.present (id int primary key)")
    included = make_config(src, {"dev": wh}, tables={"include": ["present", "absent"]})
    with pytest.raises(ConfigError, match=r"tables\.include names table\(s\) not in .*absent"):
        read_source(included, ONCE)


def _cli(tmp_path: Path, config: dict, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    (tmp_path / "prodtwin.yaml").write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "synth_assets.cli", "refresh", "--config", "prodtwin.yaml"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sed": 1}, "sed: unknown key"),
        ({"source": {"url": "${PT_UNSET_VAR}"}}, "PT_UNSET_VAR is not set"),
        ({"tables": {"include": ["absent"]}}, r"tables\.include names table\(s\) not in"),
        ("same", "points at the source database"),
    ],
    ids=["unknown_key", "missing_env_var", "unknown_table", "env_is_source"],
)
def test_command_line_gives_one_message_and_no_traceback(
    change, message, databases, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    src, wh = databases
    config: dict = {"source": {"url": src}, "environments": {"dev": {"url": wh}}}
    if change == "same":
        config["environments"]["dev"]["url"] = src
    else:
        config.update(change)
    done = _cli(tmp_path, config)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(message, done.stderr), done.stderr
    assert len([line for line in done.stderr.splitlines() if line.startswith("prodtwin:")]) == 1
