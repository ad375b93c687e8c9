"""Resources: prodtwin.yaml, the source and one warehouse per environment.

The databases are resources of their own so that the UI shows where each run reads and writes,
and so that a deployment sets their URLs through ``dg.EnvVar`` (Dagster resolves the variable
when a run starts and never stores its value). A database resource left empty defers to the
URL in prodtwin.yaml, which may itself be ``${VAR}``; the demo leaves both empty.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.defs.settings import Settings
from synth_assets.config import Config, Database, load_config

_ONLY_VAR = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class DatabaseResource(dg.ConfigurableResource):
    """A PostgreSQL database and schema; ``url`` is a secret: configure it with ``dg.EnvVar``."""

    url: str = ""  # empty: the URL in prodtwin.yaml
    schema_name: str = ""  # empty: the schema in prodtwin.yaml

    def apply(self, database: Database) -> Database:
        update: dict[str, Any] = {}
        if self.url:
            update["url"] = self.url
        if self.schema_name:
            update["schema"] = self.schema_name
        if not update:
            return database
        current = database.model_dump(by_alias=True, exclude_unset=True)
        return type(database).model_validate({**current, "url": database.url, **update})


class ProdtwinResource(dg.ConfigurableResource):
    """prodtwin.yaml for a run; empty ``config_path`` means the embedded demo server."""

    config_path: str = ""
    demo_root: str = "."

    def load(self) -> Config:
        if self.config_path:
            return load_config(self.config_path)
        from synth_assets.demo import prepare_demo

        config, _, _ = prepare_demo(Path(self.demo_root).resolve())
        return config


def warehouse_key(env: str) -> str:
    return "warehouse_" + re.sub(r"\W", "_", env)


def resource_keys(settings: Settings) -> set[str]:
    return {"prodtwin", "source", *(warehouse_key(e) for e in settings.environments)}


def run_config(resources: Any, environments: tuple[str, ...]) -> Config:
    """prodtwin.yaml with the databases of this run's resources applied."""
    config = resources.prodtwin.load()
    source = resources.source.apply(config.source)
    envs = dict(config.environments)
    for env in environments:
        if env in envs:
            envs[env] = getattr(resources, warehouse_key(env)).apply(envs[env])
    return config.model_copy(update={"source": source, "environments": envs})


def _database(raw: Any) -> DatabaseResource:
    """``url: ${VAR}`` in prodtwin.yaml becomes ``dg.EnvVar("VAR")``; literal URLs stay there."""
    url = raw.get("url") if isinstance(raw, dict) else None
    match = _ONLY_VAR.match(url) if isinstance(url, str) else None
    return DatabaseResource(url=dg.EnvVar(match.group(1))) if match else DatabaseResource()


def defs(settings: Settings) -> dg.Definitions:
    raw = settings.raw_config
    environments = raw.get("environments") or {}
    return dg.Definitions(
        resources={
            "prodtwin": ProdtwinResource(
                config_path=settings.config_path or "", demo_root=settings.demo_root
            ),
            "source": _database(raw.get("source")),
            **{
                warehouse_key(env): _database(environments.get(env))
                for env in settings.environments
            },
            "io_manager": dg.FilesystemIOManager(base_dir=settings.orchestration.storage_dir),
        }
    )
