"""Dagster definitions by concern; each module returns a small ``Definitions``."""

import dagster as dg

from orchestration.defs import assets, dbt, jobs, resources, sensors
from orchestration.defs.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(
        resources.defs(settings),
        assets.defs(settings),
        dbt.defs(settings),
        jobs.defs(settings),
        sensors.defs(settings),
    )
