"""Resources: the prodtwin configuration, loaded when a run needs it (secrets stay in env vars)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from orchestration.defs.settings import Settings
from synth_assets.config import Config, load_config


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


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        resources={
            "prodtwin": ProdtwinResource(
                config_path=settings.config_path or "", demo_root=settings.demo_root
            ),
            "io_manager": dg.FilesystemIOManager(base_dir=settings.orchestration.storage_dir),
        }
    )
