"""The schema-change sensor: production gained, lost or retyped a table or column.

It compares a fresh read-only introspection with the snapshot the asset graph was built from
and, once per distinct change, launches a run that fails with what changed, so the change shows
up in the UI's run history and alerting. Publishing a new column stays refused until
prodtwin.yaml says ``schema_changes: include`` (enforced by the extract step).
"""

import hashlib

import dagster as dg

from orchestration.defs.resources import resource_keys, run_config
from orchestration.defs.settings import Settings
from synth_assets.refresh import read_schema
from synth_assets.snapshot import diff


class SchemaChangeConfig(dg.Config):
    change: str


@dg.op
def report_schema_change(config: SchemaChangeConfig) -> None:
    raise dg.Failure(
        description=f"production schema changed: {config.change}",
        metadata={
            "change": config.change,
            "what to do": "review, then run prodtwin schema snapshot and reload the code location",
        },
    )


@dg.job(description="Fails with the production schema change the sensor found.")
def schema_change_alert() -> None:
    report_schema_change()


def defs(settings: Settings) -> dg.Definitions:
    @dg.sensor(
        job=schema_change_alert,
        required_resource_keys=resource_keys(settings),
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def schema_change_sensor(context: dg.SensorEvaluationContext):
        live = read_schema(run_config(context.resources, settings.environments))
        change = diff(settings.schema, live)
        if change.empty:
            return dg.SkipReason("production matches the schema snapshot")
        text = change.describe()
        return dg.RunRequest(
            run_key=hashlib.sha256(text.encode()).hexdigest()[:16],
            run_config=dg.RunConfig(ops={"report_schema_change": SchemaChangeConfig(change=text)}),
        )

    return dg.Definitions(jobs=[schema_change_alert], sensors=[schema_change_sensor])
