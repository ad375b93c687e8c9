"""Where the code location's settings come from: the one place that switches environments.

``PRODTWIN_CONFIG`` names a prodtwin.yaml; without it the code location runs the embedded demo.
Loading reads files only (the configuration without expanding secrets, and the schema
snapshot), never a database, so the UI and ``dagster definitions validate`` work anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import ValidationError

from synth_assets.config import Orchestration, Partition, Tables
from synth_assets.errors import ConfigError
from synth_assets.schema import Schema
from synth_assets.snapshot import read_snapshot

REPO = Path(__file__).resolve().parents[2]
DEMO_SNAPSHOT = Path(__file__).resolve().parents[1] / "demo_schema.json"


@dataclass(frozen=True)
class Settings:
    config_path: str | None  # None: the embedded demo
    demo_root: str
    environments: tuple[str, ...]
    orchestration: Orchestration
    schema: Schema

    @cached_property
    def raw_config(self) -> dict:
        """prodtwin.yaml as written (``${VAR}`` not expanded): the loader must not need secrets."""
        return _raw_config(Path(self.config_path)) if self.config_path else {}

    @cached_property
    def partitions(self) -> dict[str, Partition]:
        """Tables refreshed a day at a time (``tables.overrides.<t>.partition``)."""
        try:
            tables = Tables.model_validate(self.raw_config.get("tables") or {})
        except ValidationError as error:
            raise ConfigError(f"{self.config_path}: tables: {error}") from None
        return {t: o.partition for t, o in tables.overrides.items() if o.partition is not None}

    @property
    def tables(self) -> list[str]:
        """The tables refreshed as a whole (every table but the partitioned ones)."""
        partitioned = self.partitions
        return [t for t in self.schema.tables if t not in partitioned]


def _raw_config(path: Path) -> dict:
    data = yaml.safe_load(path.read_text()) or {}
    return data if isinstance(data, dict) else {}


def load_settings() -> Settings:
    config_path = os.environ.get("PRODTWIN_CONFIG")
    demo_root = os.environ.get("PRODTWIN_DEMO_ROOT", str(REPO))
    if config_path:
        raw = _raw_config(Path(config_path))
        orchestration = Orchestration.model_validate(raw.get("orchestration") or {})
        environments = tuple(raw.get("environments") or {})
        snapshot = Path(orchestration.snapshot)
        if not snapshot.is_file():
            raise FileNotFoundError(
                f"schema snapshot {snapshot} not found: run prodtwin schema snapshot --config "
                f"{config_path}"
            )
    else:
        orchestration = Orchestration(storage_dir=str(Path(demo_root) / ".prodtwin" / "storage"))
        environments = ("dev", "test")
        snapshot = DEMO_SNAPSHOT
    return Settings(config_path, demo_root, environments, orchestration, read_snapshot(snapshot))
