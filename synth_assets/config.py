"""prodtwin.yaml, loaded into typed models.

Secrets stay out of the file: ``${VAR}`` is expanded from the environment at load time, and the
models keep URLs as ``SecretStr`` so they never print in logs, reprs or errors.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from synth_assets.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Synthesizer = Literal["gaussian_copula", "ctgan", "tvae", "copula_gan"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_POSTGRES_URL = re.compile(r"^postgres(ql)?(\+psycopg)?://")
_MYSQL_URL = re.compile(r"^(mysql|mariadb)(\+pymysql)?://")


class Database(_Strict):
    """A database and the schema prodtwin reads or writes in it."""

    url: SecretStr
    schema_: str = Field("public", alias="schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def schema_name(self) -> str:
        return self.schema_


class Source(Database):
    """Production: PostgreSQL, or MySQL/MariaDB (whose database is the schema)."""

    @field_validator("url")
    @classmethod
    def _source_url(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not (_POSTGRES_URL.match(raw) or _MYSQL_URL.match(raw)):
            raise ValueError(
                "must be a PostgreSQL URL like postgresql://user:password@host:5432/dbname "
                "or a MySQL/MariaDB URL like mysql+pymysql://user:password@host:3306/dbname"
            )
        return value

    @property
    def dialect(self) -> str:
        return "mysql" if _MYSQL_URL.match(self.url.get_secret_value()) else "postgresql"

    @property
    def schema_name(self) -> str:
        """For MySQL the schema is the database: the one in the URL unless set."""
        if self.dialect == "mysql" and "schema_" not in self.model_fields_set:
            database = urlsplit(self.url.get_secret_value()).path.lstrip("/")
            return unquote(database) or self.schema_
        return self.schema_


class Partition(_Strict):
    """A fact table refreshed a day at a time: Dagster gives its assets daily partitions.

    A day's rows replace that day's rows in the warehouse; the nightly job adds the latest day
    and older days are backfilled. Integer keys of day ``d`` are ``d * max_rows_per_day + n``
    (days counted from ``start``), so days never collide and a re-run reproduces its keys.
    """

    column: str
    granularity: Literal["day"] = "day"
    start: dt.date
    max_rows_per_day: Annotated[int, Field(gt=0)] = 100_000


class Environment(Database):
    """A warehouse prodtwin publishes to: always PostgreSQL, and prodtwin's alone."""

    # the schema may hold tables prodtwin did not create; they move to <schema>__previous at the
    # swap and are dropped by the next one, so this is off unless someone says so
    allow_foreign_objects: bool = False
    # roles that may read (USAGE on the schema, SELECT on its tables): the QA team's
    readers: list[str] = []

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: SecretStr) -> SecretStr:
        if not _POSTGRES_URL.match(value.get_secret_value()):
            raise ValueError(
                "must be a PostgreSQL URL like postgresql://user:password@host:5432/dbname"
            )
        return value


class Rebalance(_Strict):
    """Shift a category column's distribution: ``{column: status, target: {refunded: 0.2}}``.

    The named values get these shares of the synthetic rows; the other values share the rest in
    production's proportions, and every other column is sampled conditional on the value.
    """

    column: str
    target: dict[str, Annotated[float, Field(ge=0, le=1)]]

    @field_validator("target")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("name at least one value and its share, e.g. {refunded: 0.2}")
        if sum(value.values()) > 1 + 1e-9:
            raise ValueError(f"the shares add up to {sum(value.values()):g}, more than 1")
        return value


class TableOverride(_Strict):
    """Per-table settings that differ from the defaults."""

    synthesizer: Synthesizer | None = None
    partition: Partition | None = None
    scale: Annotated[float, Field(gt=0)] | None = None
    pii: list[str] = []
    not_pii: list[str] = []
    keep_rare: list[str] = []  # columns whose rare categories may be reproduced
    rebalance: Rebalance | None = None
    utility_target: str | None = None  # column the utility (TSTR) score predicts
    # lookup data (genres, currencies, shippers): production's rows are published as they are,
    # keys included, so QA's `where genre = 'Rock'` finds rows; personal-data columns are still
    # generated. Never for tables about people or their activity.
    reference: bool = False

    @model_validator(mode="after")
    def _reference_alone(self) -> TableOverride:
        if self.reference:
            clash = [
                name
                for name, value in (
                    ("synthesizer", self.synthesizer),
                    ("partition", self.partition),
                    ("scale", self.scale),
                    ("rebalance", self.rebalance),
                )
                if value is not None
            ]
            if clash:
                them = "them" if len(clash) > 1 else "it"
                raise ValueError(
                    f"reference: true publishes production's rows as they are, so "
                    f"{' and '.join(clash)} cannot apply: remove {them} or the reference setting"
                )
        return self


class Tables(_Strict):
    include: list[str] = []
    exclude: list[str] = []
    overrides: dict[str, TableOverride] = {}


Fraction = Annotated[float, Field(ge=0, le=1)]


class Validation(_Strict):
    """The Great Expectations gate: where suites and reports live, and how strict it is."""

    expectations_dir: str = "expectations"
    reports_dir: str = ".prodtwin/reports"
    null_tolerance: Fraction = 0.05  # synthetic null fraction within +- this of production's
    range_tolerance: Annotated[float, Field(ge=0)] = 0.05  # widen min/max by this share of span
    row_count_tolerance: Fraction = 0.1  # rows within +- this share of production x scale
    max_categories: Annotated[int, Field(gt=0)] = 50


class Privacy(_Strict):
    """The privacy gate's thresholds."""

    holdout_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    dcr_margin: Fraction = 0.2  # plain and relative DCR: synthetic's vs (1 - m) x holdout's
    dcr_rows: Annotated[int, Field(gt=10)] = 2000  # synthetic and holdout rows sampled
    # training rows the distances are measured to (a copy of a row beyond them goes unseen)
    dcr_reference_rows: Annotated[int, Field(gt=10)] = 50_000
    # share of synthetic rows, beyond real unseen rows' share, that may sit far nearer one
    # training row than real rows come to each other (privacy.py, _check_near)
    near_copy_share: Fraction = 0.1
    min_rows_for_dcr: Annotated[int, Field(gt=1)] = 50
    # a category that at most this many production rows have is not reproduced (0: keep all)
    rare_category_count: Annotated[int, Field(ge=0)] = 2


class Orchestration(_Strict):
    """How Dagster runs prodtwin: the snapshot it builds assets from, storage, schedule."""

    snapshot: str = ".prodtwin/schema_snapshot.json"
    storage_dir: str = ".prodtwin/storage"  # fitted models and intermediate tables
    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    concurrency: Annotated[int, Field(gt=0)] = 2
    # multiprocess: steps are processes of the run; k8s: each step (a table) its own pod
    executor: Literal["multiprocess", "k8s"] = "multiprocess"


class Config(_Strict):
    """The whole of prodtwin.yaml."""

    source: Source
    environments: dict[str, Environment]
    seed: int = 42
    scale: Annotated[float, Field(gt=0)] = 1.0
    synthesizer: Synthesizer = "gaussian_copula"
    # fit on a repeatable sample of at most this many rows per table (key statistics, counts and
    # null rates still come from SQL over the whole table); null: every row
    max_rows_per_table: Annotated[int, Field(gt=0)] | None = 100_000
    # a synthetic table of more rows is generated and published this many rows at a time
    # (memory grows with the chunk, not with the table); changing it changes those tables' rows
    chunk_rows: Annotated[int, Field(gt=0)] = 200_000
    # connections that load and key the staging tables side by side (synth_assets.tasks)
    publish_connections: Annotated[int, Field(gt=0, le=16)] = 2
    tables: Tables = Tables()
    validation: Validation = Validation()
    privacy: Privacy = Privacy()
    orchestration: Orchestration = Orchestration()
    # a column that production gained since the snapshot: refuse to publish it, or include it
    schema_changes: Literal["block", "include"] = "block"

    @field_validator("environments")
    @classmethod
    def _at_least_one(cls, value: dict[str, Environment]) -> dict[str, Environment]:
        if not value:
            raise ValueError("name at least one environment, e.g. dev: {url: ..., schema: public}")
        return value

    def override(self, table: str) -> TableOverride:
        return self.tables.overrides.get(table, TableOverride())

    def synthesizer_for(self, table: str) -> Synthesizer:
        return self.override(table).synthesizer or self.synthesizer

    def partitioned(self) -> dict[str, Partition]:
        return {t: o.partition for t, o in self.tables.overrides.items() if o.partition}

    def scale_for(self, table: str) -> float:
        if self.is_reference(table):
            return 1.0  # production's rows, as many as production has
        return self.scale * (self.override(table).scale or 1.0)

    def is_reference(self, table: str) -> bool:
        return self.override(table).reference

    def reference_tables(self) -> frozenset[str]:
        return frozenset(t for t, o in self.tables.overrides.items() if o.reference)


def expand_env(text: str, environ: dict[str, str] | None = None, where: str = "") -> str:
    """Replace ``${VAR}`` with its value; a variable that is not set is an error naming it."""
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(
                f"{where}environment variable {name} is not set: export it or write the value "
                "in the file"
            )
        return env[name]

    return _VAR.sub(substitute, text)


def _expand_tree(node: Any, environ: dict[str, str] | None, path: str) -> Any:
    if isinstance(node, dict):
        return {
            k: _expand_tree(v, environ, f"{path}.{k}" if path else str(k)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_expand_tree(v, environ, f"{path}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):
        return expand_env(node, environ, where=f"{path}: ")
    return node


def _describe(error: ValidationError, origin: str) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"{field}: unknown key (check the spelling; see the README's reference)")
        elif item["type"] == "missing":
            lines.append(f"{field}: required but missing")
        else:
            lines.append(f"{field}: {item['msg'].removeprefix('Value error, ')}")
    return f"{origin} is invalid:\n  " + "\n  ".join(lines)


def config_from_dict(
    data: Any, environ: dict[str, str] | None = None, origin: str = "configuration"
) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin} must be a mapping with source: and environments:")
    expanded = _expand_tree(data, environ, "")
    try:
        return Config.model_validate(expanded)
    except ValidationError as error:
        raise ConfigError(_describe(error, origin)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice (plain YAML keeps the last one, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(
                    f"line {key_node.start_mark.line + 1}: {key!r} is given twice; "
                    "each key (each environment name) may appear once"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    """Read prodtwin.yaml; every problem is one ConfigError naming the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {path} not found (pass --config PATH)")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    return config_from_dict(data, environ, origin=str(path))
