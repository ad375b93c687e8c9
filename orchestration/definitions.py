"""The prodtwin code location: thin; every concern lives in ``orchestration/defs``."""

from __future__ import annotations

import dagster as dg

from orchestration.defs import assets, jobs, resources
from orchestration.defs.settings import load_settings

settings = load_settings()
defs = dg.Definitions.merge(
    resources.defs(settings),
    assets.defs(settings),
    jobs.defs(settings),
)
