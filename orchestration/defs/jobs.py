"""Jobs and schedules: the nightly refresh of every environment, and one job per environment."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.partitions import daily, partitioned_keys
from orchestration.defs.settings import Settings


def _executor(settings: Settings) -> dg.ExecutorDefinition:
    """Tables fit in parallel, bounded by orchestration.concurrency: as processes of the run, or
    (``executor: k8s``) as one Kubernetes pod per step; deploy/k8s_executor.yaml sizes the pods."""
    limit = {"max_concurrent": settings.orchestration.concurrency}
    if settings.orchestration.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(limit)
    return dg.multiprocess_executor.configured(limit)


def defs(settings: Settings) -> dg.Definitions:
    nightly = dg.define_asset_job(
        "nightly_refresh",
        selection=dg.AssetSelection.all(),
        description="Extract, fit, sample, stage, check and publish every table to every "
        "environment.",
        executor_def=_executor(settings),
    )
    jobs = [nightly]
    for env in settings.environments:
        selection = dg.AssetSelection.groups(
            "extract", "model", "synthetic", f"staged_{env}", f"published_{env}"
        )
        jobs.append(
            dg.define_asset_job(
                f"refresh_environment_{env}",
                selection=selection,
                description=f"Refresh only the {env} warehouse.",
                executor_def=_executor(settings),
            )
        )
    days = daily(settings)
    if days is None:
        schedule = dg.ScheduleDefinition(
            name="nightly_refresh_schedule",
            job=nightly,
            cron_schedule=settings.orchestration.cron,
            execution_timezone=settings.orchestration.timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
        return dg.Definitions(jobs=jobs, schedules=[schedule])

    @dg.schedule(
        name="nightly_refresh_schedule",
        job=nightly,
        cron_schedule=settings.orchestration.cron,
        execution_timezone=settings.orchestration.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """The whole refresh plus the latest complete day of each partitioned table."""
        day = days.get_last_partition_key(current_time=context.scheduled_execution_time)
        return dg.RunRequest(partition_key=day)

    backfill = dg.define_asset_job(
        "daily_partitions",
        selection=dg.AssetSelection.assets(*partitioned_keys(settings)),
        description="Only the partitioned tables, for backfilling a range of days (their parents "
        "come from the last full refresh).",
        executor_def=_executor(settings),
    )
    return dg.Definitions(jobs=[*jobs, backfill], schedules=[nightly_schedule])
