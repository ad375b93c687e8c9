"""prodtwin.yaml, loaded into typed models.

Secrets stay out of the file: ``${VAR}`` is expanded from the environment at load time, and the
models keep URLs as ``SecretStr`` so they never print in logs, reprs or errors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from synth_assets.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Synthesizer = Literal["gaussian_copula", "ctgan", "tvae", "copula_gan"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Database(_Strict):
    """A PostgreSQL database and the schema prodtwin reads or writes in it."""

    url: SecretStr
    schema_: str = Field("public", alias="schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not re.match(r"^postgres(ql)?(\+psycopg)?://", raw):
            raise ValueError(
                "must be a PostgreSQL URL like postgresql://user:password@host:5432/dbname"
            )
        return value

    @property
    def schema_name(self) -> str:
        return self.schema_


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
    scale: Annotated[float, Field(gt=0)] | None = None
    pii: list[str] = []
    not_pii: list[str] = []
    keep_rare: list[str] = []  # columns whose rare categories may be reproduced
    rebalance: Rebalance | None = None
    utility_target: str | None = None  # column the utility (TSTR) score predicts


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
    dcr_margin: Fraction = 0.2  # median DCR(synthetic) >= (1 - margin) x median DCR(holdout)
    dcr_rows: Annotated[int, Field(gt=10)] = 2000
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


class Config(_Strict):
    """The whole of prodtwin.yaml."""

    source: Database
    environments: dict[str, Database]
    seed: int = 42
    scale: Annotated[float, Field(gt=0)] = 1.0
    synthesizer: Synthesizer = "gaussian_copula"
    max_rows_per_table: Annotated[int, Field(gt=0)] | None = None
    tables: Tables = Tables()
    validation: Validation = Validation()
    privacy: Privacy = Privacy()
    orchestration: Orchestration = Orchestration()
    # a column that production gained since the snapshot: refuse to publish it, or include it
    schema_changes: Literal["block", "include"] = "block"

    @field_validator("environments")
    @classmethod
    def _at_least_one(cls, value: dict[str, Database]) -> dict[str, Database]:
        if not value:
            raise ValueError("name at least one environment, e.g. dev: {url: ..., schema: public}")
        return value

    def override(self, table: str) -> TableOverride:
        return self.tables.overrides.get(table, TableOverride())

    def synthesizer_for(self, table: str) -> Synthesizer:
        return self.override(table).synthesizer or self.synthesizer

    def scale_for(self, table: str) -> float:
        return self.scale * (self.override(table).scale or 1.0)


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
            lines.append(f"{field}: {item['msg']}")
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


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    """Read prodtwin.yaml; every problem is one ConfigError naming the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {path} not found (pass --config PATH)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    return config_from_dict(data, environ, origin=str(path))
