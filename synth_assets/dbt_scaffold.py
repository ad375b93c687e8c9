"""dbt staging models over the published synthetic schema, scaffolded from the schema model.

``scaffold(schema, project_dir)`` writes, under ``models/staging`` of a dbt project:

* ``__sources.yml``: the source ``prodtwin`` (the published schema, which is the dbt target
  schema) with one entry per table;
* ``stg_<table>.sql``: a jaffle-shop style staging view (CTEs ``source`` then ``renamed``);
* ``stg_<table>.yml``: the columns and the data tests the schema implies: ``unique`` and
  ``not_null`` on primary keys (``unique_combination`` for composite keys and composite
  UNIQUE constraints, ``unique`` for single-column ones), ``not_null`` on NOT NULL foreign-key
  columns and ``relationships`` to the parent's staging model for every foreign key
  (``relationships_multi`` for composite ones). The two generic tests live in the project's
  ``tests/generic``.

What scaffold rewrites and what it keeps (run it again whenever the production schema changes):

* ``stg_<table>.sql`` is written once, when it is missing; after that it is yours and never
  overwritten. When the table has a column the file does not mention, scaffold says so.
* In the yml files, column entries and data tests carrying the marker
  ``config: {meta: {prodtwin: generated}}`` are generated: they are rewritten from the schema on
  every run (edits inside them are lost). Everything else is a person's and is kept as written:
  descriptions, tags, extra tests, extra columns, other models or sources in the same file.
  ``description`` keys scaffold writes are only written when missing, so they are yours too.
* To change a generated test (severity, where, ...) or disable it (``enabled: false``), delete
  its marker: it is yours from then on, and scaffold does not add the same test (same name and
  arguments) again.
* A column that left its table loses its generated tests; its entry is removed only if nothing
  a person wrote is left in it. A table that left the schema is reported; its files and its
  source entry are kept, to be deleted by hand.
* A yml file is rewritten only when its content changes. PyYAML cannot keep comments in place,
  so when a file a person commented is rewritten, the comments are kept at its end.

``dbt_env`` turns a warehouse URL into the ``PRODTWIN_DBT_*`` variables ``profiles.yml`` reads
and ``run_dbt`` runs dbt on the project with them. Run ``dbt build`` after every refresh: the
publish swap renames the published schema to ``<schema>__previous``, so views built before it
still read the previous copy, and the next refresh drops them with that schema.
"""

from __future__ import annotations

import copy
import getpass
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import yaml
from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS

from synth_assets.db import libpq_url
from synth_assets.errors import ProdtwinError
from synth_assets.schema import Schema, Table

SOURCE = "prodtwin"
STAGING = Path("models") / "staging"
SOURCES_FILE = "__sources.yml"
GENERATED = "generated"
MARK: dict[str, Any] = {"meta": {"prodtwin": GENERATED}}
HEADER = (
    "# Scaffolded by prodtwin (synth_assets/dbt_scaffold.py) from the production schema.\n"
    "# Entries marked `prodtwin: generated` are rewritten by the next scaffold: delete the\n"
    "# marker to own one. Everything else in this file is yours and is kept.\n"
)
KEPT_COMMENTS = "# Comments kept by prodtwin scaffold (YAML comments cannot stay in place):"
TEST_KEYS = ("data_tests", "tests")
# Keys dbt reads beside a generic test's arguments (TestBuilder.CONFIG_ARGS and the top level).
TEST_NON_ARGUMENTS = {
    "config", "name", "description", "column_name", "severity", "tags", "enabled", "where",
    "limit", "warn_if", "error_if", "fail_calc", "store_failures", "store_failures_as",
    "database", "schema", "alias", "meta",
}  # fmt: skip
KEY_ORDER = {
    "document": ("version", "sources", "models"),
    "model": ("name", "description", "config", "columns", "data_tests", "tests"),
    "source": ("name", "description", "schema", "config", "tables"),
    "column": ("name", "description", "data_type", "quote", "config", "data_tests", "tests"),
    "test": ("arguments", "config"),
}
PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_$]*\Z")
# What the dbt console script runs (``-m dbt.cli.main`` warns: dbt.cli imports its main).
DBT_MAIN = "import sys; from dbt.cli.main import cli; sys.exit(cli(prog_name='dbt'))"
DBT_OUTPUT_FLAGS = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"}


# --- names -------------------------------------------------------------------------------------


def needs_quotes(name: str) -> bool:
    """Whether PostgreSQL needs the identifier in double quotes (mixed case, spaces, keywords)."""
    return not PLAIN_NAME.match(name) or name in RESERVED_WORDS


def sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if needs_quotes(name) else name


def model_names(schema: Schema) -> dict[str, str]:
    """``stg_<table>`` for every table, made a safe, unique file name (lower case, ``_``)."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for table in schema.tables:
        base = "stg_" + (re.sub(r"[^a-z0-9_]+", "_", table.lower()).strip("_") or "table")
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names[table] = name
    return names


def _jinja_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- what the schema implies -------------------------------------------------------------------


def staging_sql(table: Table) -> str:
    columns = ",\n".join(f"        {sql_identifier(c.name)}" for c in table.columns)
    return (
        "with source as (\n\n"
        f"    select * from {{{{ source({_jinja_string(SOURCE)}, {_jinja_string(table.name)}) }}}}"
        "\n\n),\n\n"
        "renamed as (\n\n"
        "    select\n"
        f"{columns}\n\n"
        "    from source\n\n"
        ")\n\n"
        "select * from renamed\n"
    )


def _test(name: str, **arguments: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"arguments": arguments} if arguments else {}
    body["config"] = copy.deepcopy(MARK)
    return {name: body}


@dataclass
class TableTests:
    columns: dict[str, list[dict[str, Any]]]
    model: list[dict[str, Any]]
    notes: list[str]


def table_tests(schema: Schema, table: Table, models: dict[str, str]) -> TableTests:
    """The data tests the keys of ``table`` imply, per column and on the model."""
    columns: dict[str, list[dict[str, Any]]] = {c.name: [] for c in table.columns}
    model: list[dict[str, Any]] = []
    notes: list[str] = []

    def add(column: str, test: dict[str, Any]) -> None:
        if _test_id(test) not in {_test_id(t) for t in columns[column]}:
            columns[column].append(test)

    unique_sets = list(dict.fromkeys(s for s in table.unique_sets() if s))
    for columns_set in unique_sets:
        if len(columns_set) == 1:
            add(columns_set[0], _test("unique"))
        else:
            model.append(_test("unique_combination", columns=list(columns_set)))
    for column in table.primary_key:
        add(column, _test("not_null"))
    for fk in table.foreign_keys:
        for column in fk.columns:
            if not table.column(column).nullable:
                add(column, _test("not_null"))
        if fk.ref_table not in models:
            notes.append(
                f"{table.name}: no relationships test for {fk.name}: {fk.ref_table} is not in "
                "the schema"
            )
            continue
        to = f"ref({_jinja_string(models[fk.ref_table])})"
        if len(fk.columns) == 1:
            add(
                fk.columns[0],
                _test("relationships", to=to, field=sql_identifier(fk.ref_columns[0])),
            )
        else:
            model.append(
                _test(
                    "relationships_multi",
                    columns=list(fk.columns),
                    to=to,
                    fields=list(fk.ref_columns),
                )
            )
    return TableTests(columns, model, notes)


# --- merging generated entries into what a person wrote -----------------------------------------


def _is_generated(entry: Any) -> bool:
    """An entry (a column, or a test's body) that carries the marker."""
    if not isinstance(entry, dict):
        return False
    config = entry.get("config")
    meta = config.get("meta") if isinstance(config, dict) else None
    return isinstance(meta, dict) and meta.get("prodtwin") == GENERATED


def _test_parts(test: Any) -> tuple[str, Any]:
    if isinstance(test, str):
        return test, {}
    if isinstance(test, dict) and len(test) == 1:
        name, body = next(iter(test.items()))
        return str(name), body if isinstance(body, dict) else {}
    if isinstance(test, dict) and "test_name" in test:
        return str(test["test_name"]), test
    return json.dumps(test, sort_keys=True, default=str), {}


def _is_generated_test(test: Any) -> bool:
    return _is_generated(_test_parts(test)[1])


def _test_id(test: Any) -> str:
    """A test's identity for dbt: its name and its arguments, wherever they are written."""
    name, body = _test_parts(test)
    arguments = dict(body.get("arguments") or {})
    arguments.update({k: v for k, v in body.items() if k not in TEST_NON_ARGUMENTS | {"arguments"}})
    arguments.pop("test_name", None)
    return json.dumps([name, arguments], sort_keys=True, default=str)


def _tests_key(entry: dict[str, Any]) -> str:
    return "tests" if "tests" in entry and "data_tests" not in entry else "data_tests"


def _merge_tests(entry: dict[str, Any], generated: list[dict[str, Any]]) -> None:
    """Replace the generated tests of ``entry``; the others stay, after them, in their order."""
    key = _tests_key(entry)
    existing = entry.get(key) or []
    if not isinstance(existing, list):
        raise ProdtwinError(f"{entry.get('name')}: {key} is not a list")
    own = [t for t in existing if not _is_generated_test(t)]
    own_ids = {_test_id(t) for t in own}
    tests = [t for t in generated if _test_id(t) not in own_ids] + own
    if tests:
        entry[key] = tests
    else:
        entry.pop(key, None)


def _set_mark(entry: dict[str, Any]) -> None:
    config = entry.get("config")
    if not isinstance(config, dict):
        config = entry["config"] = {}
    meta = config.get("meta")
    if not isinstance(meta, dict):
        meta = config["meta"] = {}
    meta["prodtwin"] = GENERATED


def _drop_mark(entry: dict[str, Any]) -> None:
    config = entry.get("config", {})
    config.get("meta", {}).pop("prodtwin", None)
    if not config.get("meta", True):
        del config["meta"]
    if not entry.get("config", True):
        del entry["config"]


def _ordered(entry: dict[str, Any], kind: str) -> dict[str, Any]:
    order = KEY_ORDER[kind]
    first = [k for k in order if k in entry]
    return {k: entry[k] for k in first + [k for k in entry if k not in order]}


def _merge_columns(
    model: dict[str, Any], table: Table, tests: TableTests, notes: list[str]
) -> None:
    existing = model.get("columns") or []
    if not isinstance(existing, list):
        raise ProdtwinError(f"{model.get('name')}: columns is not a list")
    unused = list(existing)
    columns = []
    for column in table.columns:
        match = next(
            (c for c in unused if isinstance(c, dict) and c.get("name") == column.name), None
        )
        entry: dict[str, Any] = {"name": column.name}
        if match is not None:
            unused.remove(match)
            entry = {**match, "name": column.name}
        entry["data_type"] = column.sql_type
        if needs_quotes(column.name):
            entry["quote"] = True
        _set_mark(entry)
        _merge_tests(entry, tests.columns[column.name])
        for key in TEST_KEYS:
            if key in entry:
                entry[key] = [_ordered_test(t) for t in entry[key]]
        columns.append(_ordered(entry, "column"))
    for entry in unused:
        if _is_generated(entry):
            name = entry.get("name")
            _drop_mark(entry)
            entry.pop("data_type", None)
            entry.pop("quote", None)
            _merge_tests(entry, [])
            if set(entry) <= {"name"}:
                notes.append(f"{model['name']}: column {name} left {table.name}: entry removed")
                continue
            notes.append(
                f"{model['name']}: column {name} left {table.name}: its generated tests are "
                "removed, the rest of its entry is kept"
            )
        columns.append(entry)
    model["columns"] = columns


def _ordered_test(test: Any) -> Any:
    if _is_generated_test(test):
        name, body = _test_parts(test)
        return {name: _ordered(body, "test")}
    return test


def merge_model_yml(
    document: Any, model_name: str, table: Table, tests: TableTests, notes: list[str]
) -> dict[str, Any]:
    """The model's yml document with its generated entries refreshed, the rest as it was."""
    document = copy.deepcopy(document) if isinstance(document, dict) else {}
    document.setdefault("version", 2)
    models = document.get("models") or []
    if not isinstance(models, list):
        raise ProdtwinError(f"{model_name}: models is not a list")
    model = next((m for m in models if isinstance(m, dict) and m.get("name") == model_name), None)
    if model is None:
        model = {"name": model_name}
        models.append(model)
    model.setdefault(
        "description",
        f"One row per row of `{table.name}` in the synthetic copy prodtwin publishes.",
    )
    _merge_columns(model, table, tests, notes)
    _merge_tests(model, tests.model)
    for key in TEST_KEYS:
        if key in model:
            model[key] = [_ordered_test(t) for t in model[key]]
    document["models"] = [_ordered(m, "model") if m is model else m for m in models]
    return _ordered(document, "document")


def merge_sources_yml(document: Any, schema: Schema, notes: list[str]) -> dict[str, Any]:
    """``__sources.yml`` with an entry for every table of the schema; nothing is removed."""
    document = copy.deepcopy(document) if isinstance(document, dict) else {}
    document.setdefault("version", 2)
    sources = document.get("sources") or []
    if not isinstance(sources, list):
        raise ProdtwinError(f"{SOURCES_FILE}: sources is not a list")
    source = next((s for s in sources if isinstance(s, dict) and s.get("name") == SOURCE), None)
    if source is None:
        source = {"name": SOURCE}
        sources.append(source)
    source.setdefault(
        "description",
        f"The synthetic copy of the production schema `{schema.name}` prodtwin publishes in "
        "each warehouse: the dbt target schema.",
    )
    source.setdefault("schema", "{{ target.schema }}")
    existing = source.get("tables") or []
    if not isinstance(existing, list):
        raise ProdtwinError(f"{SOURCES_FILE}: tables of source {SOURCE} is not a list")
    by_name = {t.get("name"): t for t in existing if isinstance(t, dict)}
    tables = [by_name.get(name) or {"name": name} for name in schema.tables]
    for entry in existing:
        if not (isinstance(entry, dict) and entry.get("name") in schema.tables):
            tables.append(entry)
            if isinstance(entry, dict) and entry.get("name"):
                notes.append(
                    f"table {entry['name']} is no longer in the schema: its source entry and "
                    "staging files are kept; delete them by hand if it is gone for good"
                )
    source["tables"] = tables
    document["sources"] = [_ordered(s, "source") if s is source else s for s in sources]
    return _ordered(document, "document")


# --- YAML text -----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key; the marker on one line."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=data == MARK)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    """Short lists of names (the columns of a composite key) on one line."""
    flow = bool(data) and all(isinstance(v, str) and len(v) < 40 for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


def _comments(text: str) -> list[str]:
    """The comments of a YAML text: whole lines, and the ends of lines.

    A ``#`` counts when removing what follows it leaves the parsed document as it was, so one in
    a quoted string or a block scalar (a markdown heading in a description) does not.
    """
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    lines = text.splitlines()
    found = []
    for number, line in enumerate(lines):
        for match in re.finditer(r"(?:^|(?<=[ \t]))#", line):
            trial = [*lines[:number], line[: match.start()].rstrip(), *lines[number + 1 :]]
            try:
                same = yaml.safe_load("\n".join(trial)) == parsed
            except yaml.YAMLError:
                same = False
            if same:
                found.append(line[match.start() :].rstrip())
                break
    return found


def yaml_text(document: dict[str, Any], previous: str | None) -> str:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)
    body = re.sub(r"\n(?=[^\s#])", "\n\n", body)  # a blank line between top-level keys
    text = HEADER + "\n" + body
    if previous:
        ours = set(HEADER.splitlines()) | {KEPT_COMMENTS}
        kept = [c for c in _comments(previous) if c not in ours]
        if kept:
            text += "\n" + KEPT_COMMENTS + "\n" + "\n".join(dict.fromkeys(kept)) + "\n"
    return text


# --- scaffold ------------------------------------------------------------------------------------


def _load(path: Path) -> tuple[str | None, Any]:
    if not path.is_file():
        return None, None
    text = path.read_text()
    try:
        return text, yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ProdtwinError(f"{path} is not valid YAML, nothing was written: {error}") from None


def _unmentioned_columns(sql: str, table: Table) -> list[str]:
    lowered = sql.lower()
    missing = []
    for column in table.columns:
        name = column.name if needs_quotes(column.name) else column.name.lower()
        haystack = sql if needs_quotes(column.name) else lowered
        if not re.search(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])", haystack):
            missing.append(column.name)
    return missing


def scaffold(schema: Schema, project_dir: Path) -> list[str]:
    """Create or update the staging models of ``project_dir`` for ``schema``; what changed.

    Every file is computed before any is written: a yml file that cannot be read stops the
    scaffold with nothing changed.
    """
    project_dir = Path(project_dir)
    staging = project_dir / STAGING
    models = model_names(schema)
    notes: list[str] = []
    writes: list[tuple[Path, str]] = []
    lines: list[str] = []

    def plan_yml(path: Path, merge: Any) -> None:
        previous, document = _load(path)
        merged = merge(document)
        if previous is not None and merged == document:
            lines.append(f"unchanged {path.relative_to(project_dir)}")
            return
        writes.append((path, yaml_text(merged, previous)))
        lines.append(f"{'updated' if previous else 'created'} {path.relative_to(project_dir)}")

    plan_yml(staging / SOURCES_FILE, lambda doc: merge_sources_yml(doc, schema, notes))
    for table in schema.tables.values():
        name = models[table.name]
        sql_path = staging / f"{name}.sql"
        if sql_path.is_file():
            missing = _unmentioned_columns(sql_path.read_text(), table)
            note = (
                f" (it does not mention column(s) {', '.join(missing)} of {table.name})"
                if missing
                else ""
            )
            lines.append(f"unchanged {sql_path.relative_to(project_dir)}: kept as written{note}")
        else:
            writes.append((sql_path, staging_sql(table)))
            lines.append(f"created {sql_path.relative_to(project_dir)}")
        tests = table_tests(schema, table, models)
        notes.extend(tests.notes)
        plan_yml(
            staging / f"{name}.yml",
            lambda doc, name=name, table=table, tests=tests: merge_model_yml(
                doc, name, table, tests, notes
            ),
        )

    staging.mkdir(parents=True, exist_ok=True)
    for path, text in writes:
        path.write_text(text)
    return lines + [f"note: {n}" for n in notes]


# --- running dbt ---------------------------------------------------------------------------------


def dbt_env(url: str, schema: str) -> dict[str, str]:
    """The ``PRODTWIN_DBT_*`` variables ``profiles.yml`` reads, for a PostgreSQL URL.

    ``postgresql://user:pw@host:port/db`` and ``postgresql://user:@/db?host=/socket/dir`` (a
    unix-socket directory, which libpq and so dbt-postgres accept as the host) both work. As with
    libpq, the host defaults to localhost, the port to 5432 and the user to the login name.
    """
    try:
        info = psycopg.conninfo.conninfo_to_dict(libpq_url(url))
    except psycopg.ProgrammingError:
        raise ProdtwinError("the warehouse URL cannot be parsed") from None
    user = str(info.get("user") or getpass.getuser())
    return {
        "PRODTWIN_DBT_HOST": str(info.get("host") or "localhost"),
        "PRODTWIN_DBT_PORT": str(info.get("port") or 5432),
        "PRODTWIN_DBT_USER": user,
        "PRODTWIN_DBT_PASSWORD": str(info.get("password") or ""),
        "PRODTWIN_DBT_DBNAME": str(info.get("dbname") or user),
        "PRODTWIN_DBT_SCHEMA": schema,
    }


def run_dbt(
    project_dir: Path,
    target: str,
    env: dict[str, str],
    args: list[str],
    *,
    work_dir: Path | None = None,
    timeout: float | None = None,
) -> tuple[int, str]:
    """Run ``dbt <args>`` on the project for ``target``; its exit code and its output.

    dbt runs in a child process of this Python, as its console script does: ``env_var()`` reads
    the process environment, and dbt's global flags, adapters and logging would otherwise stay in
    the caller's process (a Dagster run, a test session). Its target and log folders go to
    ``work_dir``, by default ``.prodtwin/dbt/<target>`` beside the project, never into it.
    """
    project_dir = Path(project_dir).resolve()
    work = Path(work_dir) if work_dir else project_dir.parent / ".prodtwin" / "dbt" / target
    work.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-c", DBT_MAIN, *args,
        "--project-dir", str(project_dir),
        "--profiles-dir", str(project_dir),
        "--target", target,
        "--log-path", str(work / "logs"),
    ]  # fmt: skip
    child_env = {
        **os.environ,
        **DBT_OUTPUT_FLAGS,
        "DBT_TARGET_PATH": str(work / "target"),  # not every command has --target-path
        **env,
    }
    try:
        done = subprocess.run(
            command,
            env=child_env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        output = error.stdout or ""
        output = output.decode() if isinstance(output, bytes) else output
        return 124, output + f"\ndbt did not finish in {timeout} s"
    return done.returncode, done.stdout + done.stderr
