"""Where the code location's settings come from: the one place that switches environments.

``PRODTWIN_CONFIG`` names a prodtwin.yaml; without it the code location runs the embedded demo.
Loading reads files only (the configuration without expanding secrets, and the schema
snapshot), never a database, so the UI and ``dagster definitions validate`` work anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from synth_assets.config import Orchestration
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
